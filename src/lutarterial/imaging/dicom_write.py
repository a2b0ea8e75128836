"""Strict DICOM writers used by the synthetic-patient generator and by tests.

Writes PT and CT single-frame series, a reconstructed multi-frame NM (SPECT) object, a DICOM
SEG (via highdicom) and a NIfTI label map. The datasets are returned before saving so tests can
mutate header variants (units, decay correction, time tags, vendor private tags).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.imaging.types import Geometry

__all__ = [
    "PatientInfo",
    "pet_datasets",
    "ct_datasets",
    "nm_dataset",
    "save_series",
    "write_seg",
    "write_nifti_labels",
    "write_rtstruct",
]

PT_SOP = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
NM_SOP = "1.2.840.10008.5.1.4.1.1.20"


class PatientInfo:
    """Minimal patient/study identity shared by the series of one study."""

    def __init__(
        self, patient_id: str, study_uid: str, for_uid: str, study_time: datetime,
        weight_kg: float | None = 75.0, height_m: float | None = 1.75, sex: str = "M",
    ) -> None:
        self.patient_id = patient_id
        self.study_uid = study_uid
        self.for_uid = for_uid
        self.study_time = study_time
        self.weight_kg = weight_kg
        self.height_m = height_m
        self.sex = sex


def _da(t: datetime) -> str:
    return t.strftime("%Y%m%d")


def _tm(t: datetime) -> str:
    return t.strftime("%H%M%S.%f")[:13]


def _base(sop_class: str, modality: str, p: PatientInfo, series_uid: str, series_time: datetime) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = modality
    ds.PatientName = f"SYNTH^{p.patient_id}"
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = p.sex
    if p.weight_kg is not None:
        ds.PatientWeight = f"{p.weight_kg:.1f}"
    if p.height_m is not None:
        ds.PatientSize = f"{p.height_m:.2f}"
    ds.StudyInstanceUID = p.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = p.for_uid
    ds.StudyDate, ds.StudyTime = _da(p.study_time), _tm(p.study_time)
    ds.SeriesDate, ds.SeriesTime = _da(series_time), _tm(series_time)
    ds.AcquisitionDate, ds.AcquisitionTime = _da(series_time), _tm(series_time)
    ds.ContentDate, ds.ContentTime = _da(series_time), _tm(series_time)
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
    ds.SeriesNumber = 1
    ds.Manufacturer = "lutarterial synthetic"
    ds.ManufacturerModelName = "Synthetic"
    ds.InstitutionName = "SYNTH"
    ds.PositionReferenceIndicator = ""
    return ds


def _slice_pixels(ds: Any, plane: np.ndarray, signed: bool) -> None:
    """Store a float plane as 16-bit integers with its own RescaleSlope (PET style)."""
    vmax = float(np.max(np.abs(plane))) if plane.size else 0.0
    top = 32000 if signed else 64000  # margin so a rounded slope never overflows
    slope = vmax / top if vmax > 0 else 1.0
    dtype = np.int16 if signed else np.uint16
    ds.Rows, ds.Columns = plane.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope = f"{slope:.10g}"[:16]
    ds.RescaleIntercept = "0"
    # DS is limited to 16 characters: recompute integers for the slope as written
    slope = float(ds.RescaleSlope)
    ds.PixelData = np.rint(plane / slope).astype(dtype).tobytes()


def _geom_tags(ds: Any, g: Geometry, k: int) -> None:
    d = g.direction_matrix
    ds.ImageOrientationPatient = [f"{x:.6f}" for x in list(d[:, 0]) + list(d[:, 1])]
    pos = g.index_to_physical(np.array([[0, 0, k]]))[0]
    ds.ImagePositionPatient = [f"{x:.4f}" for x in pos]
    ds.PixelSpacing = [f"{g.spacing_mm[1]:.6g}", f"{g.spacing_mm[0]:.6g}"]
    ds.SliceThickness = f"{g.spacing_mm[2]:.6g}"
    ds.InstanceNumber = k + 1


def pet_datasets(
    activity_bqml: np.ndarray, g: Geometry, p: PatientInfo, *, series_time: datetime, injection_time: datetime,
    injected_bq: float, half_life_s: float = 4062.6, nuclide: str = "^68^Gallium", pharmaceutical: str = "DOTATATE",
) -> list[Any]:
    """PT series in Units BQML, DecayCorrection START, decay-corrected to ``series_time``."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    out = []
    for k in range(g.shape[0]):
        ds = _base(PT_SOP, "PT", p, series_uid, series_time)
        ds.SeriesDescription = "PET AC"
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["ATTN", "DECY", "SCAT", "DTIM"]
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.CountsSource = "EMISSION"
        ds.ActualFrameDuration = 180000
        ds.NumberOfSlices = g.shape[0]
        ri = Dataset()
        ri.Radiopharmaceutical = pharmaceutical
        ri.RadionuclideTotalDose = f"{injected_bq:.1f}"
        ri.RadionuclideHalfLife = f"{half_life_s:.1f}"
        ri.RadionuclidePositronFraction = "0.889"
        ri.RadiopharmaceuticalStartTime = _tm(injection_time)
        ri.RadiopharmaceuticalStartDateTime = injection_time.strftime("%Y%m%d%H%M%S.%f")[:21]
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "C-131A3", "SRT", nuclide
        ri.RadionuclideCodeSequence = [code]
        ds.RadiopharmaceuticalInformationSequence = [ri]
        _geom_tags(ds, g, k)
        ds.ImageIndex = k + 1
        _slice_pixels(ds, activity_bqml[k], signed=True)
        out.append(ds)
    return out


