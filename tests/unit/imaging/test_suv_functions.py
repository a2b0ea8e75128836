"""Pure SUV helpers: body-size formulas (published values), decay, injection dating, GM/CI."""

from __future__ import annotations

import math
from datetime import date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lutarterial.errors import DicomConformanceError, InvalidInputError
from lutarterial.imaging.compare import geometric_mean_ci
from lutarterial.imaging.suv import (
    bsa_dubois1916_m2,
    decayed_activity_bq,
    frame_decay_factors,
    injection_datetime,
    lbm_janmahasatian2005_kg,
    scan_start_datetime_qiba,
    suv_factors,
)


def test_dubois_bsa_reference_values():
    # Du Bois & Du Bois 1916 formula; 70 kg, 175 cm -> 1.85 m^2 (tolerance 0.005 m^2)
    assert bsa_dubois1916_m2(70, 1.75) == pytest.approx(1.848, abs=0.005)
    # 100 kg, 180 cm -> 2.20 m^2
    assert bsa_dubois1916_m2(100, 1.80) == pytest.approx(2.20, abs=0.01)


def test_janmahasatian_lbm_reference_values():
    # Janmahasatian 2005: male 70 kg, 1.75 m (BMI 22.86): 9270*70/(6680+216*22.86) = 55.85 kg
    assert lbm_janmahasatian2005_kg(70, 1.75, "M") == pytest.approx(55.85, abs=0.05)
    # female 60 kg, 1.65 m (BMI 22.04): 9270*60/(8780+244*22.04) = 556200/14157.5 = 39.29 kg
    assert lbm_janmahasatian2005_kg(60, 1.65, "F") == pytest.approx(39.29, abs=0.05)
    # PatientSex O: mean of the male and female values (IBSI-SUV manual); anything else refused
    male, female = lbm_janmahasatian2005_kg(70, 1.75, "M"), lbm_janmahasatian2005_kg(70, 1.75, "F")
    assert lbm_janmahasatian2005_kg(70, 1.75, "O") == pytest.approx((male + female) / 2, rel=1e-12)
    for bad in ("U", "", "X"):
        with pytest.raises(InvalidInputError, match="M, F or O"):
            lbm_janmahasatian2005_kg(70, 1.75, bad)


@pytest.mark.parametrize(("w", "h", "ok"), [(0.0, 1.7, False), (0.1, 1.7, True), (499, 1.7, True), (500, 1.7, False),
                                            (70, 0.3, False), (70, 0.31, True), (70, 2.79, True), (70, 2.8, False)])
def test_body_size_bounds(w, h, ok):
    if ok:
        assert bsa_dubois1916_m2(w, h) > 0
    else:
        with pytest.raises(InvalidInputError):
            bsa_dubois1916_m2(w, h)


def test_decay_68ga_one_half_life():
    assert decayed_activity_bq(100.0, 4062.6, 4062.6) == pytest.approx(50.0)
    assert decayed_activity_bq(100.0, -4062.6, 4062.6) == pytest.approx(200.0)


def test_frame_decay_factor_is_mean_over_frame():
    t = 1000.0
    lam = math.log(2) / t
    (f,) = frame_decay_factors([0.0], [t], t)
    assert f == pytest.approx((1 - math.exp(-lam * t)) / (lam * t))  # = 0.5/ln2
    assert f == pytest.approx(0.5 / math.log(2))


def test_injection_dating_and_midnight():
    scan = datetime(2026, 1, 2, 0, 20)
    assert injection_datetime(None, time(23, 50), date(2026, 1, 2), scan) == datetime(2026, 1, 1, 23, 50)
    assert injection_datetime(None, time(0, 5), date(2026, 1, 2), scan) == datetime(2026, 1, 2, 0, 5)
    with pytest.raises(DicomConformanceError, match="RadiopharmaceuticalStart"):
        injection_datetime(None, None, date(2026, 1, 2), scan)


