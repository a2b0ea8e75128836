"""Lab and screening imports at the registry level and on the command line (issue 15): one transaction
per file (nothing half-imported on a crash), identity matching for administrators only and never stored
on the lab row, `lutarterial import` / `lutarterial token` exit codes."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lutarterial.errors import NotFoundError
from lutarterial.registry import Registry, services
from lutarterial.registry.imports import import_labs
from lutarterial.registry.models import DataImport, LabResult
from lutarterial.registry.services.participants import IdentityInput

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def _with_identity(reg: Registry, team: Any, hospital_id: str = "IPP-DEMO-0001") -> str:
    with reg.session() as s:
        p = services.register_participant(
            s, team.coord_bdx, site_code="BDX", reason="new",
            identity=IdentityInput(family_name="Synthetique", given_name="Demo", birth_date="1961-05-02",
                                   hospital_id=hospital_id))
        return str(p.trial_number)


def _count(reg: Registry, model: Any) -> int:
    with reg.session(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_crash_mid_file_leaves_nothing(reg: Registry, team: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tn = _with_identity(reg, team)
    data = (EXAMPLES / "labs" / "labs_fr.csv").read_bytes().replace(b"BDX-001", tn.encode())
    from lutarterial.registry.services import study_data

    real, calls = study_data.record_lab, []

    def flaky(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(study_data, "record_lab", flaky)
    with pytest.raises(RuntimeError), reg.session() as s:
        import_labs(s, team.coord_bdx, data, reason="nightly import")
    assert len(calls) == 3
    assert _count(reg, LabResult) == 0 and _count(reg, DataImport) == 0
    monkeypatch.setattr(study_data, "record_lab", real)
    with reg.session() as s:
        summary = import_labs(s, team.coord_bdx, data, reason="nightly import")
    assert summary.imported == 6 and _count(reg, LabResult) == 6 and _count(reg, DataImport) == 1


def test_identity_matching_is_admin_only_and_not_stored(reg: Registry, team: Any) -> None:
    tn = _with_identity(reg, team)
    bundle = (EXAMPLES / "labs" / "bundle.json").read_bytes()  # the Patient carries IPP-DEMO-0001
    with reg.session() as s:
        refused = import_labs(s, team.coord_bdx, bundle, reason="EHR labs")
    assert refused.imported == 0
    assert sum("administrators only" in r["reason"] for r in refused.refused) == 5  # + 2 unreadable entries
    with reg.session() as s:
        ok = import_labs(s, team.admin, bundle, reason="EHR labs")
    assert ok.imported == 5 and {r["trial_number"] for r in ok.imported_rows} == {tn}
    with reg.session(readonly=True) as s:
        for lab in s.scalars(select(LabResult)):
            values = json.dumps({c.name: str(getattr(lab, c.name)) for c in LabResult.__table__.columns})
            assert "IPP-DEMO" not in values and "Synthetique" not in values
        rec = s.scalars(select(DataImport)).all()[-1]
        assert "IPP-DEMO" not in json.dumps(rec.summary)
    other = (EXAMPLES / "labs" / "observations.ndjson").read_bytes().replace(b"IPP-DEMO-0001", b"IPP-NOBODY")
    with reg.session() as s:
        none = import_labs(s, team.admin, other, reason="EHR labs")
    assert none.imported == 0 and "matches no participant" in none.refused[0]["reason"]


def test_unknown_route_participant_is_not_found(reg: Registry, team: Any) -> None:
    with pytest.raises(NotFoundError), reg.session() as s:
        import_labs(s, team.coord_bdx, b"analyte,value,unit,date\n", reason="x", participant="BDX-999")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    from lutarterial.cli.main import run

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        capsys.readouterr()
        code = 0
        try:
            run(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_cli_import_labs_screening_and_tokens(cli: Any, upgraded_sqlite_url: str) -> None:
    from lutarterial.web.demo import ensure_demo_users

    db = upgraded_sqlite_url
    ensure_demo_users(db)
    reg = Registry.open(db)
    try:
        with reg.session() as s:
            from lutarterial.registry.models import User

            uid = s.scalar(select(User.id).where(User.username == "coord.bdx"))
            actor = services.actor_for(s, uid)
            p = services.register_participant(s, actor, site_code="BDX", reason="new")
            services.record_consent(s, actor, p.id, version="v3.0", signed_date="2024-01-02", reason="consent")
    finally:
        reg.dispose()
    csv_path = str(EXAMPLES / "labs" / "labs_fr.csv")
    code, out, err = cli("import", "labs", csv_path, "--db", db, "--user", "coord.bdx", "--reason", "lab export")
    assert code == 0, err
    assert "11 rows, 6 imported, 1 duplicates skipped, 4 refused" in out and "CTCAE grade 3" in out
    code, out, err = cli("import", "labs", csv_path, "--db", db, "--user", "monitor", "--reason", "x")
    assert code == 3 and err.startswith("error:") and "Traceback" not in err
    code, out, err = cli("import", "labs", "/nonexistent.csv", "--db", db, "--user", "coord.bdx", "--reason", "x")
    assert code == 2 and err.startswith("error: cannot read")
    code, out, err = cli("import", "screening", str(EXAMPLES / "eligibility" / "bundle.json"), "--db", db,
                         "--user", "coord.bdx", "--participant", "BDX-001", "--reason", "EHR", "--as-of",
                         "2024-06-03", "--json")
    assert code == 0, err
    got = json.loads(out)
    import hashlib

    assert got["bundle_sha256"] == hashlib.sha256((EXAMPLES / "eligibility" / "bundle.json").read_bytes()).hexdigest()
    code, out, err = cli("token", "create", "--db", db, "--user", "coord.bdx", "--name", "n1", "--scope", "read",
                         "--site", "BDX", "--expires-days", "30")
    assert code == 0 and out.splitlines()[1].startswith("lut_")
    code, out, err = cli("token", "create", "--db", db, "--user", "coord.bdx", "--name", "n2", "--scope", "admin")
    assert code == 2 and "scope" in err
    code, out, err = cli("token", "create", "--db", db, "--user", "coord.bdx", "--name", "n3", "--scope", "read",
                         "--site", "TLS")
    assert code == 3
    code, out, err = cli("token", "list", "--db", db, "--json")
    rows = json.loads(out)
    assert [(t["name"], t["status"], t["sites"]) for t in rows] == [("n1", "active", ["BDX"])]
    assert all("token" not in t and "token_hash" not in t for t in rows)
    code, out, err = cli("token", "revoke", "--db", db, "--user", "coord.bdx", "--name", "n1", "--reason", "done")
    assert code == 0 and "revoked" in out
    code, out, err = cli("token", "revoke", "--db", db, "--user", "coord.bdx", "--name", "n1", "--reason", "again")
    assert code == 2 and "already revoked" in err
