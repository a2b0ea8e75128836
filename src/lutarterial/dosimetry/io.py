"""File edges of the dosimetry package: TAC tables in, dose maps (NIfTI, DICOM RT Dose) and plots out.

Geometry follows :mod:`lutarterial.imaging.types`: arrays ``[k, j, i]`` (slice, row, column),
DICOM LPS patient coordinates in mm. Nothing here reads the clock: times written into DICOM
come from the caller.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import ImplausibleValueError, InvalidInputError, NotFoundError
from lutarterial.plausibility import check_quantity

__all__ = ["TacRow", "VoiTac", "read_tac_csv", "read_prior_doses_csv", "write_nifti_dose", "write_rtdose", "plot_tacs", "plot_dvhs"]

REQUIRED_COLUMNS = ("voi", "time_h", "activity_mbq", "mass_g")


@dataclass(frozen=True)
class TacRow:
    voi: str
    time_h: float
    activity_mbq: float
    mass_g: float
    kind: str
    cycle: str
    teff_h: float | None = None


@dataclass(frozen=True)
class VoiTac:
    """All time points of one VOI in one cycle; ``kind`` 'organ' or 'lesion'."""

    voi: str
    cycle: str
    time_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    mass_g: float
    kind: str
    population_teff_h: float | None = None  # optional per-VOI population Teff (madsen2018)


def _read_csv_text(p: Path, what: str) -> str:
    """The text of a CSV file; binary or non-UTF-8 content is a clear error (was a traceback)."""
    data = p.read_bytes()
    if b"\x00" in data:
        raise InvalidInputError(f"{p.name}: not a text CSV file (binary content); give the {what} as CSV")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{p.name}: not UTF-8 text (byte {exc.start}); give the {what} as a UTF-8 CSV file") from None


def _plausible(kind: str, x: float, unit: str, col: str, line: int, path: Path) -> float:
    """``x`` checked against the physical limits of ``kind`` (lutarterial.plausibility), naming the line."""
    try:
        return check_quantity(kind, x, unit, name=col)
    except ImplausibleValueError as exc:
        raise ImplausibleValueError(f"{path.name} line {line}: {exc}") from None


def _num(value: str | None, col: str, line: int, path: Path) -> float:
    if value is None or value.strip() == "":
        raise InvalidInputError(f"{path.name} line {line}: missing {col}")
    try:
        x = float(value)
    except ValueError:
        raise InvalidInputError(f"{path.name} line {line}: {col} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise InvalidInputError(f"{path.name} line {line}: {col} must be finite")
    return x


def read_tac_csv(path: str | Path, default_cycle: str = "1") -> list[VoiTac]:
    """Read ``voi,time_h,activity_mbq,mass_g`` (+ optional ``kind`` organ|lesion, ``cycle``, ``teff_h``).

    ``teff_h`` is a per-VOI population effective half-life for the madsen2018 single-time-point
    method (overrides ``--teff-h``).

    time_h is hours from the start of administration of that cycle. Errors name the line:
    negative activity, non-positive time, duplicate time within a VOI and cycle, missing mass,
    or different masses for one VOI in one cycle.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such TAC file: {p}")
    text = _read_csv_text(p, "time-activity table")
    try:
        return _parse_tac(p, text, default_cycle)
    except csv.Error as exc:
        raise InvalidInputError(f"{p.name}: not a readable CSV file ({exc})") from None


