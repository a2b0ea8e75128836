"""Reading images and volumes of interest — the edge of the imaging package.

Public API (stable; other packages and the web demo call these)::

    read_image(path, *, modality=None, series_uid=None) -> Image
        path: a directory holding a DICOM series (PT, NM, CT; single- or multi-frame), a single
        multi-frame DICOM file, or a NIfTI file (.nii/.nii.gz) with an optional JSON sidecar.
        PET comes back in Bq/mL (``Quantity.BQML``) with header timing in ``image.timing``
        (or already in SUV for Units GML / Philips SUV-only CNTS); NM in counts or Bq/mL.

    read_labels(path, reference, *, names=None) -> LabelMap
        path: a NIfTI label map, a DICOM SEG or a DICOM RTSTRUCT (file or directory).
        reference: the Image whose grid the VOIs are placed on (nearest neighbour, by physical
        coordinates). names: a mapping label value -> {"name", "kind"[, "lobe"]} (or a path to
        such a JSON file); for SEG/RTSTRUCT keys are segment/ROI numbers *or* names.

    load_names(path_or_mapping) -> dict[int | str, VoiSpec-like dict]
    with_overrides(image, weight_kg=..., injected_activity_bq=..., injection_time=..., ...) -> Image
        Supply or correct SUV header values (e.g. from the command line).

Errors: :class:`~lutarterial.errors.NotFoundError` for missing files,
:class:`~lutarterial.errors.DicomConformanceError` for unusable headers and
:class:`~lutarterial.errors.InvalidInputError` for inconsistent inputs (other frame of
reference, non-overlapping grids, empty or unknown VOIs).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.imaging.dicom_labels import (
    check_frame_of_reference,
    dicom_label_kind,
    read_rtstruct_masks,
    read_seg_masks,
)
from lutarterial.imaging.dicom_series import read_dicom_series
from lutarterial.imaging.nifti import is_nifti, read_nifti_array, read_nifti_image
from lutarterial.imaging.resample import resample_nearest
from lutarterial.imaging.types import Image, LabelMap, PetTiming, VoiKind, VoiMask, VoiSpec, crop_mask

__all__ = ["read_image", "read_labels", "load_names", "infer_kind", "with_overrides"]


def read_image(path: str | Path, *, modality: str | None = None, series_uid: str | None = None) -> Image:
    """Read a PET/SPECT/CT image from a DICOM series directory, a DICOM file or a NIfTI file."""
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"no such file or directory: {p}")
    if is_nifti(p):
        return read_nifti_image(p)
    return read_dicom_series(p, modality=modality, series_uid=series_uid)


def with_overrides(
    image: Image,
    *,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
    injected_activity_bq: float | None = None,
    injection_time: datetime | None = None,
    half_life_s: float | None = None,
) -> Image:
    """Return ``image`` with SUV header values supplied or replaced (values given win)."""
    t = image.timing or PetTiming(None, None, image.acquisition_time, "START", None, None)
    changes: dict[str, Any] = {
        k: v
        for k, v in dict(
            weight_kg=weight_kg, height_m=height_m, sex=sex, injected_activity_bq=injected_activity_bq,
            injection_time=injection_time, half_life_s=half_life_s,
        ).items()
        if v is not None
    }
    if not changes:
        return image
    if injection_time is not None and t.decay_correction == "ADMIN":
        changes["scan_time"] = injection_time
    meta = {**image.meta, "suv_overrides": sorted(changes)}
    return dataclasses.replace(image, timing=dataclasses.replace(t, **changes), meta=meta)


_KIND_WORDS = [
    (VoiKind.KIDNEY, r"kidney|renal|nier"),
    (VoiKind.SPLEEN, r"spleen|splen|milt"),
    (VoiKind.MARROW, r"marrow|l[1-5]\b|vertebra|spine"),
    (VoiKind.EXTRAHEPATIC, r"extra.?hepatic|lymph|node|bone.?met|lung.?met|pancrea|primary"),
    (VoiKind.LESION, r"lesion|metast|tumou?r|\bmet\b|target|gtv|neoplasm"),
    (VoiKind.LIVER, r"liver|hepat|lever"),
]


def infer_kind(name: str) -> VoiKind:
    """Kind from a VOI name (used only when no names file gives it)."""
    low = name.lower()
    for kind, pat in _KIND_WORDS:
        if re.search(pat, low):
            return kind
    return VoiKind.OTHER


def load_names(names: str | Path | Mapping[Any, Any] | None) -> dict[Any, dict[str, Any]]:
    """Parse NAMES.json: ``{"1": {"name": "liver", "kind": "liver"}, "2": {...}}``."""
    if names is None:
        return {}
    if isinstance(names, (str, Path)):
        p = Path(names)
        if not p.is_file():
            raise NotFoundError(f"no such names file: {p}")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{p.name}: invalid JSON ({exc})") from None
    else:
        data = dict(names)
    if not isinstance(data, dict):
        raise InvalidInputError("names must map label values to {\"name\", \"kind\"}")
    out: dict[Any, dict[str, Any]] = {}
    for key, val in data.items():
        if isinstance(val, str):
            val = {"name": val}
        if not isinstance(val, dict) or not str(val.get("name", "")).strip():
            raise InvalidInputError(f"names entry {key!r} needs a non-empty \"name\"")
        kind = VoiKind.parse(val["kind"]) if val.get("kind") else infer_kind(str(val["name"]))
        k: Any = int(key) if str(key).strip().lstrip("-").isdigit() else str(key)
        out[k] = {"name": str(val["name"]), "kind": kind, "lobe": val.get("lobe")}
    return out


def _spec(label: int, default_name: str, names: dict[Any, dict[str, Any]], hint: str = "") -> VoiSpec | None:
    entry = names.get(label) or names.get(default_name)
    if names and entry is None:
        return None  # not requested
    if entry is None:
        return VoiSpec(label, default_name, infer_kind(default_name + " " + hint))
    return VoiSpec(label, entry["name"], entry["kind"], entry.get("lobe"))


def _check_requested(names: dict[Any, dict[str, Any]], found: set[Any], source: str) -> None:
    missing = [k for k in names if k not in found]
    if missing:
        raise InvalidInputError(
            f"VOIs named in the names file are empty or absent in {source}: "
            + ", ".join(f"{k} ({names[k]['name']})" for k in missing)
        )


def read_labels(
    path: str | Path,
    reference: Image,
    *,
    names: str | Path | Mapping[Any, Any] | None = None,
) -> LabelMap:
    """VOIs from a NIfTI label map, DICOM SEG or RTSTRUCT, on ``reference``'s grid."""
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"no such file or directory: {p}")
    table = load_names(names)
    target = reference.geometry
    items: list[tuple[VoiSpec, np.ndarray]] = []
    cropped: list[VoiMask] = []
    if is_nifti(p):
        arr, geom = read_nifti_array(p)
        if not np.allclose(arr, np.round(arr)):
            raise InvalidInputError(f"{p.name}: label map must hold integer labels")
        arr = np.round(arr).astype(np.int32)
        src_labels = {int(v) for v in np.unique(arr) if v != 0}
        res = resample_nearest(arr, geom, target)
        found: set[Any] = set()
        for lab in sorted(src_labels):
            spec = _spec(lab, f"label_{lab}", table)
            if spec is None:
                continue
            m = res == lab
            if not m.any():
                raise InvalidInputError(f"VOI {spec.name!r} (label {lab}) lies outside the image grid")
            found.add(lab)
            items.append((spec, m))
        _check_requested(table, found, p.name)
        for_uid = None
    else:
        kind = dicom_label_kind(p)
        if kind is None:
            raise InvalidInputError(f"{p}: not a NIfTI label map, DICOM SEG or RTSTRUCT")
        found = set()
        if kind == "SEG":
            segs, for_uid = read_seg_masks(p, target, reference.frame_of_reference_uid)
            _check_for(for_uid, reference, "SEG")
            for num, label, prop, (bbox, m) in segs:
                spec = _spec(num, label, table, prop)
                if spec is None:
                    continue
                if not m.any():
                    if not table:
                        continue  # an empty segment nobody asked for
                    raise InvalidInputError(f"SEG segment {num} ({label}) is empty")
                found.update({num, label})
                cropped.append(_tight(spec, bbox, m))
        else:
            rois, for_uid = read_rtstruct_masks(p, target)
            _check_for(for_uid, reference, "RTSTRUCT")
            for num, label, m, hint in rois:
                spec = _spec(num, label, table, hint)
                if spec is None:
                    continue
                if not m.any():
                    if not table:
                        continue  # points (isocentres) and empty ROIs are not volumes
                    raise InvalidInputError(f"RTSTRUCT ROI {num} ({label}) has no closed contours")
                found.update({num, label})
                items.append((spec, m))
        _check_requested(table, found, p.name)
    vois = [crop_mask(s, m) for s, m in items] + cropped
    if not vois:
        raise InvalidInputError(f"{p.name}: no VOIs found")
    vois.sort(key=lambda v: v.spec.label)
    return LabelMap(target, tuple(vois), for_uid or reference.frame_of_reference_uid)


def _tight(spec: VoiSpec, bbox: tuple[slice, slice, slice], mask: np.ndarray) -> VoiMask:
    inner = crop_mask(spec, mask)
    return VoiMask(spec, tuple(slice(b.start + i.start, b.start + i.stop)  # type: ignore[arg-type]
                               for b, i in zip(bbox, inner.bbox, strict=True)), inner.mask)


def _check_for(label_for: str | None, reference: Image, what: str) -> None:
    check_frame_of_reference(label_for, reference.frame_of_reference_uid, what)
