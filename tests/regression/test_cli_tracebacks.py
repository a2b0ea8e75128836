"""Issue 9 regressions through the CLI entry point: corrupted databases and screening 1e308.

`audit verify` on a corrupted SQLite file gave a traceback; every registry command now ends with
one `error:` line and exit 2. `screen` on platelets 1e308 said eligible (exit 0).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lutarterial.cli.errors import INTERNAL_ERROR_PREFIX
from lutarterial.cli.main import run


def cli(capsys, *args):
    try:
        run([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def corrupt_db(tmp_path: Path) -> str:
    p = tmp_path / "corrupt.db"
    p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    return f"sqlite:///{p}"


@pytest.mark.parametrize("argv", [["audit", "verify"], ["user", "list"], ["db", "upgrade"], ["db", "current"],
                                  ["export", "csv", "--out", "{tmp}/csv"]])
def test_registry_commands_on_a_corrupted_sqlite_file(capsys, tmp_path, corrupt_db, argv):
    args = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = cli(capsys, *args, "--db", corrupt_db)
    assert code == 2, (out, err)
    assert err.startswith("error:") and "database" in err
    assert "Traceback" not in err and INTERNAL_ERROR_PREFIX not in err


def test_garbage_file_instead_of_a_database(capsys, tmp_path):
    p = tmp_path / "notadb.db"
    p.write_bytes(bytes(range(256)) * 8)
    code, _, err = cli(capsys, "audit", "verify", "--db", f"sqlite:///{p}")
    assert code == 2 and "Traceback" not in err and INTERNAL_ERROR_PREFIX not in err


def _base_record() -> dict:
    spec = importlib.util.spec_from_file_location(
        "elig_conftest_reg", Path(__file__).resolve().parents[1] / "unit" / "eligibility" / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.base_record()


def test_screen_platelets_1e308_is_not_eligible(capsys, tmp_path):
    rec = _base_record()
    for m in rec["measurements"]:
        if m["analyte"] == "platelets":
            m["value"], m["unit"] = 1e308, "10*9/L"
    f = tmp_path / "r.json"
    f.write_text(json.dumps(rec), encoding="utf-8")
    code, out, err = cli(capsys, "screen", f, "--json")
    assert "Traceback" not in err
    d = json.loads(out)
    assert d["verdict"] != "eligible"
    reasons = [c["reason"] for c in d["criteria"] if "implausible" in c["reason"]]
    assert reasons and "1e+308" in reasons[0]