def _parse_tac(p: Path, text: str, default_cycle: str) -> list[VoiTac]:
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        if missing:
            raise InvalidInputError(f"{p.name}: missing column(s) {', '.join(missing)}; need {','.join(REQUIRED_COLUMNS)}")
        rows: list[TacRow] = []
        for n, raw in enumerate(reader, start=2):
            r = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            voi = r.get("voi", "")
            if not voi:
                raise InvalidInputError(f"{p.name} line {n}: empty voi")
            t = _num(r.get("time_h"), "time_h", n, p)
            a = _num(r.get("activity_mbq"), "activity_mbq", n, p)
            m = _num(r.get("mass_g"), "mass_g", n, p)
            if t <= 0:
                raise InvalidInputError(f"{p.name} line {n}: time_h must be > 0 h after administration, got {t}")
            if a < 0:
                raise InvalidInputError(f"{p.name} line {n}: negative activity {a} MBq for {voi}")
            if m <= 0:
                raise InvalidInputError(f"{p.name} line {n}: mass_g must be > 0, got {m}")
            _plausible("time_post_injection", t, "h", "time_h", n, p)
            _plausible("activity", a, "MBq", "activity_mbq", n, p)
            _plausible("voi_mass", m, "g", "mass_g", n, p)
            kind = (r.get("kind") or ("lesion" if voi.lower().startswith(("lesion", "tumour", "tumor")) else "organ")).lower()
            if kind not in ("organ", "lesion"):
                raise InvalidInputError(f"{p.name} line {n}: kind must be organ or lesion, got {kind!r}")
            teff = _num(r["teff_h"], "teff_h", n, p) if r.get("teff_h") else None
            if teff is not None and teff <= 0:
                raise InvalidInputError(f"{p.name} line {n}: teff_h must be > 0 h")
            if teff is not None:
                _plausible("half_life", teff, "h", "teff_h", n, p)
            rows.append(TacRow(voi, t, a, m, kind, r.get("cycle") or default_cycle, teff))
    if not rows:
        raise InvalidInputError(f"{p.name}: no data rows")
    groups: dict[tuple[str, str], list[TacRow]] = {}
    for row in rows:
        groups.setdefault((row.voi, row.cycle), []).append(row)
    out = []
    for (voi, cycle), rs in groups.items():
        rs.sort(key=lambda x: x.time_h)
        times = [x.time_h for x in rs]
        if len(set(times)) != len(times):
            dup = next(t for t in times if times.count(t) > 1)
            raise InvalidInputError(f"{p.name}: VOI {voi} cycle {cycle} has duplicate time {dup} h; times must increase")
        masses = {x.mass_g for x in rs}
        if max(masses) - min(masses) > 1e-9 * max(masses):
            raise InvalidInputError(f"{p.name}: VOI {voi} cycle {cycle} has different masses {sorted(masses)}; give one mass")
        kinds = {x.kind for x in rs}
        if len(kinds) > 1:
            raise InvalidInputError(f"{p.name}: VOI {voi} has mixed kinds {sorted(kinds)}")
        teffs = {x.teff_h for x in rs if x.teff_h is not None}
        if len(teffs) > 1:
            raise InvalidInputError(f"{p.name}: VOI {voi} cycle {cycle} has different teff_h values {sorted(teffs)}")
        out.append(VoiTac(voi, cycle, tuple(times), tuple(x.activity_mbq for x in rs), rs[0].mass_g, rs[0].kind,
                          next(iter(teffs)) if teffs else None))
    return out


def read_prior_doses_csv(path: str | Path) -> list[Any]:
    """Doses of earlier cycles: ``voi,cycle,dose_gy`` (+ optional ``teff_h`` for BED, ``route``)."""
    from lutarterial.dosimetry.metrics import CycleDose

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such prior-dose file: {p}")
    out = []
    seen: set[tuple[str, str]] = set()
    text = _read_csv_text(p, "prior doses")
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("voi", "cycle", "dose_gy") if c not in cols]
        if missing:
            raise InvalidInputError(f"{p.name}: missing column(s) {', '.join(missing)}; need voi,cycle,dose_gy[,teff_h]")
        for n, raw in enumerate(reader, start=2):
            r = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            if not r.get("voi") or not r.get("cycle"):
                raise InvalidInputError(f"{p.name} line {n}: voi and cycle are required")
            d = _num(r.get("dose_gy"), "dose_gy", n, p)
            if d < 0:
                raise InvalidInputError(f"{p.name} line {n}: negative dose {d} Gy")
            _plausible("absorbed_dose", d, "Gy", "dose_gy", n, p)
            teff = _num(r["teff_h"], "teff_h", n, p) if r.get("teff_h") else None
            if teff is not None and teff <= 0:
                raise InvalidInputError(f"{p.name} line {n}: teff_h must be > 0")
            key = (r["voi"], r["cycle"])
            if key in seen:
                raise InvalidInputError(f"{p.name} line {n}: VOI {key[0]} cycle {key[1]} given twice")
            seen.add(key)
            out.append(CycleDose(r["cycle"], r["voi"], d, teff, r.get("route") or "IV"))
    return out


def _affine_ras(geometry: Any) -> np.ndarray:
    """NIfTI affine (RAS) for an array stored ``[i, j, k]`` from an LPS geometry."""
    d = np.asarray(geometry.direction, float).reshape(3, 3)
    sp = np.asarray(geometry.spacing_mm, float)
    aff = np.eye(4)
    aff[:3, :3] = d * sp[None, :]
    aff[:3, 3] = np.asarray(geometry.origin_mm, float)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ aff


def write_nifti_dose(path: str | Path, dose_gy: np.ndarray, geometry: Any) -> Path:
    """Write a dose map ``[k, j, i]`` (Gy) as NIfTI-1 (float32) on the source image geometry."""
    import nibabel as nib

    arr = np.asarray(dose_gy, dtype=np.float32)
    if tuple(arr.shape) != tuple(geometry.shape):
        raise InvalidInputError(f"dose shape {arr.shape} differs from geometry {geometry.shape}")
    img = nib.Nifti1Image(np.transpose(arr, (2, 1, 0)), _affine_ras(geometry))
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"absorbed dose Gy (lutarterial)"
    p = Path(path)
    nib.save(img, str(p))
    return p


