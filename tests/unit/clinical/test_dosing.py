"""LUTATHERA dose-modification rules: one test (or more) per rule, both sides of each threshold."""

from __future__ import annotations

import datetime as dt

import pytest

from lutarterial.clinical.dosing import decide_next_dose, load_dose_rules, parse_history
from lutarterial.errors import InvalidInputError

D0 = dt.date(2025, 1, 6)


def day(n: int) -> str:
    return (D0 + dt.timedelta(days=n)).isoformat()


def normal_labs(d: int, **override):
    """A full set of normal pre-dose labs on day d; override a test with (value, unit, lln, uln)."""
    base = {
        "platelets": (250, "G/L", 150, 400),
        "hemoglobin": (13.5, "g/dL", 12.0, 16.0),
        "neutrophils": (4.0, "G/L", 1.8, 7.5),
        "lymphocytes": (1.5, "G/L", 1.0, 4.0),
        "creatinine": (80, "umol/L", 45, 104),
        "crcl": (95, "mL/min", 90, None),
        "bilirubin": (10, "umol/L", 3, 21),
        "albumin": (40, "g/L", 35, 50),
    }
    base.update(override)
    return [{"id": f"{k}-{d}", "test": k, "value": v[0], "unit": v[1], "lln": v[2], "uln": v[3], "date": day(d)}
            for k, v in base.items()]


def history(admins, labs, aes=(), decision_day=56, **kw):
    doc = {
        "patient": "LUT-001",
        "decision_date": day(decision_day),
        "baseline": {"creatinine": {"value": 80, "unit": "umol/L"}, "crcl": {"value": 95, "unit": "mL/min"}},
        "administrations": [{"date": day(d), "activity_gbq": a, "route": r, "cycle": i + 1}
                            for i, (d, a, r) in enumerate(admins)],
        "labs": labs,
        "adverse_events": list(aes),
    }
    doc.update(kw)
    return decide_next_dose(parse_history(doc))


def ids(decision):
    return [r.rule_id for r in decision.rules]


def test_no_toxicity_proceeds_at_full_activity():
    d = history([(0, 7.4, "IV")], normal_labs(28) + normal_labs(54), planned_route="IAH")
    assert d.decision == "proceed_full" and d.activity_gbq == 7.4 and d.route == "IAH"
    assert ids(d) == ["LUT-DM-NO-TOXICITY"] and not d.warnings


def test_thrombocytopenia_grade2_withholds_grade1_does_not():
    # 74 G/L is grade 2 ('<75.0 - 50.0'): withhold; 75 G/L is grade 1: no modification
    d = history([(0, 7.4, "IV")], normal_labs(54, platelets=(74, "G/L", 150, 400)))
    assert d.decision == "withhold" and "LUT-DM-THROMBO" in ids(d)
    assert "Platelet count decreased grade 2" in d.rules[0].evidence[0].detail
    d = history([(0, 7.4, "IV")], normal_labs(54, platelets=(75, "G/L", 150, 400)))
    assert d.decision == "proceed_full"


def test_thrombocytopenia_resolved_resumes_at_reduced_activity():
    labs = normal_labs(28, platelets=(60, "G/L", 150, 400)) + normal_labs(54, platelets=(120, "G/L", 150, 400))
    d = history([(0, 7.4, "IV")], labs)
    assert d.decision == "resume_reduced" and d.activity_gbq == 3.7
    assert ids(d) == ["LUT-DM-THROMBO", "LUT-DM-RESUME-REDUCED"]


def test_anemia_neutropenia_grade3_withholds_grade2_does_not():
    d = history([(0, 7.4, "IV")], normal_labs(54, hemoglobin=(7.9, "g/dL", 12, 16)))
    assert d.decision == "withhold" and "LUT-DM-ANEMIA-NEUTRO" in ids(d)
    d = history([(0, 7.4, "IV")], normal_labs(54, hemoglobin=(8.0, "g/dL", 12, 16)))
    assert d.decision == "proceed_full"
    d = history([(0, 7.4, "IV")], normal_labs(54, neutrophils=(0.99, "G/L", 1.8, 7.5)))
    assert d.decision == "withhold" and "LUT-DM-ANEMIA-NEUTRO" in ids(d)
    d = history([(0, 7.4, "IV")], normal_labs(54, neutrophils=(1000, "/mm3", 1800, 7500)))
    assert d.decision == "proceed_full"


