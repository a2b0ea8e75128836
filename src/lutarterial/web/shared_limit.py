"""The API-token rate limit shared by all worker processes of one server (issue 13, "Fast").

Why: with ``lutarterial serve --workers N`` each worker is its own process; an in-process token
bucket per worker would give a token N times its limit (a client's connections spread over the
workers). The parent (:func:`lutarterial.web.server.serve_processes`) creates one
:class:`SharedBuckets` table in shared memory and hands it to every worker when it starts it (a
``Process`` argument, which the "spawn" start method allows); the worker installs it
(:func:`install`) before building its app, and :func:`lutarterial.web.tokens.limiter_from_env`
then returns a limiter backed by it. A single-process server keeps the in-memory limiter.

The table is a fixed-size open-addressing hash table keyed by token id (linear probing over a
window of :data:`PROBE_WINDOW` slots, no deletion), guarded by one inter-process lock. When a
token's window is full, the bucket in it that has refilled the most is evicted: a full bucket
holds nothing a new one would not (a token seen again later starts full anyway), so eviction
loses no limit until more than ``PROBE_WINDOW`` tokens of one window are active within one
refill time (``burst / rate``, 12 s by default); then the evicted token starts again with a full
burst. A token is never let through without a bucket.

A worker killed while it holds the lock (SIGKILL, the OOM killer) would block the others: the
holder writes its pid next to the table, and the parent releases the lock of a worker it sees
dead (:meth:`SharedBuckets.recover`). A worker that still cannot take the lock within
:data:`LOCK_TIMEOUT_S` falls back to its own in-process buckets and says so on stderr (the limit
then applies per process, as before, rather than not at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["SharedBuckets", "LockTimeout", "install", "installed", "take_from_bucket", "DEFAULT_CAPACITY",
           "PROBE_WINDOW", "LOCK_TIMEOUT_S"]

DEFAULT_CAPACITY = 8192  #: slots (24 bytes each)
PROBE_WINDOW = 32  #: slots looked at for one token id (and the candidates for eviction)
LOCK_TIMEOUT_S = 2.0  #: the lock is held for microseconds; a wait this long means a holder died
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def take_from_bucket(tokens: float, at: float, now: float, rate_per_s: float,
                     burst: int) -> tuple[float, float]:
    """One request on a bucket holding ``tokens`` at time ``at``: (tokens left, seconds to wait).

    The one arithmetic of the in-memory and the shared limiter (so both answer the same).
    """
    tokens = min(float(burst), tokens + max(0.0, now - at) * rate_per_s)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate_per_s


class LockTimeout(RuntimeError):
    """The table's lock was not free within :data:`LOCK_TIMEOUT_S`."""


class SharedBuckets:
    """Token buckets in shared memory, one slot per token id; create it in the parent process."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, ctx: Any = None) -> None:
        import multiprocessing

        if capacity < 1:
            raise ValueError("capacity must be positive")
        ctx = ctx or multiprocessing.get_context("spawn")
        self.capacity = capacity
        self.window = min(PROBE_WINDOW, capacity)
        self._keys = ctx.RawArray("q", capacity)  # token id + 1; 0: empty slot
        self._tokens = ctx.RawArray("d", capacity)
        self._at = ctx.RawArray("d", capacity)
        self._owner = ctx.RawArray("q", 1)  # pid of the process holding the lock, 0 when none
        self._lock = ctx.Lock()
        self._bits = max(1, (capacity - 1).bit_length())

    def _home(self, key: int) -> int:
        return (((key * _GOLDEN) & _MASK64) >> (64 - self._bits)) % self.capacity

    def take(self, key: int, clock: Callable[[], float], rate_per_s: float, burst: int) -> float:
        """Take one request for token ``key``: 0.0 when allowed, else the seconds to wait.

        ``clock`` is read with the lock held, so the buckets only ever see time move forward.
        Raises :class:`LockTimeout` when the lock stays taken (see the module's docstring).
        """
        if key < 0:
            raise ValueError("token ids are not negative")
        if not self._lock.acquire(timeout=LOCK_TIMEOUT_S):
            raise LockTimeout("the shared rate-limit table stayed locked")
        self._owner[0] = os.getpid()
        try:
            now = clock()
            slot = self._slot(key + 1, now, rate_per_s, burst)
            tokens, wait = take_from_bucket(self._tokens[slot], self._at[slot], now, rate_per_s, burst)
            self._tokens[slot] = tokens
            self._at[slot] = now
            return wait
        finally:
            self._owner[0] = 0
            self._lock.release()

    def _slot(self, stored: int, now: float, rate_per_s: float, burst: int) -> int:
        """The slot of ``stored`` (token id + 1), claimed (full bucket) when it has none. Lock held."""
        keys, cap, home = self._keys, self.capacity, self._home(stored - 1)
        fullest, fullest_level = home, -1.0
        for i in range(self.window):
            slot = (home + i) % cap
            k = keys[slot]
            if k == stored:
                return slot
            if k == 0:  # slots are never emptied: the key is not further on
                fullest = slot
                break
            level = min(float(burst), self._tokens[slot] + max(0.0, now - self._at[slot]) * rate_per_s)
            if level > fullest_level:
                fullest, fullest_level = slot, level
        keys[fullest] = stored  # an empty slot, or the window's fullest bucket evicted
        self._tokens[fullest] = float(burst)
        self._at[fullest] = now
        return fullest

    def recover(self, pid: int) -> bool:
        """Release the lock if process ``pid`` (known dead) held it; True when it did."""
        if pid and self._owner[0] == pid:
            self._owner[0] = 0
            try:
                self._lock.release()
            except ValueError:  # pragma: no cover - it had released it after all
                return False
            return True
        return False


_installed: SharedBuckets | None = None


def install(table: SharedBuckets | None) -> None:
    """Make this process's apps use ``table`` (a worker of ``serve --workers N``; None: in-memory)."""
    global _installed
    _installed = table


def installed() -> SharedBuckets | None:
    return _installed
