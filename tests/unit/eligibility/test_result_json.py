"""``result_json`` writes exactly what ``json.dumps(result.to_dict(), ensure_ascii=False)`` writes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutarterial.eligibility.results import CriterionResult, Evidence, ScreeningResult, Status, result_json

_values = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.sampled_from([0.0, -0.0, 1, 1.0, True, 0, False, "1", "", "é\u2028\"\\\n\x00", "\ud800x"]), st.text())
_text = st.text()
_evidence = st.builds(Evidence, _text, _values, st.one_of(st.none(), _text),
                      st.one_of(st.none(), st.dates()), _text, _text)
_criterion = st.builds(CriterionResult, st.sampled_from(["INC01", "EXC07"]), st.sampled_from(list(Status)), _text,
                       st.lists(_evidence, max_size=4).map(tuple), st.lists(_text, max_size=2).map(tuple))


def _old(r: ScreeningResult) -> str:
    return json.dumps(r.to_dict(), ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(_criterion, max_size=5), _text)
def test_identical_to_json_dumps(criteria, record_id):
    r = ScreeningResult(record_id, "2", dt.date(2024, 6, 3), tuple(criteria))
    assert result_json(r) == _old(r)
    assert result_json(r) == _old(r)  # second time from the caches


@pytest.mark.parametrize("a, b", [(True, 1), (1, 1.0), (0.0, -0.0), (False, 0), (True, 1.0)])
def test_equal_but_differently_written_values_are_not_merged_by_the_cache(a, b):
    for v in (a, b, a):
        c = CriterionResult("INC01", Status.PASS, "x", (Evidence("flag", v),))
        r = ScreeningResult("R", "2", dt.date(2024, 6, 3), (c,))
        assert result_json(r) == _old(r)


def test_non_json_value_still_raises_like_json_dumps():
    c = CriterionResult("INC01", Status.PASS, "x", (Evidence("flag", object()),))
    r = ScreeningResult("R", "2", dt.date(2024, 6, 3), (c,))
    with pytest.raises(TypeError):
        _old(r)
    with pytest.raises(TypeError):
        result_json(r)