def test_lymphopenia_alone_never_modifies_the_dose():
    d = history([(0, 7.4, "IV")], normal_labs(54, lymphocytes=(0.15, "G/L", 1.0, 4.0)))
    assert d.decision == "proceed_full" and d.activity_gbq == 7.4
    assert "LUT-DM-LYMPHO-EXEMPT" in ids(d)
    ae = {"id": "AE1", "term": "Lymphocyte count decreased", "grade": 4, "onset": day(20)}
    assert history([(0, 7.4, "IV")], normal_labs(54), [ae]).decision == "proceed_full"


def test_renal_crcl_below_40_ml_min():
    d = history([(0, 7.4, "IV")], normal_labs(54, crcl=(39.9, "mL/min", 90, None)))
    assert d.decision == "withhold" and "LUT-DM-RENAL" in ids(d)
    d = history([(0, 7.4, "IV")], normal_labs(54, crcl=(60, "mL/min", 90, None)), baseline={"crcl": {"value": 65, "unit": "mL/min"}, "creatinine": {"value": 80, "unit": "umol/L"}})
    assert d.decision == "proceed_full"
    d = history([(0, 7.4, "IV")], normal_labs(54, crcl=(40, "mL/min", 90, None)), baseline={"crcl": {"value": 45, "unit": "mL/min"}, "creatinine": {"value": 80, "unit": "umol/L"}})
    assert d.decision == "proceed_full"  # exactly 40 is not 'less than 40'


def test_renal_creatinine_40pct_increase_and_crcl_40pct_decrease():
    # baseline creatinine 80 umol/L: +40 % = 112 -> renal toxicity; 111 -> not
    d = history([(0, 7.4, "IV")], normal_labs(54, creatinine=(112, "umol/L", 45, 104)))
    assert d.decision == "withhold" and "LUT-DM-RENAL" in ids(d)
    d = history([(0, 7.4, "IV")], normal_labs(54, creatinine=(111, "umol/L", 45, 104)))
    assert d.decision == "proceed_full"
    # baseline given in mg/dL while the lab is in umol/L
    d = history([(0, 7.4, "IV")], normal_labs(54, creatinine=(1.4, "mg/dL", 0.5, 1.2)),
                baseline={"creatinine": {"value": 1.0, "unit": "mg/dL"}, "crcl": {"value": 95, "unit": "mL/min"}})
    assert d.decision == "withhold"
    # baseline CrCl 95: 40 % decrease = 57 -> toxicity; 58 -> not
    d = history([(0, 7.4, "IV")], normal_labs(54, crcl=(57, "mL/min", 90, None)))
    assert d.decision == "withhold" and "40.0 % decrease" in d.rules[0].evidence[0].detail
    d = history([(0, 7.4, "IV")], normal_labs(54, crcl=(58, "mL/min", 90, None)))
    assert d.decision == "proceed_full"


def test_hepatic_bilirubin_above_3x_uln_and_albumin_with_prothrombin():
    d = history([(0, 7.4, "IV")], normal_labs(54, bilirubin=(63.1, "umol/L", 3, 21)))
    assert d.decision == "withhold" and "LUT-DM-HEPATIC" in ids(d)
    d = history([(0, 7.4, "IV")], normal_labs(54, bilirubin=(63, "umol/L", 3, 21)))  # = 3 x ULN: not '>'
    assert d.decision == "proceed_full"
    pt = {"id": "PT", "test": "prothrombin_ratio", "value": 65, "unit": "%", "date": day(54)}
    d = history([(0, 7.4, "IV")], normal_labs(54, albumin=(29, "g/L", 35, 50)) + [pt])
    assert d.decision == "withhold" and "LUT-DM-HEPATIC" in ids(d)
    # albumin low but prothrombin ratio normal: no hepatotoxicity by the label definition
    d = history([(0, 7.4, "IV")], normal_labs(54, albumin=(29, "g/L", 35, 50)) + [{**pt, "value": 70}])
    assert d.decision == "proceed_full"
    # albumin 3.0 g/dL = 30 g/L is not '< 30 g/L'
    d = history([(0, 7.4, "IV")], normal_labs(54, albumin=(3.0, "g/dL", 3.5, 5.0)) + [pt])
    assert d.decision == "proceed_full"


def test_other_grade3_adverse_event_withholds_until_resolved():
    ae = {"id": "AE7", "term": "Nausea", "grade": 3, "onset": day(10)}
    d = history([(0, 7.4, "IV")], normal_labs(54), [ae])
    assert d.decision == "withhold" and "LUT-DM-OTHER" in ids(d)
    d = history([(0, 7.4, "IV")], normal_labs(54), [{**ae, "end": day(20)}])
    assert d.decision == "resume_reduced"
    d = history([(0, 7.4, "IV")], normal_labs(54), [{**ae, "grade": 2}])
    assert d.decision == "proceed_full"


