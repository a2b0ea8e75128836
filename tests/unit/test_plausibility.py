"""Plausibility layer: every limit in the table on both sides, NaN, ±inf, units, messages."""

from __future__ import annotations

import datetime as _dt
import math

import pytest

from lutarterial.errors import ImplausibleValueError, InvalidInputError, UnitError
from lutarterial.plausibility import (
    EARLIEST_DATE,
    PlausibleRange,
    check_canonical,
    check_date,
    check_quantity,
    is_plausible,
    kinds,
    limits_for,
    plausibility_table,
    require_finite,
)
from lutarterial.units import ANALYTES

KINDS = kinds()


def _step(r: PlausibleRange) -> float:
    return 1.0 if r.integer else max(abs(r.high), 1.0) * 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_each_limit_on_both_sides(kind: str) -> None:
    r = limits_for(kind)
    eps = _step(r)
    # inside, at the bounds (unless exclusive)
    if not r.low_exclusive:
        assert check_quantity(kind, r.low, r.unit) == pytest.approx(r.low)
    else:
        with pytest.raises(ImplausibleValueError):
            check_quantity(kind, r.low, r.unit)
        assert is_plausible(kind, r.low + eps, r.unit)
    if not r.high_exclusive:
        assert check_quantity(kind, r.high, r.unit) == pytest.approx(r.high)
    # outside, just beyond each bound
    for bad in (r.low - eps, r.high + eps):
        with pytest.raises(ImplausibleValueError) as info:
            check_quantity(kind, bad, r.unit)
        msg = str(info.value)
        assert r.label in msg and r.describe() in msg and "check the value" in msg
        assert not is_plausible(kind, bad, r.unit)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e308, -1e308])
def test_non_finite_and_huge_never_pass(kind: str, bad: float) -> None:
    r = limits_for(kind)
    with pytest.raises(ImplausibleValueError):
        check_quantity(kind, bad, r.unit)
    with pytest.raises(ImplausibleValueError):
        check_canonical(kind, bad)
    assert not is_plausible(kind, bad, r.unit)


def test_every_screening_analyte_has_limits() -> None:
    assert set(ANALYTES) <= set(plausibility_table())


def test_conversion_to_canonical_and_limits_apply_after_conversion() -> None:
    assert check_quantity("platelets", 150000, "/mm3") == pytest.approx(150.0)
    assert check_quantity("creatinine", 1.0, "mg/dL") == pytest.approx(88.42, rel=1e-3)
    assert check_quantity("activity", 7.4, "GBq") == pytest.approx(7400.0)
    assert check_quantity("time_post_injection", 2, "d") == pytest.approx(48.0)
    # 5,000 x10^9/L is the limit; 5,000,001 /mm3 is 5000.001 x10^9/L
    assert is_plausible("platelets", 5_000_000, "/mm3")
    assert not is_plausible("platelets", 5_000_010, "/mm3")
    # 100 GBq in MBq and in Ci
    assert is_plausible("activity", 100, "GBq")
    assert not is_plausible("activity", 3, "Ci")  # 111 GBq


def test_issue_examples() -> None:
    with pytest.raises(ImplausibleValueError, match=r"platelet count: 1e\+308"):
        check_quantity("platelets", 1e308, "10*9/L")
    with pytest.raises(ImplausibleValueError, match="-150"):
        check_quantity("platelets", -150, "10*9/L")
    with pytest.raises(ImplausibleValueError, match="time after injection"):
        check_quantity("time_post_injection", 1e300, "h")
    with pytest.raises(ImplausibleValueError):
        check_quantity("injected_activity", 0, "MBq")
    assert check_quantity("weight", 1, "kg") == 1 and not is_plausible("weight", 0.999, "kg")
    assert is_plausible("weight", 500, "kg") and not is_plausible("weight", 500.001, "kg")


def test_unknown_or_incompatible_unit_never_passes() -> None:
    for unit in ("furlongs", "g/L", "", "kg"):
        with pytest.raises(UnitError):
            check_quantity("platelets", 150, unit)
        assert not is_plausible("platelets", 150, unit)


def test_error_types() -> None:
    assert issubclass(ImplausibleValueError, InvalidInputError)
    assert ImplausibleValueError("x").exit_code == 2
    with pytest.raises(KeyError, match="no plausibility limits"):
        limits_for("no_such_quantity")
    assert not is_plausible("no_such_quantity", 1, "1")


def test_integer_kinds() -> None:
    assert check_quantity("ecog", 2, "1") == 2
    with pytest.raises(ImplausibleValueError, match="whole number"):
        check_quantity("ecog", 2.5, "1")
    with pytest.raises(ImplausibleValueError):
        check_canonical("count", -1)
    assert check_canonical("count", 0) == 0


@pytest.mark.parametrize("bad", [True, None, "abc", [1], {}])
def test_non_numbers_refused(bad: object) -> None:
    with pytest.raises(ImplausibleValueError, match="not a number"):
        check_quantity("weight", bad, "kg")  # type: ignore[arg-type]
    with pytest.raises(ImplausibleValueError, match="not a number"):
        require_finite("weight", bad)


def test_require_finite() -> None:
    assert require_finite("x", 0) == 0.0
    assert require_finite("x", -1e308) == -1e308
    assert require_finite("x", "2.5") == 2.5
    for bad in (math.nan, math.inf, -math.inf, "nan", "inf"):
        with pytest.raises(ImplausibleValueError, match="x: .* not a finite number"):
            require_finite("x", bad)


def test_check_date() -> None:
    assert check_date("d", EARLIEST_DATE) == EARLIEST_DATE
    with pytest.raises(ImplausibleValueError, match="before 1900-01-01"):
        check_date("d", _dt.date(1899, 12, 31))
    with pytest.raises(ImplausibleValueError, match="before 1900"):
        check_date("d", _dt.date(1, 1, 1))
    day = _dt.date(2026, 1, 1)
    assert check_date("d", day, not_after=day) == day
    with pytest.raises(ImplausibleValueError, match="after the visit"):
        check_date("d", _dt.date(2026, 1, 2), not_after=day, not_after_label="the visit")
    with pytest.raises(ImplausibleValueError, match="not a date"):
        check_date("d", "2026-01-01")  # type: ignore[arg-type]


def test_every_row_has_a_source_and_sane_limits() -> None:
    for r in plausibility_table().values():
        assert r.source and r.label and math.isfinite(r.low) and math.isfinite(r.high) and r.low < r.high


def test_require_finite_tree_names_the_path() -> None:
    from lutarterial.plausibility import require_finite_tree

    require_finite_tree({"a": [1, 2.5, {"b": -1e308}], "c": "nan", "d": None, "e": True})
    for bad, path in (({"a": [1, {"b": math.nan}]}, "result.a[1].b"), ([math.inf], "result[0]"),
                      ({"x": (1.0, -math.inf)}, "result.x[1]")):
        with pytest.raises(ImplausibleValueError, match=path.replace("[", r"\[").replace("]", r"\]")):
            require_finite_tree(bad, "result")
    assert ImplausibleValueError("x").http_status == 422


def test_docs_limits_table_is_generated_from_the_yaml() -> None:
    from pathlib import Path

    from lutarterial.plausibility import limits_table_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "plausibility.md").read_text(encoding="utf-8")
    embedded = doc.split("<!-- limits-table:start -->\n", 1)[1].split("<!-- limits-table:end -->", 1)[0]
    assert embedded == limits_table_markdown()