def write_rtdose(path: str | Path, dose_gy: np.ndarray, geometry: Any, *, content_datetime: datetime,
                 frame_of_reference_uid: str | None = None, study_instance_uid: str | None = None,
                 patient: Mapping[str, str] | None = None, summation_type: str = "PLAN",
                 comment: str = "177Lu absorbed dose (lutarterial)", dose_comment: str | None = None) -> Path:
    """Write a DICOM RT Dose (multi-frame, 32-bit, DoseGridScaling) on the source image grid.

    Geometry is copied from the source image (Image Position/Orientation, Pixel Spacing,
    Grid Frame Offset Vector along the slice normal), and the Frame of Reference UID of the
    source series should be passed so that viewers (3D Slicer) overlay the dose on it.
    The grid must have uniform slice spacing (it does for every reconstructed SPECT/PET/CT).
    ``comment`` goes to Image Comments (provenance: method, kernel source and citation),
    ``dose_comment`` (at most 64 characters, e.g. the kernel source) to Dose Comment.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = np.asarray(dose_gy, dtype=np.float64)
    if arr.ndim != 3 or tuple(arr.shape) != tuple(geometry.shape):
        raise InvalidInputError(f"dose shape {arr.shape} differs from geometry {geometry.shape}")
    if np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidInputError("dose map must be finite and >= 0 Gy")
    if summation_type not in ("PLAN", "MULTI_PLAN", "FRACTION", "BEAM", "BRACHY", "RECORD"):
        raise InvalidInputError(f"unknown DoseSummationType {summation_type!r}")
    d = np.asarray(geometry.direction, float).reshape(3, 3)
    sp = np.asarray(geometry.spacing_mm, float)
    origin = np.asarray(geometry.origin_mm, float)
    vmax = float(arr.max())
    scaling = vmax / 4294967295.0 if vmax > 0 else 1.0
    pixels = np.round(arr / scaling).astype(np.uint32)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"
    sop_uid = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTDOSE"
    pat = dict(patient or {})
    ds.PatientName = pat.get("PatientName", "")
    ds.PatientID = pat.get("PatientID", "")
    ds.PatientBirthDate = pat.get("PatientBirthDate", "")
    ds.PatientSex = pat.get("PatientSex", "")
    ds.StudyInstanceUID = study_instance_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference_uid or generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.StudyDate = ds.ContentDate = content_datetime.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = content_datetime.strftime("%H%M%S")
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 900
    ds.InstanceNumber = 1
    ds.Manufacturer = "lutarterial"
    ds.SeriesDescription = "Absorbed dose"
    ds.ImageComments = comment
    ds.ImagePositionPatient = [float(x) for x in origin]
    ds.ImageOrientationPatient = [float(x) for x in np.concatenate([d[:, 0], d[:, 1]])]
    ds.PixelSpacing = [float(sp[1]), float(sp[0])]  # row spacing (between rows, dj), column spacing (di)
    ds.SliceThickness = float(sp[2])
    nz = arr.shape[0]
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x3004, 0x000C)
    ds.GridFrameOffsetVector = [float(k * sp[2]) for k in range(nz)]
    ds.Rows, ds.Columns = int(arr.shape[1]), int(arr.shape[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation_type
    if dose_comment:
        ds.DoseComment = dose_comment[:64]
    ds.DoseGridScaling = f"{scaling:.10g}"[:16]
    ds.PixelData = pixels.tobytes()
    p = Path(path)
    ds.save_as(str(p), enforce_file_format=True)
    return p


def plot_tacs(path: str | Path, curves: Sequence[tuple[str, Sequence[float], Sequence[float], Any]]) -> Path:
    """PNG of measured points and fitted curves: (label, times_h, activities_mbq, fit or None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, t, a, fit in curves:
        line = ax.plot(t, a, "o", label=f"{label} (data)")[0]
        if fit is not None and fit.params:
            tt = np.linspace(0, max(t) * 1.5, 300)
            ax.plot(tt, fit.activity_mbq(tt), "-", color=line.get_color(), label=f"{label}: {fit.model}")
    ax.set_xlabel("time after administration (h)")
    ax.set_ylabel("activity (MBq)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
    return Path(path)


def plot_dvhs(path: str | Path, dvhs: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Path:
    """PNG of cumulative DVHs: (label, dose_gy, volume_fraction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, d, v in dvhs:
        ax.plot(d, 100 * np.asarray(v), label=label)
    ax.set_xlabel("absorbed dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_ylim(0, 101)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
    return Path(path)
