"""Every threshold at, just below and just above its value, in several units."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from lutarterial.eligibility import Status, screen
from lutarterial.records import parse_record

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def test_base_record_is_eligible(record):
    result = screen(parse_record(record), as_of=dt.date(2024, 6, 3))
    assert result.verdict.value == "eligible", [(c.id, c.reason) for c in result.criteria if c.status is not P]
    assert result.missing == []


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        # haemoglobin >= 8 g/dL
        ("haemoglobin", 8.0, "g/dL", P), ("haemoglobin", 7.99, "g/dL", F), ("haemoglobin", 8.01, "g/dL", P),
        ("haemoglobin", 80.0, "g/L", P), ("haemoglobin", 79.9, "g/L", F), ("haemoglobin", 80.1, "g/L", P),
        ("haemoglobin", 4.9645, "mmol/L", P), ("haemoglobin", 4.9640, "mmol/L", F),
        # neutrophils >= 1500/mm3
        ("neutrophils", 1500, "/mm3", P), ("neutrophils", 1499, "/mm3", F), ("neutrophils", 1501, "/mm3", P),
        ("neutrophils", 1500, "/uL", P), ("neutrophils", 1.5, "10*9/L", P), ("neutrophils", 1.49, "10*9/L", F),
        ("neutrophils", 1.5, "G/L", P), ("neutrophils", 1.49, "G/L", F), ("neutrophils", 1.5, "10*3/uL", P),
        ("neutrophils", 1.51, "10*3/uL", P), ("neutrophils", 1.499, "10*3/uL", F),
        # platelets >= 75,000/mm3 (version 1, the default: issue 10)
        ("platelets", 75000, "/mm3", P), ("platelets", 74999, "/mm3", F), ("platelets", 75001, "/mm3", P),
        ("platelets", 75, "G/L", P), ("platelets", 74.9, "G/L", F), ("platelets", 75, "10*9/L", P),
        ("platelets", 75, "10*3/uL", P), ("platelets", 74.99, "10*3/uL", F), ("platelets", 72, "G/L", F),
    ],
)
def test_inc07_boundaries(record, lab, crit, analyte, value, unit, expected):
    assert crit(lab(record, analyte, value, unit), "INC07").status is expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(100000, "/mm3", P), (99999, "/mm3", F), (100001, "/mm3", P), (100, "G/L", P), (99.9, "G/L", F),
     (100, "10*9/L", P), (100, "10*3/uL", P), (99.99, "10*3/uL", F), (75000, "/mm3", F)],
)
def test_inc07_platelets_version_2(record, lab, crit, value, unit, expected):
    # platelets >= 100,000/mm3 (version 2: only when asked for, or from a site's configured date)
    assert crit(lab(record, "platelets", value, unit), "INC07", version="2").status is expected


@pytest.mark.parametrize(("value", "expected"), [(75000, P), (74999, F), (75001, P)])
def test_inc07_platelets_version_1(record, lab, crit, value, expected):
    assert crit(lab(record, "platelets", value, "/mm3"), "INC07", version="1").status is expected


@pytest.mark.parametrize(
    ("unit", "why"),
    [("g/L", "unit 'g/L'"), ("cells", "unit 'cells'"), ("furlongs", "unit 'furlongs'"), ("mmol/L", "unit 'mmol/L'")],
)
def test_unusable_count_unit_is_unknown_naming_the_unit(record, lab, crit, unit, why):
    r = crit(lab(record, "platelets", 200, unit), "INC07")
    assert r.status is U
    assert why in r.reason


def test_missing_unit_is_unknown(record, lab, crit):
    r = lab(record, "haemoglobin", 11.0)
    for m in r["measurements"]:
        if m["analyte"] == "haemoglobin":
            m.pop("unit")
    assert crit(r, "INC07").status is U


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(50, "mL/min", P), (49.9, "mL/min", F), (50.1, "mL/min", P), (3.0, "L/h", P), (2.99, "L/h", F)],
)
def test_inc06_measured_clearance(record, lab, crit, value, unit, expected):
    r = crit(lab(record, "crcl", value, unit), "INC06")
    assert r.status is expected, r.reason


def test_inc06_bsa_normalised_egfr_is_not_a_clearance(record, lab, crit):
    rec = lab(record, "crcl", 90, "mL/min/{1.73_m2}")
    rec = lab(rec, "creatinine", 80, "umol/L")
    r = crit(rec, "INC06")
    # falls back to Cockcroft-Gault, naming the refused unit
    assert "mL/min/{1.73_m2}" in r.reason
    assert r.status is P


def _cg_record(lab, record, creatinine_mg_dl: float, weight: float = 72.0, sex: str = "male"):
    rec = lab(record, "creatinine", creatinine_mg_dl, "mg/dL")
    rec = lab(rec, "weight", weight, "kg")
    rec["patient"] = {"birth_date": "1964-06-03", "sex": sex}  # 60 on 2024-06-03
    return rec


@pytest.mark.parametrize(
    ("creat", "sex", "expected"),
    [
        # male 60 y, 72 kg: CrCl = 80 x 72 / (72 x Scr) = 80 / Scr
        (1.6, "male", P),  # 50.0 exactly
        (1.61, "male", F),  # 49.7
        (1.59, "male", P),
        # female: x 0.85 -> 68 / Scr
        (1.36, "female", P),  # 50.0 exactly
        (1.37, "female", F),
    ],
)
def test_inc06_cockcroft_gault_boundaries(record, lab, crit, creat, sex, expected):
    rec = _cg_record(lab, record, creat, sex=sex)
    if sex == "female":
        rec["patient"]["menopausal_status"] = "post"
    r = crit(rec, "INC06")
    assert r.status is expected, r.reason


def test_inc06_cockcroft_gault_needs_sex_and_weight(record, lab, crit):
    rec = _cg_record(lab, record, 1.0)
    rec["patient"].pop("sex")
    assert crit(rec, "INC06").status is U
    rec = _cg_record(lab, record, 1.0)
    rec["measurements"] = [m for m in rec["measurements"] if m["analyte"] != "weight"]
    r = crit(rec, "INC06")
    assert r.status is U and "weight" in r.reason


@pytest.mark.parametrize("analyte", ["alt", "ast"])
@pytest.mark.parametrize(("value", "expected"), [(100.0, P), (100.1, F), (99.9, P)])
def test_inc06_transaminases_times_uln(record, lab, crit, analyte, value, expected):
    assert crit(lab(record, analyte, value, "U/L", reference_high=40), "INC06").status is expected


def test_inc06_uln_from_the_labs_range_in_another_unit(record, lab, crit):
    # 1.5 ukat/L = 90 U/L; ULN 0.6 ukat/L = 36 U/L; 2.5 x ULN = 90 -> pass exactly
    rec = lab(record, "alt", 1.5, "ukat/L", reference_high=0.6)
    assert crit(rec, "INC06").status is P
    rec = lab(record, "alt", 1.51, "ukat/L", reference_high=0.6)
    assert crit(rec, "INC06").status is F


def test_inc06_without_uln_is_unknown_not_a_default(record, lab, crit):
    rec = lab(record, "alt", 30, "U/L")
    for m in rec["measurements"]:
        if m["analyte"] == "alt":
            m.pop("reference_high", None)
    r = crit(rec, "INC06")
    assert r.status is U and "ULN" in r.reason


@pytest.mark.parametrize(("ecog", "expected"), [(2, P), (3, F), (0, P), (1, P), (5, F)])
def test_inc05_ecog(record, lab, crit, ecog, expected):
    assert crit(lab(record, "ecog", ecog), "INC05").status is expected


def test_inc05_non_integer_ecog_is_unknown(record, lab, crit):
    assert crit(lab(record, "ecog", 1.5), "INC05").status is U


@pytest.mark.parametrize(
    ("birth", "expected"),
    [("2006-06-03", P), ("2006-06-04", F), ("2006-06-02", P), ("1930-01-01", P), ("2006", U), ("2005", P), ("2007", F),
     ("2006-05", P), ("2006-06", U), ("2006-07", F)],
)
def test_inc08_age_on_screening_date(record, crit, birth, expected):
    record["patient"]["birth_date"] = birth
    assert crit(record, "INC08").status is expected


@pytest.mark.parametrize(("value", "expected"), [(30.0, P), (29.9, F), (30.1, P), (3.0, P), (2.99, F)])
def test_exc06_albumin_with_abnormal_pt(record, lab, crit, value, expected):
    unit = "g/L" if value > 10 else "g/dL"
    rec = lab(record, "albumin", value, unit)
    rec = lab(rec, "pt", 60, "%", reference_low=70)  # PT (taux de prothrombine) below normal
    assert crit(rec, "EXC06").status is expected


@pytest.mark.parametrize(
    ("pt", "unit", "low", "high", "expected"),
    [(70, "%", 70, None, P), (69, "%", 70, None, F), (12.0, "s", 11.0, 13.5, P), (13.6, "s", 11.0, 13.5, F),
     (13.5, "s", 11.0, 13.5, P), (10.9, "s", 11.0, 13.5, F)],
)
def test_exc06_low_albumin_rescued_by_normal_pt(record, lab, crit, pt, unit, low, high, expected):
    rec = lab(record, "albumin", 25, "g/L")
    rec = lab(rec, "pt", pt, unit, reference_low=low, reference_high=high)
    assert crit(rec, "EXC06").status is expected


def test_exc06_low_albumin_pt_without_range_is_unknown(record, lab, crit):
    rec = lab(lab(record, "albumin", 25, "g/L"), "pt", 12, "s")
    assert crit(rec, "EXC06").status is U


@pytest.mark.parametrize(("lvef", "expected"), [(40, P), (39.9, F), (40.1, P)])
def test_exc03_lvef(record, lab, crit, lvef, expected):
    rec = lab(record, "lvef", lvef, "%", date="2024-05-01")
    rec["cardiac"]["carcinoid_heart_disease"] = True
    assert crit(rec, "EXC03").status is expected


def test_exc03_carcinoid_heart_disease_without_lvef_is_unknown(record, crit):
    record["measurements"] = [m for m in record["measurements"] if m["analyte"] != "lvef"]
    record["cardiac"]["carcinoid_heart_disease"] = True
    assert crit(record, "EXC03").status is U
    record["cardiac"]["carcinoid_heart_disease"] = False
    assert crit(record, "EXC03").status is P


@pytest.mark.parametrize(
    ("sbp", "dbp", "treated", "expected"),
    [(160, 80, True, F), (159, 80, True, P), (161, 80, True, F), (130, 95, True, F), (130, 94, True, P),
     (170, 100, False, P), (170, 100, None, U)],
)
def test_exc07_blood_pressure_under_treatment(record, lab, crit, sbp, dbp, treated, expected):
    rec = lab(lab(record, "systolic_bp", sbp, "mm[Hg]"), "diastolic_bp", dbp, "mm[Hg]")
    if treated is None:
        rec["cardiac"].pop("antihypertensive_treatment")
    else:
        rec["cardiac"]["antihypertensive_treatment"] = treated
    assert crit(rec, "EXC07").status is expected


@pytest.mark.parametrize(
    ("event_date", "expected"),
    [("2023-06-03", F), ("2023-06-02", P), ("2024-06-01", F), ("2024-06-04", P), (None, U)],
)
def test_exc07_events_within_12_months(record, crit, event_date, expected):
    record["cardiac"]["events"] = [{"type": "stroke", "date": event_date}]
    assert crit(record, "EXC07").status is expected


@pytest.mark.parametrize(("pct", "expected"), [(50, F), (50.1, P), (49.9, F), (51, P)])
def test_inc02_hepatic_invasion(record, crit, pct, expected):
    record["disease"] = {"progression_on_ssa": False, "hepatic_invasion_percent": pct}
    assert crit(record, "INC02").status is expected


@pytest.mark.parametrize(
    ("progression_date", "expected"),
    [("2022-09-01", P), ("2022-08-31", F), ("2023-09-01", P), ("2023-09-02", F)],
)
def test_inc02_progression_within_12_months_before_first_cycle(record, crit, progression_date, expected):
    record["disease"] = {"progression_on_ssa": True, "progression_date": progression_date, "hepatic_invasion_percent": 10}
    assert crit(record, "INC02").status is expected


@pytest.mark.parametrize(("n", "expected"), [(4, P), (3, F), (5, P), (0, F)])
def test_inc03_cycle_count(record, crit, n, expected):
    cycles = record["lutathera_cycles"]
    extra = dict(cycles[-1], date="2024-04-12")
    record["lutathera_cycles"] = (cycles + [extra])[:n]
    assert crit(record, "INC03").status is expected


def test_inc03_cancelled_cycle_does_not_count(record, crit):
    record["lutathera_cycles"][3]["cancelled_for_toxicity"] = True
    assert crit(record, "INC03").status is F
    assert crit(record, "EXC12").status is F


def test_inc03_absent_history_is_unknown(record, crit):
    record.pop("lutathera_cycles")
    assert crit(record, "INC03").status is U


def test_exc05_child_pugh_b8_or_worse(record, lab, crit):
    record["liver"].update(cirrhosis=True, ascites="mild", encephalopathy="none")
    # bilirubin 40 umol/L (2) + albumin 30 g/L (2) + INR 1.5 (1) + mild ascites (2) + none (1) = 8
    rec = lab(lab(lab(record, "bilirubin", 40, "umol/L"), "albumin", 30, "g/L"), "inr", 1.5, "1")
    r = crit(rec, "EXC05")
    assert r.status is F and "B8" in r.reason
    # bilirubin 33 umol/L (1) -> 7 (B7) passes
    r = crit(lab(rec, "bilirubin", 33, "umol/L"), "EXC05")
    assert r.status is P and "B7" in r.reason


@pytest.mark.parametrize(("score", "expected"), [(7, P), (8, F), (9, F), (5, P)])
def test_exc05_stated_child_pugh(record, crit, score, expected):
    record["liver"].update(cirrhosis=True, child_pugh_score=score)
    assert crit(record, "EXC05").status is expected


def test_exc05_cirrhosis_without_components_is_unknown(record, crit):
    record["liver"]["cirrhosis"] = True
    r = crit(record, "EXC05")
    assert r.status is U
    assert any("bilirubin" in n for n in r.needs)


@pytest.mark.parametrize(
    "flag", ["coagulation_disorder", "portal_thrombosis", "intrahepatic_biliary_dilatation",
             "digestive_or_biliary_anastomosis_or_fistula"],
)
def test_exc05_each_contraindication(record, crit, flag):
    record["liver"][flag] = True
    assert crit(record, "EXC05").status is F
    record["liver"][flag] = None
    assert crit(record, "EXC05").status is U


def test_rules_do_not_mutate_shared_record(record):
    before = copy.deepcopy(record)
    screen(parse_record(record), as_of=dt.date(2024, 6, 3))
    assert record == before


@pytest.mark.parametrize(
    ("value", "unit"),
    [(1.0, "mg/dL"), (88.4, "umol/L"), (88.4, "µmol/L"), (88.4, "µmol/l"), (0.0884, "mmol/L"), (10.0, "mg/L")],
)
def test_creatinine_units_give_the_same_cockcroft_gault(record, lab, crit, value, unit):
    rec = _cg_record(lab, record, 1.0)
    rec = lab(rec, "creatinine", value, unit)
    r = crit(rec, "INC06")
    cg = next(e for e in r.evidence if e.label.startswith("CrCl"))
    assert cg.value == pytest.approx(80.0, abs=0.1)  # 80 / Scr(mg/dL); 88.4 umol/L = 1.000 mg/dL within 0.05 %


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(2.0, "mg/dL", "B8"), (1.99, "mg/dL", "B7"), (3.0, "mg/dL", "B8"), (3.01, "mg/dL", "B9"),
     (34.0, "umol/L", "B8"), (33.9, "umol/L", "B7"), (50.0, "umol/L", "B8"), (50.1, "umol/L", "B9")],
)
def test_child_pugh_bilirubin_scored_in_the_reported_unit(record, lab, crit, value, unit, expected):
    # Pugh 1973 cut-offs in mg/dL (2, 3) and the SI table (34, 50 umol/L) are each applied to
    # reports in their own unit (3 mg/dL = 51.3 umol/L would otherwise change band).
    record["liver"].update(cirrhosis=True, ascites="mild", encephalopathy="none")
    rec = lab(lab(lab(record, "bilirubin", value, unit), "albumin", 30, "g/L"), "inr", 1.5)
    assert expected in crit(rec, "EXC05").reason


@pytest.mark.parametrize("uln", [0, -40])
def test_inc06_non_positive_uln_is_unknown(record, lab, crit, uln):
    r = crit(lab(record, "alt", 30, "U/L", reference_high=uln), "INC06")
    assert r.status is U and "not a positive number" in r.reason


def test_reason_states_the_value_in_the_criterions_unit(record, lab, crit):
    # issue 10: "72 G/L < 75 10*9/L" and "haemoglobin 136.325 g/L meets >= 8 g/dL" mixed units
    r = crit(lab(record, "platelets", 72, "G/L"), "INC07")
    assert r.status is F and "platelets 72 G/L (72,000 /mm3) does not meet >= 75,000 /mm3" in r.reason
    r = crit(lab(record, "haemoglobin", 136.325, "g/L"), "INC07")
    assert "haemoglobin 136.3 g/L (13.63 g/dL) meets >= 8 g/dL" in r.reason
    r = crit(lab(record, "platelets", 80000, "/mm3"), "INC07")
    assert "platelets 80,000 /mm3 meets >= 75,000 /mm3" in r.reason  # same unit: no repetition
