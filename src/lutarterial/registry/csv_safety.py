"""CSV cells that a spreadsheet would run as a formula are neutralised (issue 9).

A text cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is exported
with a leading apostrophe (OWASP "CSV Injection"): ``=HYPERLINK(...)`` in a free-text reason
becomes ``'=HYPERLINK(...)``, shown as text. Only *text* values get the prefix: numbers (an int
or float from a numeric column, e.g. ``-1.5``) are written as numbers, so numeric columns stay
numeric for statistics software. A reader that wants the original text strips one leading
apostrophe from text cells that start with ``'`` followed by one of those characters.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMULA_LEADS", "neutralise"]

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` unchanged unless it is text starting with a formula character: then ``'`` + it."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value
