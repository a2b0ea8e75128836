"""Server tuning of the web application, read once at start-up (issue 13, item 6 "Fast").

Measured with ``benchmarks/load_web.py`` (50 users on a 2-core machine) and py-spy:

* **Worker threads.** FastAPI runs every sync route and dependency in anyio's default thread
  pool (40 threads). On 2 cores, 40 threads that mostly hold the GIL only queue behind each other
  and hold database connections while they wait, so the tail grows (and SQLAlchemy's default pool
  of 5+10 connections ran out at 50 simultaneous sign-ins: HTTP 500). The pool is set to
  ``LUTARTERIAL_WEB_THREADS`` (default 2) in the app's lifespan. Measured at 50 back-to-back users
  (6 Dec 2026, SQLite, one process): 1 thread 99 req/s, 2 threads 95, 4 threads 85 (each more
  thread is one more holder of the GIL to queue behind); 2 keeps a second thread free while one
  request runs long (a PDF report, an export).
* **Database connections.** The engine's pool holds at least one connection per worker thread
  (plus a few for the event loop and bursts), so no request waits for a connection while a thread
  is free; ``LUTARTERIAL_DB_POOL_SIZE`` overrides it.
* **Templates.** Jinja2 checks every template file's mtime on each render unless
  ``auto_reload`` is off; it is off unless ``LUTARTERIAL_WEB_DEV=1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lutarterial.errors import InvalidInputError

__all__ = ["PerfSettings", "install_thread_limit", "engine_kwargs"]

DEFAULT_THREADS = 2
_MAX_THREADS = 64


def _int_env(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidInputError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class PerfSettings:
    """Worker threads, database connections and template reloading of one server process."""

    threads: int = DEFAULT_THREADS
    pool_size: int = DEFAULT_THREADS + 4
    template_reload: bool = False

    @classmethod
    def from_env(cls) -> "PerfSettings":
        threads = _int_env("LUTARTERIAL_WEB_THREADS", DEFAULT_THREADS, 1, _MAX_THREADS)
        pool = _int_env("LUTARTERIAL_DB_POOL_SIZE", threads + 4, 1, 4 * _MAX_THREADS)
        dev = os.environ.get("LUTARTERIAL_WEB_DEV", "").strip().lower() in {"1", "true", "yes"}
        return cls(threads=threads, pool_size=pool, template_reload=dev)


def install_thread_limit(threads: int) -> None:
    """Set anyio's default thread limiter (used by FastAPI/Starlette for sync code) to ``threads``.

    Call it inside the running event loop (the app's lifespan): the limiter belongs to the loop.
    """
    from anyio import to_thread

    to_thread.current_default_thread_limiter().total_tokens = threads


def engine_kwargs(url: str, perf: PerfSettings) -> dict[str, Any]:
    """Connection-pool arguments for :func:`lutarterial.registry.db.make_engine`.

    SQLite and PostgreSQL alike use a queue pool; its size covers every worker thread so a
    request never waits for a connection while a thread is free. A burst beyond it may open
    ``pool_size`` more connections for a moment, and waits at most 30 s for one.
    """
    del url  # same policy for both backends; kept for a future per-backend choice
    return {"pool_size": perf.pool_size, "max_overflow": perf.pool_size, "pool_timeout": 30}


_DICT_ATTRS = frozenset(dir(dict))


def install_fast_getattr(env: Any) -> None:
    """Make ``{{ row.field }}`` on a plain ``dict`` a dict lookup first (same result, no exception).

    Jinja2 resolves ``obj.name`` as ``getattr(obj, name)`` and, on ``AttributeError``, as
    ``obj[name]``. The rows the backend hands to templates are plain dicts, so every field access
    raised and caught an exception: 23 % of the participant audit page's CPU (py-spy). For an exact
    ``dict`` whose attribute ``name`` is not a dict method, ``getattr`` always fails, so looking the
    key up first gives exactly Jinja2's result; anything else goes through Jinja2's own method.
    """
    generic = env.getattr

    def getattr_(obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRS:
            try:
                return obj[attribute]
            except KeyError:
                return env.undefined(obj=obj, name=attribute)
        return generic(obj, attribute)

    env.getattr = getattr_


def app_from_env() -> Any:
    """App factory for ``lutarterial serve --workers N`` (uvicorn imports it in each worker process).

    The parent process has already upgraded the schema and created the secret key, so each worker
    opens ``$LUTARTERIAL_DB`` without upgrading. Per-process state (the 2 s user cache, the audit
    page's chain verification) is kept per worker; the server-side session row is read on every
    request by every worker, so a logout still applies at once everywhere.
    """
    from lutarterial.web.app import create_app

    demo = os.environ.get("LUTARTERIAL_WEB_DEMO", "") == "1"
    return create_app(os.environ["LUTARTERIAL_DB"], demo=demo, upgrade=False)


def json_now(content: Any, status_code: int = 200) -> Any:
    """The JSON answer FastAPI would send for ``content``, built in the route's own thread.

    Why (issue 13, fast; py-spy under load): FastAPI validates and serialises what a *sync* route
    returns in a second trip through the worker threads, so a JSON answer queued twice behind the
    other requests (participant JSON and lab saves were the slowest kinds at 50 users). The bytes
    are the same: FastAPI serialises a ``dict[str, Any]`` answer with pydantic's JSON serialiser,
    which this calls directly. The route keeps its return annotation, so the OpenAPI document is
    unchanged.
    """
    from fastapi.responses import Response
    from pydantic_core import to_json

    # inf_nan_mode="null": FastAPI writes NaN/Infinity as null (to_json's default writes the
    # non-JSON constants NaN/Infinity, which JSON.parse and strict clients refuse)
    return Response(to_json(content, inf_nan_mode="null"), status_code=status_code, media_type="application/json")
