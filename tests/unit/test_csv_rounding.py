"""CSV values rounded to the measurement's precision, written without exponent (issue 10)."""

from __future__ import annotations

import pytest

from lutarterial.units_rounding import csv_value, round_to


@pytest.mark.parametrize(("x", "rule", "text"), [
    (12778.974959367239, "s4", "12780"),
    (50.3371010224766, "d1", "50.3"),
    (6.99234234234, "d3", "6.992"),
    (3940602.123, "s4", "3941000"),
    (0.000123456, "s3", "0.000123"),
    (7, "s4", "7"),
])
def test_csv_value(x, rule, text):
    assert csv_value("c", x, {"c": rule}) == text


def test_none_nan_text_and_unknown_rule():
    assert csv_value("c", None, {}) == "" and csv_value("c", float("nan"), {}) == ""
    assert csv_value("c", "lesion", {}) == "lesion" and csv_value("c", True, {}) == "True"
    with pytest.raises(ValueError):
        round_to(1.5, "x2")


def test_dosimetry_and_imaging_csv_columns_have_stated_precision():
    from lutarterial.cli.dosimetry import CSV_ROUNDING, TAC_CSV_COLUMNS, VOXEL_CSV_COLUMNS
    from lutarterial.imaging.report import CSV_ROUNDING as IMG, METRIC_FIELDS

    numeric = set(TAC_CSV_COLUMNS + VOXEL_CSV_COLUMNS) - {"voi", "cycle", "kind", "model", "n_points", "n_voxels"}
    assert numeric <= set(CSV_ROUNDING)
    assert set(IMG) <= set(METRIC_FIELDS)
