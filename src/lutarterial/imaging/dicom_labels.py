"""DICOM SEG and RTSTRUCT volumes of interest, placed on an image grid by physical coordinates.

* SEG (binary, fractional >= 50 %, or LABELMAP): each segment's frames are positioned by their
  PlanePositionSequence on the SEG's own grid, then resampled nearest-neighbour to the image.
* RTSTRUCT: closed planar contours (LPS mm) are rasterised directly on the image grid; for each
  image slice the nearest contour plane is filled (even-odd rule, so holes stay holes), and a
  voxel belongs to the VOI when its centre lies inside the polygon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import DicomConformanceError, InvalidInputError, NotFoundError
from lutarterial.imaging.dicom_series import dcmread_tolerant, decode_pixels, geometry_from_positions
from lutarterial.imaging.resample import grids_overlap, resample_mask_cropped
from lutarterial.imaging.types import Geometry

__all__ = ["read_seg_masks", "read_rtstruct_masks", "dicom_label_kind", "segment_kind_hint", "check_frame_of_reference"]

# Coded segment meanings -> our VOI kind words (read by ``io.infer_kind``). SNOMED CT concept ids as
# written by dcmqi, 3D Slicer and highdicom (DICOM PS3.16 CID 7150/7151/7154), plus the legacy SRT
# codes still written by older tools (pydicom's liver SEG test file carries SRT T-62000).
_ORGAN_CODES = {
    "10200004": "liver", "T-62000": "liver",
    "64033007": "kidney", "9846003": "kidney", "18639004": "kidney", "T-71000": "kidney",
    "78961009": "spleen", "T-C3000": "spleen",
    "14016003": "marrow", "421060004": "marrow",  # bone marrow; vertebral column (marrow VOIs in L1-L5)
    "59441001": "lymph node", "T-C4000": "lymph node",
}
_TUMOUR_CODES = {
    "108369006",  # Neoplasm
    "86049000",  # Malignant neoplasm, primary
    "14799000",  # Neoplasm, metastatic
    "128462008",  # Secondary malignant neoplasm (metastatic disease)
    "4147007",  # Mass
    "52988006",  # Lesion
    "M-80000", "M-80003", "M-80006", "M-03000", "M-01000",
}
_LIVER_REGION = {"10200004", "T-62000"}


def segment_kind_hint(item: Any) -> str:
    """Words describing a SEG segment from its codes, appended to the label for kind inference.

    SegmentedPropertyType liver/kidney/spleen/bone marrow name the organ. A neoplasm, mass or
    lesion is hepatic when its AnatomicRegionSequence is the liver (or absent: LUTARTERIAL lesions
    are hepatic by default) and extrahepatic when the region is another structure.
    """
    words = []
    prop = item.get("SegmentedPropertyTypeCodeSequence")
    code = str(prop[0].get("CodeValue", "")).strip() if prop else ""
    if prop:
        words.append(str(prop[0].get("CodeMeaning", "")))
    if code in _ORGAN_CODES:
        words.append(_ORGAN_CODES[code])
    elif code in _TUMOUR_CODES:
        reg = item.get("AnatomicRegionSequence")
        region = str(reg[0].get("CodeValue", "")).strip() if reg else ""
        words.append("lesion" if not region or region in _LIVER_REGION else "extrahepatic")
    return " ".join(w for w in words if w)


def check_frame_of_reference(label_for: str | None, image_for: str | None, what: str) -> None:
    """Refuse VOIs drawn in another frame of reference (other scanner coordinates)."""
    if label_for and image_for and label_for != image_for:
        raise InvalidInputError(
            f"the {what} belongs to frame of reference {label_for}, the image to {image_for}: "
            "they were not acquired in the same scanner coordinates; register them first"
        )


def dicom_label_kind(path: str | Path) -> str | None:
    """'SEG', 'RTSTRUCT' or None for a DICOM file (or a directory holding one such file)."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else []
    for f in files:
        try:
            ds = dcmread_tolerant(f, stop_before_pixels=True)
        except Exception:  # noqa: BLE001
            continue
        mod = str(ds.get("Modality", ""))
        if mod in ("SEG", "RTSTRUCT"):
            return mod
    return None


def _load(path: str | Path, modality: str) -> Any:
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"no such file: {p}")
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    for f in files:
        try:
            ds = dcmread_tolerant(f)
        except Exception:  # noqa: BLE001
            continue
        if str(ds.get("Modality", "")) == modality:
            return ds
    raise NotFoundError(f"no DICOM {modality} object found at {p}")


