"""Header variants written by other vendors' software: time-zone offsets and fractional seconds in
PET timing, PatientSize in centimetres, quantitative SPECT units (Units, Real World Value Mapping,
private voxel units) and NM objects that are not reconstructions."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from pydicom.dataset import Dataset

from lutarterial.errors import DicomConformanceError
from lutarterial.imaging import dicom_write as dw
from lutarterial.imaging.io import read_image
from lutarterial.imaging.metrics import image_suv_factors, quantify
from lutarterial.imaging.types import Geometry, LabelMap, Quantity, VoiKind, VoiSpec, crop_mask

T_GA = 4062.6
C, W, D = 12000.0, 80.0, 200e6
INJ = datetime(2026, 5, 4, 9, 0, 0)
SCAN = INJ + timedelta(minutes=62)
G = Geometry((4, 8, 8), (4.0, 4.0, 3.0), (-14.0, -14.0, 100.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _suv(dt_s: float) -> float:
    return C * W * 1000 / (D * 2 ** (-dt_s / T_GA))


def _pet(tmp_path, mutate, height_m=1.8):
    p = dw.PatientInfo("P1", "1.2.3.4", "1.2.3.4.5", INJ, weight_kg=W, height_m=height_m, sex="F")
    dss = dw.pet_datasets(np.full(G.shape, C, np.float32), G, p, series_time=SCAN, injection_time=INJ,
                          injected_bq=D, half_life_s=T_GA)
    for ds in dss:
        mutate(ds)
    return read_image(dw.save_series(dss, tmp_path / "pet"))


def _suv_of(img) -> float:
    return float(img.array.mean()) * image_suv_factors(img).bw


@pytest.mark.parametrize("inj_dt, local, minutes", [
    ("20260504070000+0000", "+0200", 62),  # injection stamped in UTC, scanner local time UTC+2
    ("20260504090000+0200", "+0200", 62),  # same offset: unchanged
    ("20260504090000-0500", None, 62),  # offset but no TimezoneOffsetFromUTC: taken as local
    ("20260504083000+0130", "+0200", 62),  # 08:30 at +01:30 = 07:00 UTC = 09:00 at +02:00
])
def test_injection_datetime_with_utc_offset(tmp_path, inj_dt, local, minutes):
    def mut(ds):
        ri = ds.RadiopharmaceuticalInformationSequence[0]
        ri.RadiopharmaceuticalStartDateTime = inj_dt
        del ri.RadiopharmaceuticalStartTime
        if local:
            ds.TimezoneOffsetFromUTC = local
    img = _pet(tmp_path, mut)
    assert _suv_of(img) == pytest.approx(_suv(minutes * 60), rel=1e-6)


def test_fractional_seconds_and_time_only_injection(tmp_path):
    def mut(ds):
        ri = ds.RadiopharmaceuticalInformationSequence[0]
        del ri.RadiopharmaceuticalStartDateTime
        ri.RadiopharmaceuticalStartTime = "085959.500000"  # 0.5 s before 09:00
        ds.SeriesTime = "100200.25"
        ds.AcquisitionTime = "100200.25"
    img = _pet(tmp_path, mut)
    assert _suv_of(img) == pytest.approx(_suv(62 * 60 + 0.75), rel=1e-9)
    assert _suv_of(img) != pytest.approx(_suv(62 * 60), rel=1e-9)  # the fractions matter at this precision


def test_patient_size_in_centimetres_is_reported_and_suvbw_unaffected(tmp_path):
    img = _pet(tmp_path, lambda ds: setattr(ds, "PatientSize", "180"), height_m=1.8)
    f = image_suv_factors(img)
    assert f.lbm is None and f.bsa is None
    assert _suv_of(img) == pytest.approx(_suv(62 * 60), rel=1e-6)
    m = np.zeros(G.shape, bool)
    m[1:3, 2:6, 2:6] = True
    lm = LabelMap(G, (crop_mask(VoiSpec(1, "liver", VoiKind.LIVER), m),), img.frame_of_reference_uid)
    res = quantify(img, lm, peak=False)
    assert any("centimetres" in n and "--height-m" in n for n in res.notes)
    ok = quantify(_pet(tmp_path / "b", lambda ds: None), lm, peak=False)
    assert not any("PatientSize" in n for n in ok.notes)


def _nm(tmp_path, mutate, counts=None):
    g = Geometry((5, 6, 7), (4.0, 4.0, 4.0), (-12.0, -10.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    counts = np.full(g.shape, 500.0) if counts is None else counts
    ds = dw.nm_dataset(counts, g, dw.PatientInfo("P", "1.2.3", "1.2.3.4", INJ), acq_time=INJ, frame_duration_s=10,
                       projections=60, collimator="MEGP", model="X", injection_time=INJ, injected_bq=7.4e9)
    mutate(ds)
    (tmp_path / "nm").mkdir(parents=True, exist_ok=True)
    ds.save_as(tmp_path / "nm" / "nm.dcm", enforce_file_format=True)
    return read_image(tmp_path / "nm")


@pytest.mark.parametrize("kind", ["units", "private", "rwvm_bq", "rwvm_kbq"])
def test_quantitative_spect_units(tmp_path, kind):
    def mut(ds):
        if kind == "units":
            ds.Units = "BQML"
        elif kind == "private":
            del ds.Units
            ds.add_new((0x0057, 0x0010), "LO", "SIEMENS MI RWVM")
            ds.add_new((0x0057, 0x1003), "LO", "BQML")
        else:
            del ds.Units
            rw = Dataset()
            u = Dataset()
            u.CodeValue = "Bq/ml" if kind == "rwvm_bq" else "kBq/ml"
            u.CodingSchemeDesignator, u.CodeMeaning = "UCUM", u.CodeValue
            rw.MeasurementUnitsCodeSequence = [u]
            rw.RealWorldValueSlope, rw.RealWorldValueIntercept = 2.0, 0.0
            rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped = 0, 65535
            rw.LUTLabel = "BQML"
            ds.RealWorldValueMappingSequence = [rw]
    img = _nm(tmp_path, mut)
    assert img.quantity is Quantity.BQML
    if kind.startswith("rwvm"):
        # RWV mapping applies to stored values: stored = 500 / RescaleSlope; x 2 (x 1000 for kBq/mL).
        stored = 500.0 / (500.0 / 64000)
        exp = stored * 2.0 * (1000.0 if kind == "rwvm_kbq" else 1.0)
    else:
        exp = 500.0
    np.testing.assert_allclose(img.array, exp, rtol=1e-5)


def test_nm_counts_and_unknown_units(tmp_path):
    assert _nm(tmp_path, lambda ds: None).quantity is Quantity.CNTS

    def bad(ds):
        ds.Units = "PROPCPS"
    with pytest.raises(DicomConformanceError, match="PROPCPS"):
        _nm(tmp_path / "b", bad)


@pytest.mark.parametrize("itype, msg", [
    (["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"], "projections"),
    (["ORIGINAL", "PRIMARY", "RECON GATED TOMO", "EMISSION"], "gated"),
    (["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"], "whole body"),
])
def test_nm_objects_that_are_not_reconstructions_are_refused(tmp_path, itype, msg):
    def mut(ds):
        ds.ImageType = itype
    with pytest.raises(DicomConformanceError, match=msg):
        _nm(tmp_path, mut)


@pytest.mark.parametrize("corrected, dc, ok", [
    (["ATTN", "SCAT"], "START", False),  # claims decay correction the image lacks
    (["ATTN", "SCAT"], "ADMIN", False),
    (["ATTN", "DECY"], "START", True),
    (["DECY", "ATTN", "SCAT", "DTIM", "RANSNG", "DCAL", "SLSENS", "NORM"], "START", True),  # GE-style list
])
def test_decay_correction_must_agree_with_corrected_image(tmp_path, corrected, dc, ok):
    def mut(ds):
        ds.CorrectedImage = corrected
        ds.DecayCorrection = dc
    if ok:
        assert _pet(tmp_path, mut).quantity is Quantity.BQML
    else:
        with pytest.raises(DicomConformanceError, match="lacks DECY"):
            _pet(tmp_path, mut)


def test_siemens_acquisition_microseconds_before_series_time(tmp_path):
    """Siemens writes AcquisitionTime 123514.999995 with SeriesTime 123515 (QIBA/cornerstone test case
    BQML_AC_DT_BEFORE_S_DT_SIEMENS): the back-computed scan start differs by < 0.1 s, SUV by < 1e-5."""
    def mut(ds):
        ds.SeriesTime = "100200.000000"
        ds.AcquisitionTime = "100159.999995"
        ds.FrameReferenceTime = "59936.854672596"
        ds.ActualFrameDuration = 120000
    img = _pet(tmp_path, mut)
    assert _suv_of(img) == pytest.approx(_suv(62 * 60), rel=1e-5)


def test_study_folder_with_mip_and_nac_picks_the_ac_reconstruction(tmp_path):
    p = dw.PatientInfo("P1", "1.2.3.4", "1.2.3.4.5", INJ, weight_kg=W, height_m=1.8, sex="F")

    def series(name, value, mutate):
        dss = dw.pet_datasets(np.full(G.shape, value, np.float32), G, p, series_time=SCAN, injection_time=INJ,
                              injected_bq=D, half_life_s=T_GA)
        for ds in dss:
            mutate(ds)
        dw.save_series(dss, tmp_path / "study" / name)

    series("ac", C, lambda ds: None)
    series("mip", 1.0, lambda ds: setattr(ds, "ImageType", ["DERIVED", "SECONDARY", "MIP"]))
    series("nac", 2.0, lambda ds: setattr(ds, "CorrectedImage", ["DECY", "NORM"]))
    img = read_image(tmp_path / "study")
    assert float(img.array.mean()) == pytest.approx(C, rel=1e-4)
    # Two genuine AC reconstructions stay ambiguous: the user must choose.
    series("ac2", 3.0, lambda ds: None)
    with pytest.raises(Exception, match="several image series"):
        read_image(tmp_path / "study")


def test_spect_export_with_projections_picks_the_reconstruction(tmp_path):
    recon = _nm(tmp_path / "a", lambda ds: None)
    assert recon.quantity is Quantity.CNTS
    g = Geometry((5, 6, 7), (4.0, 4.0, 4.0), (-12.0, -10.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    proj = dw.nm_dataset(np.full(g.shape, 9.0), g, dw.PatientInfo("P", "1.2.3", "1.2.3.4", INJ), acq_time=INJ,
                         frame_duration_s=10, projections=60, collimator="MEGP", model="X", injection_time=INJ,
                         injected_bq=7.4e9)
    proj.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    proj.save_as(tmp_path / "a" / "nm" / "proj.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "a" / "nm")
    np.testing.assert_allclose(img.array, 500.0, rtol=1e-4)


def test_spect_injection_time_without_date_is_not_dated_on_the_scan_day(tmp_path):
    """177Lu SPECT 24 h after injection whose header has only RadiopharmaceuticalStartTime: the
    injection must not be placed on the scan day (0.5 h instead of 24.5 h); %IA waits for the date."""
    from datetime import date

    from lutarterial.imaging.io import with_overrides
    from lutarterial.imaging.spect import Calibration, calibrate_spect

    scan = INJ + timedelta(hours=24, minutes=30)
    g = Geometry((5, 6, 7), (4.0, 4.0, 4.0), (-12.0, -10.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ds = dw.nm_dataset(np.full(g.shape, 500.0), g, dw.PatientInfo("P", "1.2.3", "1.2.3.4", INJ), acq_time=scan,
                       frame_duration_s=10, projections=60, collimator="MEGP", model="X", injection_time=INJ,
                       injected_bq=7.4e9)
    ri = ds.RadiopharmaceuticalInformationSequence[0]
    del ri.RadiopharmaceuticalStartDateTime
    ri.RadiopharmaceuticalStartTime = "090000"
    ds.PatientWeight = "70"
    (tmp_path / "nm").mkdir()
    ds.save_as(tmp_path / "nm" / "nm.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "nm")
    assert "injection_time" not in img.meta and img.meta["injection_time_of_day"] == "09:00:00"
    cal = Calibration("A", "X", "MEGP", "Lu-177", date(2020, 1, 1), None, 10.0, "total")
    bq = calibrate_spect(img, cal)
    m = np.zeros(g.shape, bool)
    m[1:4, 1:5, 1:6] = True
    lm = LabelMap(g, (crop_mask(VoiSpec(1, "liver", VoiKind.LIVER), m),), bq.frame_of_reference_uid)
    res = quantify(bq, lm, peak=False, require_suv=False)
    assert res.vois[0].percent_ia is None
    assert any("--injection-time" in n for n in res.notes)
    # Supplying the date completes the header's dose: decay over 24.5 h of 177Lu (T1/2 574300.8 s).
    done = quantify(with_overrides(bq, injection_time=INJ), lm, peak=False, require_suv=False)
    v = done.vois[0]
    decayed = 7.4e9 * 2 ** (-(24.5 * 3600) / 574300.8)
    assert v.percent_ia == pytest.approx(v.total_bq / decayed * 100, rel=1e-6)


def test_compressed_pet_series_is_decoded(tmp_path):
    """PACS exports are often compressed: an RLE Lossless PET series reads back to the same SUV."""
    from pydicom.uid import RLELossless

    p = dw.PatientInfo("P1", "1.2.3.4", "1.2.3.4.5", INJ, weight_kg=W, height_m=1.8, sex="F")
    dss = dw.pet_datasets(np.full(G.shape, C, np.float32), G, p, series_time=SCAN, injection_time=INJ,
                          injected_bq=D, half_life_s=T_GA)
    for ds in dss:
        ds.compress(RLELossless)
    img = read_image(dw.save_series(dss, tmp_path / "pet"))
    assert _suv_of(img) == pytest.approx(_suv(62 * 60), rel=1e-4)


def test_undecodable_pixel_data_is_a_conformance_error(tmp_path):
    from pydicom.uid import JPEGLosslessSV1

    p = dw.PatientInfo("P1", "1.2.3.4", "1.2.3.4.5", INJ, weight_kg=W, height_m=1.8, sex="F")
    dss = dw.pet_datasets(np.full(G.shape, C, np.float32), G, p, series_time=SCAN, injection_time=INJ,
                          injected_bq=D, half_life_s=T_GA)
    from pydicom.encaps import encapsulate

    for ds in dss:
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        ds.PixelData = encapsulate([b"\xff\xd8not a jpeg\xff\xd9"])
        ds["PixelData"].VR = "OB"
    with pytest.raises(DicomConformanceError, match="cannot decode the pixel data"):
        read_image(dw.save_series(dss, tmp_path / "pet"))


def test_pydicom_nm_jpeg_extended_file_decodes():
    """pydicom's JPGExtended.dcm (NM, 12-bit JPEG Extended) needs the libjpeg decoder."""
    import pydicom
    from pydicom.data import get_testdata_file

    from lutarterial.imaging.dicom_series import decode_pixels

    ds = pydicom.dcmread(get_testdata_file("JPGExtended.dcm"))
    assert decode_pixels(ds).shape == (int(ds.Rows), int(ds.Columns))


