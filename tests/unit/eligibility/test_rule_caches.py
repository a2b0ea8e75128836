"""The per-cohort caches of the rules must never change a result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from lutarterial.eligibility import rules as R
from lutarterial.eligibility.context import Context, selection_key
from lutarterial.eligibility.engine import screen_patient
from lutarterial.protocol.loader import load_protocol, version_in_force
from lutarterial.records.io import parse_json_text_many
from lutarterial.records.synthetic import make_records


def _patients(n: int = 40):
    return [parse_json_text_many(json.dumps(r), "t")[0].to_patient() for r in make_records(n, seed=11)]


def test_flag_key_refuses_values_that_compare_equal_but_print_differently():
    p = _patients(1)[0]
    proto = version_in_force(p.screening_date)
    c = proto.criterion("EXC11")
    for odd in (1, 0, 1.0, 0.0, -0.0, dt.date(2020, 1, 1)):
        q = dataclasses.replace(p, facts={**p.facts, "mri_contraindicated": odd})
        assert R._flag_key(c, Context(q, q.screening_date, proto), ("mri_contraindicated",)) is None
    for ok in (True, False, None, "yes"):
        q = dataclasses.replace(p, facts={**p.facts, "mri_contraindicated": ok})
        assert R._flag_key(c, Context(q, q.screening_date, proto), ("mri_contraindicated",)) is not None


def test_cached_flag_results_equal_uncached_ones_for_each_value_and_source():
    p = _patients(1)[0]
    proto = version_in_force(p.screening_date)
    c = proto.criterion("EXC11")
    R._FLAG_RESULTS.clear()
    for value in (True, False, None, True, False, None):
        for src in ({}, {"mri_contraindicated": "chart p.3"}):
            q = dataclasses.replace(p, facts={**p.facts, "mri_contraindicated": value}, fact_sources=src)
            ctx = Context(q, q.screening_date, proto)
            assert R.exc11(c, ctx) == R._flags_rule_uncached(c, ctx, ["mri_contraindicated"])
    assert len(R._FLAG_RESULTS) == 6  # 3 values x 2 sources: a hit for every repeat


def test_selection_key_ignores_only_the_interpretation_text():
    proto = load_protocol(version_in_force(dt.date(2030, 1, 1)).version)
    w = proto.criterion("INC04").window("imaging")
    assert selection_key(w) == selection_key(dataclasses.replace(w, interpretation="other text"))
    assert selection_key(w) != selection_key(dataclasses.replace(w, max_age_days=(w.max_age_days or 0) + 1))
    assert selection_key(w) != selection_key(dataclasses.replace(w, strictly_after_anchor=not w.strictly_after_anchor))


def test_screening_twice_gives_identical_results():
    pats = _patients()
    first = [screen_patient(p, as_of=p.screening_date, protocol=version_in_force(p.screening_date)) for p in pats]
    again = [screen_patient(p, as_of=p.screening_date, protocol=version_in_force(p.screening_date)) for p in pats]
    assert first == again


def test_inc01_and_inc09_cached_equal_uncached_over_their_inputs():
    p = _patients(1)[0]
    proto = version_in_force(p.screening_date)
    c1, c9 = proto.criterion("INC01"), proto.criterion("INC09")
    R._FLAG_RESULTS.clear()
    for _ in range(2):  # second pass: every result comes from the cache
        for diff in ("well", "poor", None):
            for origin in ("pancreas", "lung", None):
                q = dataclasses.replace(p, facts={**p.facts, "differentiation": diff, "primary_origin": origin})
                ctx = Context(q, q.screening_date, proto)
                assert R.inc01(c1, ctx) == R._inc01(c1, ctx)
        for sex in ("female", "male", None):
            for meno in ("post", "pre", None):
                for agreed in (True, False, None):
                    q = dataclasses.replace(p, sex=sex, menopausal_status=meno,
                                            facts={**p.facts, "contraception_agreed": agreed})
                    ctx = Context(q, q.screening_date, proto)
                    assert R.inc09(c9, ctx) == R._inc09(c9, ctx)
    assert len(R._FLAG_RESULTS) == 9 + 27


def _compare_reference(value: float, operator: str, limit: float) -> bool:
    """The original dict-based form of ``context.compare`` (before the speed work)."""
    import math

    if math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12):
        return operator in (">=", "<=", "==")
    return {"<": value < limit, "<=": value < limit, ">": value > limit, ">=": value > limit, "==": False}[operator]


def test_compare_matches_its_reference_form_on_both_sides_of_each_limit():
    from lutarterial.eligibility.context import compare

    limits = (0.0, 1.0, 75.0, 1e-13, -2.5, 1e9, float("inf"))
    for limit in limits:
        for value in (limit, limit * (1 + 1e-10), limit - 1e-6, limit + 1e-6, limit * 1.01 + 0.01, float("nan")):
            for op in ("<", "<=", ">", ">=", "=="):
                assert compare(value, op, limit) is _compare_reference(value, op, limit), (value, op, limit)
    assert compare(75.0, ">=", 75.0) and not compare(74.99, ">=", 75.0) and compare(75.01, ">=", 75.0)
    assert compare(2.0, "<", 2.5) and not compare(2.5, "<", 2.5) and compare(2.5, "<=", 2.5)


def test_log_row_verdict_is_the_results_verdict():
    from lutarterial.eligibility.cohort import log_row

    rows = []
    for p in _patients(60):
        r = screen_patient(p, as_of=p.screening_date, protocol=version_in_force(p.screening_date))
        row = log_row(r, "o")
        assert row["verdict"] == r.verdict.value
        assert row["failed"].split() == r.failed
        rows.append(row["verdict"])
    assert {"eligible", "ineligible", "incomplete"} <= set(rows)
