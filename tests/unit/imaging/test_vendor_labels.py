"""VOIs as other software writes them: pydicom's bundled SEG and RTSTRUCT test files, SEGs whose
segments are only coded (dcmqi/Slicer style labels), renumbered and shuffled frames, GTV ROIs."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import pack_bits

from lutarterial.errors import InvalidInputError
from lutarterial.imaging import dicom_write as dw
from lutarterial.imaging.io import read_image, read_labels
from lutarterial.imaging.types import Geometry, Image, Quantity

AXIAL = (1, 0, 0, 0, 1, 0, 0, 0, 1)
T0 = datetime(2026, 5, 4, 10, 0)
G = Geometry((6, 10, 12), (2.0, 2.5, 3.0), (-11.0, -12.0, 50.0), AXIAL)


def patient(for_uid="1.2.3.9"):
    return dw.PatientInfo("P2", "1.2.3.8", for_uid, T0)


def write_ct(tmp_path, g):
    dss = dw.ct_datasets(np.full(g.shape, 40.0, np.float32), g, patient(), series_time=T0)
    return dss, dw.save_series(dss, tmp_path / "ct")


def _image(g: Geometry, for_uid: str) -> Image:
    return Image(np.zeros(g.shape, np.float32), g, Quantity.BQML, "PT", for_uid)


def test_pydicom_liver_seg_srt_code_gives_the_kind(tmp_path):
    """pydicom's liver_1frame.dcm (one 512x512 frame, SRT T-62000 Liver) placed on a coarser grid."""
    src = pydicom.dcmread(get_testdata_file("liver_1frame.dcm"))
    src.SegmentSequence[0].SegmentLabel = "Segment_1"  # kind must come from the code, not the text
    p = tmp_path / "liver.dcm"
    src.save_as(p)
    frame = pydicom.dcmread(get_testdata_file("liver_1frame.dcm")).pixel_array.astype(bool)
    ps = 0.810547
    ipp = (-235.2, -226.8, -128.69)
    g = Geometry((3, 64, 64), (8 * ps, 8 * ps, 3.0), (ipp[0], ipp[1], ipp[2] - 3.0), AXIAL)
    lm = read_labels(p, _image(g, str(src.FrameOfReferenceUID)))
    assert len(lm.vois) == 1 and lm.vois[0].spec.kind.value == "liver"
    full = lm.vois[0].full(g.shape)
    assert not full[0].any() and not full[2].any()
    np.testing.assert_array_equal(full[1], frame[::8, ::8])


def test_pydicom_liver_seg_other_frame_of_reference_is_refused_first(tmp_path):
    g = Geometry((3, 4, 4), (5.0, 5.0, 5.0), (500.0, 500.0, 500.0), AXIAL)  # also far away
    with pytest.raises(InvalidInputError, match="frame of reference"):
        read_labels(get_testdata_file("liver_1frame.dcm"), _image(g, "1.2.3.4"))


def test_pydicom_rtstruct_external_between_slices_points_ignored():
    """pydicom's rtstruct.dcm: EXTERNAL rectangle on z = -200, -190, -180 mm and two POINT isocentres."""
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    g = Geometry((9, 40, 50), (10.0, 10.0, 5.0), (-245.0, -195.0, -210.0), AXIAL)
    lm = read_labels(get_testdata_file("rtstruct.dcm"), _image(g, str(ds.ReferencedFrameOfReferenceSequence[0]
                                                                     .FrameOfReferenceUID)))
    assert [v.spec.name for v in lm.vois] == ["patient"]  # isocentres (POINT) are not volumes
    full = lm.vois[0].full(g.shape)
    exp = np.zeros(g.shape, bool)
    # contour planes at slice indices 2, 4, 6 (10 mm apart): each fills half a gap either side,
    # so slices 1..7; x centres -195..195 (i 5..44), y centres -145..145 (j 5..34).
    exp[1:8, 5:35, 5:45] = True
    np.testing.assert_array_equal(full, exp)
    # The named ROI must be found by number or name; the isocentre is not a volume.
    with pytest.raises(InvalidInputError, match="no closed contours"):
        read_labels(get_testdata_file("rtstruct.dcm"), _image(g, str(ds.ReferencedFrameOfReferenceSequence[0]
                                                                      .FrameOfReferenceUID)),
                    names={"Isocenter 1": {"name": "iso", "kind": "other"}})