def test_quantitative_spect_bqml_gives_percent_ia_from_header(tmp_path):
    """xSPECT-Quant-like NM in Bq/mL: no calibration, %IA from the header dose and injection time."""
    from lutarterial.imaging.workflow import quantify_files

    scan = INJ + timedelta(hours=24)
    g = Geometry((5, 6, 7), (4.0, 4.0, 4.0), (-12.0, -10.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ds = dw.nm_dataset(np.full(g.shape, 5000.0), g, dw.PatientInfo("P", "1.2.3", "1.2.3.4", INJ), acq_time=scan,
                       frame_duration_s=10, projections=60, collimator="MEGP", model="X", injection_time=INJ,
                       injected_bq=7.4e9)
    ds.Units = "BQML"
    (tmp_path / "nm").mkdir()
    ds.save_as(tmp_path / "nm" / "nm.dcm", enforce_file_format=True)
    lab = np.zeros(g.shape, np.int16)
    lab[1:4, 1:5, 1:6] = 1
    voi = dw.write_nifti_labels(tmp_path / "voi.nii.gz", lab, g)
    img, _, m = quantify_files(tmp_path / "nm", voi, {"1": {"name": "liver", "kind": "liver"}}, peak=False)
    v = m.vois[0]
    assert img.quantity is Quantity.BQML and v.mean_bqml == pytest.approx(5000.0, rel=1e-4)
    total = 5000.0 * 3 * 4 * 5 * 0.064
    assert v.total_bq == pytest.approx(total, rel=1e-4)
    assert v.percent_ia == pytest.approx(total / (7.4e9 * 2 ** (-24 * 3600 / 574300.8)) * 100, rel=1e-4)


@pytest.mark.parametrize("mutate, msg", [
    (lambda ds: setattr(ds, "EnergyWindowVector", [1, 2, 1, 2, 1]), "energy window"),
    (lambda ds: setattr(ds, "NumberOfSlices", 4), "differs from NumberOfSlices"),
])
def test_nm_frames_that_are_not_one_stack_are_refused(tmp_path, mutate, msg):
    with pytest.raises(DicomConformanceError, match=msg):
        _nm(tmp_path, mutate)


def test_nm_single_energy_window_vector_is_fine(tmp_path):
    img = _nm(tmp_path, lambda ds: setattr(ds, "EnergyWindowVector", [1] * 5))
    assert img.array.shape == (5, 6, 7)


def test_suv_export_without_decay_correction_header_quantifies_suv_only(tmp_path):
    """Units GML without DecayCorrection (workstation SUV export): SUVs, no Bq/mL, a note says so."""
    def mut(ds):
        ds.Units = "GML"
        del ds.DecayCorrection
    img = _pet(tmp_path, mut)
    assert img.quantity is Quantity.SUVBW and img.timing is None
    m = np.zeros(G.shape, bool)
    m[1:3, 2:6, 2:6] = True
    lm = LabelMap(G, (crop_mask(VoiSpec(1, "liver", VoiKind.LIVER), m),), img.frame_of_reference_uid)
    res = quantify(img, lm, peak=False)
    assert res.vois[0].suv_mean == pytest.approx(C, rel=1e-4)  # stored values are the SUVs
    assert res.vois[0].mean_bqml is None and any("SUVbw" in n for n in res.notes)
    # Bq/mL units without DecayCorrection remain an error (the SUV would depend on a guess).
    with pytest.raises(DicomConformanceError, match="DecayCorrection"):
        _pet(tmp_path / "b", lambda ds: delattr(ds, "DecayCorrection"))


def test_folder_scan_is_quiet_and_lists_a_bounded_number_of_series(tmp_path):
    """A folder with many reconstructions and stray files: no pydicom warning noise, and the
    ambiguity error names the first series and counts the rest instead of listing hundreds."""
    import warnings

    p = dw.PatientInfo("P1", "1.2.3.4", "1.2.3.4.5", INJ, weight_kg=W, height_m=1.8, sex="F")
    for n in range(10):
        dss = dw.pet_datasets(np.full(G.shape, C, np.float32), G, p, series_time=SCAN, injection_time=INJ,
                              injected_bq=D, half_life_s=T_GA)
        dw.save_series(dss, tmp_path / "study" / f"ac{n}")
    (tmp_path / "study" / "notes.txt").write_bytes(b"\x00" * 300 + b"not dicom at all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception, match="several image series") as info:
            read_image(tmp_path / "study")
    message = str(info.value)
    assert "and 2 more series" in message
    assert message.count("files,") == 8
