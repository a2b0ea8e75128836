"""Bounded load test of the web application on loopback, run as a user runs the server.

For each database backend asked for (SQLite file in a temp dir, and/or a fresh PostgreSQL
database created on ``--pg-server`` and dropped afterwards) it:

1. seeds the demo data with ``lutarterial demo --db URL`` (a subprocess, as a user would);
2. starts ``lutarterial serve --db URL`` (uvicorn, a subprocess: its own CPU, as in production)
   on a free 127.0.0.1 port;
3. signs in ``--users`` virtual users (default 50; the demo's site coordinators/investigators,
   one in ten is the read-only monitor), then each loops over a mix: participant list page,
   participant page, the participant as JSON, an audit page (the participant's; the global one
   for the monitor), and -- every 4th action of a writer -- a laboratory value (platelets, with
   the laboratory's reference range LLN/ULN, as a lab report gives it) saved through the audited
   API with its CSRF token; the value (90-300) is below the LLN in about a quarter of the saves,
   which the edit checks and CTCAE grading then handle. It stops after ``--seconds`` (after a ``--warmup``) or
   ``--requests`` requests, whichever comes first;
4. reports p50/p95/p99/max latency (ms) per request kind and overall, requests/s, errors and the
   server's CPU time per request (utime+stime of the server process from psutil, measured over
   the timed phase only).

In the same run it serves a bare FastAPI endpoint (``GET /ping`` -> ``{"ok": true}``) with
uvicorn the same way and drives it with the same number of users: that is the floor (client,
event loop and HTTP cost on this machine, now). Only loopback traffic; every loop is bounded.

    .venv/bin/python benchmarks/load_web.py [--backend sqlite|postgresql|both] [--users 50]
        [--seconds 30] [--warmup 3] [--requests 100000] [--pg-server postgresql+psycopg://postgres@127.0.0.1:5432]
        [--json out/load_web.json]

Exit status 0 when there was no error (the latency target is printed, not enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
TARGET = {"p95_ms": 200.0, "p99_ms": 400.0}

BARE_APP = textwrap.dedent("""
    from fastapi import FastAPI
    import uvicorn, sys
    app = FastAPI()
    @app.get("/ping")
    async def ping():
        return {"ok": True}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LUTARTERIAL_DATA_DIR"] = data_dir
    env.setdefault("LUTARTERIAL_SECRET_KEY", "load-test-secret-key-" + "x" * 40)
    return env


def _cli() -> list[str]:
    return [sys.executable, "-m", "lutarterial"]