def test_qiba_scan_start_rules():
    s, a, g = datetime(2026, 1, 1, 10), datetime(2026, 1, 1, 10, 1), datetime(2026, 1, 1, 9, 59)
    assert scan_start_datetime_qiba(s, a, g) == s  # series before acquisition: series time
    late = datetime(2026, 1, 1, 12)
    assert scan_start_datetime_qiba(late, a, g) == g  # post-processed: GE private
    assert scan_start_datetime_qiba(late, a, None) == a  # else earliest acquisition


def test_suv_factor_decay_boundaries():
    inj = datetime(2026, 1, 1, 9)
    f = suv_factors(weight_kg=70, injected_activity_bq=1e8, injection_time=inj, reference_time=inj,
                    decay_correction="START", half_life_s=4062.6)
    assert f.bw == pytest.approx(70000 / 1e8)
    with pytest.raises(InvalidInputError, match="after the scan"):
        suv_factors(weight_kg=70, injected_activity_bq=1e8, injection_time=inj,
                    reference_time=datetime(2026, 1, 1, 8, 59, 59), decay_correction="START", half_life_s=4062.6)


def test_geometric_mean_ci_known_values():
    # logs of [1, 2, 4] = ln2*[0, 1, 2]: mean ln2, SD ln2; t(0.975, 2) = 4.302653
    r = geometric_mean_ci([1.0, 2.0, 4.0])
    half = 4.302653 * math.log(2) / math.sqrt(3)
    assert r.geometric_mean == pytest.approx(2.0)
    assert r.ci_low == pytest.approx(2 * math.exp(-half), rel=1e-5)
    assert r.ci_high == pytest.approx(2 * math.exp(half), rel=1e-5)
    one = geometric_mean_ci([1.5])
    assert one.geometric_mean == pytest.approx(1.5) and one.ci_low is None
    assert geometric_mean_ci([]).geometric_mean is None
    with pytest.raises(InvalidInputError):
        geometric_mean_ci([1.0, 0.0])


@given(st.lists(st.floats(min_value=0.05, max_value=20), min_size=2, max_size=30))
def test_geometric_mean_ci_contains_gm_and_is_scale_equivariant(vals):
    r = geometric_mean_ci(vals)
    assert r.ci_low <= r.geometric_mean * (1 + 1e-9) and r.geometric_mean <= r.ci_high * (1 + 1e-9)
    r2 = geometric_mean_ci([2 * v for v in vals])
    assert r2.geometric_mean == pytest.approx(2 * r.geometric_mean, rel=1e-9)


def test_dose_in_mbq_by_mistake_and_height_in_cm():
    inj = datetime(2026, 1, 1, 9)
    kw = dict(weight_kg=70, injection_time=inj, reference_time=inj, decay_correction="START", half_life_s=4062.6)
    mbq = suv_factors(injected_activity_bq=185.0, **kw)  # MBq recognised by magnitude, with a note
    assert mbq.dose_unit_assumed == "MBq" and mbq.bw == pytest.approx(70000 / 185e6)
    assert any("read as MBq" in n for n in mbq.notes)
    assert suv_factors(injected_activity_bq=9999.0, **kw).dose_unit_assumed == "MBq"  # boundary below 10^4
    with pytest.raises(InvalidInputError, match="implausibly small"):
        suv_factors(injected_activity_bq=1e4, **kw)  # boundary: 10^4 is neither MBq nor a plausible Bq
    with pytest.raises(InvalidInputError, match="kBq"):
        suv_factors(injected_activity_bq=185000.0, **kw)  # 185 MBq written in kBq
    assert suv_factors(injected_activity_bq=1e6, **kw).bw > 0  # boundary: 1 MBq accepted
    f = suv_factors(injected_activity_bq=1e8, height_m=175.0, sex="M", **kw)  # cm by mistake
    assert f.lbm is None and f.bsa is None and f.bw == pytest.approx(70000 / 1e8)
