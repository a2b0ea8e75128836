"""SUV digital reference objects (DROs), generated here, after the IBSI-SUV manual's 17 kinds.

Vacha M et al., "Comprehensive Manual for SUV Computation and Digital Reference Objects for its
Verification" (oncoray/suv_computation, CC BY 4.0) lists DROs whose SUVbw is 0.20 (min),
1.00 (median) and 4.00 (max) whatever the header encoding. No reference file is copied: this
module writes its own objects with pydicom, one per kind of header, with the same truth, and
requires SUVbw within 0.5 % (the tolerance of the issue; rounding of 16-bit pixels is < 0.05 %).

The generator computes the stored values with its own copies of the published formulas
(James 1976 / LBMJAMES128, Janmahasatian 2005, the manual's IBW, Du Bois BSA), independent of
``lutarterial.imaging.suv``, so a wrong constant there cannot cancel out.
The error DROs of the manual (missing weight, sex, size, dose, times, half-life, unknown units)
must end in an error naming the tag, never in a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pytest

from lutarterial.errors import LutarterialError
from lutarterial.imaging import dicom_write as dw
from lutarterial.imaging.io import read_image, read_labels
from lutarterial.imaging.metrics import image_suv_factors, quantify
from lutarterial.imaging.types import Geometry, Quantity

T_F18 = 6586.2  # s, 18F
T_GA68 = 4062.6  # s, 68Ga
W_KG, H_M = 75.0, 1.75
DOSE_BQ = 370e6
INJ = datetime(2026, 3, 2, 9, 0, 0)
SCAN = INJ + timedelta(minutes=60)
G = Geometry((6, 12, 12), (4.0, 4.0, 3.0), (-22.0, -22.0, 50.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
TOL = 0.005  # 0.5 %


def truth_suvbw() -> np.ndarray:
    """SUVbw 1.00 everywhere (median), 0.20 in a corner block (min), 4.00 in a small cube (max)."""
    a = np.ones(G.shape)
    a[0, :3, :3] = 0.2
    a[2:4, 5:7, 5:7] = 4.0
    return a


# --- the generator's own normalisers (kg or m^2; H in cm inside) -----------------------------
def _sexed(sex: str, m: float, f: float) -> float:
    return {"M": m, "F": f, "O": (m + f) / 2}[sex]


def mass_kg(kind: str, sex: str, w: float = W_KG, h_m: float = H_M) -> float:
    h = h_m * 100
    if kind == "LBM":
        return _sexed(sex, 1.10 * w - 120 * (w / h) ** 2, 1.07 * w - 148 * (w / h) ** 2)
    if kind == "LBMJAMES128":
        return _sexed(sex, 1.10 * w - 128 * (w / h) ** 2, 1.07 * w - 148 * (w / h) ** 2)
    if kind == "LBMJANMA":
        bmi = w / h_m**2
        return _sexed(sex, 9270 * w / (6680 + 216 * bmi), 9270 * w / (8780 + 244 * bmi))
    if kind == "IBW":
        return _sexed(sex, 48.0 + 1.06 * (h - 152), 45.5 + 0.91 * (h - 152))
    raise AssertionError(kind)


def bsa_cm2(w: float = W_KG, h_m: float = H_M) -> float:
    return 0.007184 * w**0.425 * (h_m * 100) ** 0.725 * 1e4


def bqml_from_suvbw(suv: np.ndarray, dose_bq: float = DOSE_BQ, dt_s: float = 3600.0, t_half: float = T_F18):
    return suv * (dose_bq * 2 ** (-dt_s / t_half)) / (W_KG * 1000)


# --- writing -------------------------------------------------------------------------------
def write(tmp_path, values: np.ndarray, mutate: Callable | None = None, *, sex: str = "M",
          half_life: float = T_F18, inj: datetime = INJ, scan: datetime = SCAN, name: str = "dro"):
    p = dw.PatientInfo("DRO", "1.2.826.0.1.9", "1.2.826.0.1.9.1", inj, weight_kg=W_KG, height_m=H_M, sex=sex)
    dss = dw.pet_datasets(values.astype(np.float32), G, p, series_time=scan, injection_time=inj,
                          injected_bq=DOSE_BQ, half_life_s=half_life, nuclide="^18^Fluorine")
    for k, ds in enumerate(dss):
        ds.Manufacturer = "SYNTHETIC"
        if mutate is not None:
            mutate(ds, k)
    return dw.save_series(dss, tmp_path / name)


def suvbw_image(path) -> tuple[np.ndarray, object]:
    img = read_image(path)
    if img.quantity is Quantity.BQML:
        arr = img.array.astype(np.float64) * image_suv_factors(img).bw
    else:
        assert img.quantity is Quantity.SUVBW
        arr = img.array.astype(np.float64)
    return arr, img


def check(arr: np.ndarray) -> None:
    assert float(arr.min()) == pytest.approx(0.20, rel=TOL)
    assert float(np.median(arr)) == pytest.approx(1.00, rel=TOL)
    assert float(arr.max()) == pytest.approx(4.00, rel=TOL)


def _stored(units: str, suv_type: str | None, values: np.ndarray):
    def m(ds, k):
        ds.Units = units
        if suv_type is not None:
            ds.SUVType = suv_type
    return m, values


# --- the 17 kinds --------------------------------------------------------------------------
def kind_default(tmp_path):  # DRO_0_0: BQML, START, Series = Acquisition time
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()))


def kind_rescale_slopes(tmp_path):  # DRO_1_0: one RescaleSlope per slice, all different
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()))  # slices' maxima differ, so do their slopes


def kind_gml_bw(tmp_path):  # DRO_2_0
    m, v = _stored("GML", None, truth_suvbw())
    return write(tmp_path, v, m)


def _kind_gml(suv_type: str, sex: str):
    def make(tmp_path):
        stored = truth_suvbw() * mass_kg(suv_type, sex) / W_KG  # stored SUV_X = SUVbw x mass_X / W
        m, v = _stored("GML", suv_type, stored)
        return write(tmp_path, v, m, sex=sex)
    return make


def kind_cm2ml(tmp_path):  # DRO_2_3: stored SUVbsa = SUVbw x BSA(cm2) / W(g)
    m, v = _stored("CM2ML", None, truth_suvbw() * bsa_cm2() / (W_KG * 1000))
    return write(tmp_path, v, m)


def _philips(ds, suv_scale: float | None, act_scale: float | None):
    ds.Units = "CNTS"
    ds.Manufacturer = "Philips Medical Systems"
    blk = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    if suv_scale is not None:
        blk.add_new(0x00, "DS", f"{suv_scale:.10g}")
    if act_scale is not None:
        blk.add_new(0x09, "DS", f"{act_scale:.10g}")


def kind_cnts_suv_scale(tmp_path):  # DRO_2_4: SUVbw = counts x (7053,1000)
    s = 2.5e-4
    return write(tmp_path, truth_suvbw() / s, lambda ds, k: _philips(ds, s, None))


def kind_cnts_activity_scale(tmp_path):  # DRO_2_5: Bq/mL = counts x (7053,1009)
    a = 0.75
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()) / a, lambda ds, k: _philips(ds, None, a))


def kind_dose_mbq(tmp_path):  # DRO_3_0: RadionuclideTotalDose written in MBq
    def m(ds, k):
        ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = f"{DOSE_BQ / 1e6:.2f}"
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()), m)


def kind_admin(tmp_path):  # DRO_3_1: decay-corrected to the administration: no decay of the dose
    def m(ds, k):
        ds.DecayCorrection = "ADMIN"
    return write(tmp_path, bqml_from_suvbw(truth_suvbw(), dt_s=0.0), m)


def kind_series_after_acquisition(tmp_path):  # DRO_3_2: post-processed series, no private tag
    def m(ds, k):
        ds.SeriesTime = (SCAN + timedelta(hours=2)).strftime("%H%M%S")
        ds.AcquisitionTime = (SCAN + timedelta(seconds=20 * k)).strftime("%H%M%S")
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()), m)


def kind_ge_private_scan_datetime(tmp_path):  # DRO_3_3: GE (0009,100D) gives the scan start
    def m(ds, k):
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        ds.SeriesTime = (SCAN + timedelta(hours=2)).strftime("%H%M%S")
        ds.AcquisitionTime = (SCAN + timedelta(minutes=5, seconds=20 * k)).strftime("%H%M%S")
        ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT", SCAN.strftime("%Y%m%d%H%M%S"))
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()), m)


def kind_decay_none(tmp_path):  # DRO_3_4: DecayCorrection NONE, one acquisition time per slice
    lam, dur = math.log(2) / T_F18, 120.0
    start = bqml_from_suvbw(truth_suvbw())
    vals = np.empty(G.shape)
    for k in range(G.shape[0]):
        vals[k] = start[k] * math.exp(-lam * k * dur) * (1 - math.exp(-lam * dur)) / (lam * dur)

    def m(ds, k):
        ds.DecayCorrection = "NONE"
        ds.CorrectedImage = ["ATTN", "SCAT", "DTIM"]
        ds.ActualFrameDuration = int(dur * 1000)
        ds.AcquisitionTime = (SCAN + timedelta(seconds=dur * k)).strftime("%H%M%S")
    return write(tmp_path, vals, m)


def kind_start_time_only_midnight(tmp_path):  # DRO_4_2: time of day only, uptake across midnight
    inj = datetime(2026, 3, 2, 23, 30, 0)
    scan = inj + timedelta(minutes=60)

    def m(ds, k):
        del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()), m, inj=inj, scan=scan)


def kind_ga68(tmp_path):  # DRO_5_0: another half-life from the header
    return write(tmp_path, bqml_from_suvbw(truth_suvbw(), t_half=T_GA68), half_life=T_GA68)


def kind_weight_grams(tmp_path):  # PatientWeight written in grams (manual: recognise by magnitude)
    def m(ds, k):
        ds.PatientWeight = f"{W_KG * 1000:.0f}"
    return write(tmp_path, bqml_from_suvbw(truth_suvbw()), m)


KINDS: dict[str, Callable] = {
    "0_0 default BQML START": kind_default,
    "1_0 per-slice rescale slopes": kind_rescale_slopes,
    "2_0 GML BW": kind_gml_bw,
    "2_1 GML LBMJAMES128 M": _kind_gml("LBMJAMES128", "M"),
    "2_1 GML LBMJAMES128 F": _kind_gml("LBMJAMES128", "F"),
    "2_1 GML LBMJAMES128 O": _kind_gml("LBMJAMES128", "O"),
    "2_1b GML LBM (James 120) M": _kind_gml("LBM", "M"),
    "2_1b GML LBM (James 120) F": _kind_gml("LBM", "F"),
    "2_2 GML IBW M": _kind_gml("IBW", "M"),
    "2_2 GML IBW F": _kind_gml("IBW", "F"),
    "2_2 GML IBW O": _kind_gml("IBW", "O"),
    "2_3 CM2ML": kind_cm2ml,
    "2_4 CNTS Philips SUV scale": kind_cnts_suv_scale,
    "2_5 CNTS Philips activity scale": kind_cnts_activity_scale,
    "2_6 GML LBMJANMA M": _kind_gml("LBMJANMA", "M"),
    "2_6 GML LBMJANMA F": _kind_gml("LBMJANMA", "F"),
    "2_6 GML LBMJANMA O": _kind_gml("LBMJANMA", "O"),
    "3_0 dose in MBq": kind_dose_mbq,
    "3_1 DecayCorrection ADMIN": kind_admin,
    "3_2 Series after Acquisition": kind_series_after_acquisition,
    "3_3 GE private scan datetime": kind_ge_private_scan_datetime,
    "3_4 DecayCorrection NONE": kind_decay_none,
    "4_2 start time only, midnight": kind_start_time_only_midnight,
    "5_0 Ga68": kind_ga68,
    "x weight in grams": kind_weight_grams,
}


def test_seventeen_manual_kinds_are_covered():
    assert len({k.split(" ")[0] for k in KINDS if not k.startswith("x")}) == 17


@pytest.mark.parametrize("kind", list(KINDS))
def test_dro_suvbw_within_half_percent(tmp_path, kind):
    arr, img = suvbw_image(KINDS[kind](tmp_path))
    check(arr)


def test_rescale_slopes_really_differ(tmp_path):
    import pydicom

    path = kind_rescale_slopes(tmp_path)
    slopes = {str(pydicom.dcmread(f).RescaleSlope) for f in path.iterdir()}
    assert len(slopes) > 1


@pytest.mark.parametrize(("kind", "expect"), [
    ("3_0 dose in MBq", "read as MBq"),
    ("x weight in grams", "read as grams"),
    ("2_2 GML IBW O", "mean of the male and female"),
    ("2_1 GML LBMJAMES128 M", "SUVlbmjames128"),
    ("2_3 CM2ML", "SUVbsa"),
])
def test_assumptions_are_stated_in_quantify_notes(tmp_path, kind, expect):
    img = read_image(KINDS[kind](tmp_path))
    mask = np.ones(G.shape, dtype=np.uint8)
    dw.write_nifti_labels(tmp_path / "lab.nii.gz", mask, G)
    lab = read_labels(tmp_path / "lab.nii.gz", img, names={1: {"name": "body", "kind": "other"}})
    met = quantify(img, lab)
    assert any(expect in n for n in met.notes), met.notes
    assert met.vois[0].suv_max == pytest.approx(4.0, rel=TOL)


def test_gml_lbm_type_converted_back_to_bqml(tmp_path):
    # Units GML with SUVType LBMJAMES128 and complete timing: Bq/mL through the LBM factor, not as SUVbw
    img = read_image(KINDS["2_1 GML LBMJAMES128 F"](tmp_path))
    dw.write_nifti_labels(tmp_path / "lab.nii.gz", np.ones(G.shape, dtype=np.uint8), G)
    lab = read_labels(tmp_path / "lab.nii.gz", img, names={1: {"name": "body", "kind": "other"}})
    v = quantify(img, lab).vois[0]
    assert v.max_bqml == pytest.approx(float(bqml_from_suvbw(np.array(4.0))), rel=TOL)


# --- error DROs: an error naming the problem, never a number -------------------------------
def _del(attr):
    return lambda ds, k: delattr(ds, attr) if attr in ds else None


def _rp(attr, value=None):
    def m(ds, k):
        ri = ds.RadiopharmaceuticalInformationSequence[0]
        if value is None:
            for a in ([attr] if isinstance(attr, str) else attr):
                if a in ri:
                    delattr(ri, a)
        else:
            setattr(ri, attr, value)
    return m


def _gml_ibw_then(mutate):
    def m(ds, k):
        ds.Units, ds.SUVType = "GML", "IBW"
        mutate(ds, k)
    return m


ERRORS = {
    "weight missing": (_del("PatientWeight"), "PatientWeight"),
    "weight 0": (lambda ds, k: setattr(ds, "PatientWeight", "0"), "PatientWeight"),
    "IBW, sex absent": (_gml_ibw_then(_del("PatientSex")), "PatientSex"),
    "IBW, sex U": (_gml_ibw_then(lambda ds, k: setattr(ds, "PatientSex", "U")), "PatientSex"),
    "IBW, size absent": (_gml_ibw_then(_del("PatientSize")), "PatientSize"),
    "IBW, size 0": (_gml_ibw_then(lambda ds, k: setattr(ds, "PatientSize", "0")), "PatientSize"),
    "CNTS without factors": (lambda ds, k: setattr(ds, "Units", "CNTS"), "CNTS"),
    "Units PROPCNTS": (lambda ds, k: setattr(ds, "Units", "PROPCNTS"), "Units"),
    "dose absent": (_rp("RadionuclideTotalDose"), "RadionuclideTotalDose"),
    "dose negative": (_rp("RadionuclideTotalDose", "-370000000"), "RadionuclideTotalDose"),
    "no administration time": (_rp(["RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime"]),
                               "Radiopharmaceutical"),
    "half-life absent": (_rp("RadionuclideHalfLife"), "RadionuclideHalfLife"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_error_dros_raise_naming_the_tag(tmp_path, name):
    mutate, word = ERRORS[name]
    path = write(tmp_path, bqml_from_suvbw(truth_suvbw()), mutate)
    with pytest.raises(LutarterialError, match=word):
        suvbw_image(path)
