"""Issue 9: concurrency without refusals or duplicates (threads and processes, both databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lutarterial.registry import Registry, services
from lutarterial.registry.access import SYSTEM_ACTOR
from lutarterial.registry.audit import verify_audit_chain


def test_100_concurrent_registrations_are_all_created_with_contiguous_numbers(reg: Registry, team) -> None:  # type: ignore[no-untyped-def]
    sites = ("BDX", "TLS")

    def one(i: int) -> str:
        site = sites[i % 2]
        actor = team.coord_bdx if site == "BDX" else team.coord_tls
        with reg.session() as s:
            return str(services.register_participant(s, actor, site_code=site, reason=f"load {i}").trial_number)

    with ThreadPoolExecutor(max_workers=10) as pool:
        numbers = list(pool.map(one, range(100)))
    assert len(numbers) == 100 and len(set(numbers)) == 100
    for site in sites:
        seqs = sorted(int(n.split("-")[1]) for n in numbers if n.startswith(site))
        assert seqs == list(range(1, 51)), site
    with reg.session(readonly=True) as s:
        rep = verify_audit_chain(s)
    assert rep.ok, rep.problem  # positions 1..N without a gap under concurrency


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    code = "import sys; from lutarterial.cli.main import run; run(sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_db_upgrades_at_once_on_a_new_database(backend: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    env = {**os.environ, "LUTARTERIAL_DATA_DIR": str(tmp_path)}
    procs = [_cli("db", "upgrade", "--db", url, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err
    reg = Registry.open(url)
    try:
        with reg.session(readonly=True) as s:
            assert len(services.list_sites(s)) == 4
            rep = verify_audit_chain(s)
            assert rep.ok and rep.rows_checked == 4  # one audited create per site, not two
    finally:
        reg.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_demos_at_once_give_one_set_of_demo_data(backend: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    from lutarterial.registry.models import Participant
    from lutarterial.web.demo import DEMO_USERS

    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    env = {**os.environ, "LUTARTERIAL_DATA_DIR": str(tmp_path)}
    procs = [_cli("demo", "--db", url, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err
    reg = Registry.open(url)
    try:
        with reg.session(readonly=True) as s:
            tns = [p.trial_number for p in s.query(Participant)]
            assert len(tns) == len(set(tns)) == 11
            assert len(services.list_users(s, SYSTEM_ACTOR)) == len(DEMO_USERS)
            assert verify_audit_chain(s).ok
    finally:
        reg.dispose()
