"""RECIST 1.1 (Eisenhauer et al. 2009): target/non-target rules, Table 1 and 2 rows, BOR (Table 3)."""

from __future__ import annotations

import itertools

import pytest

from lutarterial.clinical.recist import (
    RecistOptions,
    check_baseline,
    evaluate_recist,
    evaluate_recist_scopes,
    overall_response_table1,
    overall_response_table2,
    parse_recist_input,
)
from lutarterial.errors import InvalidInputError


def run(doc, **kw):
    patient, assessments = parse_recist_input(doc)
    return evaluate_recist(assessments, patient=patient, **kw)


def doc_targets(base, follow, non_target=None, nt_follow=None, new=None, dates=None):
    """base: list of (id, organ, nodal, mm); follow: list of dicts id->mm (None = not measured)."""
    dates = dates or [f"2025-{m:02d}-01" for m in range(1, len(follow) + 2)]
    lesions = [{"id": i, "role": "target", "organ": o, "nodal": n, "diameter_mm": d} for i, o, n, d in base]
    for i, organ in (non_target or []):
        lesions.append({"id": i, "role": "non_target", "organ": organ, "nodal": False})
    out = [{"date": dates[0], "baseline": True, "lesions": lesions}]
    for k, f in enumerate(follow):
        ls = [{"id": i, "diameter_mm": v} for i, v in f.items()]
        if nt_follow:
            ls += [{"id": i, "status": s} for i, s in nt_follow[k].items()]
        out.append({"date": dates[k + 1], "baseline": False, "lesions": ls,
                    "new_lesions": (new[k] if new else [])})
    return {"patient": "P1", "assessments": out}


# ------------------------------------------------------------------ Table 1: every row
TABLE1 = [
    ("CR", "CR", False, "CR"),
    ("CR", "Non-CR/Non-PD", False, "PR"),
    ("CR", "NE", False, "PR"),
    ("PR", "Non-CR/Non-PD", False, "PR"),
    ("PR", "NE", False, "PR"),
    ("PR", "CR", False, "PR"),
    ("SD", "Non-CR/Non-PD", False, "SD"),
    ("SD", "NE", False, "SD"),
    ("NE", "Non-CR/Non-PD", False, "NE"),
    ("PD", "CR", False, "PD"),
    ("PD", "NE", True, "PD"),
    ("CR", "PD", False, "PD"),
    ("SD", "PD", True, "PD"),
    ("CR", "CR", True, "PD"),
    ("NE", "NE", True, "PD"),
    ("CR", "NA", False, "CR"),
]


@pytest.mark.parametrize(("t", "nt", "new", "expected"), TABLE1)
def test_table1_rows(t, nt, new, expected):
    assert overall_response_table1(t, nt, new) == expected


@pytest.mark.parametrize(
    ("nt", "new", "expected"),
    [("CR", False, "CR"), ("Non-CR/Non-PD", False, "Non-CR/Non-PD"), ("NE", False, "NE"), ("PD", False, "PD"),
     ("CR", True, "PD"), ("Non-CR/Non-PD", True, "PD")],
)
def test_table2_rows(nt, new, expected):
    assert overall_response_table2(nt, new) == expected


def test_table1_any_pd_component_wins():
    for t, nt in itertools.product(["CR", "PR", "SD", "NE", "PD"], ["CR", "Non-CR/Non-PD", "NE", "PD", "NA"]):
        r = overall_response_table1(t, nt, True)
        assert r == "PD"


# ------------------------------------------------------------------ target response rules
def test_pr_is_30_percent_decrease_from_baseline_inclusive():
    base = [("T1", "liver", False, 60.0), ("T2", "lung", False, 40.0)]  # sum 100
    r = run(doc_targets(base, [{"T1": 40.0, "T2": 30.0}]))  # 70 = -30 %
    assert r.assessments[1].target == "PR" and r.assessments[1].change_from_baseline_pct == -30.0
    r = run(doc_targets(base, [{"T1": 40.1, "T2": 30.0}]))  # -29.9 %
    assert r.assessments[1].target == "SD"


