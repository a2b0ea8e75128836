"""The API-token rate limit shared by the worker processes of one server (issue 13, fast):
same answers as the in-memory limiter, one burst for all processes, a full table, a dead holder."""

from __future__ import annotations

import multiprocessing
import random
import threading
from typing import Any

import pytest

from lutarterial.web import shared_limit
from lutarterial.web.shared_limit import SharedBuckets
from lutarterial.web.tokens import RateLimiter, SharedRateLimiter, limiter_from_env

SPAWN = multiprocessing.get_context("spawn")


@pytest.mark.parametrize("rate_per_min, burst, capacity", [(60, 3, 64), (120, 1, 64), (600, 20, 8192),
                                                          (7.5, 4, 5)])
def test_shared_limiter_answers_exactly_as_the_in_memory_one(rate_per_min: float, burst: int,
                                                              capacity: int) -> None:
    now = [1000.0]
    memory = RateLimiter(rate_per_min, burst, clock=lambda: now[0])
    shared = SharedRateLimiter(rate_per_min, burst, SharedBuckets(capacity, ctx=SPAWN), clock=lambda: now[0])
    rng = random.Random(13)
    answers = []
    for _ in range(2000):
        if rng.random() < 0.1:
            now[0] += rng.choice([0.0, 0.01, 0.3, 1.7, 20.0])
        key = rng.choice([1, 2, 3, 4, 5])  # 5 keys: fit in every capacity tried (5 slots for the smallest)
        a, b = memory.take(key), shared.take(key)
        assert a == b, (key, now[0])
        answers.append(a)
    assert 0.0 in answers and any(a > 0 for a in answers)  # both answers were exercised


def _take_many(table: SharedBuckets, key: int, n: int, go: Any, out: Any) -> None:
    limiter = SharedRateLimiter(rate_per_min=0.001, burst=5, table=table)  # refills one in 1000 min
    go.wait(30)
    out.put(sum(limiter.take(key) == 0.0 for _ in range(n)))


def test_two_processes_sharing_one_table_get_the_burst_once() -> None:
    table = SharedBuckets(64, ctx=SPAWN)
    go, out = SPAWN.Event(), SPAWN.Queue()
    procs = [SPAWN.Process(target=_take_many, args=(table, 42, 10, go, out)) for _ in range(2)]
    try:
        for p in procs:
            p.start()
        go.set()
        allowed = [out.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
    assert sum(allowed) == 5, allowed  # not 10: the burst is the server's, not each process's
    # and this process, sharing the same table, finds the bucket empty as well
    assert SharedRateLimiter(rate_per_min=0.001, burst=5, table=table).take(42) > 0


def test_a_full_table_evicts_the_fullest_bucket_and_never_lets_a_token_through_unlimited() -> None:
    now = [50.0]
    lim = SharedRateLimiter(rate_per_min=60, burst=2, table=SharedBuckets(4, ctx=SPAWN), clock=lambda: now[0])
    for key in (1, 2, 3, 4):  # the table is full
        assert lim.take(key) == 0.0
    assert lim.take(1) == 0.0 and lim.take(1) > 0  # token 1 drained; 2-4 hold one each
    now[0] += 0.5  # 1 now holds 0.5, 2-4 hold 1.5
    assert lim.take(5) == 0.0  # a new token evicts one of the fuller buckets, not token 1's
    assert lim.take(1) > 0  # token 1 is still limited
    # all drained: a newcomer still gets one burst, then waits like everybody else
    for key in (2, 3, 4, 5):
        while lim.take(key) == 0.0:
            pass
    allowed = 0
    while lim.take(6) == 0.0:
        allowed += 1
        assert allowed <= 2
    assert allowed == 2


def test_the_parent_releases_the_lock_of_a_dead_worker() -> None:
    table = SharedBuckets(8, ctx=SPAWN)
    assert table._lock.acquire(timeout=1)
    table._owner[0] = 999_999  # as if worker 999999 died inside take()
    assert table.recover(123) is False  # another worker's death: not the holder
    assert table.recover(999_999) is True
    assert SharedRateLimiter(60, 1, table).take(1) == 0.0  # usable again


def test_a_lock_that_stays_taken_falls_back_to_in_process_buckets(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shared_limit, "LOCK_TIMEOUT_S", 0.05)
    table = SharedBuckets(8, ctx=SPAWN)
    assert table._lock.acquire(timeout=1)  # held by a worker that died before writing its pid
    try:
        lim = SharedRateLimiter(60, 2, table, clock=lambda: 10.0)
        assert [lim.take(1) == 0.0 for _ in range(3)] == [True, True, False]  # still limited, per process
        assert lim.fallen_back
        assert "rate-limit table stayed locked" in capsys.readouterr().err
    finally:
        table._lock.release()


def test_threads_of_one_process_share_the_table_safely() -> None:
    lim = SharedRateLimiter(rate_per_min=0.001, burst=50, table=SharedBuckets(16, ctx=SPAWN))
    allowed: list[int] = []

    def work() -> None:
        allowed.append(sum(lim.take(7) == 0.0 for _ in range(40)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(allowed) == 50


def test_limiter_from_env_uses_the_installed_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTARTERIAL_TOKEN_RATE_PER_MIN", "30")
    monkeypatch.setenv("LUTARTERIAL_TOKEN_BURST", "7")
    assert type(limiter_from_env()) is RateLimiter  # one process (TestClient, --workers 1): in memory
    table = SharedBuckets(8, ctx=SPAWN)
    shared_limit.install(table)
    try:
        lim = limiter_from_env()
        assert isinstance(lim, SharedRateLimiter) and lim.table is table
        assert lim.burst == 7 and lim.rate_per_s == pytest.approx(0.5)
    finally:
        shared_limit.install(None)


def test_time_moving_back_never_takes_tokens_away() -> None:
    now = [100.0]
    lim = SharedRateLimiter(60, 2, SharedBuckets(8, ctx=SPAWN), clock=lambda: now[0])
    assert lim.take(1) == 0.0
    now[0] -= 5.0
    assert lim.take(1) == 0.0  # one token was left
    assert lim.take(1) == pytest.approx(1.0)