def _coded_seg(tmp_path, dss):
    """A highdicom SEG with uninformative labels; kinds only in SegmentedPropertyType/AnatomicRegion."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    shape = (len(dss), int(dss[0].Rows), int(dss[0].Columns))
    masks = [np.zeros(shape, bool) for _ in range(4)]
    masks[0][1:5, 1:9, 1:11] = True  # liver
    masks[1][2:4, 3:5, 3:6] = True  # neoplasm in the liver
    masks[2][4:5, 8:10, 1:3] = True  # neoplasm in the lung -> extrahepatic
    masks[3][0:2, 0:2, 9:12] = True  # spleen
    arr = np.stack(masks, axis=-1).astype(np.uint8)
    mk = hd.seg.SegmentDescription
    cat_t, cat_m = codes.SCT.Tissue, codes.SCT.MorphologicallyAbnormalStructure
    descs = [
        mk(1, "Segment_1", cat_t, codes.SCT.Liver, hd.seg.SegmentAlgorithmTypeValues.MANUAL),
        mk(2, "Segment_2", cat_m, codes.SCT.Neoplasm, hd.seg.SegmentAlgorithmTypeValues.MANUAL,
           anatomic_regions=[codes.SCT.Liver]),
        mk(3, "Segment_3", cat_m, codes.SCT.Neoplasm, hd.seg.SegmentAlgorithmTypeValues.MANUAL,
           anatomic_regions=[codes.SCT.Lung]),
        mk(4, "Segment_4", cat_t, codes.SCT.Spleen, hd.seg.SegmentAlgorithmTypeValues.MANUAL),
    ]
    seg = hd.seg.Segmentation(
        source_images=list(dss), pixel_array=arr, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs, series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="test", manufacturer_model_name="test", software_versions="0",
        device_serial_number="0", omit_empty_frames=True,
    )
    return seg, masks


def test_coded_segments_map_to_kinds_without_a_names_file(tmp_path):
    dss, p = write_ct(tmp_path, G)
    seg, masks = _coded_seg(tmp_path, dss)
    seg.save_as(tmp_path / "seg.dcm")
    lm = read_labels(tmp_path / "seg.dcm", read_image(p))
    assert [v.spec.kind.value for v in lm.vois] == ["liver", "lesion", "extrahepatic", "spleen"]
    for v, m in zip(lm.vois, masks, strict=True):
        np.testing.assert_array_equal(v.full(G.shape), m)


def test_segment_numbers_not_from_one_and_frames_shuffled(tmp_path):
    """Segment numbers 7, 8, 9, 10 and frames in a scrambled order (as some writers produce)."""
    dss, p = write_ct(tmp_path, G)
    seg, masks = _coded_seg(tmp_path, dss)
    nf = int(seg.NumberOfFrames)
    pix = seg.pixel_array.reshape(nf, int(seg.Rows), int(seg.Columns))
    perm = np.random.default_rng(5).permutation(nf)
    seg.PixelData = pack_bits(pix[perm])
    seg.PerFrameFunctionalGroupsSequence = [seg.PerFrameFunctionalGroupsSequence[i] for i in perm]
    for item in seg.PerFrameFunctionalGroupsSequence:
        sis = item.SegmentIdentificationSequence[0]
        sis.ReferencedSegmentNumber = int(sis.ReferencedSegmentNumber) + 6
    for s in seg.SegmentSequence:
        s.SegmentNumber = int(s.SegmentNumber) + 6
    seg.save_as(tmp_path / "seg.dcm")
    img = read_image(p)
    lm = read_labels(tmp_path / "seg.dcm", img)
    assert [v.spec.label for v in lm.vois] == [7, 8, 9, 10]
    for v, m in zip(lm.vois, masks, strict=True):
        np.testing.assert_array_equal(v.full(G.shape), m)
    # A names file may pick segments by their (non-1-based) numbers.
    lm = read_labels(tmp_path / "seg.dcm", img, names={"8": {"name": "lesion A", "kind": "lesion"}})
    assert [v.spec.name for v in lm.vois] == ["lesion A"]
    np.testing.assert_array_equal(lm.vois[0].full(G.shape), masks[1])


def test_rtstruct_gtv_interpreted_type_marks_a_lesion(tmp_path):
    g = Geometry((4, 20, 20), (2.0, 2.0, 2.0), (-19.0, -19.0, 0.0), AXIAL)
    dss = dw.ct_datasets(np.zeros(g.shape, np.float32), g, patient(), series_time=T0)
    d = dw.save_series(dss, tmp_path / "ct")
    sq = np.array([[-5, -5, 2], [5, -5, 2], [5, 5, 2], [-5, 5, 2]], float)
    rt = dw.write_rtstruct(tmp_path / "rt.dcm", patient(), str(dss[0].SeriesInstanceUID),
                           [("ROI_A", [sq]), ("ROI_B", [sq + [0, 0, 2]])])
    ds = pydicom.dcmread(rt)
    ds.RTROIObservationsSequence[0].RTROIInterpretedType = "GTV"
    ds.save_as(rt)
    lm = read_labels(rt, read_image(d))
    assert [v.spec.kind.value for v in lm.vois] == ["lesion", "other"]


def test_rtstruct_roi_in_two_parts_is_not_bridged(tmp_path):
    """One ROI holding two lesions at different heights: slices between them stay empty."""
    g = Geometry((12, 20, 20), (2.0, 2.0, 2.0), (-19.0, -19.0, 0.0), AXIAL)
    dss = dw.ct_datasets(np.zeros(g.shape, np.float32), g, patient(), series_time=T0)
    d = dw.save_series(dss, tmp_path / "ct")
    sq = np.array([[-5, -5, 0], [5, -5, 0], [5, 5, 0], [-5, 5, 0]], float)
    parts = [sq + [0, 0, z] for z in (2, 4, 6, 16, 18)]  # slices 1-3 and 8-9
    rt = dw.write_rtstruct(tmp_path / "rt.dcm", patient(), str(dss[0].SeriesInstanceUID), [("lesions", parts)])
    full = read_labels(rt, read_image(d)).vois[0].full(g.shape)
    assert list(np.flatnonzero(full.any(axis=(1, 2)))) == [1, 2, 3, 8, 9]
    # Contours every 3 mm on a 2 mm image (between slices): filled continuously, nearest plane.
    g2 = Geometry((12, 20, 20), (2.0, 2.0, 2.0), (-19.0, -19.0, 0.0), AXIAL)
    parts = [sq + [0, 0, z] for z in (3.0, 6.0, 9.0, 12.0)]
    rt2 = dw.write_rtstruct(tmp_path / "rt2.dcm", patient(), str(dss[0].SeriesInstanceUID), [("liver", parts)])
    full = read_labels(rt2, read_image(d)).vois[0].full(g2.shape)
    # planes at index 1.5 .. 6; half a gap (0.75) either side: slices 1..6
    assert list(np.flatnonzero(full.any(axis=(1, 2)))) == [1, 2, 3, 4, 5, 6]


def test_seg_on_oblique_feet_first_ct_read_onto_an_axial_pet_grid(tmp_path):
    """SEG over an oblique CT (rotated 0.3 rad about z, slices running feet-first) placed on a
    coarser axial grid: every label voxel lands where the physical point lies (checked against a
    direct physical-coordinate lookup)."""
    c, s = np.cos(0.3), np.sin(0.3)
    d = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.diag([1.0, 1.0, -1.0])
    ct = Geometry((8, 16, 16), (1.5, 1.5, 2.0), (1.0, -2.0, 40.0), tuple(d.ravel()))
    dss = dw.ct_datasets(np.zeros(ct.shape, np.float32), ct, patient(), series_time=T0)
    d0 = dw.save_series(dss, tmp_path / "ct")
    m = np.zeros(ct.shape, bool)
    m[2:6, 4:12, 3:10] = True
    ct_img = read_image(d0)
    # highdicom wants source images in the mask's slice order: ours are written along the normal.
    seg = dw.write_seg(tmp_path / "seg.dcm", dss, [("liver", "liver", m)])
    np.testing.assert_array_equal(read_labels(seg, ct_img).vois[0].full(ct.shape), m)
    pet = Geometry((6, 12, 12), (3.0, 3.0, 3.0), (-12.0, -14.0, 22.3), AXIAL)  # no half-voxel ties
    got = read_labels(seg, _image(pet, "1.2.3.9")).vois[0].full(pet.shape)
    kk, jj, ii = np.meshgrid(*(np.arange(n) for n in pet.shape), indexing="ij")
    xyz = pet.index_to_physical(np.column_stack([ii.ravel(), jj.ravel(), kk.ravel()]))
    ijk = np.rint(ct.physical_to_index(xyz)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array([ct.shape[2], ct.shape[1], ct.shape[0]])), axis=1)
    exp = np.zeros(len(xyz), bool)
    exp[inside] = m[ijk[inside, 2], ijk[inside, 1], ijk[inside, 0]]
    exp = exp.reshape(pet.shape)
    assert exp.sum() > 20
    np.testing.assert_array_equal(got, exp)