def test_pd_needs_20_percent_and_5_mm_from_nadir():
    # small nadir: 20 % but only 4 mm -> not PD (the 2009 paper's absolute 5 mm rule)
    base = [("T1", "liver", False, 30.0)]
    r = run(doc_targets(base, [{"T1": 20.0}, {"T1": 24.0}, {"T1": 25.0}]))
    tps = r.assessments
    assert tps[1].target == "PR"  # -33 %
    assert tps[2].nadir_mm == 20.0 and tps[2].change_from_nadir_pct == 20.0
    assert tps[2].target == "SD"  # +20 % but only +4 mm from nadir: not PD; -20 % from baseline: not PR
    assert tps[3].target == "PD"  # +5 mm and +25 % from nadir 20
    assert r.progression_date == "2025-04-01"


def test_pd_exact_boundaries():
    base = [("T1", "liver", False, 50.0)]
    # nadir 50 (baseline): +20 % = 60 and +10 mm -> PD at exactly 20 %
    assert run(doc_targets(base, [{"T1": 60.0}])).assessments[1].target == "PD"
    assert run(doc_targets(base, [{"T1": 59.9}])).assessments[1].target == "SD"
    # nadir 20: exactly +5 mm and +25 % -> PD; +4.9 mm (24.5 %) -> not PD
    base = [("T1", "liver", False, 40.0)]
    assert run(doc_targets(base, [{"T1": 20.0}, {"T1": 25.0}])).assessments[2].target == "PD"
    assert run(doc_targets(base, [{"T1": 20.0}, {"T1": 24.9}])).assessments[2].target == "PR"


def test_nadir_includes_baseline_and_is_the_smallest_prior_sum():
    base = [("T1", "liver", False, 50.0)]
    r = run(doc_targets(base, [{"T1": 55.0}, {"T1": 45.0}, {"T1": 54.0}, {"T1": 55.0}]))
    tps = r.assessments
    assert tps[1].nadir_mm == 50.0 and tps[1].target == "SD"
    assert tps[2].nadir_mm == 50.0 and tps[2].target == "SD"
    # nadir is now 45 (not the baseline 50): 54 >= 1.2 x 45 = 54 and +9 mm >= 5 -> PD
    assert tps[3].nadir_mm == 45.0 and tps[3].target == "PD"


def test_cr_requires_nonnodal_zero_and_nodes_below_10mm():
    base = [("T1", "liver", False, 30.0), ("N1", "lymph node", True, 20.0)]
    r = run(doc_targets(base, [{"T1": 0.0, "N1": 9.9}]))
    assert r.assessments[1].target == "CR"
    assert r.assessments[1].sum_mm == 9.9  # node short axis still counted in the sum
    r = run(doc_targets(base, [{"T1": 0.0, "N1": 10.0}]))
    assert r.assessments[1].target == "PR"  # node of 10 mm is not normal


def test_too_small_lesion_counts_5mm_and_absent_0mm():
    p = {"patient": "P", "assessments": [
        {"date": "2025-01-01", "baseline": True,
         "lesions": [{"id": "T1", "role": "target", "organ": "liver", "diameter_mm": 20},
                     {"id": "T2", "role": "target", "organ": "lung", "diameter_mm": 20}]},
        {"date": "2025-03-01", "baseline": False,
         "lesions": [{"id": "T1", "status": "too_small"}, {"id": "T2", "status": "absent"}]},
    ]}
    r = run(p)
    assert r.assessments[1].sum_mm == 5.0 and r.assessments[1].target == "PR"


def test_missing_measurement_gives_ne_unless_pd_certain():
    base = [("T1", "liver", False, 30.0), ("T2", "lung", False, 30.0)]
    r = run(doc_targets(base, [{"T1": 10.0, "T2": None}]))
    assert r.assessments[1].target == "NE" and r.assessments[1].overall == "NE"
    assert r.assessments[1].sum_mm is None
    r = run(doc_targets(base, [{"T1": 80.0, "T2": None}]))  # 80 >= 72 and +20 mm: PD whatever T2 is
    assert r.assessments[1].target == "PD"
    # missing lesion omitted entirely from the list is also "not measured"
    r = run(doc_targets(base, [{"T1": 10.0}]))
    assert r.assessments[1].target == "NE"


