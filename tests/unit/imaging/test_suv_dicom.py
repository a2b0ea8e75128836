"""Every SUV header variant, written as synthetic DICOM by pydicom and read back.

Truth: a uniform phantom whose Bq/mL value and timing are known, so SUVbw is known exactly:
SUVbw = C x W(g) / (D x 2^(-dt/T)).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from lutarterial.errors import DicomConformanceError, InvalidInputError
from lutarterial.imaging import dicom_write as dw
from lutarterial.imaging.io import read_image, read_labels, with_overrides
from lutarterial.imaging.metrics import image_suv_factors, quantify
from lutarterial.imaging.types import Geometry, Quantity

T_GA = 4062.6
C = 12000.0  # Bq/mL
W = 80.0
D = 200e6
INJ = datetime(2026, 5, 4, 9, 0, 0)
SCAN = INJ + timedelta(minutes=62)
G = Geometry((4, 8, 8), (4.0, 4.0, 3.0), (-14.0, -14.0, 100.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def expected_suv(dt_s: float, c: float = C, half_life: float = T_GA) -> float:
    return c * W * 1000 / (D * 2 ** (-dt_s / half_life))


def make(tmp_path, mutate=None, values=None, inj=INJ, scan=SCAN, name="pet"):
    arr = np.full(G.shape, C, dtype=np.float32) if values is None else values
    p = dw.PatientInfo("P1", "1.2.3.4", "1.2.3.4.5", inj, weight_kg=W, height_m=1.8, sex="F")
    dss = dw.pet_datasets(arr, G, p, series_time=scan, injection_time=inj, injected_bq=D, half_life_s=T_GA)
    for k, ds in enumerate(dss):
        if mutate:
            mutate(ds, k)
    return read_image(dw.save_series(dss, tmp_path / name))


def suv_of(img) -> float:
    f = image_suv_factors(img)
    return float(img.array.mean()) * f.bw


def test_bqml_start_with_start_datetime(tmp_path):
    img = make(tmp_path)
    assert img.quantity is Quantity.BQML
    assert suv_of(img) == pytest.approx(expected_suv(62 * 60), rel=1e-4)


def test_start_time_only_same_day(tmp_path):
    def m(ds, k):
        del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    assert suv_of(make(tmp_path, m)) == pytest.approx(expected_suv(62 * 60), rel=1e-4)


def test_start_time_only_scan_after_midnight(tmp_path):
    inj = datetime(2026, 5, 4, 23, 40, 0)
    scan = inj + timedelta(minutes=50)  # 00:30 next day: SeriesDate is the next day

    def m(ds, k):
        del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    img = make(tmp_path, m, inj=inj, scan=scan)
    assert img.timing.injection_time == inj
    assert suv_of(img) == pytest.approx(expected_suv(50 * 60), rel=1e-4)


def test_start_datetime_preferred_over_time(tmp_path):
    def m(ds, k):
        ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "080000"  # wrong, ignored
    assert suv_of(make(tmp_path, m)) == pytest.approx(expected_suv(62 * 60), rel=1e-4)


def test_series_time_after_acquisition_uses_ge_private_scan_datetime(tmp_path):
    ge_scan = SCAN - timedelta(minutes=2)

    def m(ds, k):
        ds.SeriesTime = (SCAN + timedelta(hours=1)).strftime("%H%M%S")  # re-created series
        ds.AcquisitionTime = (SCAN + timedelta(seconds=30 * k)).strftime("%H%M%S")
        ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT", ge_scan.strftime("%Y%m%d%H%M%S"))
    img = make(tmp_path, m)
    assert img.timing.scan_time == ge_scan
    assert suv_of(img) == pytest.approx(expected_suv(60 * 60), rel=1e-4)


def test_series_time_after_acquisition_without_private_uses_earliest_acquisition(tmp_path):
    def m(ds, k):
        ds.SeriesTime = (SCAN + timedelta(hours=1)).strftime("%H%M%S")
        ds.AcquisitionTime = (SCAN + timedelta(minutes=3, seconds=30 * k)).strftime("%H%M%S")
    img = make(tmp_path, m)
    assert img.timing.scan_time == SCAN + timedelta(minutes=3)
    assert suv_of(img) == pytest.approx(expected_suv(65 * 60), rel=1e-4)


def test_series_time_before_acquisition_uses_series_time(tmp_path):
    def m(ds, k):
        ds.AcquisitionTime = (SCAN + timedelta(minutes=4, seconds=30 * k)).strftime("%H%M%S")
    img = make(tmp_path, m)
    assert img.timing.scan_time == SCAN


def test_decay_correction_admin(tmp_path):
    def m(ds, k):
        ds.DecayCorrection = "ADMIN"
    img = make(tmp_path, m)
    assert suv_of(img) == pytest.approx(C * W * 1000 / D, rel=1e-4)


def test_decay_correction_none_per_frame(tmp_path):
    # Each slice acquired 3 min after the previous; values not decay-corrected (activity at frame).
    lam = np.log(2) / T_GA
    dur = 180.0
    vals = np.empty(G.shape, dtype=np.float32)
    for k in range(G.shape[0]):
        t0 = k * 180.0
        vals[k] = C * np.exp(-lam * t0) * (1 - np.exp(-lam * dur)) / (lam * dur)

    def m(ds, k):
        ds.DecayCorrection = "NONE"
        ds.CorrectedImage = ["ATTN", "SCAT"]
        ds.AcquisitionTime = (SCAN + timedelta(seconds=180 * k)).strftime("%H%M%S")
        ds.ActualFrameDuration = int(dur * 1000)
    img = make(tmp_path, m, values=vals)
    np.testing.assert_allclose(img.array, C, rtol=2e-4)
    assert suv_of(img) == pytest.approx(expected_suv(62 * 60), rel=2e-4)


def test_philips_cnts_activity_scale_factor(tmp_path):
    scale = 2.5  # Bq/mL per count

    def m(ds, k):
        ds.Units = "CNTS"
        ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x09, "DS", str(scale))
    img = make(tmp_path, m, values=np.full(G.shape, C / scale, dtype=np.float32))
    assert img.quantity is Quantity.BQML
    np.testing.assert_allclose(img.array, C, rtol=1e-4)
    assert suv_of(img) == pytest.approx(expected_suv(62 * 60), rel=1e-4)


def test_philips_cnts_vendor_suv_factor_wins_for_suvbw(tmp_path):
    """QIBA pseudo-code: for CNTS, SUVbw = counts x (7053,1000), whatever the other header values say."""
    scale, suv_scale = 2.5, 0.00123

    def m(ds, k):
        ds.Units = "CNTS"
        blk = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        blk.add_new(0x09, "DS", str(scale))
        blk.add_new(0x00, "DS", str(suv_scale))
    counts = C / scale
    img = make(tmp_path, m, values=np.full(G.shape, counts, dtype=np.float32))
    assert suv_of(img) == pytest.approx(counts * suv_scale, rel=1e-4)
    # with the weight missing the vendor factor still gives SUVbw (no %IA then)
    img2 = make(tmp_path, lambda ds, k: (m(ds, k), delattr(ds, "PatientWeight")),
                values=np.full(G.shape, counts, dtype=np.float32), name="noweight")
    f = image_suv_factors(img2)
    assert f.bw * C == pytest.approx(counts * suv_scale, rel=1e-4) and f.decayed_dose_bq is None
    # a user override means the header values were wrong: the header-based factor is used
    fixed = with_overrides(img, weight_kg=W)
    assert suv_of(fixed) == pytest.approx(expected_suv(62 * 60), rel=1e-4)


def test_philips_cnts_suv_scale_factor_only(tmp_path):
    def m(ds, k):
        ds.Units = "CNTS"
        ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x00, "DS", "0.0025")
    img = make(tmp_path, m, values=np.full(G.shape, 4000.0, dtype=np.float32))
    assert img.quantity is Quantity.SUVBW
    np.testing.assert_allclose(img.array, 10.0, rtol=1e-4)


def test_philips_cnts_without_scale_factors_is_an_error(tmp_path):
    def m(ds, k):
        ds.Units = "CNTS"
    with pytest.raises(DicomConformanceError, match="7053"):
        make(tmp_path, m)


def test_units_gml_is_already_suv(tmp_path):
    def m(ds, k):
        ds.Units = "GML"
    img = make(tmp_path, m, values=np.full(G.shape, 5.5, dtype=np.float32))
    assert img.quantity is Quantity.SUVBW
    lab = _whole_labels(tmp_path, img)
    met = quantify(img, lab)
    assert met.vois[0].suv_mean == pytest.approx(5.5, rel=1e-4)
    # Bq/mL recovered from the header when it is complete
    assert met.vois[0].mean_bqml == pytest.approx(5.5 / met.suv.bw, rel=1e-6)


def test_units_cm2ml_is_converted_to_suvbw(tmp_path):
    # Stored SUVbsa = C x BSA(cm2) / dose; SUVbw = stored x W(g) / BSA(cm2) (height 1.8 m, 80 kg).
    from lutarterial.imaging.suv import bsa_dubois1916_m2

    def m(ds, k):
        ds.Units = "CM2ML"
    img = make(tmp_path, m, values=np.full(G.shape, 2.0, dtype=np.float32))
    assert img.quantity is Quantity.SUVBW
    met = quantify(img, _whole_labels(tmp_path, img))
    bsa_cm2 = bsa_dubois1916_m2(W, 1.8) * 1e4
    assert met.vois[0].suv_mean == pytest.approx(2.0 * W * 1000 / bsa_cm2, rel=1e-5)
    assert any("SUVbsa" in n for n in met.notes)


def test_half_life_taken_from_header(tmp_path):
    t18f = 6586.2

    def m(ds, k):
        ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = str(t18f)
    assert suv_of(make(tmp_path, m)) == pytest.approx(expected_suv(62 * 60, half_life=t18f), rel=1e-4)


@pytest.mark.parametrize(
    ("mutate", "tag"),
    [
        (lambda ds, k: delattr(ds, "PatientWeight"), "PatientWeight"),
        (lambda ds, k: setattr(ds, "PatientWeight", "0"), "PatientWeight"),
        (lambda ds, k: delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadionuclideTotalDose"),
         "RadionuclideTotalDose"),
        (lambda ds, k: (delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadiopharmaceuticalStartDateTime"),
                        delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadiopharmaceuticalStartTime")),
         "RadiopharmaceuticalStart"),
        (lambda ds, k: delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadionuclideHalfLife"),
         "RadionuclideHalfLife"),
    ],
)
def test_missing_required_tag_names_the_tag_and_can_be_supplied(tmp_path, mutate, tag):
    img = make(tmp_path, mutate)
    with pytest.raises(DicomConformanceError, match=tag):
        image_suv_factors(img)
    fixed = with_overrides(img, weight_kg=W, injected_activity_bq=D, injection_time=INJ, half_life_s=T_GA)
    assert suv_of(fixed) == pytest.approx(expected_suv(62 * 60), rel=1e-4)


def test_not_attenuation_corrected_is_refused(tmp_path):
    def m(ds, k):
        ds.CorrectedImage = ["DECY", "NORM"]
    with pytest.raises(DicomConformanceError, match="attenuation"):
        make(tmp_path, m)


def test_unknown_units_and_decay_correction_are_refused(tmp_path):
    with pytest.raises(DicomConformanceError, match="Units"):
        make(tmp_path, lambda ds, k: setattr(ds, "Units", "PROPCPS"), name="a")
    with pytest.raises(DicomConformanceError, match="DecayCorrection"):
        make(tmp_path, lambda ds, k: setattr(ds, "DecayCorrection", "FOO"), name="b")


def test_injection_after_scan_is_refused(tmp_path):
    def m(ds, k):
        ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = (
            (SCAN + timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"))
    with pytest.raises(InvalidInputError, match="after the scan"):
        image_suv_factors(make(tmp_path, m))


def test_sul_and_suvbsa(tmp_path):
    from lutarterial.imaging.suv import bsa_dubois1916_m2, lbm_janmahasatian2005_kg

    img = make(tmp_path)
    f = image_suv_factors(img)
    assert f.lbm == pytest.approx(f.bw * lbm_janmahasatian2005_kg(W, 1.8, "F") / W, rel=1e-9)
    assert f.bsa == pytest.approx(f.bw * bsa_dubois1916_m2(W, 1.8) * 1e4 / (W * 1000), rel=1e-9)


def _whole_labels(tmp_path, img):
    from lutarterial.imaging.dicom_write import write_nifti_labels

    lab = np.ones(img.geometry.shape, dtype=np.int16)
    p = write_nifti_labels(tmp_path / "whole.nii.gz", lab, img.geometry)
    return read_labels(p, img, names={"1": {"name": "region", "kind": "other"}})




def test_post_processed_series_back_computed_from_frame_reference_time(tmp_path):
    """QIBA: scan start = acquisition start - FrameReferenceTime + average count-rate time in frame."""
    import math

    d = 180.0
    lam = math.log(2) / T_GA
    t_avg = math.log(lam * d / (1 - math.exp(-lam * d))) / lam

    def m(ds, k):
        ds.SeriesTime = (SCAN + timedelta(hours=1)).strftime("%H%M%S")
        ds.AcquisitionTime = (SCAN + timedelta(seconds=300)).strftime("%H%M%S")
        ds.ActualFrameDuration = int(d * 1000)
        ds.FrameReferenceTime = f"{(300 + t_avg) * 1000:.3f}"
    img = make(tmp_path, m)
    assert abs((img.timing.scan_time - SCAN).total_seconds()) < 1e-3
    assert suv_of(img) == pytest.approx(expected_suv(62 * 60), rel=1e-4)
