"""``lutarterial serve --workers N`` (issue 13, fast; ``lutarterial.web.server``) as a real server in a
subprocess on a free loopback port: connections spread over the workers, a second server on the
port is refused, SIGTERM stops everything, a killed worker is restarted, a bad worker count is a
clear error, and the API-token rate limit is shared by the workers."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow  # each test starts a server of 2 worker processes (~5 s)

SECRET = "workers-test-secret-" + "k" * 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUTARTERIAL_WEB_", "LUTARTERIAL_TOKEN_"))}
    env.update({"LUTARTERIAL_DATA_DIR": str(tmp_path), "LUTARTERIAL_SECRET_KEY": SECRET, **extra})
    return env


def _serve_cmd(url: str, port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "lutarterial", "serve", "--db", url, "--port", str(port), *args]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    out: Path
    seen: set[int] = field(default_factory=set)  # every worker pid seen (cleaned up at the end)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def workers(self) -> list[int]:
        """Pids of the parent's children that listen on the port (not multiprocessing's resource tracker)."""
        pids = []
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        for child in children:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port
                       for c in child.net_connections("tcp")):
                    pids.append(child.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.seen.update(pids)
        return sorted(pids)

    def wait_workers(self, n: int, timeout: float = 60, exclude: int | None = None) -> list[int]:
        deadline = time.monotonic() + timeout
        while True:
            pids = self.workers()
            if len(pids) == n and exclude not in pids:
                return pids
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"expected {n} workers (not {exclude}), have {pids}: {self.output()[-2000:]}")
            time.sleep(0.2)


def _wait_answering(server: Server, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(server.base + "/login", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"lutarterial serve did not start: {server.output()[-2000:]}")
        time.sleep(0.2)


@pytest.fixture
def start_server(upgraded_sqlite_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(workers=2, **env)`` -> a started, answering server (stopped at the end)."""
    servers: list[Server] = []

    def start(workers: int = 2, **extra_env: str) -> Server:
        port = _free_port()
        out = tmp_path / f"serve-{port}.log"
        with out.open("wb") as sink:
            proc = subprocess.Popen(_serve_cmd(upgraded_sqlite_url, port, "--workers", str(workers)), cwd=tmp_path,
                                    env=_env(tmp_path, **extra_env), stdout=sink, stderr=subprocess.STDOUT)
        server = Server(proc, port, out)
        servers.append(server)
        _wait_answering(server)
        server.wait_workers(workers)
        return server

    try:
        yield start
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.terminate()
                try:
                    server.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait(timeout=10)
            for pid in server.seen:  # only the workers this test started, by pid
                try:
                    psutil.Process(pid).kill()
                except psutil.NoSuchProcess:
                    pass


def _open_connections(server: Server, n: int, path: str, headers: dict[str, str] | None = None
                      ) -> tuple[list[http.client.HTTPConnection], list[http.client.HTTPResponse]]:
    """``n`` keep-alive connections opened at once, then one request on each (answers read, kept open)."""
    conns = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=60) for _ in range(n)]
    for c in conns:
        c.connect()
    answers = []
    for c in conns:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        answers.append(r)
    return conns, answers


def _owners(server: Server, conns: list[http.client.HTTPConnection], workers: list[int]) -> dict[int, int]:
    """Client port of each connection -> the worker pid holding its server side."""
    wanted = {c.sock.getsockname()[1] for c in conns}
    owner: dict[int, int] = {}
    for pid in workers:
        for c in psutil.Process(pid).net_connections("tcp"):
            if (c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == server.port and c.raddr
                    and c.raddr.port in wanted):
                owner[c.raddr.port] = pid
    return owner


def test_keep_alive_connections_opened_at_once_spread_over_both_workers(start_server: Any) -> None:
    server = start_server(workers=2, LUTARTERIAL_WEB_BALANCE="0")  # the kernel's spread alone: none closed
    workers = server.wait_workers(2)
    conns, answers = _open_connections(server, 40, "/login")
    try:
        assert [r.status for r in answers] == [200] * 40
        owner = _owners(server, conns, workers)
        assert len(owner) == 40, owner  # every connection is held by one of the workers
        per_worker = {pid: sum(1 for p in owner.values() if p == pid) for pid in workers}
        # the kernel hashes each connection to one of the two sockets: both get a fair share
        # (fewer than 4 of 40 on one worker: probability ~2e-8)
        assert all(count >= 4 for count in per_worker.values()), per_worker
    finally:
        for c in conns:
            c.close()


