"""Published references for the clinical package, each with its source.

* CTCAE v5.0 (NCI, 27 Nov 2017): verbatim grade text kept in the rulebook, and grades of values
  chosen on the published boundaries (exact: tolerance 0, comparison after unit conversion with
  relative tolerance 1e-9).
* pharmaverse/admiral test tables for CTCAE v5 (derive_var_atoxgr_dir tests, anaemia SI rows):
  the de-facto reference implementation used by the pharmaceutical industry.
* RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247), sections 4.3.1-4.3.5 and Tables
  1-3: the rules are reproduced as small worked examples (percentages to 0.01 %, i.e. exact at
  the rounding of the output).
"""

from __future__ import annotations

import pytest

from lutarterial.clinical.ctcae import grade_lab, load_ctcae_terms
from lutarterial.clinical.recist import evaluate_recist, parse_recist_input

VERBATIM = {
    ("anemia", 1): "Hemoglobin (Hgb) <LLN - 10.0 g/dL; <LLN - 6.2 mmol/L; <LLN - 100 g/L",
    ("anemia", 2): "Hgb <10.0 - 8.0 g/dL; <6.2 - 4.9 mmol/L; <100 - 80g/L",
    ("anemia", 3): "Hgb <8.0 g/dL; <4.9 mmol/L; <80 g/L; transfusion indicated",
    ("anemia", 4): "Life-threatening consequences; urgent intervention indicated",
    ("platelet_count_decreased", 1): "<LLN - 75,000/mm3; <LLN - 75.0 x 10e9 /L",
    ("platelet_count_decreased", 4): "<25,000/mm3; <25.0 x 10e9 /L",
    ("neutrophil_count_decreased", 1): "<LLN - 1500/mm3; <LLN - 1.5 x 10e9 /L",
    ("neutrophil_count_decreased", 4): "<500/mm3; <0.5 x 10e9 /L",
    ("lymphocyte_count_decreased", 2): "<800 - 500/mm3; <0.8 - 0.5 x 10e9 /L",
    ("white_blood_cell_decreased", 3): "<2000 - 1000/mm3; <2.0 - 1.0 x 10e9 /L",
    ("creatinine_increased", 1): ">ULN - 1.5 x ULN",
    ("creatinine_increased", 2): ">1.5 - 3.0 x baseline; >1.5 - 3.0 x ULN",
    ("creatinine_increased", 3): ">3.0 baseline; >3.0 - 6.0 x ULN",  # sic in CTCAE v5.0 (no "x")
    ("creatinine_increased", 4): ">6.0 x ULN",
    ("alanine_aminotransferase_increased", 1):
        ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
    ("hypoalbuminemia", 1): "<LLN - 3 g/dL; <LLN - 30 g/L",
    ("hypoalbuminemia", 2): "<3 - 2 g/dL; <30 - 20 g/L",
    ("chronic_kidney_disease", 2): "eGFR or CrCl 59 - 30 ml/min/1.73 m2",
    ("chronic_kidney_disease", 3): "eGFR or CrCl 29 - 15 ml/min/1.73 m2",
}


@pytest.mark.parametrize(("key", "grade"), sorted(VERBATIM))
def test_ctcae_v5_verbatim_text(key, grade):
    assert load_ctcae_terms()[key].grade_text[grade] == VERBATIM[(key, grade)]


# admiral (pharmaverse) tests/testthat/test-derive_var_atoxgr.R, "Anemia" SI rows for CTCAE v5:
# (AVAL g/L, ANRLO g/L, expected grade or None)
ADMIRAL_ANEMIA_SI = [
    (79, 140, 3), (80, 140, 2), (99, 140, 2), (100, 140, 1), (139, 140, 1), (140, 140, 0),
    (140, None, None), (139, None, None), (100, None, None), (99, None, 2), (79, None, 3),
]


@pytest.mark.parametrize(("value", "lln", "expected"), ADMIRAL_ANEMIA_SI)
def test_admiral_anaemia_rows(value, lln, expected):
    assert grade_lab("hemoglobin", value, "g/L", lln=lln).grade == expected
    # the same rows in g/dL (admiral's US conventional-unit variant divides by 10)
    assert grade_lab("hemoglobin", value / 10, "g/dL", lln=None if lln is None else lln / 10).grade == expected


def _run(lesions_base, follow):
    doc = {"patient": "R", "assessments": [{"date": "2025-01-01", "baseline": True, "lesions": lesions_base}]}
    for date, lesions, new in follow:
        doc["assessments"].append({"date": date, "baseline": False, "lesions": lesions, "new_lesions": new})
    p, a = parse_recist_input(doc)
    return evaluate_recist(a, patient=p)


def test_recist_4_3_1_pd_absolute_5mm_rule():
    # "the sum must also demonstrate an absolute increase of at least 5 mm": nadir 10 mm,
    # 14 mm is +40 % but +4 mm -> not PD; 15 mm (+50 %, +5 mm) -> PD
    base = [{"id": "T1", "role": "target", "organ": "lung", "diameter_mm": 20}]
    r = _run(base, [("2025-03-01", [{"id": "T1", "diameter_mm": 10}], []),
                    ("2025-05-01", [{"id": "T1", "diameter_mm": 14}], []),
                    ("2025-07-01", [{"id": "T1", "diameter_mm": 15}], [])])
    assert [a.target for a in r.assessments[1:]] == ["PR", "PR", "PD"]
    assert r.assessments[2].change_from_nadir_pct == 40.0
    assert r.assessments[3].change_from_nadir_pct == 50.0


def test_recist_4_3_1_nodes_sum_and_cr():
    # "lymph nodes ... short axis < 10 mm" for CR; the actual short axes stay in the sum
    base = [{"id": "N1", "role": "target", "organ": "mediastinum", "nodal": True, "diameter_mm": 25},
            {"id": "N2", "role": "target", "organ": "retroperitoneum", "nodal": True, "diameter_mm": 20}]
    r = _run(base, [("2025-03-01", [{"id": "N1", "diameter_mm": 8}, {"id": "N2", "diameter_mm": 7}], []),
                    ("2025-04-01", [{"id": "N1", "diameter_mm": 8}, {"id": "N2", "diameter_mm": 7}], [])])
    assert r.assessments[1].sum_mm == 15 and r.assessments[1].target == "CR"
    assert r.assessments[1].change_from_baseline_pct == pytest.approx(-66.67, abs=0.01)
    assert r.best_overall_response == "CR"


def test_recist_4_3_2_too_small_to_measure_default_5mm():
    # "If the radiologist believes the lesion ... is too small to measure, a default value of 5 mm"
    base = [{"id": "T1", "role": "target", "organ": "liver", "diameter_mm": 30},
            {"id": "T2", "role": "target", "organ": "liver", "diameter_mm": 12}]
    r = _run(base, [("2025-03-01", [{"id": "T1", "diameter_mm": 25}, {"id": "T2", "status": "too_small"}], [])])
    assert r.assessments[1].sum_mm == 30 and r.assessments[1].change_from_baseline_pct == pytest.approx(-28.57, abs=0.01)
    assert r.assessments[1].target == "SD"


def test_recist_section_3_target_limits():
    lesions = [{"id": f"L{i}", "role": "target", "organ": "liver", "diameter_mm": 20} for i in range(3)]
    r = _run(lesions, [])
    assert any("at most 2 per organ" in s for s in r.baseline_issues)
