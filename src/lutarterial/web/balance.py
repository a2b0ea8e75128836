"""Keep-alive connections kept evenly spread over the worker processes (issue 13, "Fast").

Why: ``lutarterial serve`` gives each worker its own ``SO_REUSEPORT`` socket and the kernel hands a
new connection to one of them by a hash of its addresses (:mod:`lutarterial.web.server`). That is
a coin toss per connection: 50 keep-alive connections land 25/25 only on average (22/28 and worse
were measured, 6 Dec 2026), and a browser or client keeps its connection for as long as it works.
With sync code run inline (``web/perf.py``) each worker serves its connections one request at a
time, so the worker holding more of them answers each of them later: the busier worker sets the
latency tail of the whole server.

What: every worker writes its number of open HTTP connections in a small table in shared memory
(:class:`ConnectionCounts`, created by the parent and handed to each worker, like the rate-limit
table of :mod:`lutarterial.web.shared_limit`). When a worker answers a request while it holds more
than its share (``ceil(total / workers)``), it adds ``Connection: close`` to that response (at
most one every :data:`GAP_S` seconds): the
response is complete, the client reconnects for its next request (browsers and HTTP clients do this
by themselves, as after a server's keep-alive timeout) and the kernel hands the new connection to a
worker at random again. Only a worker above its share gives a connection up, so the spread
converges to within one connection of even and then nothing more is closed.

The counts of the other workers are as of their last answer (a worker that answers nothing has no
new connections to count either); a slot of a worker that died keeps its last count until the
restarted worker answers, which only makes the others give up fewer connections meanwhile.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["ConnectionCounts", "BalanceMiddleware", "install", "installed", "should_close", "share"]


class ConnectionCounts:
    """One integer per worker in shared memory (no lock: each worker writes only its own slot)."""

    def __init__(self, workers: int, ctx: Any = None) -> None:
        import multiprocessing

        if workers < 1:
            raise ValueError("at least one worker")
        self.array = (ctx or multiprocessing).Array("i", workers, lock=False)


#: (counts, this worker's slot, uvicorn's ServerState of this worker) once :func:`install` ran.
_STATE: tuple[Any, int, Any] | None = None


def install(counts: ConnectionCounts | None, index: int, server_state: Any) -> None:
    """Make this process worker ``index`` of ``counts``, counting ``server_state.connections``
    (uvicorn's set of this process's open connections). ``counts=None``: balancing off."""
    global _STATE
    _STATE = None if counts is None else (counts.array, index, server_state)


def installed() -> bool:
    return _STATE is not None


def share(total: int, workers: int) -> int:
    """A worker's share of ``total`` connections: ``ceil(total / workers)``."""
    return -(-total // workers)


#: Seconds between two connections given up by one worker: the one given up is still counted open
#: until its close completes and its client has reconnected somewhere; without a pause a busy worker
#: would give up one connection per answer in that time (measured: connections thrashed, p95 x3).
GAP_S = 0.25
_last_close = -GAP_S


def should_close(now: float | None = None) -> bool:
    """Record this worker's open connections; True when it holds more than its share and has given
    none up within :data:`GAP_S` (the connection of the request being answered is then given up)."""
    global _last_close
    if _STATE is None:
        return False
    counts, index, state = _STATE
    mine = len(state.connections)
    counts[index] = mine
    now = time.monotonic() if now is None else now
    if now - _last_close >= GAP_S and mine > share(sum(counts), len(counts)):
        _last_close = now
        return True
    return False


class BalanceMiddleware:
    """Adds ``Connection: close`` to an HTTP answer when :func:`should_close` says so."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _STATE is None:
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and should_close():
                headers = [(k, v) for k, v in message.get("headers") or () if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_wrapper)
