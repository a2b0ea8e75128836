"""Issue 9: `audit verify` proves the data. Every tampering kind of the issue, on SQLite and
PostgreSQL: data edited/inserted/deleted around the application (reconciliation), an emptied
audit table with the triggers dropped (checkpoint + triggers), rows rewritten and hashes
recomputed without the key (keyed chain). Plus the CLI: exit 1 with table/key/field; a corrupted
SQLite file gives `error: …`, exit 2."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from lutarterial.registry import Registry, services
from lutarterial.registry.audit import GENESIS_HASH, canonical_json, drop_append_only_triggers
from lutarterial.registry.audit_proof import checkpoint_path, verify_registry

from .conftest import Team, enrolled_participant


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTARTERIAL_DATA_DIR", str(tmp_path / "data"))  # checkpoints of this test only


def _raw(reg: Registry, *statements: str, drop_triggers: bool = False) -> None:
    """Raw SQL on the database connection, around the application (a DBA's or an attacker's)."""
    with reg.engine.begin() as conn:
        if drop_triggers:
            drop_append_only_triggers(conn)
        for sql in statements:
            conn.execute(text(sql))


def _verify(reg: Registry):  # type: ignore[no-untyped-def]
    with reg.session(readonly=True) as s:
        return verify_registry(s)


@pytest.fixture
def pid(reg: Registry, team: Team) -> int:
    """An enrolled BDX participant with one lab value; the registry verifies clean (checkpoint written)."""
    p = enrolled_participant(reg, team)
    with reg.session() as s:
        services.record_lab(s, team.coord_bdx, p, analyte="platelets", value=180, unit="10*9/L",
                            collected_date="2024-02-01", reason="baseline lab")
    rep = _verify(reg)
    assert rep.ok, rep.problems()
    assert rep.unverified_fields == 0
    return p


def _lab_id(reg: Registry, pid: int) -> int:
    with reg.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT id FROM lab_results WHERE participant_id = {pid}")).scalar())


def test_intact_registry_verifies_and_checkpoints(reg: Registry, pid: int) -> None:
    rep = _verify(reg)
    assert rep.ok and rep.checkpoint is not None and rep.checkpoint["rows"] == rep.chain.rows_checked
    lines = checkpoint_path(str(reg.engine.url.render_as_string(hide_password=False))).read_text().splitlines()
    assert len(lines) >= 2 and json.loads(lines[-1])["head"] == rep.chain.head_hash


def test_update_of_a_lab_value_is_reported_with_table_key_and_field(reg: Registry, pid: int) -> None:
    lab = _lab_id(reg, pid)
    _raw(reg, f"UPDATE lab_results SET value = 999 WHERE id = {lab}")
    rep = _verify(reg)
    assert rep.chain.ok and not rep.ok  # the chain alone cannot see it; reconciliation does
    [d] = rep.discrepancies
    assert (d.table, d.row_id, d.kind, d.field, d.audited, d.current) == ("lab_results", str(lab), "changed",
                                                                          "value", 180, 999)


def test_deleted_lab_row_is_reported(reg: Registry, pid: int) -> None:
    lab = _lab_id(reg, pid)
    _raw(reg, f"DELETE FROM lab_results WHERE id = {lab}")
    [d] = _verify(reg).discrepancies
    assert (d.table, d.row_id, d.kind) == ("lab_results", str(lab), "missing_from_table")


def test_inserted_row_is_reported(reg: Registry, pid: int) -> None:
    _raw(reg, "INSERT INTO lab_results (id, participant_id, analyte, value, unit, value_canonical, unit_canonical, "
              f"collected_date) VALUES (4242, {pid}, 'platelets', 50, '10*9/L', 50, '10*9/L', '2024-03-01')")
    kinds = {(d.table, d.row_id, d.kind) for d in _verify(reg).discrepancies}
    assert ("lab_results", "4242", "not_in_audit_trail") in kinds


def test_participant_moved_to_another_site_is_reported(reg: Registry, pid: int) -> None:
    with reg.engine.connect() as conn:
        tls = int(conn.execute(text("SELECT id FROM sites WHERE code = 'TLS'")).scalar())
    _raw(reg, f"UPDATE participants SET site_id = {tls} WHERE id = {pid}")
    ds = _verify(reg).discrepancies
    assert [(d.table, d.row_id, d.field, d.current) for d in ds] == [("participants", str(pid), "site_id", tls)]


def test_screening_verdict_changed_is_reported(reg: Registry, pid: int) -> None:
    _raw(reg, f"UPDATE screening_results SET overall = 'not_eligible' WHERE participant_id = {pid}")
    ds = _verify(reg).discrepancies
    assert [(d.table, d.field, d.audited, d.current) for d in ds] == [("screening_results", "overall", "eligible",
                                                                       "not_eligible")]


def test_identity_edit_is_caught_through_the_keyed_digest(reg: Registry, team: Team) -> None:
    with reg.session() as s:
        p = services.register_participant(s, team.coord_bdx, site_code="BDX", reason="new",
                                          identity=services.IdentityInput("Roux", "Anne", "1955-02-03", "H-7"))
        pid = p.id
    with reg.engine.connect() as conn:  # the trail does not reveal the name
        assert "Roux" not in " ".join(r[0] or "" for r in conn.execute(text("SELECT new_values FROM audit_entries")))
    assert _verify(reg).ok
    _raw(reg, f"UPDATE participant_identities SET family_name = 'Martin' WHERE participant_id = {pid}")
    ds = _verify(reg).discrepancies
    assert [(d.table, d.field) for d in ds] == [("participant_identities", "family_name")]
    assert "Martin" not in str(ds[0].to_dict()) and "Roux" not in str(ds[0].to_dict())


def test_emptied_audit_table_with_triggers_dropped_is_reported(reg: Registry, pid: int) -> None:
    _raw(reg, "DELETE FROM audit_entries", drop_triggers=True)
    rep = _verify(reg)
    assert not rep.ok and rep.chain.ok and rep.chain.rows_checked == 0  # the chain alone says "intact: 0 rows"
    assert rep.checkpoint_problem and "were deleted" in rep.checkpoint_problem
    assert rep.missing_triggers
    assert {"participants", "lab_results"} <= {d.table for d in rep.discrepancies if d.kind == "not_in_audit_trail"}


def test_truncated_tail_is_reported_by_the_checkpoint(reg: Registry, pid: int) -> None:
    with reg.engine.connect() as conn:
        n = int(conn.execute(text("SELECT max(id) FROM audit_entries")).scalar())
    _raw(reg, f"DELETE FROM audit_entries WHERE id = {n}", drop_triggers=True)
    rep = _verify(reg)
    assert rep.checkpoint_problem and f"recorded {n}" in rep.checkpoint_problem


def test_rewrite_and_rehash_without_the_key_is_detected(reg: Registry, pid: int) -> None:
    """The attacker edits a lab value AND its audit entry, then recomputes every later hash with
    plain SHA-256 (the algorithm is public, the key is not)."""
    lab = _lab_id(reg, pid)
    with reg.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text("SELECT * FROM audit_entries ORDER BY id")).mappings()]
    target = next(r for r in rows if r["table_name"] == "lab_results" and r["action"] == "create")
    updates = []
    prev = GENESIS_HASH
    for r in rows:
        if r["id"] == target["id"]:
            new = json.loads(r["new_values"])
            new["value"] = 999
            r["new_values"] = canonical_json(new)
        if r["id"] >= target["id"]:
            payload = {k: r[k] for k in ("id", "occurred_at", "actor_user_id", "actor_username", "actor_roles",
                                         "site_id", "table_name", "row_id", "participant_id", "action",
                                         "old_values", "new_values", "reason")}
            h = hashlib.sha256((prev + canonical_json(payload)).encode()).hexdigest()
            updates.append({"id": r["id"], "prev": prev, "h": h, "nv": r["new_values"]})
            prev = h
        else:
            prev = r["row_hash"]
    with reg.engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(text(f"UPDATE lab_results SET value = 999 WHERE id = {lab}"))
        for u in updates:
            conn.execute(text("UPDATE audit_entries SET prev_hash = :prev, row_hash = :h, hash_alg = NULL, "
                              "new_values = :nv WHERE id = :id"), u)
    rep = _verify(reg)
    assert not rep.ok and not rep.chain.ok and rep.chain.first_broken_id == target["id"]
    assert "rewritten" in (rep.chain.problem or "")
    assert not rep.discrepancies  # the table and the forged trail agree: only the key catches it


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from lutarterial.cli.main import run; run(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ})


def test_cli_audit_verify_reports_and_exits_1(reg: Registry, registry_url: str, pid: int) -> None:
    assert _cli("audit", "verify", "--db", registry_url).returncode == 0
    lab = _lab_id(reg, pid)
    _raw(reg, f"UPDATE lab_results SET value = 999 WHERE id = {lab}")
    r = _cli("audit", "verify", "--db", registry_url)
    assert r.returncode == 1 and f"lab_results #{lab} field value: audited 180.0, now 999.0" in r.stderr
    r = _cli("audit", "verify", "--db", registry_url, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["ok"] is False and out["chain_ok"] is True
    assert out["discrepancies"][0]["field"] == "value"


def test_cli_audit_verify_on_a_corrupted_sqlite_file(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    r = _cli("audit", "verify", "--db", f"sqlite:///{bad}")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_audit_key_file_is_created_0600_outside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lutarterial.registry import audit_key as ak

    monkeypatch.delenv("LUTARTERIAL_AUDIT_KEY", raising=False)
    monkeypatch.setattr(ak, "_cache", {})
    url = f"sqlite:///{tmp_path / 'k.db'}"
    assert ak.audit_key(url, create=False) is None
    key = ak.audit_key(url)
    path = tmp_path / "data" / "audit_key"
    assert key and path.exists() and (path.stat().st_mode & 0o777) == 0o600
    assert ak.audit_key(url, create=False) == key
