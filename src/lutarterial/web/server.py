"""Running the web app in several processes with connections spread evenly (issue 13, "Fast").

Why: one Python process uses at most one core (the GIL), so ``lutarterial serve`` runs one
process per core by default. uvicorn's own ``--workers`` lets every worker accept on one shared
listening socket; an asyncio/uvloop worker that wakes first accepts *every* connection waiting,
so 50 keep-alive connections opened at once landed mostly on one worker (measured, 6 Dec 2026:
262 req/s with p50 134 ms but p95 372 ms on 2 cores). Here each worker opens its own socket on
the same port with ``SO_REUSEPORT`` and the kernel hands each new connection to one of them by a
hash of its addresses, so the connections (and the load) spread evenly on average; a worker
holding more than its share gives one up now and then (:mod:`lutarterial.web.balance`), so they
stay evenly spread (``LUTARTERIAL_WEB_BALANCE=0`` turns that off).

The parent process checks that the port is free (a plain bind, so a second server on the same
port is refused with a clear message instead of silently sharing it), starts the workers, restarts
one that dies unexpectedly (at most :data:`MAX_RESTARTS` times a minute) and stops them all on
Ctrl-C / SIGTERM. Where ``SO_REUSEPORT`` does not exist (not Linux/BSD/macOS), uvicorn's shared
socket is used instead.

Per-process state stays per worker: the 2 s user/token caches (a revocation still applies within
2 s in every worker) and the audit page's 30 s chain verification. The API-token rate limit is
shared by all workers of one server: the parent creates its table in shared memory and passes it to
each worker it starts (:mod:`lutarterial.web.shared_limit`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

from lutarterial.errors import InvalidInputError
from lutarterial.web import balance, shared_limit

__all__ = ["default_workers", "serve_processes", "check_port_free", "balance_enabled", "MAX_WORKERS"]

MAX_WORKERS = 16
MAX_RESTARTS = 5  #: unexpected worker deaths tolerated per minute before the server gives up
#: Worker threads of each process when there are several (``LUTARTERIAL_WEB_THREADS`` overrides).
#: 0: sync routes run on each process's event loop thread (``web/perf.py``). Measured at 50
#: back-to-back users on 2 cores (6 Dec 2026, 2 workers, runs alternated in one session): SQLite
#: 416-436 req/s with 0 against 331-395 with 1 thread; PostgreSQL 221-236 against 193-200.
MULTI_WORKER_THREADS = 0
_BACKLOG = 2048


def default_workers() -> int:
    """``LUTARTERIAL_WEB_WORKERS``, else one process per CPU core available to this process (≤ 8)."""
    raw = os.environ.get("LUTARTERIAL_WEB_WORKERS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInputError(f"LUTARTERIAL_WEB_WORKERS must be a whole number, got {raw!r}") from None
        if not 1 <= value <= MAX_WORKERS:
            raise InvalidInputError(f"LUTARTERIAL_WEB_WORKERS must be between 1 and {MAX_WORKERS}, got {value}")
        return value
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform != "win32"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port_free(host: str, port: int) -> None:
    """Refuse to start when something already listens on ``host:port`` (a plain bind, no reuse-port)."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of a stopped server is fine
        probe.bind((host, port))
    except OSError as exc:
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                "(another server on that port? choose another with --port)") from None
    finally:
        probe.close()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other workers of this server may also open."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)
    return sock


def balance_enabled() -> bool:
    """``LUTARTERIAL_WEB_BALANCE`` (default 1): keep connections evenly spread over the workers
    (:mod:`lutarterial.web.balance`); 0 turns it off."""
    raw = os.environ.get("LUTARTERIAL_WEB_BALANCE", "1").strip().lower()
    if raw in ("1", "true", "yes", "on", ""):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidInputError(f"LUTARTERIAL_WEB_BALANCE must be 1 or 0, got {raw!r}")


def _worker_main(env: dict[str, str], sock: socket.socket, log_level: str, buckets: Any = None,
                 counts: Any = None, index: int = 0) -> None:
    """One worker process: build the app, then serve on its own socket (opened by the parent).

    ``buckets``: the server's shared rate-limit table (:class:`~lutarterial.web.shared_limit.SharedBuckets`),
    installed before uvicorn calls the app factory so the app's token limiter uses it. ``counts``:
    the workers' connection counts (:class:`~lutarterial.web.balance.ConnectionCounts`; ``None``:
    no balancing), this worker being slot ``index``.
    """
    import uvicorn

    os.environ.update(env)
    shared_limit.install(buckets)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config("lutarterial.web.perf:app_from_env", factory=True, host=host, port=port,
                            log_level=log_level, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    balance.install(counts, index, server.server_state)  # before the factory builds the app
    server.run(sockets=[sock])


def serve_processes(env: dict[str, str], host: str, port: int, workers: int, *, log_level: str = "warning",
                    on_ready: Any = None) -> int:
    """Serve the app factory :func:`lutarterial.web.perf.app_from_env` in ``workers`` processes.

    ``env`` is added to each worker's environment (``LUTARTERIAL_DB`` and friends). Returns the
    exit status: 0 after Ctrl-C / SIGTERM, 1 when the workers keep dying.
    """
    if not reuse_port_supported():  # pragma: no cover - Windows
        import uvicorn

        os.environ.update(env)
        uvicorn.run("lutarterial.web.perf:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level=log_level)
        return 0
    check_port_free(host, port)
    # every worker's socket is open before any worker starts: the kernel spreads the connections
    # over all of them from the first one (a connection to a worker still starting waits in its
    # socket's backlog), instead of giving all early connections to the first worker up
    socks = [reuse_port_socket(host, port) for _ in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    buckets = shared_limit.SharedBuckets(ctx=ctx)  # the API-token rate limit, one for all workers
    # the workers' open connections, to keep them evenly spread (web/balance.py)
    counts = balance.ConnectionCounts(workers, ctx=ctx) if workers > 1 and balance_enabled() else None
    stopping = False

    def start(i: int) -> Any:
        proc = ctx.Process(target=_worker_main, args=(env, socks[i], log_level, buckets, counts, i), daemon=False)
        proc.start()
        return proc

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [start(i) for i in range(workers)]
    deaths: list[float] = []
    status = 0
    try:
        if on_ready is not None:
            on_ready()
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                buckets.recover(proc.pid or 0)  # it may have died holding the table's lock
                now = time.monotonic()
                deaths[:] = [t for t in deaths if now - t < 60] + [now]
                print(f"lutarterial serve: worker {proc.pid} exited with status {proc.exitcode}"
                      + ("; restarting it" if len(deaths) <= MAX_RESTARTS else ""), file=sys.stderr, flush=True)
                if len(deaths) > MAX_RESTARTS:
                    print(f"lutarterial serve: {len(deaths)} worker exits within a minute; stopping "
                          "(see the messages above)", file=sys.stderr, flush=True)
                    stopping, status = True, 1
                    break
                procs[i] = start(i)
    finally:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)  # uvicorn finishes the requests in flight, then exits
        deadline = time.monotonic() + 15
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for sock in socks:
            sock.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return status