# ------------------------------------------------------------------ non-target and new lesions
def test_non_target_responses():
    base = [("T1", "liver", False, 30.0)]
    nt = [("NT1", "bone")]
    assert run(doc_targets(base, [{"T1": 0.0}], nt, [{"NT1": "absent"}])).assessments[1].overall == "CR"
    assert run(doc_targets(base, [{"T1": 0.0}], nt, [{"NT1": "present"}])).assessments[1].overall == "PR"
    assert run(doc_targets(base, [{"T1": 0.0}], nt, [{}])).assessments[1].overall == "PR"  # CR + NE -> PR
    r = run(doc_targets(base, [{"T1": 25.0}], nt, [{"NT1": "unequivocal_progression"}]))
    assert r.assessments[1].non_target == "PD" and r.assessments[1].overall == "PD"


def test_new_lesion_is_pd_and_equivocal_new_lesion_backdates_progression():
    base = [("T1", "liver", False, 30.0)]
    r = run(doc_targets(base, [{"T1": 20.0}], new=[[{"id": "N1", "organ": "liver"}]]))
    assert r.assessments[1].overall == "PD" and r.assessments[1].new_lesions is True
    r = run(doc_targets(base, [{"T1": 20.0}, {"T1": 20.0}],
                        new=[[{"id": "N1", "organ": "bone", "equivocal": True}], [{"id": "N1", "organ": "bone"}]]))
    assert r.assessments[1].overall == "PR" and r.assessments[1].new_lesions is False and r.assessments[1].new_lesions_equivocal
    assert r.assessments[2].overall == "PD"
    assert r.progression_date == "2025-02-01"  # date of the first (equivocal) sighting


# ------------------------------------------------------------------ best overall response
def dated(base, follow, days, **kw):
    import datetime as dt
    d0 = dt.date(2025, 1, 1)
    dates = [d0.isoformat()] + [(d0 + dt.timedelta(days=d)).isoformat() for d in days]
    return doc_targets(base, follow, dates=dates, **kw)


def test_confirmed_cr_needs_second_cr_at_least_4_weeks_later():
    base = [("T1", "liver", False, 30.0)]
    assert run(dated(base, [{"T1": 0.0}, {"T1": 0.0}], [56, 84])).best_overall_response == "CR"
    # 27 days apart: not confirmed -> SD (SD duration met at day 56)
    r = run(dated(base, [{"T1": 0.0}, {"T1": 0.0}], [56, 83]))
    assert r.best_overall_response == "SD"
    # without confirmation (randomised trial option) a single CR counts
    r = run(dated(base, [{"T1": 0.0}], [56]), options=RecistOptions(confirmation=False))
    assert r.best_overall_response == "CR"


def test_table3_sequences():
    base = [("T1", "liver", False, 30.0)]
    days = [56, 112]
    cases = [
        ([0.0, 0.0], "CR"),      # CR CR -> CR
        ([0.0, 15.0], "SD"),     # CR then reappearance (+15 mm from nadir 0 = PD): CR PD -> SD (duration met)
        ([15.0, 0.0], "PR"),     # PR CR -> PR
        ([15.0, 15.0], "PR"),    # PR PR -> PR
        ([15.0, 25.0], "SD"),    # PR SD -> SD
        ([15.0, 40.0], "SD"),    # PR PD -> SD (SD duration met at day 56)
        ([15.0, None], "SD"),    # PR NE -> SD (duration met)
        ([None, None], "NE"),    # NE NE -> NE
    ]
    for sums, expected in cases:
        r = run(dated(base, [{"T1": s} for s in sums], days))
        assert r.best_overall_response == expected, (sums, r.best_overall_response_reason)
    # CR then PR (node 20 -> 9 -> 12 mm: +3 mm is not PD, 12 <= 14 is PR): Table 3 footnote a
    r = run(dated([("N1", "node", True, 20.0)], [{"N1": 9.0}, {"N1": 12.0}], days))
    assert [a.overall for a in r.assessments[1:]] == ["CR", "PR"]
    assert r.best_overall_response == "PR" and "footnote a" in r.best_overall_response_reason


def test_minimum_sd_duration_from_baseline_date():
    base = [("T1", "liver", False, 30.0)]
    # SD at day 41 then PD: SD not long enough -> PD
    assert run(dated(base, [{"T1": 28.0}, {"T1": 40.0}], [41, 80])).best_overall_response == "PD"
    # SD at day 42 (6 weeks) -> SD
    assert run(dated(base, [{"T1": 28.0}, {"T1": 40.0}], [42, 80])).best_overall_response == "SD"
    # protocol parameter: 8 weeks
    r = run(dated(base, [{"T1": 28.0}, {"T1": 40.0}], [42, 80]), options=RecistOptions(sd_min_weeks=8))
    assert r.best_overall_response == "PD"
    # SD at day 30 then nothing: NE
    assert run(dated(base, [{"T1": 28.0}], [30])).best_overall_response == "NE"


