"""``lutarterial demo``: seeds every stage through the audited services, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lutarterial.web.demo import DEMO_USERS, STAGES, seed_demo


@pytest.mark.slow
def test_demo_seeds_every_stage_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = seed_demo(url)
    assert first.audit_ok and first.audit_rows > 50
    assert set(first.stages.values()) == set(STAGES)
    assert len(first.created) == len(first.stages) and not first.notes
    second = seed_demo(url)
    assert second.created == [] and sorted(second.existing) == sorted(first.created)
    assert second.audit_ok and second.audit_rows == first.audit_rows  # nothing written the second time

    from lutarterial.registry.db import Registry
    from lutarterial.registry.models import ImagingAnalysis, Participant, User

    reg = Registry.open(url)
    try:
        with reg.session(readonly=True) as s:
            assert s.query(Participant).count() == len(first.created)
            assert s.query(User).count() == len(DEMO_USERS)
            analysis = s.query(ImagingAnalysis).first()
            assert analysis is not None and analysis.result["vois"]
    finally:
        reg.dispose()


def test_demo_command_prints_json_summary(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env_src = str(Path(__file__).resolve().parents[3] / "src")
    out = subprocess.run([sys.executable, "-m", "lutarterial", "demo", "--db", str(db), "--json"],
                         capture_output=True, text=True, timeout=300, env={"PYTHONPATH": env_src, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["audit_ok"] is True and summary["demo_password"]
    assert db.exists()


def test_serve_help_lists_options() -> None:
    from typer.testing import CliRunner

    from lutarterial.cli.main import app

    res = CliRunner().invoke(app, ["serve", "--help"])
    assert res.exit_code == 0
    for opt in ("--db", "--port", "--host", "--demo"):
        assert opt in res.output


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "lutarterial", "demo", "--db", "mysql://x@y/z"],
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "error:" in out.stderr and "Traceback" not in out.stderr
