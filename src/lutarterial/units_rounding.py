"""Rounding numbers to the precision of what they measure, for CSV files (issue 10).

CSV files carry values for machines and people alike: rounded to a stated precision per column
(significant digits or decimals), written without exponent, never with 15-17 digits of float
noise. Each table documents its column rules next to its columns (imaging: docs/imaging.md,
dosimetry: docs/dosimetry.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["round_to", "csv_value"]


def round_to(x: float, rule: str) -> float:
    """``rule``: ``"sN"`` (N significant digits) or ``"dN"`` (N decimals)."""
    kind, n = rule[0], int(rule[1:])
    if not math.isfinite(x) or x == 0:
        return x
    if kind == "s":
        return float(f"{x:.{n}g}")
    if kind == "d":
        return round(x, n)
    raise ValueError(f"unknown rounding rule {rule!r}")


def _plain(x: float) -> str:
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    import numpy as np

    return str(np.format_float_positional(x, trim="-"))  # shortest round-trip digits, no exponent


def csv_value(column: str, x: Any, rules: Mapping[str, str], default: str = "s6") -> str:
    """The CSV text of ``x`` in ``column``: rounded by ``rules[column]`` (else ``default``), plain decimals."""
    if x is None:
        return ""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return ""
    return _plain(round_to(float(x), rules.get(column, default)))
