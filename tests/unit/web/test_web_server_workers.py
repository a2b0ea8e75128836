"""``lutarterial serve``'s worker count (issue 13, fast; ``lutarterial.web.server.default_workers``):
``LUTARTERIAL_WEB_WORKERS`` bounds on both sides, and one process per core (at most 8) without it."""

from __future__ import annotations

import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.web.server import MAX_WORKERS, default_workers


@pytest.mark.parametrize("value, expected", [("0", None), ("1", 1), ("16", 16), ("17", None), (" 3 ", 3),
                                             ("abc", None), ("2.5", None), ("-1", None)])
def test_worker_count_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None) -> None:
    assert MAX_WORKERS == 16
    monkeypatch.setenv("LUTARTERIAL_WEB_WORKERS", value)
    if expected is None:
        with pytest.raises(InvalidInputError, match="LUTARTERIAL_WEB_WORKERS"):
            default_workers()
    else:
        assert default_workers() == expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_without_the_variable_one_worker_per_core_at_most_8(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                                            ) -> None:
    if value is None:
        monkeypatch.delenv("LUTARTERIAL_WEB_WORKERS", raising=False)
    else:
        monkeypatch.setenv("LUTARTERIAL_WEB_WORKERS", value)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(32)), raising=False)
    assert default_workers() == 8
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert default_workers() == 3
