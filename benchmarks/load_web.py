"""Bounded load test of the web application on loopback.

Starts ``lutarterial serve`` on a free 127.0.0.1 port in a subprocess (its own CPU time, as in
production), seeded with the demo data, then runs N concurrent simulated users (default 50).
Each signs in once, then loops: participant list, one participant's timeline page, the same
participant as JSON, the safety page; every 4th action is a save (a laboratory value with a
reason, through the audited API). It stops after ``--requests`` requests in total or
``--seconds`` seconds, and prints p50/p95/max latency (ms) per kind and overall, the error
count and the throughput. Only loopback traffic.

    PYTHONPATH=src python benchmarks/load_web.py [--users 50] [--requests 3000] [--seconds 120]
        [--db postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("LUTARTERIAL_SECRET_KEY", "load-test-secret-key-" + "x" * 40)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lutarterial", "serve", "--db", db_url, "--port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + (proc.stderr.read().decode() if proc.stderr else ""))
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not answer within 60 s")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[k]


async def user_loop(base: str, username: str, password: str, budget: dict[str, int], deadline: float,
                    lat: dict[str, list[float]], errors: list[str], rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        r = await client.post("/api/login", json={"username": username, "password": password})
        if r.status_code != 200:
            errors.append(f"login {username}: {r.status_code}")
            return
        csrf = r.json()["csrf_token"]
        r = await client.get("/api/participants")
        numbers = [p["trial_number"] for p in r.json()] if r.status_code == 200 else []
        if not numbers:
            errors.append(f"{username}: no participants visible")
            return
        step = 0
        while budget["left"] > 0 and time.monotonic() < deadline:
            budget["left"] -= 1
            step += 1
            tn = rng.choice(numbers)
            if step % 4 == 0:
                kind, method, url = "save", "POST", f"/api/participants/{tn}/labs"
                body = {"analyte": "platelets", "value": round(rng.uniform(90, 300), 1), "unit": "10*9/L",
                        "collected_date": "2026-01-15", "reason": "load test: laboratory value entry"}
            else:
                kind, method, url, body = rng.choice([
                    ("list", "GET", "/participants", None),
                    ("page", "GET", f"/participants/{tn}", None),
                    ("json", "GET", f"/api/participants/{tn}", None),
                    ("page", "GET", f"/participants/{tn}/safety", None),
                ])
            t0 = time.perf_counter()
            try:
                if method == "GET":
                    r = await client.get(url)
                else:
                    r = await client.post(url, json=body, headers={"X-CSRF-Token": csrf})
                ok = r.status_code < 400
            except httpx.HTTPError as exc:
                ok, r = False, None
                errors.append(f"{kind} {url}: {exc!r}")
            ms = (time.perf_counter() - t0) * 1000
            lat.setdefault(kind, []).append(ms)
            if not ok and r is not None:
                errors.append(f"{kind} {url}: HTTP {r.status_code} {r.text[:120]}")


async def run_load(base: str, users: list[tuple[str, str]], n_users: int, requests: int, seconds: float) -> dict:
    lat: dict[str, list[float]] = {}
    errors: list[str] = []
    budget = {"left": requests}
    deadline = time.monotonic() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*[
        user_loop(base, *users[i % len(users)], budget, deadline, lat, errors, random.Random(i))
        for i in range(n_users)
    ])
    wall = time.perf_counter() - t0
    return {"lat": lat, "errors": errors, "wall_s": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000, help="total requests after sign-in (bound)")
    ap.add_argument("--seconds", type=float, default=120, help="time bound")
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file in a temp dir)")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from lutarterial.web.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo

    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.db or f"sqlite:///{tmp}/load.db"
        t = time.perf_counter()
        seed_demo(db_url)
        print(f"seeded demo data in {time.perf_counter() - t:.1f} s ({db_url.split(':')[0]})")
        writers = [(u.username, DEMO_PASSWORD) for u in DEMO_USERS if u.load_test]
        port = free_port()
        proc = start_server(db_url, port)
        try:
            res = asyncio.run(run_load(f"http://127.0.0.1:{port}", writers, args.users, args.requests, args.seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    lat, errors = res["lat"], res["errors"]
    all_ms = [v for vs in lat.values() for v in vs]
    print(f"{args.users} concurrent users, {len(all_ms)} requests in {res['wall_s']:.1f} s "
          f"({len(all_ms) / res['wall_s']:.0f} req/s), {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
    print(f"{'kind':<6} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind in sorted(lat):
        v = lat[kind]
        print(f"{kind:<6} {len(v):>6} {statistics.median(v):>8.0f} {pct(v, 0.95):>8.0f} {max(v):>8.0f}")
    print(f"{'all':<6} {len(all_ms):>6} {statistics.median(all_ms):>8.0f} {pct(all_ms, 0.95):>8.0f} {max(all_ms):>8.0f}")
    print(f"errors: {len(errors)}")
    for e in errors[:10]:
        print("  ", e)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
