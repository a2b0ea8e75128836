"""Bearer-token authentication of the API and its per-token rate limit.

``current_user`` (``web.deps``) calls :func:`user_from_bearer` when the request carries an
``Authorization: Bearer`` header: then no cookie is read and no CSRF token is needed (a browser
never adds that header by itself, so a forged cross-site request cannot carry it).

Rate limit: a token bucket per API token (``LUTARTERIAL_TOKEN_RATE_PER_MIN``, default 600
requests a minute, bursts up to ``LUTARTERIAL_TOKEN_BURST``, default 120). A single-process server
keeps the buckets in memory; the worker processes of ``lutarterial serve --workers N`` share one
table in shared memory (:mod:`lutarterial.web.shared_limit`), so a token gets its limit once per
server, not once per worker. Over the limit the API answers 429 with ``Retry-After`` (seconds).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from lutarterial.errors import AccessDeniedError, LutarterialError
from lutarterial.web import shared_limit

__all__ = ["RateLimiter", "SharedRateLimiter", "RateLimited", "bearer_token", "user_from_bearer",
           "READ_ONLY_POSTS", "limiter_from_env"]

#: POST operations that store nothing, allowed to read-only tokens.
READ_ONLY_POSTS = frozenset({"/api/screening/evaluate"})
_SAFE = {"GET", "HEAD", "OPTIONS"}
_CACHE_TTL_S = 2.0  # same as Backend.USER_TTL_S: a revocation applies within 2 s
_TOUCH_EVERY_S = 60.0


class RateLimited(LutarterialError):
    """Too many requests for one API token (HTTP 429 with Retry-After)."""

    http_status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token bucket: ``rate_per_min`` requests a minute on average, at most ``burst`` at once."""

    def __init__(self, rate_per_min: float, burst: int, clock: Any = time.monotonic) -> None:
        if rate_per_min <= 0 or burst < 1:
            raise ValueError("rate and burst must be positive")
        self.rate_per_s = rate_per_min / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: int) -> float:
        """Take one request for ``key``: 0.0 when allowed, else the seconds to wait."""
        with self._lock:
            now = self.clock()
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = _Bucket(float(self.burst), now)
            b.tokens, wait = shared_limit.take_from_bucket(b.tokens, b.at, now, self.rate_per_s, self.burst)
            b.at = now
            return wait


class SharedRateLimiter(RateLimiter):
    """The same token bucket, kept in a table shared by the worker processes of one server.

    Answers exactly as :class:`RateLimiter` does (same arithmetic). Should the table's lock stay
    taken (a worker died holding it), this process falls back to its own in-memory buckets for good
    (rather than wait :data:`~lutarterial.web.shared_limit.LOCK_TIMEOUT_S` on every request).
    """

    def __init__(self, rate_per_min: float, burst: int, table: shared_limit.SharedBuckets,
                 clock: Any = time.monotonic) -> None:
        super().__init__(rate_per_min, burst, clock)
        self.table = table
        self.fallen_back = False

    def take(self, key: int) -> float:
        if self.fallen_back:
            return super().take(key)
        try:
            return self.table.take(key, self.clock, self.rate_per_s, self.burst)
        except shared_limit.LockTimeout:
            if not self.fallen_back:
                self.fallen_back = True
                import sys

                print(f"lutarterial serve: worker {os.getpid()}: the shared API-token rate-limit table "
                      "stayed locked; this worker limits tokens on its own from now on",
                      file=sys.stderr, flush=True)
            return super().take(key)


def limiter_from_env() -> RateLimiter:
    """The app's token limiter: shared by the workers when this process is one (see module docstring)."""
    rate = float(os.environ.get("LUTARTERIAL_TOKEN_RATE_PER_MIN", "600"))
    burst = int(os.environ.get("LUTARTERIAL_TOKEN_BURST", "120"))
    table = shared_limit.installed()
    if table is not None:
        return SharedRateLimiter(rate, burst, table)
    return RateLimiter(rate, burst)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, '' for a Bearer header without one, else None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def _not_authenticated(detail: str) -> Exception:
    from lutarterial.web.errors import NotAuthenticated

    exc = NotAuthenticated(detail)
    return exc


def user_from_bearer(request: Request, token: str) -> Any:
    """The :class:`WebUser` of a valid token (roles and sites intersected with the token's)."""
    app = request.app
    backend = app.state.backend
    cache: dict[str, tuple[float, Any, Any]] = app.state.__dict__.setdefault("_token_cache", {})
    touched: dict[int, float] = app.state.__dict__.setdefault("_token_touched", {})
    now = time.monotonic()
    hit = cache.get(token)
    if hit is not None and now - hit[0] < _CACHE_TTL_S:
        user, info = hit[1], hit[2]
    else:
        from lutarterial.registry.tokens import authenticate_token

        with backend.read() as s:
            info = authenticate_token(s, token, touch=False) if token else None
            user = backend._web_user(s, info.actor) if info is not None else None
        if info is not None and now - touched.get(info.token_id, -1e9) > _TOUCH_EVERY_S:
            with backend.write() as s:  # last use, at most once a minute per token and process
                authenticate_token(s, token, touch=True)
            touched[info.token_id] = now
        if len(cache) > 10000:
            cache.clear()
        cache[token] = (now, user, info)
    if info is None or user is None:
        raise _not_authenticated("the API token is unknown, revoked or expired (Authorization: Bearer)")
    limiter: RateLimiter | None = getattr(app.state, "token_limiter", None)
    if limiter is not None:
        wait = limiter.take(info.token_id)
        if wait > 0:
            raise RateLimited(f"token {info.token_name!r}: rate limit of {limiter.rate_per_s * 60:g} requests a "
                              f"minute (burst {limiter.burst}) reached; retry in {math.ceil(wait)} s", wait)
    path = request.scope.get("path", "")
    if info.read_only and request.method not in _SAFE and path not in READ_ONLY_POSTS:
        shown = "/api/v1" + path[len("/api"):] if request.scope.get("api_version") == "v1" else path
        raise AccessDeniedError(f"token {info.token_name!r} is read-only: it cannot {request.method} {shown}")
    request.state.user = user
    request.state.api_token = info
    return user