def test_a_worker_above_its_share_gives_connections_up_until_they_are_even(start_server: Any) -> None:
    """With balancing (the default), 40 keep-alive connections that keep sending requests end up 20
    on each worker: the busier one answers some with ``Connection: close`` and the clients reconnect
    (http.client reopens by itself, as browsers do); every answer is still a 200."""
    server = start_server(workers=2)
    workers = server.wait_workers(2)
    conns, answers = _open_connections(server, 40, "/login")
    closed = sum((r.getheader("connection") or "").lower() == "close" for r in answers)
    try:
        deadline = time.monotonic() + 60
        while True:
            held = [c for c in conns if c.sock is not None]  # a connection given up reopens on its next request
            owner = _owners(server, held, workers)
            per_worker = sorted(sum(1 for p in owner.values() if p == pid) for pid in workers)
            if len(held) == 40 and per_worker == [20, 20]:
                break
            assert time.monotonic() < deadline, (per_worker, closed)
            for c in conns:
                c.request("GET", "/login")
                r = c.getresponse()
                r.read()
                assert r.status == 200
                closed += (r.getheader("connection") or "").lower() == "close"
            time.sleep(0.05)
    finally:
        for c in conns:
            c.close()
    # a connection is given up only while the spread is uneven: far fewer than the answers sent
    assert closed < 40, closed


def test_a_second_server_on_the_same_port_is_refused_clearly(start_server: Any, upgraded_sqlite_url: str,
                                                            tmp_path: Path) -> None:
    server = start_server(workers=2)
    for args in (("--workers", "2"), ("--workers", "1")):
        r = subprocess.run(_serve_cmd(upgraded_sqlite_url, server.port, *args), cwd=tmp_path, env=_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0, r.stdout
        assert f"127.0.0.1:{server.port}" in r.stderr and "--port" in r.stderr, r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert "serving" not in r.stdout  # refused before it claims to serve
    assert httpx.get(server.base + "/login", timeout=30).status_code == 200  # the first one is untouched


def test_sigterm_stops_every_worker_and_exits_0(start_server: Any) -> None:
    server = start_server(workers=2)
    workers = [psutil.Process(pid) for pid in server.wait_workers(2)]
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0, server.output()[-2000:]
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, alive
    assert "Traceback" not in server.output()


def test_a_killed_worker_is_restarted_and_the_server_keeps_answering(start_server: Any) -> None:
    server = start_server(workers=2)
    victim, survivor = server.wait_workers(2)
    os.kill(victim, signal.SIGKILL)
    workers = server.wait_workers(2, timeout=60, exclude=victim)
    assert survivor in workers  # only the dead one was replaced
    assert f"worker {victim} exited" in server.output() and "restarting it" in server.output()
    codes = [httpx.get(server.base + "/login", timeout=30).status_code for _ in range(20)]  # fresh connections
    assert codes == [200] * 20
    assert server.proc.poll() is None


def test_a_bad_worker_count_in_the_environment_is_a_clear_error(upgraded_sqlite_url: str, tmp_path: Path) -> None:
    r = subprocess.run(_serve_cmd(upgraded_sqlite_url, _free_port()), cwd=tmp_path,
                       env=_env(tmp_path, LUTARTERIAL_WEB_WORKERS="abc"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "LUTARTERIAL_WEB_WORKERS" in r.stderr and "'abc'" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_a_bad_balance_setting_is_a_clear_error(upgraded_sqlite_url: str, tmp_path: Path) -> None:
    r = subprocess.run(_serve_cmd(upgraded_sqlite_url, _free_port(), "--workers", "2"), cwd=tmp_path,
                       env=_env(tmp_path, LUTARTERIAL_WEB_BALANCE="maybe"), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "LUTARTERIAL_WEB_BALANCE" in r.stderr and "'maybe'" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr and "serving" not in r.stdout


def _read_token(url: str) -> str:
    from lutarterial.registry import Registry
    from lutarterial.registry.access import SYSTEM_ACTOR
    from lutarterial.registry.tokens import create_token
    from lutarterial.web.demo import ensure_demo_users

    ensure_demo_users(url)
    reg = Registry.open(url)
    try:
        with reg.session() as s:
            return str(create_token(s, SYSTEM_ACTOR, username="coord.bdx", name="busy", scope="read",
                                    reason="test")[1])
    finally:
        reg.dispose()


def test_the_token_rate_limit_is_shared_by_the_workers(start_server: Any, upgraded_sqlite_url: str) -> None:
    token = _read_token(upgraded_sqlite_url)
    # a burst of 5, refilled once in 100 minutes: 5 requests in the whole test, whichever worker serves them
    server = start_server(workers=2, LUTARTERIAL_TOKEN_BURST="5", LUTARTERIAL_TOKEN_RATE_PER_MIN="0.01",
                          LUTARTERIAL_WEB_BALANCE="0")  # every connection kept open, to see who held it
    workers = server.wait_workers(2)
    conns, answers = _open_connections(server, 20, "/api/v1/sites", {"Authorization": f"Bearer {token}"})
    try:
        owner = _owners(server, conns, workers)
        assert set(owner.values()) == set(workers)  # both workers answered some of them
        codes = [r.status for r in answers]
        assert codes.count(200) == 5 and codes.count(429) == 15, codes  # not 5 per worker
        assert all(int(r.headers["Retry-After"]) >= 1 for r in answers if r.status == 429)
    finally:
        for c in conns:
            c.close()
