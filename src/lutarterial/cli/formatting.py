"""Numbers for people: one helper used by every CLI table (issue 10).

Rules: 4 significant digits (trailing zeros dropped, so 3-4 are shown), thousands separators,
no scientific notation for ordinary values (1e-4 <= |x| < 1e15); integers are shown exactly
(``105,110`` records; whole floats too), other floats rounded (``1.0511e+05`` -> ``105,110``,
``1.6e+03`` -> ``1,600``, ``136.325`` -> ``136.3``, ``12345.678`` -> ``12,350``).
Machine-readable output (``--json``, CSV) keeps full values; CSV rounding is per column (see
:mod:`lutarterial.imaging.report` and docs/imaging.md).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["human_number", "human_value", "human_range"]


def human_number(x: float | int | None, sig: int = 4) -> str:
    """``x`` with ``sig`` significant digits, thousands separators and no exponent for ordinary values."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if x.is_integer() and a < 1e15:
        return f"{int(x):,}"  # a whole number (a count, a value as entered) is shown exactly
    if a >= 1e15 or a < 1e-4:
        return f"{x:.{sig - 1}e}"
    decimals = sig - 1 - math.floor(math.log10(a))
    if decimals <= 0:
        return f"{round(x, decimals):,.0f}"
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def human_value(x: Any, sig: int = 4) -> str:
    """:func:`human_number` for numbers, ``str`` for anything else (``""`` for None)."""
    if x is None:
        return ""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return human_number(x, sig)
    return str(x)


def human_range(lo: Any, hi: Any, sig: int = 4) -> str:
    """An interval ``lo-hi`` (a CI, a PI) in :func:`human_value` form; `` to `` when a bound is negative."""
    negative = any(isinstance(x, (int, float)) and not isinstance(x, bool) and x < 0 for x in (lo, hi))
    return f"{human_value(lo, sig)}{' to ' if negative else '-'}{human_value(hi, sig)}"