def read_seg_masks(
    path: str | Path, target: Geometry, image_for_uid: str | None = None
) -> tuple[list[tuple[int, str, str, tuple[tuple[slice, slice, slice], np.ndarray]]], str | None]:
    """Segments as (number, label, kind hint words, (bbox, cropped mask) on ``target``) and the FoR UID.

    ``image_for_uid``: the image's frame of reference; a SEG from another one is refused before
    any geometry is compared (a clearer message than "does not overlap").
    """
    ds = _load(path, "SEG")
    check_frame_of_reference(str(ds.get("FrameOfReferenceUID", "")) or None, image_for_uid, "SEG")
    nf = int(ds.get("NumberOfFrames", 1) or 1)
    pix = decode_pixels(ds).reshape(nf, int(ds.Rows), int(ds.Columns))
    seg_type = str(ds.get("SegmentationType", "BINARY")).upper()
    labelmap = seg_type == "LABELMAP"  # DICOM Sup 243: pixel values are segment numbers
    if seg_type == "FRACTIONAL":
        pix = pix >= (int(ds.get("MaximumFractionalValue", 255)) / 2.0)
    elif not labelmap:
        pix = pix > 0
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per is None:
        raise DicomConformanceError("SEG without PerFrameFunctionalGroupsSequence")

    def grp(i: int, name: str) -> Any:
        if name in per[i]:
            return per[i][name].value[0]
        if shared is not None and name in shared:
            return shared[name].value[0]
        raise DicomConformanceError(f"SEG frame {i + 1}: {name} missing")

    iop = [float(x) for x in grp(0, "PlaneOrientationSequence").ImageOrientationPatient]
    ps = [float(x) for x in grp(0, "PixelMeasuresSequence").PixelSpacing]
    pos = np.array([[float(x) for x in grp(i, "PlanePositionSequence").ImagePositionPatient] for i in range(nf)])
    segnum = (None if labelmap else
              np.array([int(grp(i, "SegmentIdentificationSequence").ReferencedSegmentNumber) for i in range(nf)]))
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    proj = pos @ normal
    srt = np.sort(proj)
    planes = srt[np.concatenate([[True], np.diff(srt) > 0.01])]  # distinct planes (0.01 mm tolerance)
    if len(planes) > 1:
        step = float(np.min(np.diff(planes)))
        try:
            sp = float(grp(0, "PixelMeasuresSequence").get("SpacingBetweenSlices") or step)
        except DicomConformanceError:
            sp = step
        sp = min(sp, step) if sp > 0 else step
    else:
        sp = float(grp(0, "PixelMeasuresSequence").get("SliceThickness") or 1.0)
    n_sl = int(round((planes[-1] - planes[0]) / sp)) + 1
    origin = pos[int(np.argmin(proj))] - normal * ((pos[int(np.argmin(proj))] @ normal) - planes[0])
    # Frames may be offset in-plane from each other only if written oddly; align by in-plane shift.
    all_pos = origin + np.outer(np.arange(n_sl) * sp, normal)
    seg_geom, _ = geometry_from_positions(iop, all_pos, ps, (int(ds.Rows), int(ds.Columns)))
    k_of = np.rint((proj - planes[0]) / sp).astype(int)
    for i in range(nf):
        d = pos[i] - (origin + normal * k_of[i] * sp)
        if np.linalg.norm(d) > 0.25 * min(ps):
            raise DicomConformanceError("SEG frames are not on one grid (in-plane offsets differ); not supported")
    out = []
    for s in ds.SegmentSequence:
        n = int(s.SegmentNumber)
        if n == 0:  # LABELMAP background segment
            continue
        if labelmap:
            frames = [i for i in range(nf) if np.any(pix[i] == n)]
            planes_n = [(pix[i] == n) for i in frames]
        else:
            frames = list(np.flatnonzero(segnum == n))
            planes_n = [pix[i] for i in frames]
        # Work on the segment's own bounding block (fast for many small segments).
        if frames:
            ks = [int(k_of[i]) for i in frames]
            k0, k1 = min(ks), max(ks) + 1
            inplane = np.zeros(pix.shape[1:], dtype=bool)
            for pl in planes_n:
                inplane |= pl.astype(bool)
            rows_any, cols_any = np.flatnonzero(inplane.any(axis=1)), np.flatnonzero(inplane.any(axis=0))
        if not frames or len(rows_any) == 0:
            out.append((n, str(s.get("SegmentLabel", f"segment {n}")), "", ((slice(0, 0),) * 3,
                                                                            np.zeros((0, 0, 0), bool))))
            continue
        r0, r1, c0, c1 = int(rows_any[0]), int(rows_any[-1]) + 1, int(cols_any[0]), int(cols_any[-1]) + 1
        vol = np.zeros((k1 - k0, r1 - r0, c1 - c0), dtype=bool)
        for i, pl in zip(frames, planes_n, strict=True):
            vol[int(k_of[i]) - k0] |= pl[r0:r1, c0:c1].astype(bool)
        sub = Geometry(vol.shape, seg_geom.spacing_mm,  # type: ignore[arg-type]
                       tuple(float(x) for x in seg_geom.index_to_physical(np.array([[c0, r0, k0]]))[0]),
                       seg_geom.direction)
        if not grids_overlap(target, sub):
            raise InvalidInputError(
                "the SEG and the image do not overlap in patient space (check they belong to the same patient)"
            )
        bbox, cropped = resample_mask_cropped(vol, sub, target)
        prop = segment_kind_hint(s)
        out.append((n, str(s.get("SegmentLabel", f"segment {n}")), prop, (bbox, cropped)))
        if not cropped.any():
            raise InvalidInputError(
                f"SEG segment {n} ({s.get('SegmentLabel', '')}) lies outside the image grid after resampling"
            )
    return out, str(ds.get("FrameOfReferenceUID", "")) or None


