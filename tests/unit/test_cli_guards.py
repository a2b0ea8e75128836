"""The CLI's number guard and last-resort error handler (issue 9): unit level, both sides of the limits."""

from __future__ import annotations

import math
import sqlite3

import pytest

from lutarterial.cli.errors import INTERNAL_ERROR_PREFIX, describe, handle
from lutarterial.cli.numbers import QUANTITIES, check_cli_number
from lutarterial.errors import ImplausibleValueError
from lutarterial.plausibility import limits_for


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1, -1e-300])
def test_non_finite_and_negative_refused_for_any_number(value: float) -> None:
    with pytest.raises(ImplausibleValueError, match="--some-option"):
        check_cli_number("some_option", "--some-option", value)


@pytest.mark.parametrize("param", sorted(QUANTITIES))
def test_named_quantities_both_sides(param: str) -> None:
    kind, unit = QUANTITIES[param]
    r = limits_for(kind)
    from lutarterial.units import convert

    high = convert(r.high, r.unit, unit)
    check_cli_number(param, "--x", high)  # at the limit: accepted
    with pytest.raises(ImplausibleValueError):
        check_cli_number(param, "--x", high * (1 + 1e-6) + 1e-9)


def test_ignores_non_numbers_and_accepts_zero_where_allowed() -> None:
    check_cli_number("names", "--names", "x")
    check_cli_number("json", "--json", True)
    check_cli_number("jobs", "--jobs", 0)


def test_describe_anticipated_errors() -> None:
    msg, ok = describe(FileNotFoundError(2, "No such file or directory", "/x/y"))
    assert ok and msg.startswith("/x/y:")
    msg, ok = describe(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"))
    assert ok and "UTF-8" in msg
    from sqlalchemy.exc import DatabaseError

    msg, ok = describe(DatabaseError("SELECT 1", {}, sqlite3.DatabaseError("file is not a database")))
    assert ok and "file is not a database" in msg and "--db" in msg


def test_unanticipated_error_is_one_line_naming_a_bug(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUTARTERIAL_DEBUG", raising=False)
    assert handle(KeyError("boom")) == 2
    err = capsys.readouterr().err
    assert err.startswith(INTERNAL_ERROR_PREFIX) and "KeyError" in err and "Traceback" not in err
    monkeypatch.setenv("LUTARTERIAL_DEBUG", "1")
    with pytest.raises(KeyError):
        handle(KeyError("boom"))
