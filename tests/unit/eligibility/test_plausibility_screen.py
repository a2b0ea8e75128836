"""Screening never turns a physically impossible value into a pass or a fail (issue 9, item 5).

Regression: platelets 1e308 x10^9/L screened ``eligible`` (exit 0). An implausible value is
``unknown`` with a reason naming the value and the limits; limits on both sides.
"""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from lutarterial.eligibility import Status, screen
from lutarterial.records import parse_record

from .conftest import set_lab

AS_OF = dt.date(2024, 6, 3)


def _result(record):
    return screen(parse_record(record), as_of=AS_OF)


def _criteria_mentioning(result, word):
    return [c for c in result.criteria if word in c.reason]


def test_platelets_1e308_is_not_eligible(record):
    res = _result(set_lab(record, "platelets", 1e308, "10*9/L"))
    assert res.verdict.value != "eligible"
    hits = _criteria_mentioning(res, "implausible")
    assert hits and all(c.status is Status.UNKNOWN for c in hits)
    assert "1e+308" in hits[0].reason and "0 to 5000 10*9/L" in hits[0].reason


@pytest.mark.parametrize(
    ("analyte", "inside", "outside", "unit"),
    [
        ("platelets", 5000, 5000.5, "10*9/L"),
        ("platelets", 5_000_000, 5_000_500, "/mm3"),
        ("haemoglobin", 30, 30.01, "g/dL"),
        ("neutrophils", 1000, 1000.1, "10*9/L"),
        ("albumin", 100, 100.1, "g/L"),
        ("creatinine", 10000, 10001, "umol/L"),
        ("weight", 500, 500.1, "kg"),
        ("lvef", 100, 100.1, "%"),
        ("alt", 100000, 100001, "U/L"),
    ],
)
def test_limits_both_sides(record, analyte, inside, outside, unit):
    ok = _result(set_lab(record, analyte, inside, unit))
    assert not _criteria_mentioning(ok, "implausible")
    bad = _result(set_lab(record, analyte, outside, unit))
    hits = _criteria_mentioning(bad, "implausible")
    assert hits and all(c.status is Status.UNKNOWN for c in hits)
    assert bad.verdict.value != "eligible"


def test_negative_lab_value_is_unknown(record):
    res = _result(set_lab(record, "platelets", -150, "10*9/L"))
    assert res.verdict.value == "incomplete"
    assert _criteria_mentioning(res, "implausible")[0].status is Status.UNKNOWN


def test_implausible_uln_is_unknown(record):
    res = _result(set_lab(record, "alt", 30, "U/L", reference_high=1e300))
    hits = _criteria_mentioning(res, "upper reference limit")
    assert hits and hits[0].status is Status.UNKNOWN and "implausible" in hits[0].reason


def test_birth_year_1800_is_unknown_not_an_age(record):
    r = copy.deepcopy(record)
    r["patient"]["birth_date"] = "1800-01-01"
    res = _result(r)
    inc08 = res.criterion("INC08")
    assert inc08.status is Status.UNKNOWN and "physical limits of age" in inc08.reason
    assert res.verdict.value != "eligible"