def wait_ready(proc: subprocess.Popen[bytes], url: str, limit_s: float = 90) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server exited ({proc.returncode}): {err[-2000:]}")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"server did not answer {url} within {limit_s:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[k]


def cpu_s(pid: int) -> float:
    """CPU seconds of the server process and its live children (uvicorn workers)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += float(t.user + t.system)
    return total


class HttpError(Exception):
    """A connection or protocol failure of :class:`Client`."""


class Response:
    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, body

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (one connection, one cookie jar).

    httpx's AsyncClient costs ~5 ms of client CPU per request, which on 2 shared cores made the
    load generator, not the server, the bottleneck; this costs a fraction of that. It speaks only
    what uvicorn answers: Content-Length or chunked bodies, Set-Cookie name=value.
    """

    IDLE_S = 4.0  #: reconnect after this long unused (below uvicorn's 5 s keep-alive timeout)

    def __init__(self, base: str, timeout: float = 60) -> None:
        hostport = base.split("://", 1)[1].rstrip("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port, self.timeout = int(port), timeout
        self.cookies: dict[str, str] = {}
        self._last = 0.0
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._r = self._w = None

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", path, json, headers)

    async def request(self, method: str, path: str, body_obj: Any = None,
                      headers: dict[str, str] | None = None) -> Response:
        try:
            return await asyncio.wait_for(self._request(method, path, body_obj, headers), self.timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from None

    async def _request(self, method: str, path: str, body_obj: Any, headers: dict[str, str] | None) -> Response:
        if self._w is not None and (time.monotonic() - self._last > self.IDLE_S or self._r is None
                                    or self._r.at_eof()):
            await self.close()  # the server closes idle keep-alive connections (uvicorn: 5 s); a browser reconnects
        if self._w is None:
            self._r, self._w = await asyncio.open_connection(self.host, self.port)
        assert self._r is not None
        body = b"" if body_obj is None else json.dumps(body_obj).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: */*"]
        if body_obj is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._w.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self._r.readuntil(b"\r\n\r\n")
        status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        hdrs: dict[str, str] = {}
        for line in hdr_lines:
            if not line:
                continue
            k, _, v = line.partition(":")
            k, v = k.strip().lower(), v.strip()
            if k == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            hdrs[k] = v
        if "content-length" in hdrs:
            data = await self._r.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self._r.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self._r.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = b""
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        self._last = time.monotonic()
        return Response(status, hdrs, data)


class Phase:
    """Shared state of one timed run: latencies are recorded only between start and end."""

    def __init__(self, requests: int) -> None:
        self.lat: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.left = requests
        self.recording = False
        self.think_s = 0.0
        self.ready = 0  # users signed in (the timed phase starts after all of them and the warm-up)
        self.stop_at = float("inf")


async def _login(client: Client, username: str, password: str) -> str:
    r = await client.post("/api/login", json={"username": username, "password": password})
    if r.status_code != 200:
        raise RuntimeError(f"login {username}: HTTP {r.status_code} {r.text[:200]}")
    return str(r.json()["csrf_token"])


async def app_user(base: str, username: str, password: str, writer: bool, phase: Phase, rng: random.Random) -> None:
    async with Client(base) as client:
        try:
            csrf = await _login(client, username, password)
        except (RuntimeError, HttpError) as exc:
            phase.errors.append(str(exc))
            return
        r = await client.get("/api/participants")
        numbers = [p["trial_number"] for p in r.json()] if r.status_code == 200 else []
        if not numbers:
            phase.errors.append(f"{username}: no participants visible")
            return
        phase.ready += 1
        step = rng.randrange(4)
        while phase.left > 0 and time.monotonic() < phase.stop_at:
            if phase.think_s > 0:  # a person reads the page: exponential pause with this mean
                await asyncio.sleep(min(rng.expovariate(1 / phase.think_s), 10 * phase.think_s))
            step += 1
            tn = rng.choice(numbers)
            body = None
            if writer and step % 4 == 0:
                kind, url = "save", f"/api/participants/{tn}/labs"
                body = {"analyte": "platelets", "value": round(rng.uniform(90, 300), 1), "unit": "10*9/L",
                        "collected_date": "2026-01-15", "lln": 150, "uln": 400,
                        "reason": "load test: laboratory value entry"}
            else:
                kind, url = rng.choice([
                    ("list", "/participants"),
                    ("page", f"/participants/{tn}"),
                    ("json", f"/api/participants/{tn}"),
                    ("audit", "/audit" if not writer else f"/participants/{tn}/audit"),
                ])
            t0 = time.perf_counter()
            resp: Response | None = None
            try:
                if body is None:
                    resp = await client.get(url)
                else:
                    resp = await client.post(url, json=body, headers={"X-CSRF-Token": csrf})
                ok = resp.status_code < 400
            except HttpError as exc:
                ok = False
                if phase.recording:
                    phase.errors.append(f"{kind} {url}: {exc!r}")
            ms = (time.perf_counter() - t0) * 1000
            if phase.recording:
                phase.left -= 1
                phase.lat.setdefault(kind, []).append(ms)
                if not ok and resp is not None:
                    phase.errors.append(f"{kind} {url}: HTTP {resp.status_code} {resp.text[:160]}")


async def bare_user(base: str, phase: Phase) -> None:
    async with Client(base) as client:
        phase.ready += 1
        while phase.left > 0 and time.monotonic() < phase.stop_at:
            t0 = time.perf_counter()
            try:
                ok = (await client.get("/ping")).status_code == 200
            except HttpError as exc:
                ok = False
                if phase.recording:
                    phase.errors.append(f"ping: {exc!r}")
            ms = (time.perf_counter() - t0) * 1000
            if phase.recording:
                phase.left -= 1
                phase.lat.setdefault("ping", []).append(ms)
                if not ok:
                    phase.errors.append("ping: not 200")


async def drive(users: list[Any], pid: int, warmup: float, seconds: float, phase: Phase,
                on_start: Any = None) -> dict[str, Any]:
    """Run the user coroutines: ``warmup`` seconds unrecorded, then ``seconds`` recorded."""

    async def timer() -> dict[str, float]:
        until = time.monotonic() + 300  # sign-ins (scrypt) of all users first, bounded
        while phase.ready + len(phase.errors) < len(users) and time.monotonic() < until:
            await asyncio.sleep(0.1)
        await asyncio.sleep(warmup)
        if on_start is not None:
            on_start()
        c0, t0 = cpu_s(pid), time.perf_counter()
        phase.recording = True
        phase.stop_at = time.monotonic() + seconds
        while time.monotonic() < phase.stop_at and phase.left > 0:
            await asyncio.sleep(0.05)
        return {"cpu_s": cpu_s(pid) - c0, "wall_s": time.perf_counter() - t0}

    phase.stop_at = time.monotonic() + 300 + warmup + seconds + 120  # re-set by the timer; a hard bound
    out = await asyncio.gather(timer(), *users)
    return out[0]


def summarise(name: str, phase: Phase, timing: dict[str, float]) -> dict[str, Any]:
    all_ms = [v for vs in phase.lat.values() for v in vs]
    n = len(all_ms)

    def stats(v: list[float]) -> dict[str, float]:
        return {"n": len(v), "p50_ms": round(pct(v, 0.50), 1), "p95_ms": round(pct(v, 0.95), 1),
                "p99_ms": round(pct(v, 0.99), 1), "max_ms": round(max(v), 1) if v else float("nan")}

    return {
        "name": name, "requests": n, "wall_s": round(timing["wall_s"], 2),
        "req_per_s": round(n / timing["wall_s"], 1) if timing["wall_s"] else 0.0,
        "server_cpu_ms_per_request": round(1000 * timing["cpu_s"] / n, 2) if n else float("nan"),
        "errors": len(phase.errors), "error_samples": phase.errors[:10],
        "overall": stats(all_ms), "kinds": {k: stats(v) for k, v in sorted(phase.lat.items())},
    }


def print_result(res: dict[str, Any]) -> None:
    o = res["overall"]
    verdict = ""
    if res["name"] != "floor":
        met = o["p95_ms"] < TARGET["p95_ms"] and o["p99_ms"] < TARGET["p99_ms"] and res["errors"] == 0
        verdict = "  target p95<200 p99<400 0 errors: " + ("MET" if met else "NOT MET")
    print(f"\n== {res['name']}: {res['requests']} requests in {res['wall_s']} s = {res['req_per_s']} req/s, "
          f"server CPU {res['server_cpu_ms_per_request']} ms/request, errors {res['errors']}{verdict}")
    print(f"   {'kind':<6} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    rows = list(res["kinds"].items()) + ([("all", o)] if len(res["kinds"]) > 1 else [])
    for kind, s in rows:
        print(f"   {kind:<6} {s['n']:>6} {s['p50_ms']:>8.0f} {s['p95_ms']:>8.0f} {s['p99_ms']:>8.0f} {s['max_ms']:>8.0f}")
    for e in res["error_samples"]:
        print("   error:", e)


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/ping")
        phase = Phase(args.requests)
        base = f"http://127.0.0.1:{port}"
        timing = asyncio.run(drive([bare_user(base, phase) for _ in range(args.users)], proc.pid,
                                   args.warmup, args.seconds, phase))
    finally:
        stop(proc)
    return summarise("floor", phase, timing)


def run_app(backend: str, db_url: str, data_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    from lutarterial.web.demo import DEMO_PASSWORD, DEMO_USERS

    env = _env(data_dir)
    t = time.perf_counter()
    if backend == "sqlite" and args.seed_from:  # a copy of a data dir seeded earlier (iterating)
        import shutil

        shutil.copytree(args.seed_from, data_dir, dirs_exist_ok=True)
        db_url = f"sqlite:///{data_dir}/{next(Path(args.seed_from).glob('*.db')).name}"
    else:
        subprocess.run([*_cli(), "demo", "--db", db_url, "--json"], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=900)
    print(f"[{backend}] seeded with `lutarterial demo` in {time.perf_counter() - t:.1f} s", flush=True)
    port = free_port()
    log_path = Path(data_dir) / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*_cli(), "serve", "--db", db_url, "--port", str(port), "--host", "127.0.0.1",
                             *(["--workers", str(args.workers)] if args.workers else [])],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, base + "/login")
        spies: list[subprocess.Popen[bytes]] = []

        def on_start() -> None:  # sample the server during the timed phase (collapsed stacks, for profiling)
            if args.py_spy:
                spies.append(subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(proc.pid), "-o",
                     f"{args.py_spy}.{backend}.txt", "-f", "raw", "-r", "100", "--nonblocking", "--subprocesses",
                     "-d", str(int(args.seconds))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        writers = [u.username for u in DEMO_USERS if u.load_test]
        phase = Phase(args.requests)
        phase.think_s = args.think_ms / 1000
        coros = []
        for i in range(args.users):
            rng = random.Random(i)
            if i % 10 == 9:
                coros.append(app_user(base, "monitor", DEMO_PASSWORD, False, phase, rng))
            else:
                coros.append(app_user(base, writers[i % len(writers)], DEMO_PASSWORD, True, phase, rng))
        timing = asyncio.run(drive(coros, proc.pid, args.warmup, args.seconds, phase, on_start))
    finally:
        for spy in spies:
            spy.wait(timeout=args.seconds + 60)
        stop(proc)
        log.close()
    if phase.errors:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"[{backend}] server log (tail):\n{tail}", flush=True)
    return summarise(backend, phase, timing)


def _pg_admin(server: str) -> str:
    return server.replace("postgresql+psycopg://", "postgresql://").rstrip("/") + "/postgres"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30, help="timed phase per server (bound)")
    ap.add_argument("--warmup", type=float, default=3, help="unrecorded seconds after sign-in")
    ap.add_argument("--requests", type=int, default=100_000, help="bound on recorded requests per server")
    ap.add_argument("--pg-server", default=os.environ.get("LUTARTERIAL_PG_SERVER",
                                                          "postgresql+psycopg://postgres@127.0.0.1:5432"))
    ap.add_argument("--seed-from", default=None, help="SQLite only: copy this data dir (seeded by `lutarterial "
                    "demo` before) instead of seeding again")
    ap.add_argument("--py-spy", default=None, metavar="PREFIX", help="record the server with py-spy into "
                    "PREFIX.<backend>.txt (collapsed stacks)")
    ap.add_argument("--think-ms", type=float, default=0.0, help="mean pause of a user between requests "
                    "(exponential; 0 = back-to-back requests, the stress case)")
    ap.add_argument("--workers", type=int, default=None,
                    help="`lutarterial serve --workers` (server processes; default: serve's own, one per core)")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare FastAPI floor")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if not (1 <= args.users <= 500) or not (0 < args.seconds <= 600) or not (0 <= args.warmup <= 60):
        print("error: --users 1..500, --seconds in (0, 600], --warmup 0..60", file=sys.stderr)
        return 2

    started = dt.datetime.now(dt.timezone.utc)
    results: list[dict[str, Any]] = []
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()
    if not args.no_floor:
        results.append(run_floor(args))
        print_result(results[-1])
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="lutarterial-load-") as tmp:
            if backend == "sqlite":
                results.append(run_app(backend, f"sqlite:///{tmp}/load.db", tmp, args))
            else:
                import psycopg

                name = f"lutarterial_load_{os.getpid()}"
                with psycopg.connect(_pg_admin(args.pg_server), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    conn.execute(f'CREATE DATABASE "{name}"')
                try:
                    results.append(run_app(backend, f"{args.pg_server.rstrip('/')}/{name}", tmp, args))
                finally:
                    with psycopg.connect(_pg_admin(args.pg_server), autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print_result(results[-1])
    load_after = os.getloadavg()
    meta = {"date_utc": started.strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(), "python": platform.python_version(), "users": args.users,
            "seconds": args.seconds, "workers": args.workers or _serve_default_workers(), "think_ms": args.think_ms, "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "threads": os.environ.get("LUTARTERIAL_WEB_THREADS", "default")}
    print(f"\n{meta['date_utc']}, {meta['cpus']} CPUs ({meta['cpu_model']}), Python {meta['python']}, "
          f"load average before {meta['loadavg_before']} after {meta['loadavg_after']}")
    print("\n| server | p50 ms | p95 ms | p99 ms | req/s | server CPU ms/req | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        o = r["overall"]
        print(f"| {r['name']} | {o['p50_ms']:.0f} | {o['p95_ms']:.0f} | {o['p99_ms']:.0f} | {r['req_per_s']:.0f} | "
              f"{r['server_cpu_ms_per_request']:.2f} | {r['errors']} |")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({"meta": meta, "results": results}, indent=2), encoding="utf-8")
    return 1 if any(r["errors"] for r in results) else 0


def _serve_default_workers() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from lutarterial.web.server import default_workers

    return default_workers()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


if __name__ == "__main__":
    raise SystemExit(main())