def test_reduced_dose_without_toxicity_returns_to_full():
    labs = normal_labs(28, platelets=(60, "G/L", 150, 400)) + normal_labs(60) + normal_labs(110)
    d = history([(0, 7.4, "IV"), (63, 3.7, "IAH")], labs, decision_day=120)
    assert d.decision == "proceed_full" and d.activity_gbq == 7.4 and ids(d) == ["LUT-DM-RETURN-FULL"]


def test_recurrence_after_reduction_discontinues():
    labs = normal_labs(28, platelets=(60, "G/L", 150, 400)) + normal_labs(60) + normal_labs(90, platelets=(70, "G/L", 150, 400))
    d = history([(0, 7.4, "IV"), (63, 3.7, "IAH")], labs, decision_day=120)
    assert d.decision == "discontinue" and ids(d) == ["LUT-DM-RECURRENCE"]
    # a different toxicity after the reduction is not a recurrence: withhold
    labs = normal_labs(28, platelets=(60, "G/L", 150, 400)) + normal_labs(60) + normal_labs(115, hemoglobin=(7.5, "g/dL", 12, 16))
    d = history([(0, 7.4, "IV"), (63, 3.7, "IAH")], labs, decision_day=120)
    assert d.decision == "withhold" and "LUT-DM-ANEMIA-NEUTRO" in ids(d)


def test_delay_of_16_weeks_or_more_discontinues():
    # due at day 56; still grade 2 thrombocytopenia at day 56 + 112 (16 weeks) -> discontinue
    labs = normal_labs(56 + 112, platelets=(70, "G/L", 150, 400))
    d = history([(0, 7.4, "IV")], labs, decision_day=56 + 112)
    assert d.decision == "discontinue" and ids(d) == ["LUT-DM-DELAY16"] and d.delay_weeks == 16
    d = history([(0, 7.4, "IV")], normal_labs(56 + 111, platelets=(70, "G/L", 150, 400)), decision_day=56 + 111)
    assert d.decision == "withhold"
    # resolved, but only 16 weeks after the due date
    labs = normal_labs(30, platelets=(70, "G/L", 150, 400)) + normal_labs(56 + 112)
    assert history([(0, 7.4, "IV")], labs, decision_day=56 + 115).decision == "discontinue"
    labs = normal_labs(30, platelets=(70, "G/L", 150, 400)) + normal_labs(56 + 100)
    assert history([(0, 7.4, "IV")], labs, decision_day=56 + 115).decision == "resume_reduced"


def test_missing_labs_are_warned_not_assumed_normal():
    d = history([(0, 7.4, "IV")], [])
    assert d.decision == "proceed_full"
    assert any("platelet" in w for w in d.warnings) and any("creatinine" in w for w in d.warnings)


def test_first_administration():
    d = history([], normal_labs(-3), decision_day=0)
    assert d.decision == "proceed_full" and d.activity_gbq == 7.4
    d = history([], normal_labs(-3, platelets=(60, "G/L", 150, 400)), decision_day=0)
    assert d.decision == "withhold"


def test_bad_history_input():
    with pytest.raises(InvalidInputError, match="decision_date"):
        parse_history({"administrations": []})
    with pytest.raises(InvalidInputError, match="route"):
        parse_history({"decision_date": "2025-01-01", "administrations": [{"date": "2024-11-01", "activity_gbq": 7.4, "route": "IM"}]})
    with pytest.raises(InvalidInputError, match="grade"):
        parse_history({"decision_date": "2025-01-01", "adverse_events": [{"term": "Nausea", "grade": 7, "onset": "2024-12-01"}]})


def test_rulebook_has_sources_and_every_rule_is_wired():
    rb = load_dose_rules()
    assert "LUTATHERA" in rb["source"] and rb["full_activity_gbq"] == 7.4 and rb["reduced_activity_gbq"] == 3.7
    for rid in ("LUT-DM-THROMBO", "LUT-DM-ANEMIA-NEUTRO", "LUT-DM-RENAL", "LUT-DM-HEPATIC", "LUT-DM-OTHER",
                "LUT-DM-LYMPHO-EXEMPT", "LUT-DM-RECURRENCE", "LUT-DM-DELAY16", "LUT-DM-RESUME-REDUCED",
                "LUT-DM-RETURN-FULL", "LUT-DM-NO-TOXICITY"):
        assert rb["by_id"][rid]["label_text"]


