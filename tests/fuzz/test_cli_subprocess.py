"""The real ``lutarterial`` process (not in-process): bad input ends with ``error:`` and exit 2, no traceback.

Three representative findings of issue 9, run as a user would; the in-process fuzz suite covers the
rest faster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lutarterial", *args], capture_output=True, text=True, timeout=120,
                          env=None)


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sp")
    (d / "corrupt.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    (d / "tac.csv").write_bytes(bytes(range(256)) * 4)
    (d / "voi.nii.gz").write_bytes(b"")
    return d


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["audit", "verify", "--db", "sqlite:///{d}/corrupt.db"], "database"),
        (["dose", "--tac", "{d}/tac.csv"], "tac.csv"),
        (["quantify", "{d}", "--voi", "{d}/voi.nii.gz", "--injected-mbq", "inf"], "--injected-mbq"),
    ],
)
def test_process_reports_error_without_traceback(garbage: Path, argv: list[str], needle: str) -> None:
    res = _run(*[a.format(d=garbage) for a in argv])
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error:") and needle in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
