"""Exports: CSV per table (directory or zip) and CDISC ODM 1.3.2 XML with the audit trail.

What leaves the database is limited by the same rules as the screens: a user exports only the
participants of their sites (admins: all), and never the identity key or password hashes.
Each export carries a manifest (CSV) or ``AuditRecords`` (ODM) tying it to the audit chain's
head hash at export time, so a reader can check which state of the database it reflects.

ODM structure (CDISC ODM 1.3.2, namespace ``http://www.cdisc.org/ns/odm/v1.3``)::

    ODM (FileType=Snapshot, Granularity=All|SingleSite)
      Study / GlobalVariables, MetaDataVersion (Protocol, StudyEventDef, FormDef, ItemGroupDef, ItemDef)
      AdminData / User (LoginName), Location (MetaDataVersionRef)
      ClinicalData
        SubjectData SubjectKey="BDX-001" / AuditRecord, SiteRef, StudyEventData / FormData /
            ItemGroupData (ItemGroupRepeatKey = row id) / AuditRecord (latest change), ItemData
        AuditRecords / AuditRecord ID="AR.<n>" (UserRef, LocationRef, DateTimeStamp,
            ReasonForChange, SourceID = audit_entries position, table/row, action and row hash)

Old and new values of each change are in the CSV audit export (``audit_entries.csv``): ODM 1.3
AuditRecord has no element for them in a Snapshot file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError
from lutarterial.registry.access import Actor, Permission, require, restrict_to_sites
from lutarterial.registry.audit import canonical_json, verify_audit_chain
from lutarterial.registry.audit_proof import checkpoint_after_export
from lutarterial.registry.csv_safety import neutralise
from lutarterial.registry.models import (
    AdverseEvent,
    AuditEntry,
    Base,
    Consent,
    DosimetryAnalysis,
    Enrolment,
    ImagingAnalysis,
    LabResult,
    Participant,
    RecistAssessment,
    ScreeningResult,
    Site,
    SiteMembership,
    User,
    UserRole,
    Visit,
    VisitKind,
)

__all__ = ["ODM_NS", "export_csv", "export_odm", "odm_document", "audit_rows", "write_audit_csv"]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
STUDY_OID = "ST.LUTARTERIAL"
MDV_OID = "MDV.LUTARTERIAL.1"

#: Study tables exported per participant (identity key never).
_PARTICIPANT_TABLES: tuple[type[Base], ...] = (
    Participant, Consent, ScreeningResult, Enrolment, Visit, LabResult, AdverseEvent, RecistAssessment,
    ImagingAnalysis, DosimetryAnalysis,
)
_EXCLUDED_COLUMNS = {"users": {"password_hash"}}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return canonical_json(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return str(neutralise(str(value)))  # text only: formula-leading cells get ' (issue 9)


def _visible_participant_ids(session: Session, actor: Actor, site_code: str | None) -> list[int]:
    stmt = select(Participant.id).order_by(Participant.id)
    stmt = restrict_to_sites(stmt, actor, Participant.site_id)
    if site_code:
        site = session.scalars(select(Site).where(Site.code == site_code.strip().upper())).first()
        if site is None:
            raise InvalidInputError(f"site {site_code!r} does not exist")
        if not actor.sees_site(site.id):
            from lutarterial.errors import AccessDeniedError

            raise AccessDeniedError(f"user {actor.username!r} is not a member of site {site.code}")
        stmt = stmt.where(Participant.site_id == site.id)
    return list(session.scalars(stmt))


def _rows(session: Session, model: type[Base], ids: Sequence[int]) -> tuple[list[str], list[list[str]]]:
    table = model.__table__
    columns = [c.name for c in table.columns if c.name not in _EXCLUDED_COLUMNS.get(table.name, set())]
    stmt = select(*[table.c[c] for c in columns]).order_by(table.c.id)
    if model is Participant:
        stmt = stmt.where(table.c.id.in_(ids or [-1]))
    elif "participant_id" in table.c:
        stmt = stmt.where(table.c.participant_id.in_(ids or [-1]))
    rows = [[_cell(v) for v in row] for row in session.connection().execute(stmt)]
    return columns, rows


def audit_rows(session: Session, actor: Actor, participant_ids: Sequence[int] | None = None) -> list[AuditEntry]:
    """Audit rows the actor may export: admin all; others those of their sites' participants."""
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    if participant_ids is not None:
        stmt = stmt.where(AuditEntry.participant_id.in_(list(participant_ids) or [-1]))
    else:
        stmt = restrict_to_sites(stmt, actor, AuditEntry.site_id)
    return list(session.scalars(stmt))


