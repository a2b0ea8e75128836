"""Issue 9 regressions, clinical: ``next-dose`` with ``interval_weeks: -8`` gave a due date before the
last administration; ``"administrations": 5`` gave a traceback; a decision dated before the last
administration was answered; ``grade`` graded haemoglobin 1e308 g/dL as grade 0."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lutarterial.cli.main import run

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "clinical"


def cli(capsys, *args):
    try:
        run([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def history():
    return json.loads((EXAMPLES / "history.json").read_text(encoding="utf-8"))


def _write(tmp_path, doc, name="doc.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_example_history_decides(tmp_path, capsys, history):
    code, out, err = cli(capsys, "next-dose", _write(tmp_path, history), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["due_date"] >= max(a["date"] for a in history["administrations"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interval_weeks": -8}, "interval_weeks"),
        ({"interval_weeks": 0}, "interval_weeks"),
        ({"interval_weeks": 520.5}, "interval_weeks"),
        ({"interval_weeks": 1e308}, "interval_weeks"),
        ({"administrations": 5}, "administrations must be a list"),
        ({"administrations": [5]}, "administrations[0] must be an object"),
        ({"labs": "x"}, "labs must be a list"),
        ({"adverse_events": {"a": 1}}, "adverse_events must be a list"),
        ({"baseline": [1]}, "baseline must be an object"),
        ({"decision_date": "2025-03-09"}, "before the last administration"),
        ({"decision_date": "1899-12-31"}, "before 1900"),
        ({"decision_date": 20250505}, "not an ISO date"),
    ],
)
def test_nonsense_history_is_an_error(tmp_path, capsys, history, change, message):
    doc = {**copy.deepcopy(history), **change}
    code, out, err = cli(capsys, "next-dose", _write(tmp_path, doc), "--json")
    assert code == 2 and out == "", out
    assert message in err and "Traceback" not in err and "internal error" not in err


def test_interval_limits_inside(tmp_path, capsys, history):
    for weeks in (0.1, 520):
        code, out, err = cli(capsys, "next-dose", _write(tmp_path, {**history, "interval_weeks": weeks}), "--json")
        assert code == 0, err


@pytest.mark.parametrize("value", [-150, 5000.5, 1e308])
def test_implausible_lab_in_history_is_an_error(tmp_path, capsys, history, value):
    doc = copy.deepcopy(history)
    doc["labs"][0]["value"] = value  # platelets, G/L
    code, out, err = cli(capsys, "next-dose", _write(tmp_path, doc), "--json")
    assert code == 2 and "platelet" in err and "physical limits" in err


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("value", 1e308, "physical limits"), ("value", 30.01, "physical limits"), ("lln", 1e308, "LLN"),
     ("baseline", float("nan"), "baseline")],
)
def test_grade_withholds_grade_for_implausible_values(tmp_path, capsys, field, value, reason):
    doc = {"patient": "P", "labs": [{"id": "L1", "test": "hemoglobin", "value": 9.1, "unit": "g/dL", "lln": 12.0,
                                     "uln": 16.0, "date": "2025-03-03", field: value}]}
    code, out, err = cli(capsys, "grade", _write(tmp_path, doc), "--json")
    assert code == 0, err
    g = json.loads(out)["grades"][0]
    assert g["grade"] is None and reason in g["reason"]


def test_grade_at_the_limit_is_graded(tmp_path, capsys):
    doc = {"labs": [{"id": "L1", "test": "hemoglobin", "value": 30, "unit": "g/dL", "lln": 12.0, "uln": 16.0}]}
    code, out, _ = cli(capsys, "grade", _write(tmp_path, doc), "--json")
    assert code == 0 and json.loads(out)["grades"][0]["grade"] is not None


@pytest.mark.parametrize(
    ("diameter", "ok"), [(1000, True), (1000.5, False), (float("inf"), False), (-1, False)],
)
def test_recist_diameter_limits(tmp_path, capsys, diameter, ok):
    doc = json.loads((EXAMPLES / "assessments.json").read_text(encoding="utf-8"))
    doc["assessments"][0]["lesions"][0]["diameter_mm"] = diameter
    code, out, err = cli(capsys, "recist", _write(tmp_path, doc), "--json")
    assert (code == 0) is ok, err
    if not ok:
        assert code == 2 and "diameter_mm" in err and "Traceback" not in err


def test_ae_table_bad_shapes(tmp_path, capsys):
    for doc in ({"administrations": 5}, {"adverse_events": [{"grade": 9, "onset": "2025-01-01"}]},
                {"labs": 3}, {"administrations": [{"route": "IV", "cycle": 0, "date": "2025-01-01"}]}):
        code, out, err = cli(capsys, "ae-table", _write(tmp_path, doc), "--json")
        assert code == 2 and out == "" and "Traceback" not in err and "internal error" not in err, (doc, err)