def test_recurrence_after_return_to_full_dose_also_discontinues():
    # thrombocytopenia in C1 -> C2 at 3.7 GBq -> no toxicity -> C3 at 7.4 GBq -> thrombocytopenia again
    labs = (normal_labs(28, platelets=(60, "G/L", 150, 400)) + normal_labs(60) + normal_labs(110)
            + normal_labs(150, platelets=(70, "G/L", 150, 400)))
    d = history([(0, 7.4, "IV"), (63, 3.7, "IAH"), (120, 7.4, "IV")], labs, decision_day=176)
    assert d.decision == "discontinue" and ids(d) == ["LUT-DM-RECURRENCE"]


def test_early_decision_is_warned():
    d = history([(0, 7.4, "IV")], normal_labs(40), decision_day=42)
    assert any("before the due date" in w for w in d.warnings)


def test_lab_grade_3_transaminase_counts_as_other_grade_3_toxicity():
    labs = normal_labs(54) + [{"id": "ALT", "test": "alt", "value": 210, "unit": "U/L", "uln": 40, "baseline": 30,
                               "date": day(54)}]
    d = history([(0, 7.4, "IV")], labs)
    assert d.decision == "withhold" and "LUT-DM-OTHER" in ids(d)
    labs[-1] = {**labs[-1], "value": 200}  # exactly 5 x ULN: grade 2
    assert history([(0, 7.4, "IV")], labs).decision == "proceed_full"


def test_grade3_hypersensitivity_after_lutathera_discontinues():
    # lutathera-hcp.com (from the US PI): "Do not rechallenge patients who experience grade 3/4
    # hypersensitivity reactions to LUTATHERA."
    ae = {"id": "AE9", "term": "Anaphylactic reaction", "grade": 3, "onset": day(0), "end": day(1),
          "relation": "probable"}
    d = history([(0, 7.4, "IV")], normal_labs(54), [ae])
    assert d.decision == "discontinue" and ids(d) == ["LUT-DM-HYPERSENS"] and d.activity_gbq is None
    # grade 2: premedicate and continue (no dose modification from this rule)
    d = history([(0, 7.4, "IV")], normal_labs(54), [{**ae, "grade": 2}])
    assert d.decision == "proceed_full"


def test_other_grade3_event_judged_unrelated_is_not_an_adverse_reaction():
    ae = {"id": "AE7", "term": "Femur fracture", "grade": 3, "onset": day(10), "relation": "not_related"}
    d = history([(0, 7.4, "IV")], normal_labs(54), [ae])
    assert d.decision == "proceed_full"
    assert any("AE7" in w and "not an adverse reaction" in w for w in d.warnings)
    for rel in ("possible", "unknown", None):
        d = history([(0, 7.4, "IV")], normal_labs(54), [{**ae, "relation": rel}])
        assert d.decision == "withhold" and "LUT-DM-OTHER" in ids(d), rel


def test_rulebook_quotes_its_sources():
    rb = load_dose_rules()
    refs = rb["references"]
    for rid in ("LUT-DM-THROMBO", "LUT-DM-ANEMIA-NEUTRO", "LUT-DM-RENAL", "LUT-DM-HEPATIC", "LUT-DM-OTHER",
                "LUT-DM-HYPERSENS", "LUT-DM-LYMPHO-EXEMPT"):
        quotes = rb["by_id"][rid]["source_quotes"]
        assert quotes and all(q["source"] in refs and q["text"].strip() for q in quotes), rid
    # the numbers the evaluator reads agree with the label thresholds quoted in the issue
    p = {rid: r.get("params", {}) for rid, r in rb["by_id"].items()}
    assert p["LUT-DM-THROMBO"]["min_grade"] == 2 and p["LUT-DM-THROMBO"]["resolved_max_grade"] == 1
    assert p["LUT-DM-ANEMIA-NEUTRO"]["min_grade"] == 3
    assert p["LUT-DM-ANEMIA-NEUTRO"]["resolved_max_grade"] == 2
    assert p["LUT-DM-RENAL"] == {"crcl_below_ml_min": 40, "creatinine_increase_pct": 40,
                                 "crcl_decrease_pct": 40}
    assert p["LUT-DM-HEPATIC"] == {"bilirubin_above_x_uln": 3.0, "albumin_below_g_l": 30,
                                   "prothrombin_ratio_below_pct": 70}
    assert rb["max_delay_weeks"] == 16 and rb["interval_weeks"] == 8
