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


@pytest.mark.parametrize("want_json", [True, False])
@pytest.mark.parametrize("jobs", [1, 2])
def test_units_give_the_serial_rows_lines_and_counts(tmp_path, want_json, jobs):
    """screen_units (the CLI's path): a unit is a list of texts or a byte range a worker reads itself."""
    import csv
    import io

    from lutarterial.eligibility.cohort import CohortSummary, screen_units
    from lutarterial.records.io import ndjson_ranges, read_ndjson_range

    items = _items()
    path = tmp_path / "c.ndjson"
    path.write_text("".join(text + "\n" for _o, text in items[8:] if not text.startswith(UNREADABLE)), encoding="utf-8")
    from_file = read_ndjson_range(str(path), 0, path.stat().st_size, 1)
    serial = screen_texts(items[:8] + from_file, as_of=None, protocol_version=None, want_json=want_json)
    units = [items[:3], items[3:8]] + [(read_ndjson_range, (str(path), o, n, line))
                                       for o, n, line in ndjson_ranges(path, 200)]
    blocks = list(screen_units(units, as_of=None, protocol_version=None, want_json=want_json, jobs=jobs))
    assert len(blocks) == len(units) and sum(b.rows for b in blocks) == len(serial)
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows([tuple(row.values()) for _line, row in serial])
    assert "".join(b.csv for b in blocks) == buf.getvalue()
    assert "".join(b.ndjson for b in blocks) == "".join(line + "\n" for line, _ in serial if line is not None)
    expected, merged = CohortSummary(), CohortSummary()
    for _line, row in serial:
        expected.add_row(row)
    for b in blocks:
        merged.merge(b.summary)
    assert merged.to_dict() == expected.to_dict() and merged.unreadable >= 2
    assert [r for b in blocks for r in b.unreadable] == [row["reasons"] for _l, row in serial
                                                          if row["verdict"] == "unreadable"]
    assert all(b.csv == "" for b in screen_units(units, as_of=None, protocol_version=None, want_json=want_json,
                                                 want_csv=False, jobs=jobs))
