"""The compact parallel path must give exactly the outcomes of the serial path, in order."""

from __future__ import annotations

import json

import pytest

from lutarterial.eligibility.cohort import UNREADABLE, screen_texts, screen_texts_chunks, screen_texts_parallel
from lutarterial.records.synthetic import make_records


def _items() -> list[tuple[str, str]]:
    items = [(f"s:{i}", json.dumps(r)) for i, r in enumerate(make_records(23, seed=5))]
    items.insert(3, ("bad:1", "{not json"))
    items.insert(10, ("gone:1", UNREADABLE + "file vanished"))
    items.append(("bad:2", json.dumps({"record_id": 7})))
    return items


@pytest.mark.parametrize("want_json", [True, False])
@pytest.mark.parametrize("jobs", [1, 2])
def test_chunks_match_serial_outcomes(want_json, jobs):
    items = _items()
    serial = screen_texts(items, as_of=None, protocol_version=None, want_json=want_json)
    assert sum(1 for line, _ in serial if line is None) >= 3  # the bad items really are unreadable
    chunks = list(screen_texts_chunks(items, as_of=None, protocol_version=None, want_json=want_json,
                                      jobs=jobs, chunk_size=4))
    assert len(chunks) == 7
    assert [o for c in chunks for o in c.outcomes()] == serial
    ndjson = "".join(c.ndjson for c in chunks)
    assert ndjson == "".join(line + "\n" for line, _ in serial if line is not None)
    par = [o for c in screen_texts_parallel(items, as_of=None, protocol_version=None, want_json=want_json,
                                            jobs=jobs, chunk_size=5) for o in c]
    assert par == serial
