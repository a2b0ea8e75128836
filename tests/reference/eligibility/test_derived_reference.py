"""Cockcroft-Gault (1976) and Child-Pugh (Pugh 1973) against worked examples.

Cockcroft DW, Gault MH. Nephron 1976;16:31-41: CrCl = (140 - age) x weight / (72 x Scr),
x 0.85 for women (age years, weight kg, Scr mg/dL). Worked examples are hand computations
of that published formula; tolerance 1e-9 relative (pure arithmetic) unless stated.

Pugh RNH et al. Br J Surg 1973;60:646-649: five components scored 1-3; class A 5-6,
B 7-9, C 10-15. SI cut-offs: bilirubin 34 / 50 umol/L, albumin 35 / 28 g/L; INR 1.7 / 2.3.
"""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.eligibility import age_years, child_pugh_pugh1973, crcl_cockcroft_gault_1976
from lutarterial.errors import InvalidInputError
from lutarterial.units import convert


@pytest.mark.parametrize(
    ("age", "weight", "scr", "female", "expected"),
    [
        (60, 72.0, 1.0, False, 80.0),  # (140-60) x 72 / (72 x 1.0)
        (60, 72.0, 1.0, True, 68.0),  # x 0.85
        (40, 70.0, 1.2, True, 100 * 70 / (72 * 1.2) * 0.85),  # 68.865...
        (80, 50.0, 2.0, False, 60 * 50 / 144),  # 20.83 mL/min
        (18, 100.0, 0.8, False, 122 * 100 / (72 * 0.8)),  # 211.8 mL/min
    ],
)
def test_cockcroft_gault_worked_examples(age, weight, scr, female, expected):
    got = crcl_cockcroft_gault_1976(age_years=age, weight_kg=weight, creatinine_mg_per_dl=scr, female=female)
    assert got == pytest.approx(expected, rel=1e-9)


def test_cockcroft_gault_from_si_creatinine():
    # Conventional factor: 1 mg/dL = 88.4 umol/L (creatinine 113.12 g/mol gives 88.40); the
    # published factors 88.4-88.42 differ by 2e-4, so the tolerance is 5e-4 relative.
    scr = convert(88.4, "umol/L", "mg/dL", molar_mass_g_per_mol=113.12)
    assert scr == pytest.approx(1.0, rel=5e-4)
    assert crcl_cockcroft_gault_1976(age_years=60, weight_kg=72, creatinine_mg_per_dl=scr, female=False) == pytest.approx(
        80.0, rel=5e-4
    )


@pytest.mark.parametrize(
    "kwargs",
    [dict(age_years=60, weight_kg=0, creatinine_mg_per_dl=1, female=False),
     dict(age_years=60, weight_kg=70, creatinine_mg_per_dl=0, female=False),
     dict(age_years=150, weight_kg=70, creatinine_mg_per_dl=1, female=False)],
)
def test_cockcroft_gault_refuses_impossible_inputs(kwargs):
    with pytest.raises(InvalidInputError):
        crcl_cockcroft_gault_1976(**kwargs)


def _cp(bili=10.0, alb=40.0, inr=1.0, ascites="none", enc="none"):
    return child_pugh_pugh1973(bilirubin_umol_per_l=bili, albumin_g_per_l=alb, inr=inr, ascites=ascites, encephalopathy=enc)


def test_child_pugh_extremes():
    best = _cp()
    assert (best.score, best.grade, best.label) == (5, "A", "A5")
    worst = _cp(bili=100, alb=20, inr=3.0, ascites="moderate_severe", enc="grade_3_4")
    assert (worst.score, worst.grade) == (15, "C")


def test_child_pugh_worked_example_b8():
    # bilirubin 43 umol/L (2.5 mg/dL: 2) + albumin 30 g/L (2) + INR 1.5 (1) + mild ascites (2) + none (1) = 8 -> B8
    cp = _cp(bili=43, alb=30, inr=1.5, ascites="mild")
    assert cp.points == {"bilirubin": 2, "albumin": 2, "inr": 1, "ascites": 2, "encephalopathy": 1}
    assert cp.label == "B8"


@pytest.mark.parametrize(
    ("component", "value", "points"),
    [
        ("bili", 33.9, 1), ("bili", 34.0, 2), ("bili", 50.0, 2), ("bili", 50.1, 3),
        ("alb", 35.1, 1), ("alb", 35.0, 2), ("alb", 28.0, 2), ("alb", 27.9, 3),
        ("inr", 1.69, 1), ("inr", 1.7, 2), ("inr", 2.3, 2), ("inr", 2.31, 3),
    ],
)
def test_child_pugh_band_edges(component, value, points):
    cp = _cp(**{component: value})
    key = {"bili": "bilirubin", "alb": "albumin", "inr": "inr"}[component]
    assert cp.points[key] == points


@pytest.mark.parametrize(("mg_dl", "points"), [(1.99, 1), (2.0, 2), (3.0, 2), (3.01, 3)])
def test_child_pugh_bilirubin_on_pughs_mg_dl_cut_offs(mg_dl, points):
    cp = child_pugh_pugh1973(bilirubin_mg_per_dl=mg_dl, albumin_g_per_l=40, inr=1.0, ascites="none",
                             encephalopathy="none")
    assert cp.points["bilirubin"] == points


def test_child_pugh_needs_bilirubin_in_exactly_one_unit():
    with pytest.raises(InvalidInputError):
        child_pugh_pugh1973(albumin_g_per_l=40, inr=1.0, ascites="none", encephalopathy="none")


def test_child_pugh_albumin_edge_survives_unit_conversion():
    # 3.5 g/dL converted to g/L carries float noise; it must still score 2 points.
    alb = convert(3.5, "g/dL", "g/L")
    assert _cp(alb=alb).points["albumin"] == 2


@pytest.mark.parametrize(
    ("score_parts", "grade"),
    [((1, 1, 1, 1, 2), "A"), ((1, 1, 1, 2, 2), "B"), ((3, 3, 1, 1, 1), "B"), ((3, 3, 2, 1, 1), "C")],
)
def test_child_pugh_classes(score_parts, grade):
    b, a, i, asc, enc = score_parts
    bili = {1: 10, 2: 40, 3: 60}[b]
    alb = {1: 40, 2: 30, 3: 25}[a]
    inr = {1: 1.0, 2: 2.0, 3: 2.5}[i]
    cp = _cp(bili=bili, alb=alb, inr=inr, ascites=("none", "mild", "moderate_severe")[asc - 1],
             enc=("none", "grade_1_2", "grade_3_4")[enc - 1])
    assert cp.score == sum(score_parts) and cp.grade == grade


def test_child_pugh_refuses_unknown_grades():
    with pytest.raises(InvalidInputError):
        _cp(ascites="some")


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [(dt.date(2000, 6, 3), dt.date(2018, 6, 3), 18), (dt.date(2000, 6, 4), dt.date(2018, 6, 3), 17),
     (dt.date(2000, 2, 29), dt.date(2018, 2, 28), 17), (dt.date(2000, 2, 29), dt.date(2018, 3, 1), 18)],
)
def test_age_in_completed_years(birth, on, age):
    assert age_years(birth, on) == age
