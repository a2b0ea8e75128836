"""Server CPU per request, per kind of request: where the web app spends its time (issue 13).

Seeds the demo (``lutarterial demo --db URL``, or copies ``--seed-from``), starts ``lutarterial
serve`` in its own process as a user does, signs in one coordinator and the monitor, then sends
each kind of request of ``benchmarks/load_web.py`` (list page, participant page, participant JSON,
participant audit page, global audit page, lab save) ``--n`` times *one after the other* and
reads the server process's CPU time (psutil) before and after each kind. With no concurrency
the figure is the cost of the request itself, free of queueing; it is what the load test's
throughput is bounded by. A bare ``GET /login`` (no database) is timed too, as the floor of
routing, middleware and template rendering.

    .venv/bin/python benchmarks/web_route_cpu.py [--backend sqlite|postgresql] [--n 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_web import Client, _cli, _env, _login, _pg_admin, cpu_s, free_port, stop, wait_ready  # noqa: E402


async def _measure(base: str, pid: int, n: int, writer: str, password: str, only: str | None = None,
                   spy: str | None = None) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    rng = random.Random(0)
    async with Client(base) as coord, Client(base) as monitor:
        csrf = await _login(coord, writer, password)
        await _login(monitor, "monitor", password)
        numbers = [p["trial_number"] for p in (await coord.get("/api/participants")).json()]
        kinds: list[tuple[str, Client, Any]] = [
            ("login page (floor)", coord, lambda tn: ("GET", "/login", None)),
            ("list", coord, lambda tn: ("GET", "/participants", None)),
            ("page", coord, lambda tn: ("GET", f"/participants/{tn}", None)),
            ("json", coord, lambda tn: ("GET", f"/api/participants/{tn}", None)),
            ("audit (participant)", coord, lambda tn: ("GET", f"/participants/{tn}/audit", None)),
            ("audit (global)", monitor, lambda tn: ("GET", "/audit", None)),
            ("save", coord, lambda tn: ("POST", f"/api/participants/{tn}/labs", {
                "analyte": "platelets", "value": round(rng.uniform(90, 300), 1), "unit": "10*9/L",
                "collected_date": "2026-01-15", "lln": 150, "uln": 400, "reason": "load test: laboratory value entry"})),
        ]
        for name, client, make in kinds:
            if only and not name.startswith(only):
                continue
            for _ in range(5):  # warm caches and code paths
                method, path, body = make(rng.choice(numbers))
                await client.request(method, path, body, {"X-CSRF-Token": csrf} if body else None)
            spy_proc = None
            if spy:  # collapsed stacks of the server for this kind only (profiling)
                spy_proc = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid),
                                             "-o", f"{spy}.{name.split()[0]}.txt", "-f", "raw", "-r", "200",
                                             "--nonblocking", "--subprocesses"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(1.0)
            c0, t0, status = cpu_s(pid), time.perf_counter(), set()
            for _ in range(n):
                method, path, body = make(rng.choice(numbers))
                r = await client.request(method, path, body, {"X-CSRF-Token": csrf} if body else None)
                status.add(r.status_code)
            wall, cpu = time.perf_counter() - t0, cpu_s(pid) - c0
            if spy_proc is not None:
                import signal

                spy_proc.send_signal(signal.SIGINT)
                spy_proc.wait(timeout=60)
            out[name] = {"cpu_ms": round(1000 * cpu / n, 2), "wall_ms": round(1000 * wall / n, 2),
                         "status": sorted(status)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed-from", default=None, help="SQLite: copy this demo data dir instead of seeding")
    ap.add_argument("--pg-server", default=os.environ.get("LUTARTERIAL_PG_SERVER",
                                                          "postgresql+psycopg://postgres@127.0.0.1:5432"))
    ap.add_argument("--only", default=None, help="only the kinds whose name starts with this")
    ap.add_argument("--py-spy", dest="spy", default=None, metavar="PREFIX",
                    help="record the server with py-spy per kind into PREFIX.<kind>.txt")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    from lutarterial.web.demo import DEMO_PASSWORD, DEMO_USERS

    writer = next(u.username for u in DEMO_USERS if u.load_test)
    with tempfile.TemporaryDirectory(prefix="lutarterial-routecpu-") as tmp:
        env = _env(tmp)
        pg_name = None
        if args.backend == "sqlite":
            if args.seed_from:
                import shutil

                shutil.copytree(args.seed_from, tmp, dirs_exist_ok=True)
                url = f"sqlite:///{tmp}/{next(Path(args.seed_from).glob('*.db')).name}"
            else:
                url = f"sqlite:///{tmp}/load.db"
        else:
            import psycopg

            pg_name = f"lutarterial_routecpu_{os.getpid()}"
            with psycopg.connect(_pg_admin(args.pg_server), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{pg_name}"')
            url = f"{args.pg_server.rstrip('/')}/{pg_name}"
        try:
            if not args.seed_from:
                subprocess.run([*_cli(), "demo", "--db", url, "--json"], env=env, check=True,
                               stdout=subprocess.DEVNULL, timeout=900)
            port = free_port()
            proc = subprocess.Popen([*_cli(), "serve", "--db", url, "--port", str(port), "--host", "127.0.0.1"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(proc, base + "/login")
                res = asyncio.run(_measure(base, proc.pid, args.n, writer, DEMO_PASSWORD, args.only, args.spy))
            finally:
                stop(proc)
        finally:
            if pg_name:
                import psycopg

                with psycopg.connect(_pg_admin(args.pg_server), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    print(f"{args.backend}: server CPU per request, {args.n} sequential requests per kind "
          f"(load average {os.getloadavg()[0]:.2f})")
    print(f"  {'kind':<22} {'CPU ms':>8} {'wall ms':>8}  status")
    for k, v in res.items():
        print(f"  {k:<22} {v['cpu_ms']:>8.2f} {v['wall_ms']:>8.2f}  {v['status']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
