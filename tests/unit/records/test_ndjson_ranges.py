"""NDJSON read in byte ranges gives exactly the (origin, line) pairs of reading the file in text mode.

Why (issue 10, speed): parallel screening hands each worker a byte range to read itself; the
log's origins ("FILE:LINE") and the texts screened must be those of the plain text-mode reading:
universal newlines (\\r\\n and a bare \\r end a line), the "\\n" kept, blank lines skipped but
counted, no other character taken as a line end.
"""

from __future__ import annotations

import random

import pytest

from lutarterial.records.io import ndjson_ranges, read_ndjson_range


def _text_mode(path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [(f"{path}:{n}", line) for n, line in enumerate(fh, 1) if line.strip()]


def _ranges(path, target: int) -> list[tuple[str, str]]:
    out = []
    for offset, length, lineno in ndjson_ranges(path, target):
        out += read_ndjson_range(str(path), offset, length, lineno)
    return out


_PIECES = ['{"a": 1}', "", " ", "\t", "\x0c", "x\x0cy", "\u2028", "é", "\u3000", '{"b":\u2029 2}', "\x1c", "\x85",
           "long" * 300]
_SEPS = ["\n", "\r\n", "\r", "\n\n", "\r\r\n", "\n\r"]


@pytest.mark.parametrize("seed", range(40))
def test_ranges_read_what_text_mode_reads(tmp_path, seed):
    rng = random.Random(seed)
    text = "".join(rng.choice(_PIECES) + rng.choice(_SEPS) for _ in range(rng.randint(0, 40)))
    if rng.random() < 0.5:
        text += rng.choice(_PIECES)  # no final line end
    path = tmp_path / "t.ndjson"
    path.write_bytes(text.encode("utf-8"))
    expected = _text_mode(path)
    for target in (1, 2, 3, 7, 64, 1000, 4 << 20):
        assert _ranges(path, target) == expected, target


def test_ranges_cover_the_file_once(tmp_path):
    path = tmp_path / "t.ndjson"
    path.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(1000)))
    pieces = list(ndjson_ranges(path, 100))
    assert pieces[0][0] == 0 and sum(length for _o, length, _l in pieces) == path.stat().st_size
    assert all(a[0] + a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    data = path.read_bytes()
    assert all(lineno == 1 + data[:offset].count(b"\n") for offset, _length, lineno in pieces)


def test_bytes_that_are_not_utf8_raise(tmp_path):
    path = tmp_path / "t.ndjson"
    path.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    (offset, length, lineno), = ndjson_ranges(path)
    with pytest.raises(UnicodeDecodeError):
        read_ndjson_range(str(path), offset, length, lineno)
