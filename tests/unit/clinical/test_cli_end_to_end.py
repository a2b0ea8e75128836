"""End-to-end CLI cases of the issue's I/O: ``grade LABS.json --json`` and ``recist FILE --json``.

Each case writes the input exactly in the issue's format, runs the real CLI in-process and checks
the documented output keys and the RECIST 1.1 answer (Eisenhauer et al., Eur J Cancer
2009;45:228-247: PR >= 30 % below the baseline sum; PD >= 20 % above the nadir AND >= 5 mm;
nodes < 10 mm short axis count as normal for CR while staying in the sum; confirmation of
CR/PR >= 4 weeks later). Percentages are compared with a tolerance of 0.005 % (2-decimal output).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lutarterial.cli.main import run

ASSESSMENT_KEYS = {"date", "baseline", "sum_mm", "change_from_baseline_pct", "change_from_nadir_pct",
                   "target", "non_target", "new_lesions", "overall"}


def _run_json(capsys, tmp_path: Path, command: str, doc: dict) -> dict:
    f = tmp_path / f"{command}.json"
    f.write_text(json.dumps(doc), encoding="utf-8")
    try:
        run([command, str(f), "--json"])
    except SystemExit as e:
        assert e.code in (0, None), e.code
    return json.loads(capsys.readouterr().out)


def _base(date: str, *lesions: tuple) -> dict:
    """Baseline assessment; lesions as (id, role, organ, nodal, diameter_mm)."""
    return {"date": date, "baseline": True, "lesions": [
        {"id": i, "role": r, "organ": o, "nodal": n, "diameter_mm": d} for i, r, o, n, d in lesions]}


def _fu(date: str, lesions: list[dict], new: list[str] = ()) -> dict:
    return {"date": date, "baseline": False, "lesions": lesions, "new_lesions": [{"id": n} for n in new]}


def recist(capsys, tmp_path, *assessments) -> dict:
    out = _run_json(capsys, tmp_path, "recist", {"patient": "LUT-E2E", "assessments": list(assessments)})
    assert {"assessments", "best_overall_response", "progression_date"} <= set(out)
    for a in out["assessments"]:
        assert ASSESSMENT_KEYS <= set(a)
        assert isinstance(a["baseline"], bool)
        assert a["new_lesions"] is None if a["baseline"] else isinstance(a["new_lesions"], bool)
        for k in ("sum_mm", "change_from_baseline_pct", "change_from_nadir_pct"):
            assert a[k] is None or (isinstance(a[k], (int, float)) and round(a[k], 2) == a[k])
    return out


TWO_LIVER = (("T1", "target", "liver", False, 50), ("T2", "target", "liver", False, 50))


def test_pr_confirmed_28_days_later(capsys, tmp_path):
    out = recist(capsys, tmp_path, _base("2025-01-06", *TWO_LIVER),
                 _fu("2025-03-03", [{"id": "T1", "diameter_mm": 30}, {"id": "T2", "diameter_mm": 35}]),
                 _fu("2025-03-31", [{"id": "T1", "diameter_mm": 30}, {"id": "T2", "diameter_mm": 30}]))
    a = out["assessments"]
    assert [x["overall"] for x in a] == [None, "PR", "PR"]
    assert a[1]["sum_mm"] == 65 and a[1]["change_from_baseline_pct"] == pytest.approx(-35.0, abs=0.005)
    assert a[2]["change_from_nadir_pct"] == pytest.approx(-7.69, abs=0.005)  # 60 vs nadir 65
    assert out["best_overall_response"] == "PR"
    assert out["progression_date"] is None


def test_pr_seen_again_only_21_days_later_is_not_confirmed(capsys, tmp_path):
    out = recist(capsys, tmp_path, _base("2025-01-06", *TWO_LIVER),
                 _fu("2025-03-03", [{"id": "T1", "diameter_mm": 30}, {"id": "T2", "diameter_mm": 35}]),
                 _fu("2025-03-24", [{"id": "T1", "diameter_mm": 30}, {"id": "T2", "diameter_mm": 30}]))
    assert [x["overall"] for x in out["assessments"][1:]] == ["PR", "PR"]
    # unconfirmed PR -> SD, since the first PR (8 weeks) meets the 6-week minimum SD duration
    assert out["best_overall_response"] == "SD"
    # without confirmation (randomised trial) the same data give PR
    f = tmp_path / "recist.json"
    try:
        run(["recist", str(f), "--json", "--no-confirmation"])
    except SystemExit as e:
        assert e.code in (0, None)
    assert json.loads(capsys.readouterr().out)["best_overall_response"] == "PR"


ONE_LIVER_30 = (("T1", "target", "liver", False, 30),)


def test_pd_needs_20_percent_and_5_mm_over_nadir(capsys, tmp_path):
    out = recist(capsys, tmp_path, _base("2025-01-06", *ONE_LIVER_30),
                 _fu("2025-03-03", [{"id": "T1", "diameter_mm": 20}]),
                 _fu("2025-04-28", [{"id": "T1", "diameter_mm": 25}]))
    a = out["assessments"]
    assert a[1]["overall"] == "PR" and a[1]["change_from_baseline_pct"] == pytest.approx(-33.33, abs=0.005)
    assert a[2]["target"] == "PD" and a[2]["overall"] == "PD"
    assert a[2]["change_from_nadir_pct"] == pytest.approx(25.0, abs=0.005)  # +5 mm over nadir 20
    assert out["progression_date"] == "2025-04-28"
    assert out["best_overall_response"] == "SD"  # unconfirmed PR, SD duration met at 8 weeks


def test_20_percent_over_nadir_but_only_4_mm_is_not_pd(capsys, tmp_path):
    out = recist(capsys, tmp_path, _base("2025-01-06", *ONE_LIVER_30),
                 _fu("2025-03-03", [{"id": "T1", "diameter_mm": 20}]),
                 _fu("2025-04-28", [{"id": "T1", "diameter_mm": 24}]))
    a = out["assessments"][2]
    assert a["change_from_nadir_pct"] == pytest.approx(20.0, abs=0.005)
    assert a["target"] == "SD" and a["overall"] == "SD"  # -20 % vs baseline: neither PR nor PD
    assert out["progression_date"] is None


def test_nodes_below_10_mm_give_cr_with_a_non_zero_sum(capsys, tmp_path):
    base = _base("2025-01-06", ("N1", "target", "lymph node", True, 20),
                 ("N2", "target", "lymph node", True, 16), ("T1", "target", "liver", False, 25))
    cr = [{"id": "N1", "diameter_mm": 8}, {"id": "N2", "diameter_mm": 9}, {"id": "T1", "status": "absent"}]
    out = recist(capsys, tmp_path, base, _fu("2025-03-03", cr), _fu("2025-04-07", cr))
    a = out["assessments"]
    assert a[0]["sum_mm"] == 61
    assert a[1]["sum_mm"] == 17 and a[1]["target"] == "CR" and a[1]["overall"] == "CR"
    assert a[1]["non_target"] == "NA"  # no non-target disease at baseline
    assert a[1]["change_from_baseline_pct"] == pytest.approx(-72.13, abs=0.005)
    assert out["best_overall_response"] == "CR"  # confirmed 35 days later
    # a node at exactly 10 mm short axis is not normal: PR, not CR
    out = recist(capsys, tmp_path, base, _fu("2025-03-03", [{**cr[0], "diameter_mm": 10}, *cr[1:]]))
    assert out["assessments"][1]["target"] == "PR"


def test_missing_target_is_ne_unless_the_others_already_prove_pd(capsys, tmp_path):
    base = _base("2025-01-06", ("T1", "target", "liver", False, 30), ("T2", "target", "lung", False, 20))
    out = recist(capsys, tmp_path, base,
                 _fu("2025-03-03", [{"id": "T1", "diameter_mm": 25}]),                 # T2 not measured
                 _fu("2025-04-28", [{"id": "T1", "diameter_mm": 70}, {"id": "T2", "diameter_mm": None}]))
    a = out["assessments"]
    assert a[1]["target"] == "NE" and a[1]["overall"] == "NE" and a[1]["sum_mm"] is None
    assert a[1]["change_from_baseline_pct"] is None
    # 70 mm alone is >= 1.2 x 50 and +20 mm: PD whatever T2 measures
    assert a[2]["target"] == "PD" and a[2]["overall"] == "PD"
    assert out["progression_date"] == "2025-04-28"
    assert out["best_overall_response"] == "PD"  # nothing evaluable before the progression


def test_non_target_codes_and_new_lesions(capsys, tmp_path):
    base = _base("2025-01-06", ("T1", "target", "liver", False, 40),
                 ("B1", "non_target", "bone", False, None))
    t1 = {"id": "T1", "diameter_mm": 38}
    out = recist(capsys, tmp_path, base,
                 _fu("2025-03-03", [t1, {"id": "B1", "status": "present"}]),
                 _fu("2025-04-28", [t1, {"id": "B1", "status": "absent"}], new=["NEW1"]))
    a = out["assessments"]
    got = (a[1]["target"], a[1]["non_target"], a[1]["new_lesions"], a[1]["overall"])
    assert got == ("SD", "Non-CR/Non-PD", False, "SD")
    assert (a[2]["non_target"], a[2]["new_lesions"], a[2]["overall"]) == ("CR", True, "PD")
    assert out["progression_date"] == "2025-04-28" and out["best_overall_response"] == "SD"


def test_non_target_disease_only_uses_table_2(capsys, tmp_path):
    base = _base("2025-01-06", ("B1", "non_target", "bone", False, None))
    out = recist(capsys, tmp_path, base, _fu("2025-03-03", [{"id": "B1", "status": "present"}]),
                 _fu("2025-04-28", [{"id": "B1", "status": "unequivocal_progression"}]))
    a = out["assessments"]
    assert a[1]["sum_mm"] is None and a[1]["target"] is None
    assert a[1]["overall"] == "Non-CR/Non-PD" and a[2]["overall"] == "PD"
    assert out["best_overall_response"] == "Non-CR/Non-PD"


def test_non_nodal_target_reappearing_after_cr_is_pd(capsys, tmp_path):
    base = _base("2025-01-06", ("T1", "target", "liver", False, 20), ("T2", "target", "liver", False, 15))
    gone = [{"id": "T1", "status": "absent"}, {"id": "T2", "status": "absent"}]
    out = recist(capsys, tmp_path, base, _fu("2025-03-03", gone), _fu("2025-04-07", gone),
                 _fu("2025-06-02", [{"id": "T1", "diameter_mm": 3}, {"id": "T2", "status": "absent"}]))
    a = out["assessments"]
    assert a[3]["target"] == "PD" and a[3]["overall"] == "PD"  # 3 mm: below the 5 mm rule, still PD
    assert out["best_overall_response"] == "CR" and out["progression_date"] == "2025-06-02"


def test_grade_cli_every_test_name_of_the_issue(capsys, tmp_path):
    labs = [
        ("haemoglobin", 9.5, "g/dL", {"lln": 12}, "Anemia", 2),
        ("hemoglobin", 95, "g/L", {"lln": 120}, "Anemia", 2),
        ("neutrophils", 0.9, "10^9/L", {"lln": 1.8}, "Neutrophil count decreased", 3),
        ("platelets", 60, "G/L", {"lln": 150}, "Platelet count decreased", 2),
        ("lymphocytes", 0.4, "10^9/L", {"lln": 1.0}, "Lymphocyte count decreased", 3),
        ("wbc", 2500, "/mm3", {"lln": 4000}, "White blood cell decreased", 2),
        ("creatinine", 200, "umol/L", {"uln": 100, "baseline": 80}, "Creatinine increased", 2),
        ("alt", 130, "U/L", {"uln": 40, "baseline": 30}, "Alanine aminotransferase increased", 2),
        ("ast", 45, "U/L", {"uln": 40, "baseline": 30}, "Aspartate aminotransferase increased", 1),
        ("bilirubin", 70, "umol/L", {"uln": 20, "baseline": 10}, "Blood bilirubin increased", 3),
        ("albumin", 28, "g/L", {"lln": 35}, "Hypoalbuminemia", 2),
        ("crcl", 35, "mL/min", {}, "Chronic kidney disease", 2),
        # LOINC code for platelets, unit in CTCAE's own notation
        ("777-3", 20, "10e9/L", {"lln": 150}, "Platelet count decreased", 4),
    ]
    doc = {"patient": "LUT-E2E", "labs": [
        {"id": f"L{k}", "test": t, "value": v, "unit": u, "lln": x.get("lln"), "uln": x.get("uln"),
         "baseline": x.get("baseline"), "date": "2025-02-01"} for k, (t, v, u, x, _, _) in enumerate(labs)]}
    out = _run_json(capsys, tmp_path, "grade", doc)
    assert [g["id"] for g in out["grades"]] == [f"L{k}" for k in range(len(labs))]
    for g, (test, _, _, _, term, grade) in zip(out["grades"], labs, strict=True):
        assert {"id", "test", "term", "grade", "reason"} <= set(g)
        assert (g["test"], g["term"], g["grade"]) == (test, term, grade), g["reason"]
        assert g["reason"].startswith(f"grade {grade}:")