def ct_datasets(hu: np.ndarray, g: Geometry, p: PatientInfo, *, series_time: datetime) -> list[Any]:
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    out = []
    for k in range(g.shape[0]):
        ds = _base(CT_SOP, "CT", p, series_uid, series_time)
        ds.SeriesDescription = "CT for AC"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = "120"
        _geom_tags(ds, g, k)
        plane = np.asarray(hu[k], dtype=np.float64)
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "-1024", "HU"
        ds.PixelData = np.clip(np.rint(plane + 1024), -32768, 32767).astype(np.int16).tobytes()
        out.append(ds)
    return out


def nm_dataset(
    counts: np.ndarray, g: Geometry, p: PatientInfo, *, acq_time: datetime, frame_duration_s: float,
    projections: int, collimator: str, model: str, injection_time: datetime, injected_bq: float,
    half_life_s: float = 574300.8,
) -> Any:
    """Reconstructed SPECT (NM TOMO RECON) multi-frame object holding counts."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    ds = _base(NM_SOP, "NM", p, generate_uid(), acq_time)
    ds.ManufacturerModelName = model
    ds.SeriesDescription = "SPECT OSEM recon"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.NumberOfFrames = g.shape[0]
    ds.FrameIncrementPointer = (0x0054, 0x0080)
    ds.SliceVector = list(range(1, g.shape[0] + 1))
    ds.NumberOfSlices = g.shape[0]
    ds.Units = "CNTS"
    det = Dataset()
    d = g.direction_matrix
    det.ImageOrientationPatient = [f"{x:.6f}" for x in list(d[:, 0]) + list(d[:, 1])]
    det.ImagePositionPatient = [f"{x:.4f}" for x in g.origin_mm]
    det.CollimatorGridName = collimator
    det.CollimatorType = "PARA"
    ds.DetectorInformationSequence = [det]
    ds.NumberOfDetectors = 1
    rot = Dataset()
    rot.ActualFrameDuration = int(round(frame_duration_s * 1000))
    rot.NumberOfFramesInRotation = projections
    rot.ScanArc = 360
    ds.RotationInformationSequence = [rot]
    ds.NumberOfRotations = 1
    ri = Dataset()
    ri.Radiopharmaceutical = "DOTATATE"
    ri.RadionuclideTotalDose = f"{injected_bq:.1f}"
    ri.RadionuclideHalfLife = f"{half_life_s:.1f}"
    ri.RadiopharmaceuticalStartDateTime = injection_time.strftime("%Y%m%d%H%M%S.%f")[:21]
    ds.RadiopharmaceuticalInformationSequence = [ri]
    ds.PixelSpacing = [f"{g.spacing_mm[1]:.6g}", f"{g.spacing_mm[0]:.6g}"]
    ds.SpacingBetweenSlices = f"{g.spacing_mm[2]:.6g}"
    ds.SliceThickness = f"{g.spacing_mm[2]:.6g}"
    vmax = float(counts.max()) if counts.size else 0.0
    slope = float(f"{(vmax / 64000 if vmax > 0 else 1.0):.10g}"[:16])
    ds.Rows, ds.Columns = g.shape[1], g.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = str(slope), "0"
    ds.PixelData = np.rint(np.clip(counts, 0, None) / slope).astype(np.uint16).tobytes()
    return ds


def save_series(datasets: Sequence[Any], directory: str | Path) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for i, ds in enumerate(datasets):
        ds.save_as(d / f"{ds.Modality.lower()}_{i + 1:04d}.dcm", enforce_file_format=True)
    return d


def write_seg(
    path: str | Path, source: Sequence[Any], masks: Sequence[tuple[str, str, np.ndarray]],
) -> Path:
    """DICOM SEG (binary) over ``source`` slices; masks are (label, kind, bool array in source order).

    ``source`` must be ordered as the mask's first axis (ascending along the slice normal).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    descs = []
    arr = np.zeros((len(source), int(source[0].Rows), int(source[0].Columns), len(masks)), dtype=np.uint8)
    prop = {
        "liver": codes.SCT.Liver, "spleen": codes.SCT.Spleen, "kidney": codes.SCT.Kidney,
        "marrow": codes.SCT.BoneMarrow, "lesion": codes.SCT.Neoplasm, "extrahepatic": codes.SCT.Neoplasm,
    }
    for n, (label, kind, m) in enumerate(masks, start=1):
        arr[..., n - 1] = m
        descs.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=label,
                segmented_property_category=codes.SCT.Tissue if kind not in ("lesion", "extrahepatic")
                else codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=prop.get(kind, codes.SCT.Tissue),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=list(source),
        pixel_array=arr,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs,
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="lutarterial",
        manufacturer_model_name="synthetic",
        software_versions="0.1",
        device_serial_number="0",
        omit_empty_frames=True,
    )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(p)
    return p


