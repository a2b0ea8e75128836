"""Quick pass checks (eligibility.quick) say ``True`` only where the full rule passes.

Why: ``screen`` without ``--json`` writes only the screening log, which shows the failed and
unknown criteria with their reasons; a criterion whose quick check finds it plainly met is
not explained (issue 10, speed). A quick check that said ``True`` where the rule fails or is
unknown would change a verdict, so each one is checked against its rule on varied records:
the golden corpus (synthetic, randomly mutated, hand-written), records pushed to the edges of
every lab threshold and window, and random domain records (hypothesis). The log rows with and
without detail must be identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from lutarterial.eligibility.cohort import log_row, screen_texts
from lutarterial.eligibility.context import Context
from lutarterial.eligibility.engine import screen_patient
from lutarterial.eligibility.quick import QUICK, quick_check
from lutarterial.eligibility.results import Status
from lutarterial.eligibility.rules import RULES
from lutarterial.errors import LutarterialError
from lutarterial.protocol.loader import all_protocols, load_protocol
from lutarterial.records.fast import patient_from_json
from lutarterial.records.io import parse_json_text_many
from lutarterial.records.synthetic import make_records

HERE = Path(__file__).parent


def _module(name: str):
    """A sibling test module, loaded by path (the suite runs with --import-mode=importlib)."""
    key = f"_quick_checks_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]


def _patients_of(texts):
    out = []
    for origin, text in texts:
        p = patient_from_json(text) if '"resourceType"' not in text else None
        if p is not None:
            out.append(p)
            continue
        try:
            recs = parse_json_text_many(text, origin)
        except LutarterialError:
            continue
        out += [r if not hasattr(r, "to_patient") else r.to_patient() for r in recs]
    return out


def _check(patient, as_of, protocol) -> int:
    """Every quick ``True`` is a ``pass`` of the rule (same context, and a fresh one); returns the quick passes."""
    ctx = Context(patient, as_of, protocol)
    hits = 0
    for c in protocol.criteria:
        q = quick_check(c)
        if q is None:
            continue
        try:
            said = q(ctx)
        except LutarterialError:
            said = None
        try:
            full = RULES[c.id](c, ctx).status
            fresh = RULES[c.id](c, Context(patient, as_of, protocol)).status
        except LutarterialError:
            assert said is None or said is False, f"{c.id}: quick passed where the rule refuses ({patient.record_id})"
            continue
        assert full is fresh
        if said:
            hits += 1
            assert full is Status.PASS, f"{c.id}: quick pass but the rule says {full.value} ({patient.record_id})"
    return hits


def _settings():
    return [(None, p) for p in all_protocols()] + [(dt.date(2024, 6, 3), load_protocol("1"))]


def test_quick_checks_agree_with_the_rules_on_the_golden_corpus():
    golden = _module("test_golden_output")
    golden._import_base()
    patients = _patients_of(golden.corpus())
    assert len(patients) > 3000
    hits = 0
    for as_of, protocol in _settings():
        for p in patients:
            day = as_of or p.screening_date or dt.date(2024, 6, 3)
            hits += _check(p, day, protocol)
    assert hits > 10 * len(patients)  # the quick checks do take the common case


def _edge_variants(p):
    """The patient with each lab value moved onto, just below and just above its thresholds, and
    each dated item moved to the edges of its windows."""
    limits = {"haemoglobin": (8.0, "g/dL"), "neutrophils": (1.5, "G/L"), "platelets": (75.0, "G/L"),
              "platelets2": (100000.0, "/mm3"), "albumin": (30.0, "g/L"), "lvef": (40.0, "%"),
              "systolic_bp": (160.0, "mm[Hg]"), "diastolic_bp": (95.0, "mm[Hg]"), "ecog": (2.0, None),
              "alt": (100.0, "U/L"), "ast": (100.0, "U/L"), "creatinine": (150.0, "umol/L"), "weight": (40.0, "kg")}
    for key, (limit, unit) in limits.items():
        analyte = key.rstrip("2")
        for v in (limit, limit * (1 - 1e-12), limit * (1 + 1e-12), limit - 1, limit + 1, limit - 0.5, 0.0, -1.0, 1e9):
            ms = tuple(m._replace(value=v, unit=unit if m.unit is not None or unit is None else m.unit)
                       if m.analyte == analyte else m for m in p.measurements)
            yield dataclasses.replace(p, measurements=ms)
    as_of = p.screening_date
    cycles = sorted(a.date for a in (p.lutathera or ()) if a.date)
    edges = [as_of, as_of + dt.timedelta(days=1), as_of - dt.timedelta(days=28), as_of - dt.timedelta(days=29),
             as_of - dt.timedelta(days=90), as_of - dt.timedelta(days=91)]
    if cycles:
        edges += [cycles[-1], cycles[-1] + dt.timedelta(days=1), cycles[-1] + dt.timedelta(days=14),
                  cycles[-1] + dt.timedelta(days=15), cycles[0] - dt.timedelta(days=366)]
    for d in edges:
        yield dataclasses.replace(p, measurements=tuple(m._replace(date=d) for m in p.measurements))
        yield dataclasses.replace(p, scans=tuple(s._replace(date=d) for s in p.scans or ()),
                                  imaging=tuple(i._replace(date=d) for i in p.imaging or ()))
        yield dataclasses.replace(p, facts={**p.facts, "progression_date": d, "informed_consent_date": d})
        yield dataclasses.replace(p, cardiovascular_events=(p.cardiovascular_events or ()) + (
            type(p.cardiovascular_events[0])("stroke", d) if p.cardiovascular_events else _event(d),))
    yield dataclasses.replace(p, measurements=p.measurements + p.measurements[:3])  # same-day duplicates
    yield dataclasses.replace(p, facts={**p.facts, "hepatic_invasion_percent": 50.0, "cirrhosis": True,
                                        "child_pugh_score": 7})


def _event(d):
    from lutarterial.eligibility.patient import Event

    return Event("stroke", d)


def test_quick_checks_agree_with_the_rules_at_every_edge():
    base = _patients_of([(str(i), json.dumps(r)) for i, r in enumerate(make_records(25, seed=8))])
    for p in base:
        for q in _edge_variants(p):
            for _as_of, protocol in _settings()[:2]:
                _check(q, q.screening_date, protocol)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient=_module("test_properties").patients,
       as_of=st.dates(min_value=dt.date(2021, 4, 1), max_value=dt.date(2026, 12, 31)), version=st.sampled_from(["1", "2"]))
def test_quick_checks_agree_with_the_rules_on_random_records(patient, as_of, version):
    _check(patient, as_of, load_protocol(version))


def test_log_rows_without_detail_equal_those_with_detail():
    golden = _module("test_golden_output")
    golden._import_base()
    texts = golden.corpus()
    for as_of, version in ((None, "2"), (dt.date(2022, 11, 30), None), (dt.date(2024, 6, 3), "1")):
        full = [row for _line, row in screen_texts(texts, as_of=as_of, protocol_version=version, want_json=True)]
        bare = [row for _line, row in screen_texts(texts, as_of=as_of, protocol_version=version, want_json=False)]
        assert bare == full


def test_bare_results_differ_only_in_what_passes_without_words():
    p = _patients_of([("x", json.dumps(make_records(1, seed=3)[0]))])[0]
    protocol = load_protocol("1")
    full = screen_patient(p, as_of=p.screening_date, protocol=protocol)
    bare = screen_patient(p, as_of=p.screening_date, protocol=protocol, detail=False)
    assert log_row(bare) == log_row(full)
    for a, b in zip(full.criteria, bare.criteria):
        assert a.id == b.id and a.status is b.status
        if b.reason == "":
            assert b.status is Status.PASS and b.evidence == ()
        else:
            assert b == a


def test_every_criterion_of_every_version_has_a_quick_check():
    for protocol in all_protocols():
        for c in protocol.criteria:
            assert c.id in QUICK and quick_check(c) is not None, (protocol.version, c.id)