def read_rtstruct_masks(
    path: str | Path, target: Geometry
) -> tuple[list[tuple[int, str, np.ndarray, str]], str | None]:
    """ROIs as (ROI number, ROI name, full mask on ``target``, kind hint) and the referenced FoR UID.

    The hint comes from RTROIObservationsSequence: RTROIInterpretedType GTV marks a tumour
    ("lesion"); ORGAN, CTV, PTV and others add nothing (the name decides).
    """
    from matplotlib.path import Path as MplPath

    ds = _load(path, "RTSTRUCT")
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    hints: dict[int, str] = {}
    for obs in ds.get("RTROIObservationsSequence", []):
        if obs.get("ReferencedROINumber") is None:
            continue
        typ = str(obs.get("RTROIInterpretedType", "") or "").strip().upper()
        if typ == "GTV":
            hints[int(obs.ReferencedROINumber)] = "lesion"
    for_uid = None
    for r in ds.get("StructureSetROISequence", []):
        if r.get("ReferencedFrameOfReferenceUID"):
            for_uid = str(r.ReferencedFrameOfReferenceUID)
            break
    if for_uid is None and ds.get("ReferencedFrameOfReferenceSequence"):
        for_uid = str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
    nz, ny, nx = target.shape
    out = []
    for rc in ds.get("ROIContourSequence", []):
        num = int(rc.ReferencedROINumber)
        name = names.get(num, f"ROI {num}")
        planes: dict[float, list[np.ndarray]] = {}
        for c in rc.get("ContourSequence", []):
            if str(c.get("ContourGeometricType", "CLOSED_PLANAR")).upper() not in ("CLOSED_PLANAR",
                                                                                   "CLOSEDPLANAR_XOR"):
                continue  # points and open contours do not enclose a volume
            pts = np.asarray([float(x) for x in c.ContourData]).reshape(-1, 3)
            if len(pts) < 3:
                continue
            ijk = target.physical_to_index(pts)
            kk = ijk[:, 2]
            if np.ptp(kk) > 0.05:
                raise DicomConformanceError(
                    f"RTSTRUCT ROI {name!r}: contours are not parallel to the image slices; not supported"
                )
            planes.setdefault(round(float(kk.mean()), 3), []).append(ijk[:, :2])
        mask = np.zeros(target.shape, dtype=bool)
        if planes:
            zs = np.array(sorted(planes))
            gap = float(np.min(np.diff(zs))) if len(zs) > 1 else 1.0
            half = max(0.5, gap / 2.0)
            for k in range(nz):
                if k < zs[0] - half or k > zs[-1] + half:
                    continue
                z = zs[int(np.argmin(np.abs(zs - k)))]
                if abs(z - k) > half + 1e-6:
                    continue  # between two separate parts of the ROI (e.g. two lesions in one ROI)
                sl = np.zeros((ny, nx), dtype=bool)
                for poly in planes[float(z)]:
                    i0, i1 = max(0, int(np.floor(poly[:, 0].min()))), min(nx - 1, int(np.ceil(poly[:, 0].max())))
                    j0, j1 = max(0, int(np.floor(poly[:, 1].min()))), min(ny - 1, int(np.ceil(poly[:, 1].max())))
                    if i1 < i0 or j1 < j0:
                        continue
                    jj, ii = np.mgrid[j0 : j1 + 1, i0 : i1 + 1]
                    inside = MplPath(poly).contains_points(np.column_stack([ii.ravel(), jj.ravel()]))
                    sl[j0 : j1 + 1, i0 : i1 + 1] ^= inside.reshape(jj.shape)
                mask[k] = sl
            if not mask.any():
                raise InvalidInputError(f"RTSTRUCT ROI {name!r} lies outside the image grid")
        out.append((num, name, mask, hints.get(num, "")))
    return out, for_uid
