"""Issue 13 (fast): a worker above its share of the keep-alive connections gives one up now and
then (``Connection: close``), so the connections stay evenly spread over the workers."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from lutarterial.web import balance


@pytest.fixture
def worker() -> Any:
    """Worker 0 of 2, with its open connections settable; balancing uninstalled afterwards."""
    counts = balance.ConnectionCounts(2)
    state = SimpleNamespace(connections=set())

    def set_counts(mine: int, other: int) -> None:
        state.connections = set(range(mine))
        counts.array[1] = other

    balance.install(counts, 0, state)
    balance._last_close = -balance.GAP_S
    yield SimpleNamespace(counts=counts, set=set_counts)
    balance.install(None, 0, None)


@pytest.mark.parametrize(("total", "workers", "share"), [(50, 2, 25), (51, 2, 26), (1, 2, 1), (0, 2, 0), (7, 3, 3)])
def test_share_is_the_ceiling_of_an_even_split(total: int, workers: int, share: int) -> None:
    assert balance.share(total, workers) == share


@pytest.mark.parametrize(("mine", "other", "close"), [
    (26, 24, True),   # 26 > 25: one too many
    (25, 25, False),  # even
    (26, 25, False),  # 51 connections: 26 is the share (ceil)
    (27, 25, True),   # 27 > 26
    (24, 26, False),  # below the share: never
    (1, 0, False),    # one connection in all: nothing to move
    (2, 0, True),     # 2 > 1
])
def test_only_a_worker_above_its_share_gives_one_up(worker: Any, mine: int, other: int, close: bool) -> None:
    worker.set(mine, other)
    assert balance.should_close(now=100.0) is close
    assert worker.counts.array[0] == mine  # its count is published either way


def test_at_most_one_connection_per_gap(worker: Any) -> None:
    worker.set(30, 20)
    assert balance.should_close(now=100.0) is True
    assert balance.should_close(now=100.0 + balance.GAP_S / 2) is False  # the first is still closing
    assert balance.should_close(now=100.0 + balance.GAP_S) is True


def test_nothing_is_closed_when_balancing_is_not_installed() -> None:
    balance.install(None, 0, None)
    assert balance.installed() is False and balance.should_close(now=100.0) is False


def _answer(app: Any, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # its own loop in its own thread: the test process may already run an event loop in this one
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(app(inner)({"type": "http"}, None, send))
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert not worker.is_alive() and not errors, errors
    assert sent[1]["body"] == b"ok"
    return list(sent[0]["headers"])


def test_middleware_adds_connection_close_only_when_giving_one_up(worker: Any) -> None:
    headers = [(b"content-type", b"text/plain"), (b"connection", b"keep-alive")]
    worker.set(25, 25)
    assert _answer(balance.BalanceMiddleware, headers) == headers  # even: untouched
    worker.set(30, 20)
    assert _answer(balance.BalanceMiddleware, headers) == [(b"content-type", b"text/plain"), (b"connection", b"close")]


def test_the_variable_turns_balancing_on_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from lutarterial.errors import InvalidInputError
    from lutarterial.web.server import balance_enabled

    for raw, on in (("1", True), ("", True), ("on", True), ("0", False), ("off", False), ("FALSE", False)):
        monkeypatch.setenv("LUTARTERIAL_WEB_BALANCE", raw)
        assert balance_enabled() is on, raw
    monkeypatch.delenv("LUTARTERIAL_WEB_BALANCE")
    assert balance_enabled() is True
    monkeypatch.setenv("LUTARTERIAL_WEB_BALANCE", "2")
    with pytest.raises(InvalidInputError, match="LUTARTERIAL_WEB_BALANCE must be 1 or 0"):
        balance_enabled()
