"""Byte-stable JSON: the same input and seed give the same bytes.

Floats are written with 12 significant digits (``format(x, '.12g')`` read back as a float, so
the JSON stays numeric); NaN and infinities become ``null`` (JSON has no such numbers, and a
missing number must never read as a value). Keys are sorted, separators fixed, ASCII only.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["clean_number", "canonicalise", "canonical_json", "SIGNIFICANT_DIGITS"]

SIGNIFICANT_DIGITS = 12


def clean_number(x: Any) -> float | int | None:
    """A finite float rounded to :data:`SIGNIFICANT_DIGITS` significant digits, else ``None``."""
    if x is None or isinstance(x, bool):
        return x  # type: ignore[return-value]
    if isinstance(x, int):
        return x
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    out = float(format(f, f".{SIGNIFICANT_DIGITS}g"))
    return 0.0 if out == 0 else out  # no "-0.0"


def canonicalise(obj: Any) -> Any:
    """Recursively: floats (incl. numpy) cleaned, tuples to lists, numpy ints to int, keys to str."""
    if isinstance(obj, dict):
        return {str(k): canonicalise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canonicalise(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if hasattr(obj, "dtype") and getattr(obj, "shape", None) == ():  # numpy scalar
        item = obj.item()
        return canonicalise(item)
    if isinstance(obj, float):
        return clean_number(obj)
    return str(obj)


def canonical_json(obj: Any, *, indent: int | None = 2) -> str:
    """JSON text with sorted keys and fixed float formatting (see module docstring)."""
    return json.dumps(canonicalise(obj), sort_keys=True, indent=indent, ensure_ascii=True,
                      separators=(",", ": ") if indent is not None else (",", ":"), allow_nan=False)
