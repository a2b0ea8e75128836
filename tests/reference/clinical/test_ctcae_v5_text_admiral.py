"""CTCAE v5.0 grade text of every lab term in the rulebook, checked against an independent copy.

Source of the expected strings: pharmaverse/admiral, ``data-raw/adlb_grading/ncictcaev5.json``
(the admiral team's transcription of NCI CTCAE v5.0, 27 Nov 2017, used to build admiral's
``atoxgr_criteria_ctcv5`` grading metadata). Tolerance: exact string equality. Chronic kidney
disease is not graded by admiral and has no independent copy here (see the rulebook's
``verified_against`` note).
"""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from lutarterial.clinical.ctcae import grade_lab, load_ctcae_terms

ADMIRAL_CTCAE_V5 = {
    "anemia": {
        1: "Hemoglobin (Hgb) <LLN - 10.0 g/dL; <LLN - 6.2 mmol/L; <LLN - 100 g/L",
        2: "Hgb <10.0 - 8.0 g/dL; <6.2 - 4.9 mmol/L; <100 - 80g/L",
        3: "Hgb <8.0 g/dL; <4.9 mmol/L; <80 g/L; transfusion indicated",
        4: "Life-threatening consequences; urgent intervention indicated",
        5: "Death",
    },
    "neutrophil_count_decreased": {
        1: "<LLN - 1500/mm3; <LLN - 1.5 x 10e9 /L",
        2: "<1500 - 1000/mm3; <1.5 - 1.0 x 10e9 /L",
        3: "<1000 - 500/mm3; <1.0 - 0.5 x 10e9 /L",
        4: "<500/mm3; <0.5 x 10e9 /L",
    },
    "platelet_count_decreased": {
        1: "<LLN - 75,000/mm3; <LLN - 75.0 x 10e9 /L",
        2: "<75,000 - 50,000/mm3; <75.0 - 50.0 x 10e9 /L",
        3: "<50,000 - 25,000/mm3; <50.0 - 25.0 x 10e9 /L",
        4: "<25,000/mm3; <25.0 x 10e9 /L",
    },
    "lymphocyte_count_decreased": {
        1: "<LLN - 800/mm3; <LLN - 0.8 x 10e9/L",
        2: "<800 - 500/mm3; <0.8 - 0.5 x 10e9 /L",
        3: "<500 - 200/mm3; <0.5 - 0.2 x 10e9 /L",
        4: "<200/mm3; <0.2 x 10e9 /L",
    },
    "white_blood_cell_decreased": {
        1: "<LLN - 3000/mm3; <LLN - 3.0 x 10e9 /L",
        2: "<3000 - 2000/mm3; <3.0 - 2.0 x 10e9 /L",
        3: "<2000 - 1000/mm3; <2.0 - 1.0 x 10e9 /L",
        4: "<1000/mm3; <1.0 x 10e9 /L",
    },
    "creatinine_increased": {
        1: ">ULN - 1.5 x ULN",
        2: ">1.5 - 3.0 x baseline; >1.5 - 3.0 x ULN",
        3: ">3.0 baseline; >3.0 - 6.0 x ULN",
        4: ">6.0 x ULN",
    },
    "alanine_aminotransferase_increased": {
        1: ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
        2: ">3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if baseline was abnormal",
        3: ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
        4: ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
    },
    "aspartate_aminotransferase_increased": {
        1: ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
        2: ">3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if baseline was abnormal",
        3: ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
        4: ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
    },
    "blood_bilirubin_increased": {
        1: ">ULN - 1.5 x ULN if baseline was normal; > 1.0 - 1.5 x baseline if baseline was abnormal",
        2: ">1.5 - 3.0 x ULN if baseline was normal; >1.5 - 3.0 x baseline if baseline was abnormal",
        3: ">3.0 - 10.0 x ULN if baseline was normal; >3.0 - 10.0 x baseline if baseline was abnormal",
        4: ">10.0 x ULN if baseline was normal; >10.0 x baseline if baseline was abnormal",
    },
    "hypoalbuminemia": {
        1: "<LLN - 3 g/dL; <LLN - 30 g/L",
        2: "<3 - 2 g/dL; <30 - 20 g/L",
        3: "<2 g/dL; <20 g/L",
        4: "Life-threatening consequences; urgent intervention indicated",
        5: "Death",
    },
}


