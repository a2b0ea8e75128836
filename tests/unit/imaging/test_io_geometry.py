"""Geometry in patient coordinates: slice order, orientation, NIfTI (RAS) on DICOM (LPS), SEG,
RTSTRUCT, multi-frame NM, and the clear errors for inconsistent inputs."""

from __future__ import annotations

import random
from datetime import datetime

import nibabel as nib
import numpy as np
import pytest

from lutarterial.errors import DicomConformanceError, InvalidInputError
from lutarterial.imaging import dicom_write as dw
from lutarterial.imaging.io import read_image, read_labels
from lutarterial.imaging.types import Geometry

T0 = datetime(2026, 5, 4, 10, 0)


def patient(for_uid="1.2.3.9"):
    return dw.PatientInfo("P2", "1.2.3.8", for_uid, T0)


def ramp(shape):
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (1000 + 100 * k + 10 * j + i).astype(np.float32)


def write_ct(tmp_path, g, arr=None, name="ct", for_uid="1.2.3.9"):
    arr = ramp(g.shape) if arr is None else arr
    dss = dw.ct_datasets(arr, g, patient(for_uid), series_time=T0)
    return dss, dw.save_series(dss, tmp_path / name)


G = Geometry((6, 10, 12), (2.0, 2.5, 3.0), (-11.0, -12.0, 50.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def test_slices_sorted_by_position_not_file_order(tmp_path):
    dss = dw.ct_datasets(ramp(G.shape), G, patient(), series_time=T0)
    random.Random(3).shuffle(dss)
    for n, ds in enumerate(dss):
        ds.InstanceNumber = n + 1  # misleading instance numbers
    img = read_image(dw.save_series(dss, tmp_path / "ct"))
    np.testing.assert_allclose(img.array, ramp(G.shape), atol=0.5)
    assert img.geometry.origin_mm == pytest.approx(G.origin_mm)
    assert img.geometry.spacing_mm == pytest.approx(G.spacing_mm)


def test_feet_first_slice_direction_and_oblique_orientation(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    d = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.diag([1, 1, 1.0])
    g = Geometry(G.shape, G.spacing_mm, (5.0, 6.0, 7.0), tuple(d.ravel()))
    _, p = write_ct(tmp_path, g)
    img = read_image(p)
    assert img.geometry.same_grid(g, tol_mm=1e-3)
    xyz = img.geometry.index_to_physical(np.array([[3, 4, 5]]))
    np.testing.assert_allclose(img.geometry.physical_to_index(xyz), [[3, 4, 5]], atol=1e-9)


def test_nifti_ras_labels_on_dicom_lps_image(tmp_path):
    _, p = write_ct(tmp_path, G)
    img = read_image(p)
    # Build a label map in numpy (k, j, i) on the DICOM grid, then save it with an explicit
    # RAS affine by nibabel (x, y negated), i.e. independently of our own writer.
    lab = np.zeros(G.shape, np.int16)
    lab[1:3, 2:5, 7:10] = 1  # an asymmetric box: any flip would move it
    lab[4, 8, 1] = 2
    aff = np.eye(4)
    aff[:3, :3] = np.diag([-G.spacing_mm[0], -G.spacing_mm[1], G.spacing_mm[2]])
    aff[:3, 3] = [-G.origin_mm[0], -G.origin_mm[1], G.origin_mm[2]]
    nib.save(nib.Nifti1Image(np.transpose(lab, (2, 1, 0)), aff), tmp_path / "lab.nii.gz")
    lm = read_labels(tmp_path / "lab.nii.gz", img, names={"1": {"name": "box", "kind": "lesion"},
                                                          "2": {"name": "dot", "kind": "other"}})
    np.testing.assert_array_equal(lm.by_name("box").full(G.shape), lab == 1)
    np.testing.assert_array_equal(lm.by_name("dot").full(G.shape), lab == 2)


def test_nifti_labels_on_a_finer_grid_resample_by_nearest_neighbour(tmp_path):
    _, p = write_ct(tmp_path, G)
    img = read_image(p)
    fine = Geometry((12, 20, 24), (1.0, 1.25, 1.5), tuple(np.array(G.origin_mm) - [0.5, 0.625, 0.75]), G.direction)
    lab = np.zeros(fine.shape, np.int16)
    lab[2:6, 4:10, 14:20] = 1
    dw.write_nifti_labels(tmp_path / "fine.nii.gz", lab, fine)
    lm = read_labels(tmp_path / "fine.nii.gz", img, names={"1": {"name": "box", "kind": "liver"}})
    expected = np.zeros(G.shape, bool)
    expected[1:3, 2:5, 7:10] = True
    np.testing.assert_array_equal(lm.by_name("box").full(G.shape), expected)


def test_non_overlapping_grids_give_a_clear_error(tmp_path):
    _, p = write_ct(tmp_path, G)
    img = read_image(p)
    far = Geometry(G.shape, G.spacing_mm, (5000.0, 0.0, 0.0), G.direction)
    dw.write_nifti_labels(tmp_path / "far.nii.gz", np.ones(G.shape, np.int16), far)
    with pytest.raises(InvalidInputError, match="do not overlap"):
        read_labels(tmp_path / "far.nii.gz", img)


def test_requested_voi_absent_or_empty_gives_a_clear_error(tmp_path):
    _, p = write_ct(tmp_path, G)
    img = read_image(p)
    lab = np.zeros(G.shape, np.int16)
    lab[2, 2, 2] = 1
    dw.write_nifti_labels(tmp_path / "l.nii.gz", lab, G)
    with pytest.raises(InvalidInputError, match="3 \\(spleen\\)"):
        read_labels(tmp_path / "l.nii.gz", img, names={"1": {"name": "a", "kind": "lesion"},
                                                       "3": {"name": "spleen", "kind": "spleen"}})
    dw.write_nifti_labels(tmp_path / "e.nii.gz", np.zeros(G.shape, np.int16), G)
    with pytest.raises(InvalidInputError, match="no VOIs"):
        read_labels(tmp_path / "e.nii.gz", img)


def test_names_file_errors(tmp_path):
    _, p = write_ct(tmp_path, G)
    img = read_image(p)
    dw.write_nifti_labels(tmp_path / "l.nii.gz", np.ones(G.shape, np.int16), G)
    with pytest.raises(InvalidInputError, match="unknown VOI kind"):
        read_labels(tmp_path / "l.nii.gz", img, names={"1": {"name": "a", "kind": "tumor-ish"}})
    with pytest.raises(InvalidInputError, match="name"):
        read_labels(tmp_path / "l.nii.gz", img, names={"1": {"kind": "lesion"}})


def test_seg_round_trip_and_frame_of_reference(tmp_path):
    dss, p = write_ct(tmp_path, G)
    img = read_image(p)
    m1 = np.zeros(G.shape, bool)
    m1[1:4, 2:6, 3:9] = True
    m2 = np.zeros(G.shape, bool)
    m2[2:3, 5:7, 1:3] = True  # overlaps nothing; liver-in-lesion overlap tested via m3
    m3 = m1.copy()
    m3[1:5, 1:8, 2:10] = True  # contains m1: segments may overlap
    seg = dw.write_seg(tmp_path / "seg.dcm", dss, [("lesion 1", "lesion", m1), ("node", "extrahepatic", m2),
                                                  ("liver", "liver", m3)])
    lm = read_labels(seg, img)
    assert [v.spec.name for v in lm.vois] == ["lesion 1", "node", "liver"]
    assert [v.spec.kind.value for v in lm.vois] == ["lesion", "extrahepatic", "liver"]  # inferred from labels
    for v, m in zip(lm.vois, (m1, m2, m3), strict=True):
        np.testing.assert_array_equal(v.full(G.shape), m)
    # Same SEG on an image from another frame of reference: refused.
    _, p2 = write_ct(tmp_path, G, name="other", for_uid="1.2.3.999")
    with pytest.raises(InvalidInputError, match="frame of reference"):
        read_labels(seg, read_image(p2))


def test_seg_on_coarser_pet_grid(tmp_path):
    fine = Geometry((6, 20, 24), (1.0, 1.25, 3.0), G.origin_mm, G.direction)
    dss, _ = write_ct(tmp_path, fine)
    m = np.zeros(fine.shape, bool)
    m[1:4, 4:10, 6:18] = True
    seg = dw.write_seg(tmp_path / "seg.dcm", dss, [("liver", "liver", m)])
    _, p = write_ct(tmp_path, G, name="coarse")
    lm = read_labels(seg, read_image(p))
    exp = m[:, ::2, ::2]  # coarse centres coincide with every second fine centre
    np.testing.assert_array_equal(lm.vois[0].full(G.shape), exp)


def test_rtstruct_contours_rasterised_in_patient_coordinates(tmp_path):
    g = Geometry((8, 40, 40), (1.0, 1.0, 2.0), (-19.5, -19.5, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    _, p = write_ct(tmp_path, g)
    img = read_image(p)
    r = 10.0
    t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    contours = [np.column_stack([3 + r * np.cos(t), -2 + r * np.sin(t), np.full_like(t, z)]) for z in (4.0, 6.0, 8.0)]
    # a hole (ring) on one slice: even-odd filling
    hole = [np.column_stack([3 + 4 * np.cos(t), -2 + 4 * np.sin(t), np.full_like(t, 6.0)])]
    rt = dw.write_rtstruct(tmp_path / "rt.dcm", patient(), "1.2", [("lesion A", contours + hole)])
    lm = read_labels(rt, img)
    full = lm.vois[0].full(g.shape)
    assert set(np.flatnonzero(full.any(axis=(1, 2)))) == {2, 3, 4}
    assert full[2].sum() == pytest.approx(np.pi * r * r, rel=0.03)
    assert full[3].sum() == pytest.approx(np.pi * (r * r - 16), rel=0.05)
    j, i = np.argwhere(full[2]).mean(axis=0)
    assert (i - 19.5, j - 19.5) == pytest.approx((3.0, -2.0), abs=0.1)


def test_multiframe_nm_geometry(tmp_path):
    g = Geometry((5, 6, 7), (4.0, 4.0, 4.0), (-12.0, -10.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ds = dw.nm_dataset(ramp(g.shape), g, patient(), acq_time=T0, frame_duration_s=10, projections=60,
                       collimator="MEGP", model="X", injection_time=T0, injected_bq=1e9)
    (tmp_path / "nm").mkdir()
    ds.save_as(tmp_path / "nm" / "nm.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "nm")
    np.testing.assert_allclose(img.array, ramp(g.shape), rtol=1e-4)
    assert img.geometry.same_grid(g)
    assert img.meta["projections"] == 60 and img.meta["frame_duration_s"] == 10


def test_duplicate_positions_and_uneven_spacing_are_refused(tmp_path):
    dss = dw.ct_datasets(ramp(G.shape), G, patient(), series_time=T0)
    dss[3].ImagePositionPatient = dss[2].ImagePositionPatient
    with pytest.raises(DicomConformanceError, match="share a position"):
        read_image(dw.save_series(dss, tmp_path / "dup"))
    dss = dw.ct_datasets(ramp(G.shape), G, patient(), series_time=T0)
    del dss[2]
    with pytest.raises(DicomConformanceError, match="evenly spaced"):
        read_image(dw.save_series(dss, tmp_path / "gap"))


def test_series_choice_prefers_pet_over_ct(tmp_path):
    from lutarterial.imaging.types import Quantity

    _, p = write_ct(tmp_path, G, name="study")
    pet = dw.pet_datasets(np.full(G.shape, 5.0, np.float32), G, patient(), series_time=T0, injection_time=T0,
                          injected_bq=1e8)
    dw.save_series(pet, tmp_path / "study")
    assert read_image(tmp_path / "study").quantity is Quantity.BQML
    assert read_image(tmp_path / "study", modality="CT").modality == "CT"


def test_fractional_seg_thresholded_at_half(tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    dss, p = write_ct(tmp_path, G)
    img = read_image(p)
    frac = np.zeros(G.shape + (1,), np.float32)
    frac[2:4, 3:6, 4:8, 0] = 0.8
    frac[2:4, 6:7, 4:8, 0] = 0.3  # below 50 %: outside
    desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label="lesion 7", segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=dss, pixel_array=frac, segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
        segment_descriptions=[desc], series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="test", manufacturer_model_name="t", software_versions="1",
        device_serial_number="1", max_fractional_value=255)
    seg.save_as(tmp_path / "frac.dcm")
    lm = read_labels(tmp_path / "frac.dcm", img, names={"1": {"name": "lesion 7", "kind": "lesion"}})
    np.testing.assert_array_equal(lm.vois[0].full(G.shape), frac[..., 0] >= 0.5)


def test_rtstruct_from_another_frame_of_reference_is_refused(tmp_path):
    _, p = write_ct(tmp_path, G)
    img = read_image(p)
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    c = [np.column_stack([5 * np.cos(t), 5 * np.sin(t), np.full_like(t, 56.0)])]
    rt = dw.write_rtstruct(tmp_path / "rt.dcm", patient("9.9.9"), "1.2", [("lesion", c)])
    with pytest.raises(InvalidInputError, match="frame of reference"):
        read_labels(rt, img)


def test_geometry_round_trip_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None)
    @given(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3), st.lists(st.floats(0.5, 5), min_size=3, max_size=3))
    def check(a, b, c, sp):
        from scipy.spatial.transform import Rotation

        d = Rotation.from_euler("xyz", [a, b, c]).as_matrix()
        g = Geometry((3, 4, 5), tuple(sp), (1.0, -2.0, 3.0), tuple(d.ravel()))
        ijk = np.array([[0.5, 2.0, 1.5], [4, 3, 2]])
        np.testing.assert_allclose(g.physical_to_index(g.index_to_physical(ijk)), ijk, atol=1e-9)

    check()


def test_multiframe_nm_negative_spacing_runs_against_the_normal(tmp_path):
    g = Geometry((5, 6, 7), (4.0, 4.0, 4.0), (-12.0, -10.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    arr = ramp(g.shape)
    # Frames stored top (superior) first, with a negative spacing: frame f at z = 46 - 4 f.
    ds = dw.nm_dataset(arr[::-1].copy(), g, patient(), acq_time=T0, frame_duration_s=10, projections=60,
                       collimator="MEGP", model="X", injection_time=T0, injected_bq=1e9)
    ds.DetectorInformationSequence[0].ImagePositionPatient = ["-12.0", "-10.0", "46.0"]
    ds.SpacingBetweenSlices = "-4.0"
    (tmp_path / "nm").mkdir()
    ds.save_as(tmp_path / "nm" / "nm.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "nm")
    assert img.geometry.same_grid(g)
    np.testing.assert_allclose(img.array, arr, rtol=1e-4)


def test_enhanced_multiframe_per_frame_positions(tmp_path):
    from pydicom.dataset import Dataset

    g = Geometry((4, 5, 6), (2.0, 2.0, 3.0), (0.0, 0.0, 10.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    arr = ramp(g.shape)
    ds = dw.nm_dataset(arr, g, patient(), acq_time=T0, frame_duration_s=10, projections=60, collimator="MEGP",
                       model="X", injection_time=T0, injected_bq=1e9)
    del ds.DetectorInformationSequence
    order = [2, 0, 3, 1]  # frames stored out of order
    ds.PixelData = np.stack([np.rint(arr[k] / float(ds.RescaleSlope)).astype(np.uint16) for k in order]).tobytes()
    shared = Dataset()
    po, pm = Dataset(), Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    pm.PixelSpacing, pm.SliceThickness = [2.0, 2.0], 3.0
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [po], [pm]
    tr = Dataset()
    tr.RescaleSlope, tr.RescaleIntercept = ds.RescaleSlope, 0
    shared.PixelValueTransformationSequence = [tr]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    for k in order:
        f, pp = Dataset(), Dataset()
        pp.ImagePositionPatient = [0.0, 0.0, 10.0 + 3.0 * k]
        f.PlanePositionSequence = [pp]
        per.append(f)
    ds.PerFrameFunctionalGroupsSequence = per
    ds.NumberOfFrames = 4
    (tmp_path / "e").mkdir()
    ds.save_as(tmp_path / "e" / "e.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "e")
    assert img.geometry.same_grid(g)
    np.testing.assert_allclose(img.array, arr, rtol=1e-4)


def test_labelmap_seg(tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    dss, p = write_ct(tmp_path, G)
    img = read_image(p)
    lab = np.zeros(G.shape, np.uint8)
    lab[1:4, 2:6, 3:9] = 1
    lab[4, 7:9, 1:3] = 2
    descs = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name, prop in ((1, "liver", codes.SCT.Liver), (2, "spleen", codes.SCT.Spleen))]
    seg = hd.seg.Segmentation(
        source_images=dss, pixel_array=lab, segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
        segment_descriptions=descs, series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="test", manufacturer_model_name="t", software_versions="1",
        device_serial_number="1")
    seg.save_as(tmp_path / "lm.dcm")
    lm = read_labels(tmp_path / "lm.dcm", img)
    assert [(v.spec.name, v.spec.kind.value) for v in lm.vois] == [("liver", "liver"), ("spleen", "spleen")]
    np.testing.assert_array_equal(lm.by_name("liver").full(G.shape), lab == 1)
    np.testing.assert_array_equal(lm.by_name("spleen").full(G.shape), lab == 2)


def test_rtstruct_from_other_software_without_preamble(tmp_path):
    """pydicom's test file rtstruct.dcm (no preamble; box ROI 'patient' on z = -200, -190, -180 mm,
    x in [-200, 200], y in [-150, 150]; two POINT ROIs that are not volumes)."""
    from pathlib import Path

    import pydicom

    f = Path(pydicom.__file__).parent / "data" / "test_files" / "rtstruct.dcm"
    if not f.is_file():
        pytest.skip("pydicom's packaged test file rtstruct.dcm is not installed")
    g = Geometry((7, 40, 50), (10.0, 10.0, 10.0), (-245.0, -195.0, -220.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    _, p = write_ct(tmp_path, g, for_uid="1.2.826.0.1.3680043.8.498.2010020400001.2")
    lm = read_labels(f, read_image(p))
    assert [v.spec.name for v in lm.vois] == ["patient"]  # POINT ROIs skipped
    full = lm.vois[0].full(g.shape)
    assert [int(full[k].sum()) for k in range(7)] == [0, 0, 1200, 1200, 1200, 0, 0]
    with pytest.raises(InvalidInputError, match="no closed contours"):
        read_labels(f, read_image(p), names={"2": {"name": "iso", "kind": "other"}})
