"""CLI: grade, recist (with PNG plots), next-dose and ae-table on the documented example files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lutarterial.cli.main import run

EX = Path(__file__).resolve().parents[3] / "docs" / "examples" / "clinical"


def call(argv):
    """Run the CLI in-process; typer exits with SystemExit(0) on success."""
    try:
        run(list(argv))
    except SystemExit as e:
        assert e.code in (0, None), e.code


def cli_json(capsys, *argv):
    call([*argv, "--json"])
    return json.loads(capsys.readouterr().out)


def test_grade_json_output_shape(capsys):
    out = cli_json(capsys, "grade", str(EX / "labs.json"))
    grades = {g["id"]: g for g in out["grades"]}
    assert set(out["grades"][0]) >= {"id", "test", "term", "grade", "reason"}
    assert grades["L1"]["grade"] == 2 and grades["L1"]["term"] == "Anemia"
    assert grades["L2"]["grade"] == 2
    assert grades["L3"]["grade"] == 1  # 1500/mm3 is '<LLN - 1500' (boundary in grade 1)
    assert grades["L5"]["grade"] == 2  # 125 umol/L vs baseline 0.9 mg/dL (79.6 umol/L): 1.57 x
    assert grades["L7"]["term"] == "Blood bilirubin increased"  # LOINC 1975-2
    assert grades["L10"]["grade"] is None and "LLN missing" in grades["L10"]["reason"]
    assert grades["L11"]["grade"] is None and "g/ml/x" in grades["L11"]["reason"]


def test_grade_table_output(capsys):
    call(["grade", str(EX / "labs.json")])
    assert "Anemia" in capsys.readouterr().out


def test_recist_json_and_plots(capsys, tmp_path):
    spider, swim = tmp_path / "spider.png", tmp_path / "swimmer.png"
    out = cli_json(capsys, "recist", str(EX / "assessments.json"), "--png", str(spider), "--swimmer-png", str(swim))
    assert [a["overall"] for a in out["assessments"]] == [None, "PR", "PR", "PD"]
    assert out["best_overall_response"] == "PR" and out["progression_date"] == "2025-09-15"
    assert out["assessments"][3]["change_from_nadir_pct"] == pytest.approx(22.45, abs=0.01)
    assert out["liver"]["assessments"][1]["sum_mm"] == 50
    for p in (spider, swim):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_recist_table_and_options(capsys):
    call(["recist", str(EX / "assessments.json"), "--no-confirmation", "--sd-min-weeks", "8"])
    text = capsys.readouterr().out
    assert "best overall response" in text and "liver only" in text


def test_next_dose_example(capsys):
    out = cli_json(capsys, "next-dose", str(EX / "history.json"))
    assert out["decision"] == "resume_reduced" and out["activity_gbq"] == 3.7 and out["route"] == "IAH"
    assert [r["rule_id"] for r in out["rules"]] == ["LUT-DM-LYMPHO-EXEMPT", "LUT-DM-THROMBO", "LUT-DM-RESUME-REDUCED"]
    call(["next-dose", str(EX / "history.json")])
    assert "resume_reduced" in capsys.readouterr().out


def test_ae_table_example(capsys):
    out = cli_json(capsys, "ae-table", str(EX / "adverse_events.json"))
    assert out["toxicity_table"]["cycles"] == ["C1 IV", "C2 IV", "IAH", "any cycle"]
    nausea = [r for r in out["toxicity_table"]["rows"] if r["term"] == "Nausea"][0]
    assert nausea["cycles"]["IAH"]["patients"] == 2 and nausea["cycles"]["IAH"]["grade_3_or_more"] == 1


@pytest.mark.parametrize("command", ["grade", "recist", "next-dose", "ae-table"])
def test_bad_files_give_clear_errors_not_tracebacks(command, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run([command, str(tmp_path / "missing.json")])
    assert e.value.code == 2 and "file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as e:
        run([command, str(bad)])
    assert e.value.code == 2 and "not valid JSON" in capsys.readouterr().err
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[1, 2]")
    with pytest.raises(SystemExit) as e:
        run([command, str(wrong)])
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error:")


def test_grade_accepts_numeric_strings_and_rejects_others(capsys, tmp_path):
    f = tmp_path / "labs.json"
    f.write_text(json.dumps({"patient": "X", "labs": [
        {"id": "a", "test": "platelets", "value": "60", "unit": "G/L", "lln": "150", "date": "2025-01-01"},
        {"id": "b", "test": "platelets", "value": "<10", "unit": "G/L", "lln": 150, "date": "2025-01-01"}]}))
    out = cli_json(capsys, "grade", str(f))
    assert out["grades"][0]["grade"] == 2
    assert out["grades"][1]["grade"] is None and "'<10'" in out["grades"][1]["reason"]


def test_ae_table_includes_graded_lab_toxicities_and_lists_ungraded(capsys):
    out = cli_json(capsys, "ae-table", str(EX / "adverse_events.json"))
    rows = {r["term"]: r for r in out["toxicity_table"]["rows"]}
    plt = rows["Platelet count decreased"]["cycles"]
    # AE2 (grade 2) and lab 68 G/L (grade 2) in C2; lab 92 G/L grade 1 in C1; 101 G/L grade 1 in IAH
    assert plt["C1 IV"]["by_grade"]["1"] == 1 and plt["C2 IV"]["by_grade"]["2"] == 1 and plt["IAH"]["by_grade"]["1"] == 1
    assert rows["Lymphocyte count decreased"]["cycles"]["IAH"]["grade_3_or_more"] == 1
    assert out["ungraded_labs"] == [{"id": "P2-IAH-W4-HB", "test": "hemoglobin",
                                     "reason": "no grade: LLN missing; needed to decide grade 1 versus grade 0"}]


# --- issue 10: the baseline rule on the command line -------------------------------------------
def _issue10_labs(tmp_path):
    doc = {"patient": "P1", "labs": [
        {"id": "A", "test": "alt", "value": 120, "unit": "U/L", "uln": 40, "date": "2026-01-05"},
        {"id": "B", "test": "ast", "value": 900, "unit": "U/L", "uln": 40, "date": "2026-01-05"},
        {"id": "C", "test": "bilirubin", "value": 3.5, "unit": "mg/dL", "uln": 1.0, "date": "2026-01-05"},
        {"id": "D", "test": "creatinine", "value": 1.6, "unit": "mg/dL", "uln": 1.0, "date": "2026-01-05"},
        {"id": "E", "test": "alt", "value": 120, "unit": "U/L", "uln": 40, "baseline": 100, "date": "2026-01-05"},
    ]}
    p = tmp_path / "labs.json"
    p.write_text(json.dumps(doc))
    return p


def test_grade_assumes_normal_baseline_and_require_baseline_restores_strict(tmp_path, capsys):
    p = _issue10_labs(tmp_path)
    out = cli_json(capsys, "grade", str(p))
    g = {r["id"]: r for r in out["grades"]}
    assert out["require_baseline"] is False
    assert [g[k]["grade"] for k in "ABCD"] == [1, 4, 3, 2]
    assert all(g[k]["baseline_assumed"] == "normal" for k in "ABCD")
    assert g["E"]["baseline_assumed"] is None and g["E"]["grade"] == 0  # a given baseline is used as before
    strict = cli_json(capsys, "grade", str(p), "--require-baseline")
    s = {r["id"]: r for r in strict["grades"]}
    assert strict["require_baseline"] is True
    assert all(s[k]["grade"] is None and s[k]["baseline_assumed"] is None for k in "ABCD")
    assert s["E"]["grade"] == 0
    call(["grade", str(p)])
    text = capsys.readouterr().out
    assert "assumed normal" in text and "--require-baseline" in text


def test_ae_table_text_shows_both_tables_with_legend_and_baseline_flag(tmp_path, capsys):
    doc = json.loads((EX / "adverse_events.json").read_text())
    doc["labs"] = [*doc.get("labs", []), {"id": "X1", "patient": doc.get("patient", "P1"), "test": "alt",
                                          "value": 900, "unit": "U/L", "uln": 40, "date": "2026-01-05"}]
    p = tmp_path / "aes.json"
    p.write_text(json.dumps(doc))
    call(["ae-table", str(p)])
    text = capsys.readouterr().out
    assert "Worst CTCAE grade per patient and term" in text and "Toxicity by cycle" in text
    assert "Legend:" in text and "baseline assumed normal for: " in text and "X1" in text
    out = cli_json(capsys, "ae-table", str(p))
    assert "X1" in out["labs_baseline_assumed_normal"]
    strict = cli_json(capsys, "ae-table", str(p), "--require-baseline")
    assert "X1" in {u["id"] for u in strict["ungraded_labs"]} and strict["labs_baseline_assumed_normal"] == []