def _audit_table(entries: Iterable[AuditEntry]) -> tuple[list[str], list[list[str]]]:
    columns = [c.name for c in AuditEntry.__table__.columns]
    return columns, [[_cell(getattr(e, c)) for c in columns] for e in entries]


def _csv_bytes(columns: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_audit_csv(session: Session, actor: Actor, out: Path, *, participant: int | str | None = None) -> Path:
    """Write the audit trail (one participant's, or all the actor may see) to ``out`` as CSV."""
    ids: list[int] | None = None
    if participant is not None:
        from lutarterial.registry.services import get_participant

        ids = [get_participant(session, actor, participant).id]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_csv_bytes(*_audit_table(audit_rows(session, actor, ids))))
    return out


@dataclass(frozen=True)
class _Export:
    files: dict[str, bytes]
    manifest: dict[str, Any]


def _collect_csv(session: Session, actor: Actor, site_code: str | None, now: dt.datetime) -> _Export:
    require(actor, Permission.EXPORT)
    ids = _visible_participant_ids(session, actor, site_code)
    files: dict[str, bytes] = {}
    files["sites.csv"] = _csv_bytes(*_rows(session, Site, ()))
    for model in _PARTICIPANT_TABLES:
        files[f"{model.__tablename__}.csv"] = _csv_bytes(*_rows(session, model, ids))
    if actor.is_admin and not site_code:
        for model in (User, UserRole, SiteMembership):
            files[f"{model.__tablename__}.csv"] = _csv_bytes(*_rows(session, model, ()))
        entries = audit_rows(session, actor)
    else:
        entries = audit_rows(session, actor, ids)
    files["audit_entries.csv"] = _csv_bytes(*_audit_table(entries))
    chain = verify_audit_chain(session)
    checkpoint_after_export(session, chain)  # issue 9: every export records the audit head
    manifest = {
        "format": "lutarterial registry CSV export",
        "exported_at": _cell(now),
        "exported_by": actor.username,
        "site": site_code,
        "participants": len(ids),
        "audit_chain": chain.to_dict(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "notes": "UTF-8, comma-separated, header row; dates ISO 8601, times UTC; JSON columns as canonical "
                 "JSON; empty cell = no value. Identity keys and password hashes are never exported.",
    }
    return _Export(files, manifest)


def export_csv(session: Session, actor: Actor, out: str | Path, *, site_code: str | None = None,
               now: dt.datetime | None = None) -> Path:
    """Write one CSV per table plus ``manifest.json`` (SHA-256 of each file, audit head hash).

    ``out`` ending in ``.zip`` gives a zip archive; anything else a directory (created).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    export = _collect_csv(session, actor, site_code, now)
    files = {**export.files, "manifest.json": json.dumps(export.manifest, indent=2, ensure_ascii=False).encode()}
    out = Path(out)
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(files.items()):
                zf.writestr(name, data)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (out / name).write_bytes(data)
    return out


# --- ODM --------------------------------------------------------------------------------------

_SQL_TO_ODM = {"INTEGER": "integer", "FLOAT": "float", "DATE": "date", "DATETIME": "datetime",
               "BOOLEAN": "boolean", "JSON": "text", "TEXT": "text", "VARCHAR": "text"}

#: (form OID suffix, model, name, repeating) per kind of record, in protocol order.
_FORMS: tuple[tuple[str, type[Base], str], ...] = (
    ("CONSENT", Consent, "Informed consent"),
    ("SCREENING", ScreeningResult, "Screening"),
    ("ENROLMENT", Enrolment, "Enrolment"),
    ("VISIT", Visit, "Visit"),
    ("LAB", LabResult, "Laboratory results"),
    ("AE", AdverseEvent, "Adverse events"),
    ("RECIST", RecistAssessment, "RECIST 1.1 assessment"),
    ("IMAGING", ImagingAnalysis, "Imaging analysis"),
    ("DOSIMETRY", DosimetryAnalysis, "Dosimetry analysis"),
)
_SKIP_ITEMS = {"id", "participant_id"}


def _items(model: type[Base]) -> list[tuple[str, str]]:
    out = []
    for col in model.__table__.columns:
        if col.name in _SKIP_ITEMS:
            continue
        type_name = type(col.type).__name__.upper()
        out.append((col.name, _SQL_TO_ODM.get(type_name, "text")))
    return out


def _odm_value(value: Any, datatype: str) -> str:
    if datatype == "datetime" and isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    if datatype == "float" and isinstance(value, float):
        return repr(value)
    return _cell(value)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: Any) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ODM_NS}}}{tag}", {k: str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _event_oid(form: str, row: Any) -> tuple[str, str | None]:
    """Study event of a record: consent/screening/enrolment in SE.SCREENING, visits in their own
    event (repeat key = visit number), other records in the common event SE.COMMON."""
    if form in ("CONSENT", "SCREENING", "ENROLMENT"):
        return "SE.SCREENING", None
    if form == "VISIT":
        return f"SE.V_{row.kind.upper()}", str(row.number)
    return "SE.COMMON", None


def _metadata(study: ET.Element) -> None:
    gv = _sub(study, "GlobalVariables")
    _sub(gv, "StudyName", "LUTARTERIAL")
    _sub(gv, "StudyDescription", "Intra-arterial hepatic versus intravenous 177Lu-DOTATATE (LUTATHERA) in "
                                 "GEP-NET with liver-dominant metastases")
    _sub(gv, "ProtocolName", "NCT04837885")
    mdv = _sub(study, "MetaDataVersion", OID=MDV_OID, Name="lutarterial registry schema",
               Description="Generated from the lutarterial registry model")
    events = ["SE.SCREENING", *[f"SE.V_{k.name}" for k in VisitKind], "SE.COMMON"]
    protocol = _sub(mdv, "Protocol")
    for i, oid in enumerate(events, 1):
        _sub(protocol, "StudyEventRef", StudyEventOID=oid, OrderNumber=i, Mandatory="No")
    for oid in events:
        if oid == "SE.SCREENING":
            forms, repeating, typ, name = ["CONSENT", "SCREENING", "ENROLMENT"], "No", "Scheduled", "Screening and enrolment"
        elif oid == "SE.COMMON":
            forms, repeating, typ, name = ["LAB", "AE", "RECIST", "IMAGING", "DOSIMETRY"], "No", "Common", "Results"
        else:
            kind = VisitKind[oid[5:]]
            forms, repeating, typ = ["VISIT"], "Yes", "Scheduled"
            name = kind.value.replace("_", " ")
        sed = _sub(mdv, "StudyEventDef", OID=oid, Name=name, Repeating=repeating, Type=typ)
        for i, form in enumerate(forms, 1):
            _sub(sed, "FormRef", FormOID=f"F.{form}", OrderNumber=i, Mandatory="No")
    for form, model, name in _FORMS:
        fd = _sub(mdv, "FormDef", OID=f"F.{form}", Name=name, Repeating="No")
        _sub(fd, "ItemGroupRef", ItemGroupOID=f"IG.{form}", Mandatory="No")
    for form, model, name in _FORMS:
        ig = _sub(mdv, "ItemGroupDef", OID=f"IG.{form}", Name=name, Repeating="Yes",
                  Domain=model.__tablename__.upper()[:8])
        for i, (item, _dtype) in enumerate(_items(model), 1):
            _sub(ig, "ItemRef", ItemOID=f"IT.{form}.{item.upper()}", OrderNumber=i, Mandatory="No")
    for form, model, name in _FORMS:
        for item, dtype in _items(model):
            attrs: dict[str, Any] = {"OID": f"IT.{form}.{item.upper()}", "Name": item, "DataType": dtype}
            col = model.__table__.c[item]
            length = getattr(col.type, "length", None)
            if dtype == "text" and length:
                attrs["Length"] = length
            _sub(mdv, "ItemDef", **attrs)


def _audit_record(parent: ET.Element, entry: AuditEntry, site_codes: dict[int, str], *, with_id: bool) -> None:
    ar = _sub(parent, "AuditRecord", ID=f"AR.{entry.id}" if with_id else None, EditPoint="DataManagement",
              UsedImputationMethod="No")
    _sub(ar, "UserRef", UserOID=_user_oid(entry.actor_username))
    _sub(ar, "LocationRef", LocationOID=_location_oid(site_codes.get(entry.site_id or -1)))
    _sub(ar, "DateTimeStamp", entry.occurred_at.replace("Z", "+00:00"))
    _sub(ar, "ReasonForChange", entry.reason)
    _sub(ar, "SourceID", f"lutarterial audit_entries/{entry.id} {entry.action} {entry.table_name}/{entry.row_id} "
                         f"sha256={entry.row_hash}")


def _dictionary_metadata(study: ET.Element | None) -> None:
    """The screening record's data dictionary as ODM metadata: a FormDef ``F.SCREENING_RECORD`` with
    one ItemGroupDef for the scalar fields and one (repeating) per list, ItemDefs with the label
    (Question), help (Description), unit (MeasurementUnitRef to BasicDefinitions) and the record
    path (Alias), CodeLists for enumerations; inserted in the order the ODM 1.3.2 XSD requires."""
    if study is None:
        return
    try:
        from lutarterial.datamanagement.dictionary import load_data_dictionary, schema_fields
        from lutarterial.records.schema import json_schema
    except ImportError:  # pragma: no cover - records package always installed
        return
    fields = schema_fields(json_schema())
    dd = load_data_dictionary()
    mdv = study.find(f"{{{ODM_NS}}}MetaDataVersion")
    if mdv is None or not fields:
        return

    def q(tag: str) -> str:
        return f"{{{ODM_NS}}}{tag}"

    def oid(path: str) -> str:
        return "IT.SR." + path.upper().replace(".", "_")

    def text(parent: ET.Element, tag: str, value: str) -> None:
        el = ET.SubElement(parent, q(tag))
        ET.SubElement(el, q("TranslatedText"), {"xml:lang": "en"}).text = value

    units = sorted({dd[f["path"]].unit for f in fields if f["path"] in dd and dd[f["path"]].unit})
    if units:
        basic = ET.Element(q("BasicDefinitions"))
        for u in units:
            mu = ET.SubElement(basic, q("MeasurementUnit"), {"OID": "MU." + re.sub(r"[^A-Za-z0-9]", "_", u), "Name": u})
            text(mu, "Symbol", u)
        gv_index = [i for i, el in enumerate(list(study)) if el.tag == q("GlobalVariables")]
        study.insert((gv_index[0] + 1) if gv_index else 0, basic)
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in fields:
        groups.setdefault(f["group"] or "", []).append(f)
    children = list(mdv)
    last = {tag: max((i for i, el in enumerate(children) if el.tag == q(tag)), default=-1)
            for tag in ("FormDef", "ItemGroupDef")}
    form = ET.Element(q("FormDef"), {"OID": "F.SCREENING_RECORD", "Name": "Screening record (data dictionary)",
                                     "Repeating": "No"})
    igs = []
    for n, (group, items) in enumerate(groups.items(), 1):
        ig_oid = "IG.SR." + (group.upper().replace(".", "_") if group else "FIELDS")
        ET.SubElement(form, q("ItemGroupRef"), {"ItemGroupOID": ig_oid, "Mandatory": "No", "OrderNumber": str(n)})
        entry = dd.get(group) if group else None
        ig = ET.Element(q("ItemGroupDef"), {"OID": ig_oid, "Name": entry.label if entry else (group or "Screening record"),
                                            "Repeating": "Yes" if group else "No"})
        for k, f in enumerate(items, 1):
            e = dd.get(f["path"])
            ET.SubElement(ig, q("ItemRef"), {"ItemOID": oid(f["path"]), "OrderNumber": str(k),
                                             "Mandatory": "Yes" if e and e.required else "No"})
        igs.append(ig)
    # FormDef after the last FormDef; ItemGroupDefs after the last ItemGroupDef (shifted by one)
    mdv.insert(last["FormDef"] + 1, form)
    pos = last["ItemGroupDef"] + 2
    for ig in igs:
        mdv.insert(pos, ig)
        pos += 1
    dtype = {"number": "float", "integer": "integer", "boolean": "boolean"}
    code_lists = []
    for f in fields:
        e = dd.get(f["path"])
        t = dtype.get(f["type"], "date" if (f.get("format") == "date" or f["path"].endswith("date")) else "text")
        attrs = {"OID": oid(f["path"]), "Name": f["path"], "DataType": t}
        if t == "text":
            attrs["Length"] = "200"
        item = ET.SubElement(mdv, q("ItemDef"), attrs)
        if e and e.help:
            text(item, "Description", e.help)
        text(item, "Question", e.label if e else f["path"])
        if e and e.unit:
            ET.SubElement(item, q("MeasurementUnitRef"), {"MeasurementUnitOID": "MU." + re.sub(r"[^A-Za-z0-9]", "_", e.unit)})
        if f.get("enum"):
            cl_oid = "CL.SR." + f["path"].upper().replace(".", "_")
            ET.SubElement(item, q("CodeListRef"), {"CodeListOID": cl_oid})
            cl = ET.Element(q("CodeList"), {"OID": cl_oid, "Name": f["path"], "DataType": "text"})
            for v in f["enum"]:
                cli = ET.SubElement(cl, q("CodeListItem"), {"CodedValue": str(v)})
                text(cli, "Decode", str(v).replace("_", " "))
            code_lists.append(cl)
        ET.SubElement(item, q("Alias"), {"Context": "lutarterial-record-path", "Name": f["path"]})
    for cl in code_lists:
        mdv.append(cl)


def _signatures_by_target(session: Session, ids: Sequence[int]) -> dict[tuple[int, str | None, int | None], Any]:
    """The latest valid (not voided) signature per (participant, table, row); table None = casebook."""
    from lutarterial.registry.models import Signature

    out: dict[tuple[int, str | None, int | None], Any] = {}
    for sig in session.scalars(select(Signature).where(Signature.participant_id.in_(ids or [-1]),
                                                       Signature.voided_at.is_(None)).order_by(Signature.id)):
        out[(sig.participant_id, sig.table_name, sig.row_id)] = sig
    return out


def _signature_oid(meaning: str) -> str:
    return "SD." + hashlib.sha256(meaning.encode("utf-8")).hexdigest()[:12]


def _signature_defs(admin: ET.Element, signatures: dict[Any, Any]) -> None:
    """AdminData/SignatureDef per meaning used (Methodology Electronic, legal reason: Part 11)."""
    for meaning in sorted({sig.meaning for sig in signatures.values()}):
        sd = _sub(admin, "SignatureDef", OID=_signature_oid(meaning), Methodology="Electronic")
        _sub(sd, "Meaning", meaning)
        _sub(sd, "LegalReason", "21 CFR Part 11 electronic signature (11.50 name, date-time, meaning; 11.70 linked "
                                "to the signed content by SHA-256; 11.200 user name and password)")


def _signature(parent: ET.Element, sig: Any, site_code: str | None) -> None:
    """A Signature element (UserRef, LocationRef, SignatureRef, DateTimeStamp) of a valid signature."""
    if sig is None:
        return
    el = _sub(parent, "Signature", ID=f"SIG.{sig.id}")
    _sub(el, "UserRef", UserOID=_user_oid(sig.signer_username))
    _sub(el, "LocationRef", LocationOID=_location_oid(site_code))
    _sub(el, "SignatureRef", SignatureOID=_signature_oid(sig.meaning))
    stamp = sig.signed_at if sig.signed_at.tzinfo else sig.signed_at.replace(tzinfo=dt.timezone.utc)
    _sub(el, "DateTimeStamp", stamp.astimezone(dt.timezone.utc).isoformat(timespec="seconds"))


def _user_oid(username: str) -> str:
    return "USR." + username.replace(" ", "_")


def _location_oid(code: str | None) -> str:
    return f"LOC.{code}" if code else "LOC.SPONSOR"


def odm_document(session: Session, actor: Actor, *, site_code: str | None = None,
                 now: dt.datetime | None = None) -> bytes:
    """The ODM 1.3.2 XML document (UTF-8 bytes) of every participant the actor may export."""
    require(actor, Permission.EXPORT)
    now = now or dt.datetime.now(dt.timezone.utc)
    ids = _visible_participant_ids(session, actor, site_code)
    sites = {s.id: s for s in session.scalars(select(Site).order_by(Site.code))}
    site_codes = {sid: s.code for sid, s in sites.items()}
    entries = audit_rows(session, actor, ids if (site_code or not actor.is_admin) else None)
    chain = verify_audit_chain(session)
    checkpoint_after_export(session, chain)  # issue 9: every export records the audit head
    ET.register_namespace("", ODM_NS)
    root = ET.Element(f"{{{ODM_NS}}}ODM", {
        "FileType": "Snapshot", "Granularity": "SingleSite" if site_code else "All",
        "FileOID": f"LUTARTERIAL.{now.strftime('%Y%m%dT%H%M%S')}",
        "CreationDateTime": now.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        "ODMVersion": "1.3.2", "Originator": actor.username, "SourceSystem": "lutarterial",
        "SourceSystemVersion": _version(),
        "Description": f"audit chain {'intact' if chain.ok else 'BROKEN'}; head sha256={chain.head_hash}",
    })
    _metadata(_sub(root, "Study", OID=STUDY_OID))
    _dictionary_metadata(root.find(f"{{{ODM_NS}}}Study"))  # issue 13: the screening record's data dictionary
    admin = _sub(root, "AdminData", StudyOID=STUDY_OID)
    roles_of = {e.actor_username: e.actor_roles for e in entries}
    full_names = {str(u): str(n or "") for u, n in session.connection().execute(
        select(User.__table__.c.username, User.__table__.c.full_name))}
    for name in sorted(roles_of):
        user_type = "Investigator" if "investigator" in roles_of[name].split(",") else "Other"
        user = _sub(admin, "User", OID=_user_oid(name), UserType=user_type)
        _sub(user, "LoginName", name)
        if full_names.get(name):
            _sub(user, "FullName", full_names[name])
    for code in ["SPONSOR", *[s.code for s in sites.values()]]:
        loc = _sub(admin, "Location", OID=_location_oid(None if code == "SPONSOR" else code),
                   Name=_location_name(sites, code), LocationType="Sponsor" if code == "SPONSOR" else "Site")
        _sub(loc, "MetaDataVersionRef", StudyOID=STUDY_OID, MetaDataVersionOID=MDV_OID,
             EffectiveDate="2021-01-01")
    signatures = _signatures_by_target(session, ids)  # issue 13: valid e-signatures (21 CFR 11.50/11.70)
    _signature_defs(admin, signatures)
    clinical = _sub(root, "ClinicalData", StudyOID=STUDY_OID, MetaDataVersionOID=MDV_OID)
    last_change: dict[tuple[str, str], AuditEntry] = {}
    for e in entries:
        last_change[(e.table_name, e.row_id)] = e
    participants = {p.id: p for p in session.scalars(select(Participant).where(Participant.id.in_(ids or [-1])))}
    records: dict[int, list[tuple[str, Any]]] = {pid: [] for pid in ids}
    for form, model, _name in _FORMS:
        for row in session.scalars(select(model).where(model.participant_id.in_(ids or [-1]))  # type: ignore[attr-defined]
                                   .order_by(model.id)):  # type: ignore[attr-defined]
            records[row.participant_id].append((form, row))
    for pid in ids:
        p = participants[pid]
        subject = _sub(clinical, "SubjectData", SubjectKey=p.trial_number)
        created = last_change.get(("participants", str(p.id)))
        if created is not None:
            _audit_record(subject, created, site_codes, with_id=False)
        _signature(subject, signatures.get((pid, None, None)), site_codes.get(p.site_id))
        _sub(subject, "SiteRef", LocationOID=_location_oid(site_codes.get(p.site_id)))
        by_event: dict[tuple[str, str | None], dict[str, list[Any]]] = {}
        for form, row in records[pid]:
            by_event.setdefault(_event_oid(form, row), {}).setdefault(form, []).append(row)
        order = {oid: i for i, oid in enumerate(
            ["SE.SCREENING", *[f"SE.V_{k.name}" for k in VisitKind], "SE.COMMON"])}
        for (event_oid, repeat), forms in sorted(by_event.items(), key=lambda kv: (order.get(kv[0][0], 99),
                                                                                   int(kv[0][1] or 0))):
            sed = _sub(subject, "StudyEventData", StudyEventOID=event_oid, StudyEventRepeatKey=repeat)
            for form, _model, _name in _FORMS:
                if form not in forms:
                    continue
                fd = _sub(sed, "FormData", FormOID=f"F.{form}")
                for row in forms[form]:
                    igd = _sub(fd, "ItemGroupData", ItemGroupOID=f"IG.{form}", ItemGroupRepeatKey=row.id)
                    change = last_change.get((row.__tablename__, str(row.id)))
                    if change is not None:
                        _audit_record(igd, change, site_codes, with_id=False)
                    _signature(igd, signatures.get((pid, row.__tablename__, row.id)), site_codes.get(p.site_id))
                    for item, dtype in _items(type(row)):
                        value = getattr(row, item)
                        if value is None or value == "" or value == {} or value == []:
                            continue
                        _sub(igd, "ItemData", ItemOID=f"IT.{form}.{item.upper()}", Value=_odm_value(value, dtype))
    if entries:
        holder = _sub(clinical, "AuditRecords")
        for e in entries:
            _audit_record(holder, e, site_codes, with_id=True)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _location_name(sites: dict[int, Site], code: str) -> str:
    for s in sites.values():
        if s.code == code:
            return f"{s.name} ({s.city})" if s.city else s.name
    return "Sponsor: CHU de Bordeaux"


def _version() -> str:
    from lutarterial import __version__

    return __version__


def export_odm(session: Session, actor: Actor, out: str | Path, *, site_code: str | None = None,
               now: dt.datetime | None = None) -> Path:
    """Write :func:`odm_document` to ``out`` (parent directory created)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(odm_document(session, actor, site_code=site_code, now=now))
    return out
