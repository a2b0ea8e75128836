"""Exports (CSV, ODM 1.3.2) and the registry CLI."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import text

from lutarterial.errors import AccessDeniedError
from lutarterial.registry import Registry, services
from lutarterial.registry.audit import drop_append_only_triggers
from lutarterial.registry.exports import ODM_NS, export_csv, odm_document

from .conftest import Team, enrolled_participant

SRC = str(Path(__file__).resolve().parents[3] / "src")

#: ODM 1.3.2 content models used by the export (parent -> allowed children, in schema order).
ODM_CHILDREN: dict[str, list[str]] = {
    "ODM": ["Study", "AdminData", "ReferenceData", "ClinicalData", "Association"],
    "Study": ["GlobalVariables", "BasicDefinitions", "MetaDataVersion"],
    "GlobalVariables": ["StudyName", "StudyDescription", "ProtocolName"],
    "MetaDataVersion": ["Include", "Protocol", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList",
                        "ImputationMethod", "Presentation", "ConditionDef", "MethodDef"],
    "Protocol": ["Description", "StudyEventRef"],
    "StudyEventDef": ["Description", "FormRef"],
    "FormDef": ["Description", "ItemGroupRef"],
    "ItemGroupDef": ["Description", "ItemRef"],
    "ItemDef": ["Description", "Question", "ExternalQuestion", "MeasurementUnitRef", "RangeCheck", "CodeListRef",
                "Role", "Alias"],
    # issue 13: data dictionary (units, labels, code lists) and e-signatures
    "BasicDefinitions": ["MeasurementUnit"], "MeasurementUnit": ["Symbol", "Alias"], "Symbol": ["TranslatedText"],
    "Question": ["TranslatedText"], "Description": ["TranslatedText"], "Decode": ["TranslatedText"],
    "CodeList": ["Description", "CodeListItem", "EnumeratedItem", "ExternalCodeList", "Alias"],
    "CodeListItem": ["Decode", "Alias"], "SignatureDef": ["Meaning", "LegalReason"],
    "Signature": ["UserRef", "LocationRef", "SignatureRef", "DateTimeStamp", "CryptoBindingManifest"],
    "AdminData": ["User", "Location", "SignatureDef"],
    "User": ["LoginName", "DisplayName", "FullName", "FirstName", "LastName", "Organization"],
    "Location": ["MetaDataVersionRef"],
    "ClinicalData": ["SubjectData", "AuditRecords", "Signatures", "Annotations"],
    "SubjectData": ["AuditRecord", "Signature", "InvestigatorRef", "SiteRef", "Annotation", "StudyEventData"],
    "StudyEventData": ["AuditRecord", "Signature", "Annotation", "FormData"],
    "FormData": ["AuditRecord", "Signature", "ArchiveLayoutRef", "Annotation", "ItemGroupData"],
    "ItemGroupData": ["AuditRecord", "Signature", "Annotation", "ItemData"],
    "ItemData": ["AuditRecord", "Signature", "MeasurementUnitRef", "Annotation"],
    "AuditRecords": ["AuditRecord"],
    "AuditRecord": ["UserRef", "LocationRef", "DateTimeStamp", "ReasonForChange", "SourceID"],
}
REQUIRED_ATTRS = {
    "ODM": {"FileType", "FileOID", "CreationDateTime"}, "Study": {"OID"}, "MetaDataVersion": {"OID", "Name"},
    "StudyEventDef": {"OID", "Name", "Repeating", "Type"}, "FormDef": {"OID", "Name", "Repeating"},
    "ItemGroupDef": {"OID", "Name", "Repeating"}, "ItemDef": {"OID", "Name", "DataType"},
    "ClinicalData": {"StudyOID", "MetaDataVersionOID"}, "SubjectData": {"SubjectKey"},
    "StudyEventData": {"StudyEventOID"}, "FormData": {"FormOID"}, "ItemGroupData": {"ItemGroupOID"},
    "ItemData": {"ItemOID"}, "UserRef": {"UserOID"}, "LocationRef": {"LocationOID"}, "SiteRef": {"LocationOID"},
    "User": {"OID"}, "Location": {"OID", "Name"},
    "MetaDataVersionRef": {"StudyOID", "MetaDataVersionOID", "EffectiveDate"},
}
LEAVES = {"StudyName", "StudyDescription", "ProtocolName", "StudyEventRef", "FormRef", "ItemGroupRef", "ItemRef",
          "LoginName", "MetaDataVersionRef", "SiteRef", "UserRef", "LocationRef", "DateTimeStamp",
          "ReasonForChange", "SourceID", "TranslatedText", "MeasurementUnitRef", "CodeListRef", "Alias", "Meaning",
          "LegalReason", "SignatureRef"}


def _check_odm_structure(el: ET.Element) -> int:
    """Every element is an ODM element in the ODM namespace, children in schema order; returns count."""
    assert el.tag.startswith(f"{{{ODM_NS}}}"), el.tag
    name = el.tag.split("}")[1]
    assert REQUIRED_ATTRS.get(name, set()) <= set(el.attrib), (name, el.attrib)
    children = [c.tag.split("}")[1] for c in el]
    if name in LEAVES or name == "ItemData":
        assert name == "ItemData" or not children, name
    else:
        allowed = ODM_CHILDREN[name]
        positions = [allowed.index(c) for c in children]  # ValueError: not allowed here
        assert positions == sorted(positions), (name, children)
    return 1 + sum(_check_odm_structure(c) for c in el)


@pytest.fixture
def filled(reg: Registry, team: Team) -> tuple[int, int]:
    bdx = enrolled_participant(reg, team, "BDX")
    tls = enrolled_participant(reg, team, "TLS")
    with reg.session() as s:
        services.record_iah_cycle(s, team.inv_bdx, bdx, visit_date="2024-02-01", activity_mbq=7400,
                                  artery="right hepatic artery", catheter_position="proper hepatic", reason="given")
        services.record_lab(s, team.coord_bdx, bdx, analyte="platelets", value=90, unit="10*9/L",
                            collected_date="2024-03-01", reason="lab")
        services.record_adverse_event(s, team.coord_bdx, bdx, term="Nausea", grade=2, onset_date="2024-02-03",
                                      reason="reported")
    return bdx, tls


def test_odm_export_is_well_formed_and_follows_odm_structure(reg: Registry, team: Team, filled: tuple[int, int]) -> None:
    now = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    with reg.session(readonly=True) as s:
        xml = odm_document(s, team.mon_bdx, now=now)
    root = ET.fromstring(xml)  # well-formed
    assert root.attrib["ODMVersion"] == "1.3.2" and root.attrib["CreationDateTime"] == "2024-06-01T12:00:00+00:00"
    assert _check_odm_structure(root) > 100
    ns = {"o": ODM_NS}
    subjects = root.findall("o:ClinicalData/o:SubjectData", ns)
    assert [x.attrib["SubjectKey"] for x in subjects] == ["BDX-001"]  # monitor of BDX: no TLS subject
    iah = subjects[0].find("o:StudyEventData[@StudyEventOID='SE.V_IAH_CYCLE']", ns)
    assert iah is not None
    values = {i.attrib["ItemOID"]: i.attrib["Value"] for i in iah.iter(f"{{{ODM_NS}}}ItemData")}
    assert values["IT.VISIT.ACTIVITY_MBQ"] == "7400.0" and values["IT.VISIT.ARTERY"] == "right hepatic artery"
    # Every ItemOID / ItemGroupOID / FormOID / StudyEventOID used is defined in the metadata.
    mdv = root.find("o:Study/o:MetaDataVersion", ns)
    assert mdv is not None
    defined = {d.attrib["OID"] for d in mdv if "OID" in d.attrib}
    for attr in ("ItemOID", "ItemGroupOID", "FormOID", "StudyEventOID"):
        used = {e.attrib[attr] for e in root.find("o:ClinicalData", ns).iter() if attr in e.attrib}  # type: ignore[union-attr]
        assert used <= defined, (attr, used - defined)
    users = {u.attrib["OID"] for u in root.findall("o:AdminData/o:User", ns)}
    locations = {loc.attrib["OID"] for loc in root.findall("o:AdminData/o:Location", ns)}
    records = root.findall("o:ClinicalData/o:AuditRecords/o:AuditRecord", ns)
    assert records and all(r.find("o:ReasonForChange", ns).text for r in records)  # type: ignore[union-attr]
    for r in root.iter(f"{{{ODM_NS}}}AuditRecord"):
        assert r.find("o:UserRef", ns).attrib["UserOID"] in users  # type: ignore[union-attr]
        assert r.find("o:LocationRef", ns).attrib["LocationOID"] in locations  # type: ignore[union-attr]
        assert "sha256=" in r.find("o:SourceID", ns).text  # type: ignore[operator,union-attr]
    assert b"Martin" not in xml and b"password" not in xml


def test_csv_export_zip_and_directory(reg: Registry, team: Team, filled: tuple[int, int], tmp_path: Path) -> None:
    with reg.session(readonly=True) as s:
        zpath = export_csv(s, team.admin, tmp_path / "export.zip")
        dpath = export_csv(s, team.inv_tls, tmp_path / "tls")
        with pytest.raises(AccessDeniedError):
            export_csv(s, team.coord_bdx, tmp_path / "no")
        with pytest.raises(AccessDeniedError):
            export_csv(s, team.inv_tls, tmp_path / "no", site_code="BDX")
    with zipfile.ZipFile(zpath) as zf:
        names = set(zf.namelist())
        assert {"participants.csv", "visits.csv", "audit_entries.csv", "users.csv", "manifest.json"} <= names
        assert "participant_identities.csv" not in names
        manifest = json.loads(zf.read("manifest.json"))
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
        assert manifest["audit_chain"]["ok"] is True
        users = list(csv.DictReader(io.StringIO(zf.read("users.csv").decode())))
        assert users and "password_hash" not in users[0]
        visits = list(csv.DictReader(io.StringIO(zf.read("visits.csv").decode())))
        assert [v["activity_mbq"] for v in visits] == ["7400.0"]
    participants = list(csv.DictReader((dpath / "participants.csv").open(encoding="utf-8")))
    assert [p["trial_number"] for p in participants] == ["TLS-001"]
    assert not (dpath / "users.csv").exists()
    audit = list(csv.DictReader((dpath / "audit_entries.csv").open(encoding="utf-8")))
    assert audit and {a["participant_id"] for a in audit} == {participants[0]["id"]}


def _subprocess_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lutarterial", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(cwd),
                               # the audit key the in-process commands used (issue 9: keyed chain)
                               "LUTARTERIAL_AUDIT_KEY": os.environ.get("LUTARTERIAL_AUDIT_KEY", "")},
                          timeout=120)


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``lutarterial.cli.main.run`` in-process (fast); returns exit code and output."""
    from lutarterial.cli.main import run

    def call(*args: str, stdin: str | None = None, cwd: Path | None = None) -> _Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        monkeypatch.delenv("LUTARTERIAL_DB", raising=False)
        capsys.readouterr()
        code = 0
        try:
            run(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        out = capsys.readouterr()
        return _Result(code, out.out, out.err)

    return call


def test_cli_upgrade_user_add_verify_and_tamper(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("db", "upgrade", cwd=tmp_path)  # default URL: ./data/lutarterial.db, directory created
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "lutarterial.db").exists()
    db = f"sqlite:///{tmp_path / 'data' / 'lutarterial.db'}"
    r = cli("user", "add", "alice", "--role", "investigator", "--site", "BDX", "--password-stdin", "--db", db,
             stdin="very-secret-pw\n", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "very-secret-pw" not in r.stdout + r.stderr
    r = cli("user", "add", "bob", "--role", "nurse", "--site", "BDX", "--password-stdin", "--db", db,
             stdin="very-secret-pw\n", cwd=tmp_path)
    assert r.returncode == 2 and "unknown role 'nurse'" in r.stderr and "Traceback" not in r.stderr
    r = cli("audit", "verify", "--db", db, "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    reg = Registry.open(db)
    with reg.session(readonly=True) as s:
        assert services.authenticate(s, "alice", "very-secret-pw") is not None
    with reg.engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(text("UPDATE audit_entries SET actor_username = 'mallory' WHERE id = 5"))
    reg.dispose()
    r = _subprocess_cli("audit", "verify", "--db", db, cwd=tmp_path)  # a real process and its exit status
    assert r.returncode == 1 and "row 5" in r.stderr
    for args in (("export", "csv", "--out", str(tmp_path / "x.zip")), ("export", "odm", "--out", str(tmp_path / "x.xml")),
                 ("audit", "export", "--out", str(tmp_path / "a.csv"))):
        r = cli(*args, "--db", db, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    ET.parse(tmp_path / "x.xml")


def test_cli_refuses_database_without_schema(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("audit", "verify", "--db", f"sqlite:///{tmp_path / 'empty.db'}", cwd=tmp_path)
    assert r.returncode == 2 and "lutarterial db upgrade" in r.stderr