def write_nifti_labels(path: str | Path, labels: np.ndarray, g: Geometry) -> Path:
    """NIfTI label map (SimpleITK converts our LPS geometry to NIfTI's RAS on writing)."""
    import SimpleITK as sitk

    from lutarterial.imaging.resample import to_sitk

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(to_sitk(labels.astype(np.int16), g), str(p))
    return p


def write_rtstruct(
    path: str | Path, p: PatientInfo, referenced_series_uid: str, rois: Sequence[tuple[str, list[np.ndarray]]],
) -> Path:
    """Minimal RTSTRUCT: rois = (name, list of (N,3) closed planar contours in LPS mm)."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    ds = _base("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", p, generate_uid(), p.study_time)
    ds.StructureSetLabel = "synthetic"
    ds.StructureSetDate, ds.StructureSetTime = _da(p.study_time), _tm(p.study_time)
    rfor = Dataset()
    rfor.FrameOfReferenceUID = p.for_uid
    ds.ReferencedFrameOfReferenceSequence = [rfor]
    ssroi, roic, obs = [], [], []
    for n, (name, contours) in enumerate(rois, start=1):
        r = Dataset()
        r.ROINumber, r.ReferencedFrameOfReferenceUID, r.ROIName = n, p.for_uid, name
        r.ROIGenerationAlgorithm = "MANUAL"
        ssroi.append(r)
        rc = Dataset()
        rc.ReferencedROINumber = n
        rc.ROIDisplayColor = [255, 0, 0]
        seq = []
        for c in contours:
            cd = Dataset()
            cd.ContourGeometricType = "CLOSED_PLANAR"
            cd.NumberOfContourPoints = len(c)
            cd.ContourData = [f"{v:.3f}" for v in np.asarray(c).ravel()]
            seq.append(cd)
        rc.ContourSequence = seq
        roic.append(rc)
        o = Dataset()
        o.ObservationNumber, o.ReferencedROINumber, o.RTROIInterpretedType, o.ROIInterpreter = n, n, "ORGAN", ""
        obs.append(o)
    ds.StructureSetROISequence = ssroi
    ds.ROIContourSequence = roic
    ds.RTROIObservationsSequence = obs
    del ds.FrameOfReferenceUID
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out
