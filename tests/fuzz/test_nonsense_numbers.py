"""Nonsense numbers never come out as a result (issue 9, items 5 and 7).

Targeted properties, derandomized: a physically impossible number placed where a command reads
a measurement gives ``unknown``/no grade/an error — never ``eligible``, a grade, a due date or a dose.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lutarterial.plausibility import is_plausible, limits_for  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "clinical"
FUZZ = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NONSENSE = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -150.0, 1e308, -1e308, 1e30, 10**25]) | st.floats(
    min_value=1e6, max_value=1e300) | st.floats(max_value=-1e-9, min_value=-1e300)


def _base_record() -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "elig_conftest", Path(__file__).resolve().parents[1] / "unit" / "eligibility" / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.base_record()


BASE = _base_record()
SCREEN_ANALYTES = sorted({m["analyte"] for m in BASE["measurements"]} - {"ecog"})


@FUZZ
@given(analyte=st.sampled_from(SCREEN_ANALYTES), value=NONSENSE)
def test_screening_never_passes_a_nonsense_lab(analyte: str, value: float) -> None:
    from lutarterial.eligibility import screen
    from lutarterial.errors import InvalidInputError
    from lutarterial.records import parse_record

    rec = copy.deepcopy(BASE)
    for m in rec["measurements"]:
        if m["analyte"] == analyte:
            m["value"] = value
    try:
        result = screen(parse_record(rec), as_of=dt.date(2024, 6, 3))
    except InvalidInputError:
        return  # refused at the edge (e.g. NaN is not valid in the record schema): no result
    unit = next(m.get("unit") for m in rec["measurements"] if m["analyte"] == analyte)
    if not is_plausible(analyte, value, unit or "1"):
        assert result.verdict.value != "eligible", (analyte, value)


@FUZZ
@given(test=st.sampled_from(["hemoglobin", "platelets", "neutrophils", "creatinine", "alt", "bilirubin", "albumin"]),
       field=st.sampled_from(["value", "lln", "uln", "baseline"]), value=NONSENSE)
def test_grade_never_grades_nonsense(test: str, field: str, value: float) -> None:
    from lutarterial.clinical.ctcae import grade_lab

    units = {"hemoglobin": "g/dL", "platelets": "G/L", "neutrophils": "G/L", "creatinine": "umol/L", "alt": "U/L",
             "bilirubin": "umol/L", "albumin": "g/L"}
    refs = {"hemoglobin": (12, 16, 13), "platelets": (150, 400, 200), "neutrophils": (1.8, 7.5, 3),
            "creatinine": (45, 104, 80), "alt": (5, 40, 20), "bilirubin": (3, 21, 10), "albumin": (35, 50, 40)}
    lln, uln, base = refs[test]
    kw: dict[str, Any] = {"value": refs[test][2], "lln": lln, "uln": uln, "baseline": base, field: value}
    v = kw.pop("value")
    g = grade_lab(test, v, units[test], **kw)
    assert g.grade is None, (test, field, value, g.reason)


@FUZZ
@given(where=st.sampled_from(["interval_weeks", "lab", "activity_gbq"]), value=NONSENSE)
def test_next_dose_refuses_nonsense(where: str, value: float) -> None:
    from lutarterial.clinical.dosing import decide_next_dose, parse_history
    from lutarterial.errors import InvalidInputError

    doc = json.loads((EXAMPLES / "history.json").read_text(encoding="utf-8"))
    if where == "interval_weeks":
        doc["interval_weeks"] = value
    elif where == "lab":
        doc["labs"][0]["value"] = value
    else:
        doc["administrations"][0]["activity_gbq"] = value
    with pytest.raises(InvalidInputError):
        decide_next_dose(parse_history(doc))


@FUZZ
@given(column=st.sampled_from(["time_h", "activity_mbq", "mass_g"]), value=NONSENSE)
def test_tac_refuses_nonsense(tmp_path_factory: pytest.TempPathFactory, column: str, value: float) -> None:
    from lutarterial.dosimetry.io import read_tac_csv
    from lutarterial.errors import InvalidInputError

    rows = {"time_h": ["4", "24", "96"], "activity_mbq": ["100", "80", "40"], "mass_g": ["300"] * 3}
    rows[column][1] = repr(value)
    p = tmp_path_factory.mktemp("tac") / "tac.csv"
    p.write_text("voi,time_h,activity_mbq,mass_g\n" + "".join(
        f"kidney,{rows['time_h'][i]},{rows['activity_mbq'][i]},{rows['mass_g'][i]}\n" for i in range(3)))
    with pytest.raises(InvalidInputError):
        read_tac_csv(p)


def test_limits_used_here_exist() -> None:
    for a in SCREEN_ANALYTES:
        assert limits_for(a).high < 1e6


def _numeric_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_numeric_paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_numeric_paths(v, (*prefix, i)))
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        out.append(prefix)
    return out


NUMERIC_PATHS = _numeric_paths(BASE)


@FUZZ
@given(path=st.sampled_from(NUMERIC_PATHS), value=NONSENSE)
def test_screen_cli_output_is_strict_json_and_never_eligible_on_nonsense(
        tmp_path_factory: pytest.TempPathFactory, path: tuple[Any, ...], value: float) -> None:
    import contextlib
    import io

    from lutarterial.cli.main import run

    rec = copy.deepcopy(BASE)
    parent: Any = rec
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    f = tmp_path_factory.mktemp("scr") / "r.json"
    f.write_text(json.dumps(rec, allow_nan=True), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run(["screen", str(f), "--json"])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    assert code in (0, 1, 2) and "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
    if out.getvalue().strip():
        doc = json.loads(out.getvalue(), parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))
        if doc.get("verdict") == "eligible":
            # only a value nobody reads may be nonsense and still leave the record eligible
            assert path[0] not in ("measurements",) or path[-1] in ("reference_low",), (path, value)
