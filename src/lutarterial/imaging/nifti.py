"""NIfTI images (with a JSON sidecar) and NIfTI label maps.

NIfTI stores RAS+ world coordinates; SimpleITK converts to DICOM LPS on reading (x and y are
negated), so grids from NIfTI and DICOM compare directly. The sidecar follows BIDS-PET
(``Units``, ``InjectedRadioactivity`` + ``InjectedRadioactivityUnits``, ``BodyWeight``,
``InjectionStart``/``ScanStart`` in seconds relative to ``TimeZero``, ``ScanDate``,
``ImageDecayCorrected``, ``ImageDecayCorrectionTime``, ``TracerRadionuclide``) plus
lutarterial keys: ``Modality``, ``FrameOfReferenceUID``, ``DecayCorrection``,
``InjectionDateTime``, ``ScanDateTime`` (ISO 8601), ``HalfLife`` (s), ``BodyHeight`` (m),
``PatientSex``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.imaging.types import Geometry, Image, PetTiming, Quantity

__all__ = ["is_nifti", "read_nifti_array", "read_nifti_image", "sidecar_path"]

_HALF_LIVES_S = {"68GA": 4062.6, "GA68": 4062.6, "18F": 6586.2, "F18": 6586.2, "177LU": 574300.0, "LU177": 574300.0}


def is_nifti(path: str | Path) -> bool:
    n = str(path).lower()
    return n.endswith(".nii") or n.endswith(".nii.gz")


def sidecar_path(path: Path) -> Path:
    name = path.name
    stem = name[:-7] if name.lower().endswith(".nii.gz") else name[:-4]
    return path.with_name(stem + ".json")


def read_nifti_array(path: str | Path) -> tuple[np.ndarray, Geometry]:
    import SimpleITK as sitk

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such NIfTI file: {p}")
    if p.stat().st_size == 0:
        raise InvalidInputError(f"{p.name}: the NIfTI file is empty (0 bytes); give a label map or image")
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:  # SimpleITK reports every unreadable file as RuntimeError
        first = next((ln.strip() for ln in reversed(str(exc).splitlines()) if ln.strip()), "unreadable")
        raise InvalidInputError(f"{p.name}: not a readable NIfTI file (empty, truncated or corrupt): {first[:200]}") from None
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidInputError(f"{p.name}: expected a 3-D scalar NIfTI volume")
    arr = sitk.GetArrayFromImage(img)
    if arr.dtype.kind == "f":
        arr = _restore_nonfinite(p, arr)
    geom = Geometry(
        shape=tuple(int(x) for x in arr.shape),  # type: ignore[arg-type]
        spacing_mm=tuple(float(s) for s in img.GetSpacing()),  # type: ignore[arg-type]
        origin_mm=tuple(float(o) for o in img.GetOrigin()),  # type: ignore[arg-type]
        direction=tuple(float(d) for d in img.GetDirection()),
    )
    return arr, geom


def _restore_nonfinite(p: Path, arr: np.ndarray) -> np.ndarray:
    """Put back the NaN/infinite voxels that SimpleITK's NIfTI reader silently reads as 0.

    Found by the issue-9 review: a lesion with NaN voxels gave SUV 0.0 through that zero. nibabel
    reads the stored floats as they are; its (x, y, z) array is SimpleITK's (z, y, x) transposed.
    The metrics then refuse (or, when asked, exclude) those voxels by name.
    """
    try:
        import nibabel as nib

        raw = np.asanyarray(nib.load(str(p)).dataobj)
    except Exception:  # noqa: BLE001 - SimpleITK read it; nibabel's opinion is only a cross-check
        return arr
    if raw.ndim != 3 or raw.dtype.kind != "f":
        return arr
    raw_zyx = raw.transpose(2, 1, 0)
    if raw_zyx.shape != arr.shape:
        return arr
    bad = ~np.isfinite(raw_zyx)
    if not bad.any():
        return arr
    out = np.array(arr, dtype=np.float32, copy=True)
    out[bad] = raw_zyx[bad]
    return out


def read_nifti_image(path: str | Path) -> Image:
    """A NIfTI activity/CT image; timing and units from the JSON sidecar when present."""
    p = Path(path)
    arr, geom = read_nifti_array(p)
    side: dict[str, Any] = {}
    sp = sidecar_path(p)
    if sp.is_file():
        try:
            side = json.loads(sp.read_text())
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{sp.name}: invalid JSON ({exc})") from None
    units = str(side.get("Units", "")).strip().lower().replace(" ", "")
    quantity = {
        "bq/ml": Quantity.BQML, "bqml": Quantity.BQML, "kbq/ml": Quantity.BQML,
        "g/ml": Quantity.SUVBW, "gml": Quantity.SUVBW, "suv": Quantity.SUVBW,
        "cm2/ml": Quantity.SUVBSA, "hu": Quantity.HU, "counts": Quantity.CNTS, "cnts": Quantity.CNTS,
    }.get(units, Quantity.OTHER)
    arr = arr.astype(np.float32)
    if units == "kbq/ml":
        arr = arr * 1000.0
    modality = str(side.get("Modality", "PT" if quantity in (Quantity.BQML, Quantity.SUVBW) else ""))
    timing = _timing(side) if modality == "PT" else None
    return Image(
        array=arr,
        geometry=geom,
        quantity=quantity,
        modality=modality,
        frame_of_reference_uid=side.get("FrameOfReferenceUID"),
        acquisition_time=timing.scan_time if timing else _iso(side.get("ScanDateTime")),
        timing=timing,
        meta={"units": side.get("Units", ""), "source": "nifti"},
    )


def _iso(v: Any) -> datetime | None:
    if not v:
        return None
    try:
        return datetime.fromisoformat(str(v)).replace(tzinfo=None)
    except ValueError:
        raise InvalidInputError(f"invalid ISO 8601 datetime in sidecar: {v!r}") from None


def _timing(side: dict[str, Any]) -> PetTiming:
    dose = side.get("InjectedRadioactivity")
    if dose is not None:
        u = str(side.get("InjectedRadioactivityUnits", "MBq")).strip()
        mult = {"Bq": 1.0, "kBq": 1e3, "MBq": 1e6, "GBq": 1e9, "mCi": 3.7e7}.get(u)
        if mult is None:
            raise InvalidInputError(f"sidecar InjectedRadioactivityUnits {u!r} not understood (use MBq)")
        dose = float(dose) * mult
    inj = _iso(side.get("InjectionDateTime"))
    scan = _iso(side.get("ScanDateTime"))
    zero = None
    if side.get("ScanDate") and side.get("TimeZero"):
        zero = _iso(f"{side['ScanDate']}T{side['TimeZero']}")
    if zero is not None:
        if inj is None and side.get("InjectionStart") is not None:
            inj = zero + timedelta(seconds=float(side["InjectionStart"]))
        if scan is None and side.get("ScanStart") is not None:
            scan = zero + timedelta(seconds=float(side["ScanStart"]))
    dc = str(side.get("DecayCorrection", "")).upper()
    if not dc:
        if side.get("ImageDecayCorrected") is False:
            dc = "NONE"
        else:
            t = side.get("ImageDecayCorrectionTime")
            dc = "ADMIN" if (t is not None and side.get("InjectionStart") is not None
                             and float(t) == float(side["InjectionStart"])) else "START"
    if dc == "NONE":
        raise InvalidInputError("NIfTI PET without decay correction is not supported; decay-correct to scan start")
    hl = side.get("HalfLife")
    if hl is None and side.get("TracerRadionuclide"):
        hl = _HALF_LIVES_S.get(str(side["TracerRadionuclide"]).upper().replace("-", ""))
    return PetTiming(
        injected_activity_bq=dose,
        injection_time=inj,
        scan_time=inj if dc == "ADMIN" else scan,
        decay_correction=dc,
        half_life_s=float(hl) if hl is not None else None,
        weight_kg=float(side["BodyWeight"]) if side.get("BodyWeight") else None,
        height_m=float(side["BodyHeight"]) if side.get("BodyHeight") else None,
        sex=side.get("PatientSex"),
        nuclide=side.get("TracerRadionuclide"),
    )