@pytest.mark.parametrize("key", sorted(ADMIRAL_CTCAE_V5))
def test_grade_text_matches_admiral_transcription(key):
    assert load_ctcae_terms()[key].grade_text == ADMIRAL_CTCAE_V5[key]


def test_every_term_records_what_it_was_verified_against():
    path = resources.files("lutarterial.clinical").joinpath("data/ctcae_v5_labs.yaml")
    raw = yaml.safe_load(path.read_text("utf-8"))
    for term in raw["terms"]:
        assert str(term.get("verified_against", "")).strip(), term["key"]
    ckd = next(t for t in raw["terms"] if t["key"] == "chronic_kidney_disease")
    assert "NOT VERIFIED" in ckd["verified_against"]


# admiral's GRADE_n_CODE thresholds (SI units, 10^9/L) for the count terms, as (grade, lower bound):
# a value strictly below the bound is at least that grade. Checked on both sides of each bound.
ADMIRAL_COUNT_BOUNDS = {
    "neutrophils": [(2, 1.5), (3, 1.0), (4, 0.5)],
    "platelets": [(2, 75.0), (3, 50.0), (4, 25.0)],
    "lymphocytes": [(2, 0.8), (3, 0.5), (4, 0.2)],
    "wbc": [(2, 3.0), (3, 2.0), (4, 1.0)],
}


@pytest.mark.parametrize("test", sorted(ADMIRAL_COUNT_BOUNDS))
def test_count_thresholds_match_admiral_code(test):
    lln = 1000.0  # far above every bound, so the LLN never limits grade 1
    for grade, bound in ADMIRAL_COUNT_BOUNDS[test]:
        below = grade_lab(test, bound * (1 - 1e-6), "10*9/L", lln=lln).grade
        at = grade_lab(test, bound, "10*9/L", lln=lln).grade
        assert below == grade, (test, bound)
        assert at == grade - 1, (test, bound)
        # the same bound written per mm3 (1e3/mm3 = 1e9/L)
        assert grade_lab(test, bound * 1000, "/mm3", lln=lln * 1000).grade == grade - 1


# admiral tests/testthat/test-derive_var_atoxgr.R, "Creatinine increased" rows flagged V5 == "Y"
# (Test 26a, CTCAE v5): (AVAL, BASE, ANRHI, expected grade); units cancel (all in one unit).
ADMIRAL_CREATININE_V5 = [
    (241, 241, 40, 4), (240, 230, 40, 3), (121, 120, 40, 3), (120, 119, 40, 2), (61, 60, 40, 2),
    (60, 60, 40, 1), (41, 41, 40, 1), (40, 40, 40, 0),
    (42, 6, 40, 3), (42, 13.9, 40, 3), (42, 14, 40, 2), (42.1, 28, 40, 2),
    (42, 42, None, None),
]


@pytest.mark.parametrize(("value", "base", "uln", "expected"), ADMIRAL_CREATININE_V5)
def test_admiral_creatinine_v5_rows(value, base, uln, expected):
    assert grade_lab("creatinine", value, "umol/L", uln=uln, baseline=base).grade == expected


# admiral test-derive_var_atoxgr.R Tests 12a/16a (CTCAE v5 ALT/AST): baseline normal rows have
# BASE = ANRHI = 40; baseline abnormal rows have BASE = 40 and ANRHI = 39. (AVAL, expected grade)
ADMIRAL_TRANSAMINASE_V5_NORMAL = [(801, 4), (800, 3), (201, 3), (200, 2), (121, 2), (120, 1), (41, 1),
                                  (40, 0)]
ADMIRAL_TRANSAMINASE_V5_ABNORMAL = [(801, 4), (800, 3), (201, 3), (200, 2), (121, 2), (120, 1), (60, 1),
                                    (59, 0)]


@pytest.mark.parametrize("test", ["alt", "ast"])
def test_admiral_transaminase_v5_rows(test):
    for value, expected in ADMIRAL_TRANSAMINASE_V5_NORMAL:
        assert grade_lab(test, value, "U/L", uln=40, baseline=40).grade == expected, (value, "normal")
    for value, expected in ADMIRAL_TRANSAMINASE_V5_ABNORMAL:
        assert grade_lab(test, value, "U/L", uln=39, baseline=40).grade == expected, (value, "abnormal")
    assert grade_lab(test, 100, "U/L", uln=None, baseline=40).grade is None  # ANRHI missing