def test_bor_ignores_assessments_after_first_pd():
    base = [("T1", "liver", False, 30.0)]
    r = run(dated(base, [{"T1": 40.0}, {"T1": 10.0}, {"T1": 10.0}], [30, 90, 150]))
    assert r.best_overall_response == "PD" and r.progression_date == "2025-01-31"


# ------------------------------------------------------------------ baseline checks, scopes, input
def test_baseline_selection_checks():
    from lutarterial.clinical.recist import BaselineLesion as B
    lesions = [B(f"T{i}", "target", "liver" if i < 3 else f"o{i}", False, 20.0) for i in range(6)]
    issues = check_baseline(lesions)
    assert any("at most 5" in s for s in issues) and any("'liver'" in s for s in issues)
    assert check_baseline([B("N", "target", "node", True, 14.9)])[0].startswith("target N: lymph node")
    assert check_baseline([B("N", "target", "node", True, 15.0)]) == ()
    assert check_baseline([B("T", "target", "lung", False, 9.9)])
    assert check_baseline([B("T", "target", "lung", False, 10.0)]) == ()


def test_liver_only_response_separates_hepatic_lesions():
    base = [("L1", "liver", False, 50.0), ("P1", "pancreas", False, 50.0)]
    doc = doc_targets(base, [{"L1": 20.0, "P1": 70.0}])
    patient, a = parse_recist_input(doc)
    res = evaluate_recist_scopes(a, patient=patient)
    assert res["all"].assessments[1].target == "SD"  # 90 vs 100
    assert res["liver"].assessments[1].target == "PR"  # 20 vs 50
    assert res["extrahepatic"].assessments[1].target == "PD"  # 70 vs 50


def test_input_errors_are_clear():
    with pytest.raises(InvalidInputError, match="baseline"):
        run({"assessments": [{"date": "2025-01-01", "baseline": False, "lesions": []}]})
    with pytest.raises(InvalidInputError, match="not recorded at baseline"):
        run(doc_targets([("T1", "liver", False, 30.0)], [{"X": 3.0}]))
    with pytest.raises(InvalidInputError, match="ISO"):
        run({"assessments": [{"date": "01/02/2025", "baseline": True, "lesions": []}]})
    with pytest.raises(InvalidInputError, match="diameter_mm"):
        run(doc_targets([("T1", "liver", False, -3)], []))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=120)), min_size=1, max_size=8),
       st.floats(min_value=10, max_value=100))
def test_property_nadir_and_pd_rule(sums, base_mm):
    base = [("T1", "liver", False, base_mm)]
    r = run(doc_targets(base, [{"T1": s} for s in sums]))
    nadir = base_mm
    after_cr = False  # a non-nodal target reappearing after a target CR is PD (RECIST 1.1)
    for s, tp in zip(sums, r.assessments[1:], strict=True):
        assert tp.nadir_mm == pytest.approx(nadir, abs=1e-3)  # output rounded to 0.001 mm
        if s is None:
            assert tp.target == "NE" and tp.sum_mm is None
            continue
        is_pd = (s >= 1.2 * nadir * (1 - 1e-9) and s - nadir >= 5 - 1e-9) or (after_cr and s > 0)
        if s == 0:
            assert tp.target == "CR"
        else:
            assert (tp.target == "PD") == is_pd
        nadir = min(nadir, s)
        after_cr = s == 0
    # best overall response never better than the best time-point response
    order = {"CR": 5, "PR": 4, "SD": 3, "PD": 1, "NE": 0}
    best_tp = max((order[t.overall] for t in r.assessments[1:]), default=0)
    assert order[r.best_overall_response] <= max(best_tp, 3)


def test_unmeasured_baseline_target_is_an_input_error():
    with pytest.raises(InvalidInputError, match="no diameter_mm"):
        run(doc_targets([("T1", "liver", False, None)], [{"T1": 10.0}]))
