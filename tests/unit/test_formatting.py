"""The one number-formatting helper of CLI tables (issue 10): 4 significant digits, separators, no exponent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lutarterial.cli.formatting import human_number, human_value


@pytest.mark.parametrize(("x", "shown"), [
    (105110, "105,110"),
    (1.0511e5, "105,110"),
    (1.6e3, "1,600"),
    (12345.678, "12,350"),
    (136.325, "136.3"),
    (46.02, "46.02"),
    (3.23, "3.23"),
    (4.0, "4"),
    (0.0123, "0.0123"),
    (0.2, "0.2"),
    (-0.5, "-0.5"),
    (0.99995, "1"),
    (9999.6, "10,000"),
    (0, "0"),
    (None, ""),
    (1e-6, "1.000e-06"),  # not an ordinary value: exponent allowed
])
def test_human_number(x, shown):
    assert human_number(x) == shown


def test_human_value_passes_text_through():
    assert human_value("abc") == "abc" and human_value(True) == "True" and human_value(2.5) == "2.5"


@given(st.floats(min_value=1e-4, max_value=1e14, allow_nan=False))
def test_ordinary_values_never_use_exponent_and_keep_4_digits(x):
    s = human_number(x)
    assert "e" not in s
    assert float(s.replace(",", "")) == pytest.approx(x, rel=5e-4)
