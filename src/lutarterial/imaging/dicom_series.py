"""Reading DICOM image series (PT, NM, CT) into :class:`~lutarterial.imaging.types.Image`.

Readers are tolerant, writers strict: slices are sorted by their position along the slice
normal (never by InstanceNumber or file name), per-slice RescaleSlope/Intercept are applied
(PET stores one slope per slice), multi-frame NM uses DetectorInformationSequence geometry and
enhanced multi-frame objects their per-frame PlanePositionSequence. PET timing follows the QIBA
vendor-neutral pseudo-code (see :mod:`lutarterial.imaging.suv`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import DicomConformanceError, InvalidInputError, NotFoundError
from lutarterial.imaging.suv import (
    frame_decay_factors,
    injection_datetime,
    scan_start_datetime_qiba,
    stored_suv_to_suvbw,
)
from lutarterial.imaging.types import Geometry, Image, PetTiming, Quantity

__all__ = [
    "dcmread_tolerant",
    "list_series",
    "read_dicom_series",
    "parse_da",
    "parse_tm",
    "parse_dt",
    "dt_offset_minutes",
    "decode_pixels",
    "geometry_from_positions",
    "rescale_of",
]

_NON_IMAGE = {"SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "KO", "PR", "REG"}


def parse_da(value: Any) -> date | None:
    s = str(value or "").strip().replace(".", "").replace("-", "")
    if len(s) < 8:
        return None
    try:
        return date(int(s[:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        raise DicomConformanceError(f"invalid DICOM date {value!r}") from None


def parse_tm(value: Any) -> time | None:
    s = str(value or "").strip().replace(":", "")
    if not s:
        return None
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", s)
    if not m:
        raise DicomConformanceError(f"invalid DICOM time {value!r}")
    hh, mm, ss, frac = m.groups()
    sec = int(ss or 0)
    if sec == 60:  # leap second allowed by DICOM
        sec = 59
    return time(int(hh), int(mm or 0), sec, int((frac or "0").ljust(6, "0")))


def parse_dt(value: Any) -> datetime | None:
    """DICOM DT (YYYYMMDDHHMMSS.FFFFFF[&ZZXX]) -> naive local datetime (offset ignored)."""
    s = str(value or "").strip()
    if not s:
        return None
    s = re.split(r"[+\-&](?=\d{4}$)", s)[0]  # digits and "." only: a sign starts the UTC offset
    d = parse_da(s[:8])
    if d is None:
        raise DicomConformanceError(f"invalid DICOM datetime {value!r}")
    t = parse_tm(s[8:]) if len(s) > 8 else time(0)
    return datetime.combine(d, t or time(0))


def dt_offset_minutes(value: Any) -> int | None:
    """UTC offset of a DICOM DT value ("...&ZZXX", e.g. "+0100") or of TimezoneOffsetFromUTC, in minutes."""
    s = str(value or "").strip()
    m = re.search(r"([+\-])(\d{2})(\d{2})$", s)  # DT digits never hold a sign: a sign is an offset
    if not m:
        return None
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 60 + int(m.group(3)))


def _dt(ds: Any, date_kw: str, time_kw: str) -> datetime | None:
    d, t = parse_da(ds.get(date_kw)), parse_tm(ds.get(time_kw))
    if d is None or t is None:
        return None
    return datetime.combine(d, t)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise NotFoundError(f"no such file or directory: {path}")
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def dcmread_tolerant(path: str | Path, **kwargs: Any) -> Any:
    """Read a DICOM file, also without the 128-byte preamble/"DICM" prefix (old or raw files).

    Raises ``ValueError`` (or pydicom's errors) when the file is not DICOM at all.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError:
        ds = pydicom.dcmread(path, force=True, **kwargs)
        if "SOPClassUID" not in ds and "Modality" not in ds:
            raise ValueError(f"{path} is not a DICOM file") from None
        return ds


def list_series(path: str | Path) -> dict[str, list[Any]]:
    """Group the DICOM files under ``path`` by SeriesInstanceUID (pixel data deferred)."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for f in _files(Path(path)):
        try:
            with warnings.catch_warnings():
                # pydicom warns for every non-DICOM or odd file it is forced to parse; a folder
                # scan ignores such files, so their warnings are noise for the user.
                warnings.simplefilter("ignore")
                ds = dcmread_tolerant(f, defer_size="2 KB")
        except Exception:  # noqa: BLE001 - non-DICOM files next to a series are ignored
            continue
        uid = str(ds.get("SeriesInstanceUID", ""))
        if uid and "SOPClassUID" in ds:
            groups[uid].append(ds)
    return dict(groups)


def geometry_from_positions(
    iop: Sequence[float], positions: np.ndarray, pixel_spacing: Sequence[float], shape_2d: tuple[int, int],
    single_slice_thickness: float | None = None,
) -> tuple[Geometry, np.ndarray]:
    """Geometry from ImageOrientationPatient and per-slice positions; returns (geometry, order)."""
    row = np.asarray(iop[:3], dtype=float)
    col = np.asarray(iop[3:6], dtype=float)
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    normal = np.cross(row, col)
    proj = positions @ normal
    order = np.argsort(proj, kind="stable")
    proj_sorted = proj[order]
    n = len(order)
    if n > 1:
        diffs = np.diff(proj_sorted)
        if np.any(diffs < 1e-3):
            raise DicomConformanceError(
                "two or more slices share a position: the series holds several time frames, "
                "phases or duplicated files; export a single static frame"
            )
        dz = float(np.median(diffs))
        if np.max(np.abs(diffs - dz)) > max(0.01 * dz, 0.05):
            raise DicomConformanceError(
                f"slices are not evenly spaced (spacing {diffs.min():.3f}-{diffs.max():.3f} mm); "
                "missing slices or mixed series"
            )
        span = positions[order[-1]] - positions[order[0]]
        if np.linalg.norm(np.cross(span / np.linalg.norm(span), normal)) > 1e-3:
            raise DicomConformanceError("slices are not stacked along the slice normal (gantry tilt); resample first")
    else:
        dz = float(single_slice_thickness) if single_slice_thickness and single_slice_thickness > 0 else 1.0
    rs, cs = float(pixel_spacing[0]), float(pixel_spacing[1])  # PixelSpacing = (row spacing, column spacing)
    direction = np.column_stack([row, col, normal])
    geom = Geometry(
        shape=(n, int(shape_2d[0]), int(shape_2d[1])),
        spacing_mm=(cs, rs, dz),
        origin_mm=tuple(float(x) for x in positions[order[0]]),  # type: ignore[arg-type]
        direction=tuple(float(x) for x in direction.ravel()),
    )
    return geom, order


_MAX_SERIES_LISTED = 8


def _choose_series(groups: dict[str, list[Any]], series_uid: str | None, modality: str | None) -> list[Any]:
    if series_uid is not None:
        if series_uid not in groups:
            raise NotFoundError(f"series {series_uid} not found")
        return groups[series_uid]
    cands = {u: g for u, g in groups.items() if str(g[0].get("Modality", "")) not in _NON_IMAGE}
    if modality:
        cands = {u: g for u, g in cands.items() if str(g[0].get("Modality", "")) == modality}
    if not cands:
        what = f"{modality} " if modality else ""
        raise NotFoundError(f"no {what}DICOM image series found")
    if len(cands) > 1 and not modality:
        # A study folder usually holds the CT too: prefer the quantitative series (PT, then NM),
        # and among PET series the attenuation-corrected one.
        for mod in ("PT", "NM"):
            quant = {u: g for u, g in cands.items() if str(g[0].get("Modality", "")) == mod}
            if len(quant) > 1:
                ac = {u: g for u, g in quant.items()
                      if "ATTN" in [str(x).upper() for x in (g[0].get("CorrectedImage") or [])]}
                quant = ac or quant
            if len(quant) > 1:
                # Exports often add MIPs/screen captures (DERIVED\SECONDARY\MIP) next to the PET,
                # or the SPECT projections next to their reconstruction: keep the reconstructions.
                prim = {u: g for u, g in quant.items() if _is_primary_volume(g[0])}
                quant = prim or quant
            if quant:
                cands = quant
                break
    if len(cands) > 1:
        shown = list(cands.items())[:_MAX_SERIES_LISTED]
        desc = "; ".join(
            f"{g[0].get('Modality', '?')} {u} ({len(g)} files, {g[0].get('SeriesDescription', '')!s})"
            for u, g in shown
        )
        if len(cands) > len(shown):
            desc += f"; and {len(cands) - len(shown)} more series"
        raise InvalidInputError(
            f"several image series found; give that series' own folder or file, or its UID (--series-uid): {desc}"
        )
    return next(iter(cands.values()))


def _is_primary_volume(ds: Any) -> bool:
    itype = [str(x).strip().upper() for x in (ds.get("ImageType") or [])]
    if any(w in itype for w in ("MIP", "PROJECTION IMAGE", "SCREEN SHOT", "SCREENSHOT")) or \
            (len(itype) > 1 and itype[1] == "SECONDARY"):
        return False
    if str(ds.get("Modality", "")) == "NM" and len(itype) > 2:
        return itype[2] == "RECON TOMO"
    return True


def read_dicom_series(path: str | Path, *, series_uid: str | None = None, modality: str | None = None) -> Image:
    """Read one DICOM image series (a directory or a single multi-frame file)."""
    groups = list_series(path)
    if not groups:
        raise NotFoundError(f"no DICOM files found under {path}")
    dss = _choose_series(groups, series_uid, modality)
    first = dss[0]
    if len(dss) == 1 and int(first.get("NumberOfFrames", 1) or 1) > 1:
        array, geom, per_frame = _read_multiframe(first)
    else:
        array, geom, per_frame = _read_single_frames(dss)
        first = per_frame[0]
    mod = str(first.get("Modality", ""))
    meta: dict[str, Any] = {
        "manufacturer": str(first.get("Manufacturer", "")),
        "model": str(first.get("ManufacturerModelName", "")),
        "institution": str(first.get("InstitutionName", "")),
        "station": str(first.get("StationName", "")),
        "series_description": str(first.get("SeriesDescription", "")),
        "patient_id": str(first.get("PatientID", "")),
        "study_uid": str(first.get("StudyInstanceUID", "")),
        "units": str(first.get("Units", "")),
    }
    quantity = Quantity.HU if mod == "CT" else Quantity.OTHER
    timing = None
    acq_times = [_dt(d, "AcquisitionDate", "AcquisitionTime") for d in per_frame]
    acq_known = [t for t in acq_times if t is not None]
    acq_time = min(acq_known) if acq_known else None
    if mod == "PT":
        array, quantity, timing, extra = _pet_quantity(first, per_frame, array, acq_times)
        meta.update(extra)
    elif mod == "NM":
        array, quantity, extra = _nm_quantity(first, array)
        meta.update(extra)
        acq_time = acq_time or _dt(first, "SeriesDate", "SeriesTime")
    return Image(
        array=array,
        geometry=geom,
        quantity=quantity,
        modality=mod,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")) or None,
        series_uid=str(first.get("SeriesInstanceUID", "")) or None,
        acquisition_time=acq_time,
        timing=timing,
        meta=meta,
    )


def _where(ds: Any) -> str:
    n = ds.get("InstanceNumber")
    return f"slice {n}" if n not in (None, "") else f"SOP instance {ds.get('SOPInstanceUID', '?')}"


def rescale_of(ds: Any, what: str = "") -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of ``ds``; absent or empty: (1, 0).

    A slope of 0 (every voxel equal to the intercept) or a non-finite slope or intercept is a
    :class:`DicomConformanceError`: before, ``or 1`` silently replaced a zero slope by 1.
    """
    where = what or _where(ds)
    raw_slope, raw_inter = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    try:
        slope = 1.0 if raw_slope in (None, "") else float(raw_slope)
        inter = 0.0 if raw_inter in (None, "") else float(raw_inter)
    except (TypeError, ValueError):
        raise DicomConformanceError(
            f"{where}: RescaleSlope/RescaleIntercept ({raw_slope!r}, {raw_inter!r}) are not numbers"
        ) from None
    if not math.isfinite(slope) or slope == 0:
        raise DicomConformanceError(
            f"{where}: RescaleSlope (0028,1053) is {raw_slope!r}; it must be a finite, non-zero number "
            "(a zero slope would make every voxel equal to the intercept); re-export the series"
        )
    if not math.isfinite(inter):
        raise DicomConformanceError(f"{where}: RescaleIntercept (0028,1052) is {raw_inter!r}, not a finite number")
    return slope, inter


def _rescale(ds: Any, pix: np.ndarray) -> np.ndarray:
    slope, inter = rescale_of(ds)
    return pix.astype(np.float64) * slope + inter


_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_DTYPES = {(8, 0): "u1", (8, 1): "i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}


def decode_pixels(ds: Any) -> np.ndarray:
    """``ds.pixel_array``, with a missing or failing decoder reported as a conformance error.

    PACS exports are often compressed (JPEG Lossless, JPEG-LS, JPEG 2000, RLE); pylibjpeg with its
    libjpeg plugin, Pillow and the jpeg_ls package cover these. The message names the transfer
    syntax so that the site can decompress (e.g. ``dcmdjpeg``, ``gdcmconv --raw``) if needed.
    """
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DicomConformanceError(f"{_where(ds)} has no PixelData (7FE0,0010): the file holds no image; "
                                    "re-export the series with its pixel data")
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - pydicom raises several types for missing decoders
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", str(ts))
        raise DicomConformanceError(
            f"cannot decode the pixel data ({name}, {ts}): {exc}; decompress the files "
            "(e.g. dcmdjpeg or gdcmconv --raw) or install a decoder (pylibjpeg-libjpeg, pylibjpeg-openjpeg)"
        ) from None


def _pixels(ds: Any) -> np.ndarray:
    """Stored values of a single-frame image; a fast path for uncompressed little-endian data."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DicomConformanceError(f"{_where(ds)} has no PixelData (7FE0,0010): the file holds no image; "
                                    "re-export the series with its pixel data")
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    key = (int(ds.get("BitsAllocated", 0)), int(ds.get("PixelRepresentation", 0)))
    if (ts in _NATIVE_LE and key in _DTYPES and int(ds.get("SamplesPerPixel", 1)) == 1
            and int(ds.get("BitsStored", key[0])) == key[0] and int(ds.get("NumberOfFrames", 1) or 1) == 1):
        n = int(ds.Rows) * int(ds.Columns)
        buf = ds.PixelData
        if len(buf) >= n * np.dtype(_DTYPES[key]).itemsize:
            return np.frombuffer(buf, _DTYPES[key], count=n).reshape(int(ds.Rows), int(ds.Columns))
    return decode_pixels(ds)


def _read_single_frames(dss: list[Any]) -> tuple[np.ndarray, Geometry, list[Any]]:
    iop0 = [float(x) for x in dss[0].get("ImageOrientationPatient", [])]
    if len(iop0) != 6:
        raise DicomConformanceError("ImageOrientationPatient (0020,0037) missing; cannot place the image in space")
    for d in dss:
        iop = [float(x) for x in d.get("ImageOrientationPatient", [])]
        if len(iop) != 6 or not np.allclose(iop, iop0, atol=1e-4):
            raise DicomConformanceError("slices of one series have different orientations")
        if "ImagePositionPatient" not in d:
            raise DicomConformanceError("ImagePositionPatient (0020,0032) missing on a slice")
    pos = np.array([[float(x) for x in d.ImagePositionPatient] for d in dss])
    ps = dss[0].get("PixelSpacing")
    if ps is None:
        raise DicomConformanceError("PixelSpacing (0028,0030) missing")
    rows, cols = int(dss[0].Rows), int(dss[0].Columns)
    thick = dss[0].get("SliceThickness")
    geom, order = geometry_from_positions(iop0, pos, [float(x) for x in ps], (rows, cols),
                                          float(thick) if thick not in (None, "") else None)
    ordered = [dss[i] for i in order]
    arr = np.empty(geom.shape, dtype=np.float32)
    for k, d in enumerate(ordered):
        if int(d.Rows) != rows or int(d.Columns) != cols:
            raise DicomConformanceError("slices of one series have different sizes")
        arr[k] = _rescale(d, _pixels(d))
    return arr, geom, ordered


def _read_multiframe(ds: Any) -> tuple[np.ndarray, Geometry, list[Any]]:
    nf = int(ds.NumberOfFrames)
    pix = decode_pixels(ds).reshape(nf, int(ds.Rows), int(ds.Columns))
    if "PerFrameFunctionalGroupsSequence" in ds:  # enhanced multi-frame
        shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
        per = ds.PerFrameFunctionalGroupsSequence

        def grp(i: int, name: str) -> Any:
            item = per[i]
            if name in item:
                return item[name].value[0]
            if shared is not None and name in shared:
                return shared[name].value[0]
            raise DicomConformanceError(f"{name} missing in functional groups")

        iop = [float(x) for x in grp(0, "PlaneOrientationSequence").ImageOrientationPatient]
        pos = np.array([[float(x) for x in grp(i, "PlanePositionSequence").ImagePositionPatient] for i in range(nf)])
        ps = [float(x) for x in grp(0, "PixelMeasuresSequence").PixelSpacing]
        geom, order = geometry_from_positions(iop, pos, ps, pix.shape[1:])
        arr = np.empty(geom.shape, dtype=np.float32)
        for k, i in enumerate(order):
            try:
                tr = grp(int(i), "PixelValueTransformationSequence")
            except DicomConformanceError:
                slope, inter = rescale_of(ds, "multi-frame image")
            else:
                slope, inter = rescale_of(tr, f"frame {int(i) + 1}")
            arr[k] = pix[i] * slope + inter
        return arr, geom, [ds]
    # Classic NM multi-frame (reconstructed TOMO): geometry in DetectorInformationSequence.
    itype = [str(x).strip().upper() for x in (ds.get("ImageType") or [])]
    if str(ds.get("Modality", "")) == "NM" and len(itype) > 2 and itype[2] != "RECON TOMO":
        what = ("projections (acquired TOMO frames)" if itype[2] in ("TOMO", "GATED TOMO")
                else "a gated reconstruction (several time bins)" if itype[2] == "RECON GATED TOMO"
                else f"a {itype[2].lower()} acquisition")
        raise DicomConformanceError(
            f"NM ImageType {'/'.join(itype)} is {what}, not a reconstructed SPECT volume "
            "(ImageType value 3 RECON TOMO); export the reconstruction"
        )
    n_slices = int(ds.get("NumberOfSlices", 0) or 0)
    if str(ds.get("Modality", "")) == "NM":
        for vec, what in (("EnergyWindowVector", "energy windows"), ("DetectorVector", "detectors"),
                          ("PhaseVector", "phases"), ("TimeSlotVector", "time slots"),
                          ("RRIntervalVector", "R-R intervals")):
            if len({int(x) for x in (ds.get(vec) or [])}) > 1:
                raise DicomConformanceError(
                    f"NM object holds several {what} in its frames "
                    f"({vec} has more than one value); export one reconstructed volume per file"
                )
        if n_slices and n_slices != nf:
            raise DicomConformanceError(
                f"NM NumberOfFrames {nf} differs from NumberOfSlices {n_slices}: the frames are not one stack of slices"
            )
    det = ds.get("DetectorInformationSequence")
    src = det[0] if det else ds
    iop = src.get("ImageOrientationPatient") or ds.get("ImageOrientationPatient")
    ipp = src.get("ImagePositionPatient") or ds.get("ImagePositionPatient")
    if iop is None or ipp is None:
        raise DicomConformanceError(
            "multi-frame NM without ImagePositionPatient/ImageOrientationPatient "
            "(DetectorInformationSequence); only reconstructed tomographic NM can be quantified"
        )
    iop = [float(x) for x in iop]
    dz = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness")
    if dz is None:
        raise DicomConformanceError("SpacingBetweenSlices (0018,0088) missing in multi-frame NM")
    dz = float(dz)
    normal = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
    if dz < 0:  # some vendors write a negative spacing to say frames run against the normal
        normal, dz = -normal, -dz
    pos = np.asarray([float(x) for x in ipp]) + np.outer(np.arange(nf) * dz, normal)
    ps = [float(x) for x in ds.PixelSpacing]
    geom, order = geometry_from_positions(iop, pos, ps, pix.shape[1:])
    slope, inter = rescale_of(ds, "multi-frame NM image")
    arr = (pix[order].astype(np.float64) * slope + inter).astype(np.float32)
    return arr, geom, [ds]


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        raise DicomConformanceError(f"not a number: {value!r}") from None


def _private(ds: Any, group: int, element: int, creator: str) -> Any:
    """Value of a private tag when its private creator matches (or is absent: tolerant reader)."""
    block = element >> 8
    elem_creator = ds.get((group, block))
    if elem_creator is not None and creator.lower() not in str(elem_creator.value).lower():
        return None
    el = ds.get((group, element))
    if el is None:
        return None
    v = el.value
    if isinstance(v, bytes):
        v = v.decode("ascii", "ignore").strip("\x00 ")
    return v


def _pet_quantity(
    first: Any, per_frame: list[Any], array: np.ndarray, acq_times: list[datetime | None]
) -> tuple[np.ndarray, Quantity, PetTiming | None, dict[str, Any]]:
    units = str(first.get("Units", "")).strip().upper()
    corrected = [str(x).upper() for x in (first.get("CorrectedImage") or [])]
    extra: dict[str, Any] = {"corrected_image": corrected}
    if corrected and "ATTN" not in corrected:
        raise DicomConformanceError("PET series is not attenuation corrected (CorrectedImage lacks ATTN); no SUV")
    if units == "BQML":
        quantity = Quantity.BQML
    elif units == "CNTS":
        acf = _private(first, 0x7053, 0x1009, "Philips PET Private Group")
        suvf = _private(first, 0x7053, 0x1000, "Philips PET Private Group")
        if acf is not None and float(acf) > 0:
            scale = np.array([float(_private(d, 0x7053, 0x1009, "Philips") or acf) for d in per_frame])
            if len(per_frame) == array.shape[0]:
                array = (array * scale[:, None, None]).astype(np.float32)
            else:
                array = (array * float(acf)).astype(np.float32)
            quantity = Quantity.BQML
            extra["philips_activity_scale"] = float(acf)
            if suvf is not None and float(suvf) > 0:
                extra["philips_suv_scale"] = float(suvf)
        elif suvf is not None and float(suvf) > 0:
            array = (array * float(suvf)).astype(np.float32)
            quantity = Quantity.SUVBW
            extra["philips_suv_scale"] = float(suvf)
        else:
            raise DicomConformanceError(
                "PET Units CNTS without Philips private scale factors (7053,1009) or (7053,1000); "
                "cannot convert counts to Bq/mL"
            )
    elif units in ("GML", "CM2ML"):
        # Stored SUV (any SUVType) or SUVbsa: converted to SUVbw here, from the patient's
        # weight, height and sex (IBSI-SUV manual); Bq/mL follows from the timing when complete.
        suv_type = str(first.get("SUVType", "") or "").strip().upper()
        factor, notes = stored_suv_to_suvbw(
            units, suv_type, _float_or_none(first.get("PatientWeight")), _float_or_none(first.get("PatientSize")),
            str(first.get("PatientSex", "") or "") or None,
        )
        if factor != 1.0:
            array = (array.astype(np.float64) * factor).astype(np.float32)
        quantity = Quantity.SUVBW
        extra["stored_suv_type"] = "BSA" if units == "CM2ML" else (suv_type or "BW")
        extra["stored_suv_to_suvbw"] = factor
        if notes:
            extra["header_notes"] = list(notes)
    else:
        raise DicomConformanceError(f"PET Units (0054,1001) {units or 'missing'!r}; expected BQML, CNTS, GML or CM2ML")

    dc = str(first.get("DecayCorrection", "")).strip().upper()
    if dc not in ("START", "ADMIN", "NONE") and quantity is Quantity.SUVBW:
        # Already SUVbw (e.g. an SUV export from a workstation without the PET series module):
        # SUV metrics need no timing; Bq/mL and %IA are then unavailable (quantify notes it).
        extra["decay_correction_header"] = dc or "missing"
        return array, quantity, None, extra
    if dc not in ("START", "ADMIN", "NONE"):
        raise DicomConformanceError(f"DecayCorrection (0054,1102) {dc or 'missing'!r}; expected START, ADMIN or NONE")
    if corrected and "DECY" not in corrected and dc != "NONE":
        # QIBA pseudo-code: START/ADMIN are only trusted with DECY in CorrectedImage; a header
        # that claims decay correction the image lacks would bias SUV by the decay over the scan.
        raise DicomConformanceError(
            f"DecayCorrection (0054,1102) is {dc} but CorrectedImage (0028,0051) lacks DECY: "
            "the header is inconsistent; export the decay-corrected series"
        )
    rp = first.get("RadiopharmaceuticalInformationSequence")
    rpi = rp[0] if rp else None
    half_life = float(rpi.RadionuclideHalfLife) if rpi is not None and rpi.get("RadionuclideHalfLife") else None
    dose = float(rpi.RadionuclideTotalDose) if rpi is not None and rpi.get("RadionuclideTotalDose") else None
    nuclide = None
    if rpi is not None and rpi.get("RadionuclideCodeSequence"):
        nuclide = str(rpi.RadionuclideCodeSequence[0].get("CodeMeaning", "")) or None
    series_dt = _dt(first, "SeriesDate", "SeriesTime")
    acq_known = [t for t in acq_times if t is not None]
    earliest = min(acq_known) if acq_known else None
    ge = _private(first, 0x0009, 0x100D, "GEMS_PETD_01")
    ge_dt = parse_dt(ge) if ge else None
    first_acq = per_frame[acq_times.index(earliest)] if earliest is not None else first
    scan = scan_start_datetime_qiba(
        series_dt, earliest, ge_dt,
        frame_reference_time_ms=float(first_acq.get("FrameReferenceTime", 0) or 0) or None,
        frame_duration_ms=float(first_acq.get("ActualFrameDuration", 0) or 0) or None,
        half_life_s=half_life,
    )
    inj = None
    if rpi is not None:
        inj_raw = rpi.get("RadiopharmaceuticalStartDateTime")
        inj_dt = parse_dt(inj_raw)
        inj_off = dt_offset_minutes(inj_raw) if inj_dt is not None else None
        local_off = dt_offset_minutes(first.get("TimezoneOffsetFromUTC"))
        if inj_off is not None and local_off is not None and inj_off != local_off:
            # Injection stamped in another UTC offset than the scanner's local time (e.g. UTC from
            # a dose calibrator or RIS): bring it to the scanner's local time of the Series/Acquisition times.
            inj_dt = inj_dt + timedelta(minutes=local_off - inj_off)  # type: ignore[operator]
            extra["injection_time_zone_converted"] = f"{inj_off:+d} min -> {local_off:+d} min"
        inj_t = parse_tm(rpi.get("RadiopharmaceuticalStartTime"))
        if inj_dt is not None or inj_t is not None:
            inj = injection_datetime(inj_dt, inj_t, parse_da(first.get("SeriesDate")) or scan.date(), scan)
    ref = scan
    if dc == "ADMIN":
        ref = inj  # type: ignore[assignment]
    elif dc == "NONE" and quantity is Quantity.BQML:
        # Convert to "decay-corrected to scan start" so that one factor applies to all frames.
        if half_life is None:
            raise DicomConformanceError("RadionuclideHalfLife (0018,1075) missing; needed for DecayCorrection NONE")
        if len(acq_times) != array.shape[0] or any(t is None for t in acq_times):
            raise DicomConformanceError("DecayCorrection NONE needs AcquisitionTime on every slice")
        durs = [float(d.get("ActualFrameDuration", 0) or 0) / 1000.0 or None for d in per_frame]
        t0 = [(t - scan).total_seconds() for t in acq_times]  # type: ignore[operator]
        f = np.asarray(frame_decay_factors(t0, durs, half_life))
        array = (array / f[:, None, None]).astype(np.float32)
        extra["decay_corrected_by_reader"] = "NONE -> START"
    weight = float(first.PatientWeight) if first.get("PatientWeight") else None
    height = float(first.PatientSize) if first.get("PatientSize") else None
    sex = str(first.get("PatientSex", "")) or None
    timing = PetTiming(
        injected_activity_bq=dose,
        injection_time=inj,
        scan_time=ref,
        decay_correction="ADMIN" if dc == "ADMIN" else "START",
        half_life_s=half_life,
        weight_kg=weight,
        height_m=height,
        sex=sex,
        nuclide=nuclide,
    )
    extra["decay_correction_header"] = dc
    extra["scan_start"] = scan.isoformat()
    return array, quantity, timing, extra


def _nm_quantity(ds: Any, array: np.ndarray) -> tuple[np.ndarray, Quantity, dict[str, Any]]:
    units = str(ds.get("Units", "")).strip().upper()
    extra: dict[str, Any] = {}
    det = ds.get("DetectorInformationSequence")
    if det:
        extra["collimator"] = str(det[0].get("CollimatorGridName", "") or "")
    rot = ds.get("RotationInformationSequence")
    if rot:
        r = rot[0]
        if r.get("ActualFrameDuration"):
            extra["frame_duration_s"] = float(r.ActualFrameDuration) / 1000.0
        if r.get("NumberOfFramesInRotation"):
            # Angular stops per detector x rotations: stops x frame duration = acquisition wall-clock
            # time (each head acquires simultaneously, so heads are not multiplied in).
            extra["projections"] = int(r.NumberOfFramesInRotation) * max(1, int(ds.get("NumberOfRotations", 1) or 1))
    elif ds.get("ActualFrameDuration"):
        extra["frame_duration_s"] = float(ds.ActualFrameDuration) / 1000.0
    rp = ds.get("RadiopharmaceuticalInformationSequence")
    if rp:
        r0 = rp[0]
        if r0.get("RadionuclideHalfLife"):
            extra["half_life_s"] = float(r0.RadionuclideHalfLife)
        if r0.get("RadionuclideTotalDose"):
            extra["injected_bq"] = float(r0.RadionuclideTotalDose)
        raw = r0.get("RadiopharmaceuticalStartDateTime")
        inj = parse_dt(raw)
        off, local = dt_offset_minutes(raw), dt_offset_minutes(ds.get("TimezoneOffsetFromUTC"))
        if inj is not None and off is not None and local is not None and off != local:
            inj += timedelta(minutes=local - off)
        if inj is None and r0.get("RadiopharmaceuticalStartTime"):
            # A time of day without a date: SPECT time points are taken days after the injection
            # (177Lu: 4 h to 7 d), so the series date cannot be assumed; --injection-time gives it.
            extra["injection_time_of_day"] = str(parse_tm(r0.get("RadiopharmaceuticalStartTime")))
        if inj is not None:
            extra["injection_time"] = inj.isoformat()
        if r0.get("RadionuclideCodeSequence"):
            extra["nuclide"] = str(r0.RadionuclideCodeSequence[0].get("CodeMeaning", ""))
    if ds.get("PatientWeight"):
        extra["weight_kg"] = float(ds.PatientWeight)
    # Quantitative SPECT reconstructions (Siemens xSPECT Quant, GE Q.Metrix, Hermes SUV SPECT)
    # say Bq/mL in one of three places: a Real World Value Mapping with UCUM "Bq/ml" (applied to
    # the stored values), Units (0054,1001) BQML, or the private "voxel data units" (0057,1003).
    for rwvm in ds.get("RealWorldValueMappingSequence") or []:
        mu = rwvm.get("MeasurementUnitsCodeSequence")
        code = str(mu[0].get("CodeValue", "")).strip() if mu else ""
        if code.lower() in ("bq/ml", "kbq/ml", "mbq/ml") and rwvm.get("RealWorldValueSlope") is not None:
            slope, inter = rescale_of(ds, "NM image")
            stored = (array.astype(np.float64) - inter) / slope
            scale = {"bq/ml": 1.0, "kbq/ml": 1e3, "mbq/ml": 1e6}[code.lower()]
            arr = (stored * float(rwvm.RealWorldValueSlope) + float(rwvm.get("RealWorldValueIntercept", 0) or 0))
            extra["units_source"] = f"RealWorldValueMapping ({code})"
            return (arr * scale).astype(np.float32), Quantity.BQML, extra
    private_units = ds.get((0x0057, 0x1003))
    pu = private_units.value if private_units is not None else ""
    pu = (pu.decode("ascii", "ignore") if isinstance(pu, bytes) else str(pu)).strip("\x00 ").upper()
    if units == "BQML" or pu == "BQML":
        extra["units_source"] = "Units (0054,1001)" if units == "BQML" else "private (0057,1003)"
        return array, Quantity.BQML, extra
    if units and units not in ("CNTS", "COUNTS"):
        raise DicomConformanceError(
            f"NM Units (0054,1001) {units!r}: expected counts (CNTS) or Bq/mL (BQML); cannot quantify"
        )
    return array, Quantity.CNTS, extra

