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
* **Inline sync code (``LUTARTERIAL_WEB_THREADS=0``, the default of each process when ``serve``
  runs several).** With one worker thread per process, every sync route and dependency still made
  two thread switches per request, and the worker thread and the event loop's thread took the GIL
  from each other on every await (py-spy under load: psycopg's send calls and ``Condition.wait``
  high in the profile while the CPU was full). With 0, sync code runs on the event loop's thread
  (:func:`run_sync`): no switch, no GIL hand-over; while one request waits for the database the
  other processes serve. Every sync call of the request must then run inline: a call left on a
  worker thread waits for the GIL behind a loop that never lets go of it (seen: 3 s tails when
  the session refresh alone still went to a thread). What FastAPI or Starlette still send to a
  thread is rare on this app's hot paths: the exit of a sync dependency with ``yield``, background
  tasks, sync iterators of a streaming response; static files and the API docs' assets are answered
  from memory (``web/static_cache.py``) for that reason. Code that needs the loop from sync code
  (``anyio.from_thread``) fails at once inline (it does not hang); none does today.
* **Database connections.** The engine's pool holds at least one connection per worker thread
  (plus a few for the event loop and bursts), so no request waits for a connection while a thread
  is free; ``LUTARTERIAL_DB_POOL_SIZE`` overrides it.
* **Templates.** Jinja2 checks every template file's mtime on each render unless
  ``auto_reload`` is off; it is off unless ``LUTARTERIAL_WEB_DEV=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from lutarterial.errors import InvalidInputError

__all__ = ["PerfSettings", "install_thread_limit", "engine_kwargs", "run_sync", "install_inline_sync",
           "InlineSyncMiddleware"]

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

    threads: int = DEFAULT_THREADS  #: 0: sync code on the event loop's thread (:func:`run_sync`)
    pool_size: int = DEFAULT_THREADS + 4
    template_reload: bool = False

    @property
    def inline(self) -> bool:
        return self.threads == 0

    @classmethod
    def from_env(cls) -> "PerfSettings":
        threads = _int_env("LUTARTERIAL_WEB_THREADS", DEFAULT_THREADS, 0, _MAX_THREADS)
        # inline (0): one request at a time per process, holding one or two connections at once; a pool
        # of 2 (+2 overflow, per engine: PostgreSQL has one for quick reads too) keeps a server's
        # connections at most 8 per process, fewer than one thread's 5+5 before (8 processes: 64)
        pool = _int_env("LUTARTERIAL_DB_POOL_SIZE", threads + 4 if threads else 2, 1, 4 * _MAX_THREADS)
        dev = os.environ.get("LUTARTERIAL_WEB_DEV", "").strip().lower() in {"1", "true", "yes"}
        return cls(threads=threads, pool_size=pool, template_reload=dev)


def install_thread_limit(threads: int) -> None:
    """Set anyio's default thread limiter (used by FastAPI/Starlette for sync code) to ``threads``.

    Call it inside the running event loop (the app's lifespan): the limiter belongs to the loop.
    """
    from anyio import to_thread

    # inline (0): what still uses anyio's threads (a sync stream, background tasks) gets one
    to_thread.current_default_thread_limiter().total_tokens = max(1, threads)


_T = TypeVar("_T")
_INLINE: ContextVar[bool] = ContextVar("lutarterial_inline_sync", default=False)
#: The modules of FastAPI that call ``run_in_threadpool`` for sync routes and dependencies.
_FASTAPI_CALLERS = ("fastapi.routing", "fastapi.dependencies.utils", "fastapi.concurrency")


async def run_sync(func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``func(*args, **kwargs)``: on this thread when the request's app runs inline
    (:class:`InlineSyncMiddleware`), else in anyio's worker threads (Starlette's ``run_in_threadpool``)."""
    if _INLINE.get():
        return func(*args, **kwargs)
    return await run_in_threadpool(func, *args, **kwargs)


def install_inline_sync() -> bool:
    """Let FastAPI's sync routes and dependencies go through :func:`run_sync` (idempotent).

    Process-wide, but it changes nothing for an app without :class:`InlineSyncMiddleware`: there
    :func:`run_sync` is Starlette's ``run_in_threadpool``. False (and nothing changed) when a FastAPI
    module no longer has ``run_in_threadpool``: sync code then runs in worker threads, as before.
    """
    import importlib

    modules = [importlib.import_module(name) for name in _FASTAPI_CALLERS]
    if not all(callable(getattr(mod, "run_in_threadpool", None)) for mod in modules):
        return False
    for mod in modules:
        mod.run_in_threadpool = run_sync  # type: ignore[attr-defined]
    return True


class InlineSyncMiddleware:
    """Marks each request of this app as inline, for :func:`run_sync` (``LUTARTERIAL_WEB_THREADS=0``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = _INLINE.set(scope["type"] == "http")
        try:
            await self.app(scope, receive, send)
        finally:
            _INLINE.reset(token)


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
