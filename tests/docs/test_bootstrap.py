"""scripts/bootstrap.sh (the README's first command): reports missing system packages exactly and,
when it cannot install them (not root), prints the install line and stops before changing anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bootstrap.sh"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_check_names_a_missing_package_and_its_install_line() -> None:
    r = _run("--check", env={"CHROMIUM": "/no/such/chromium"})
    assert r.returncode == 1
    assert "missing system packages: chromium" in r.stdout and "sudo apt-get install -y chromium" in r.stdout


def test_unknown_option_is_a_usage_error() -> None:
    r = _run("--bogus")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_not_root_prints_the_install_line_and_stops_before_anything(tmp_path: Path) -> None:
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "id").write_text("#!/bin/sh\necho 1000\n")
    marker = tmp_path / "apt-called"
    (shims / "apt-get").write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    for f in shims.iterdir():
        f.chmod(0o755)
    r = _run(env={"CHROMIUM": "/no/such/chromium", "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
                  "PYTHON": "/no/such/python-must-not-run"})
    assert r.returncode == 1, r.stderr
    assert "sudo apt-get update && sudo apt-get install -y" in r.stderr and "chromium" in r.stderr
    assert not marker.exists()  # nothing installed
    assert "bootstrap complete" not in r.stdout  # and no virtual environment step
