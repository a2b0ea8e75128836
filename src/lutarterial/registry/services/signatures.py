"""Electronic signatures (21 CFR Part 11 §11.50, §11.70, §11.200) of a casebook or one form.

* §11.200(a)(1): the signer re-enters the password for every signing; the web layer also asks
  for the username on the first signing of a session (both components) — ``username`` here.
* §11.50: the signature carries the printed name, date-time (UTC) and meaning, shown wherever
  the signed data is displayed (participant pages, ODM export).
* §11.70: linked to the exact data: ``content_hash`` = SHA-256 of the canonical JSON of the
  signed content (the form's row, or every data row of the participant for a casebook); a later
  change voids the signature automatically, visibly and audited (:mod:`lutarterial.registry.dm_guard`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.registry.access import Actor, Permission, require, restrict_to_sites
from lutarterial.registry.audit import audited, canonical_json
from lutarterial.registry.models import Participant, Signature, Site, User
from lutarterial.registry.passwords import verify_password
from lutarterial.registry.services._common import load_participant
from lutarterial.registry.services._dm import ts, DATA_MODELS, resolve_target, row_values

__all__ = ["SIGNATURE_MEANINGS", "FORM_NAMES", "sign", "list_signatures", "signed_content", "content_hash",
           "signature_dict", "signature_summary_by_site"]

#: Meanings offered to the signer (§11.50(a)(3)).
SIGNATURE_MEANINGS = (
    "reviewed and approved",
    "reviewed: data complete and accurate",
    "author: I entered these data",
    "responsibility: investigator sign-off of the casebook",
)


#: Forms in words, with the columns that name one row of them (what a printed signature covers).
FORM_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "participants": ("registration", ("trial_number",)),
    "consents": ("informed consent", ("version", "signed_date")),
    "screening_results": ("screening", ("overall", "as_of")),
    "enrolments": ("enrolment", ("enrolled_date",)),
    "visits": ("visit", ("kind", "number", "visit_date")),
    "lab_results": ("laboratory value", ("analyte", "value", "unit", "collected_date")),
    "adverse_events": ("adverse event", ("term", "grade", "onset_date")),
    "recist_assessments": ("RECIST assessment", ("assessment_date", "response")),
    "imaging_analyses": ("imaging analysis", ("kind",)),
    "dosimetry_analyses": ("dosimetry analysis", ("kind",)),
}


def _covers(session: Session, p: Participant, table_name: str | None, row_id: int | None) -> str:
    """What a signature covers, in words: the casebook, or one form with the values naming its row."""
    if table_name is None:
        return f"whole casebook of {p.trial_number}"
    name, cols = FORM_NAMES.get(table_name, (table_name, ()))
    try:
        row = resolve_target(session, p, table_name, row_id)[3]
    except LookupError:
        return f"{name} #{row_id} (deleted)"
    values = [str(v) for v in (getattr(row, c, None) for c in cols) if v is not None and v != ""]
    return f"{name} #{row_id}" + (f" ({', '.join(values)})" if values else "")


def signed_content(session: Session, p: Participant, table_name: str | None, row_id: int | None) -> Any:
    """Exactly the data a signature covers: one form's row, or every data row of the participant."""
    if table_name is not None:
        _t, _r, _f, row = resolve_target(session, p, table_name, row_id)
        return {"table": table_name, "row": row_values(row)}
    content: dict[str, Any] = {}
    for name, model in sorted(DATA_MODELS.items()):
        if model is Participant:
            content[name] = [row_values(p)]
            continue
        rows = session.scalars(select(model).where(model.participant_id == p.id).order_by(model.id))
        content[name] = [row_values(r) for r in rows]
    return content


def content_hash(content: Any) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def sign(session: Session, actor: Actor, participant: int | str, *, password: str, meaning: str,
         table_name: str | None = None, row_id: int | None = None, username: str | None = None) -> Signature:
    """Sign the casebook (no ``table_name``) or one form as ``actor`` (investigator).

    ``password`` must be the signer's; ``username``, when given (first signing of a session),
    must be the signer's own. A wrong component refuses the signature (403), nothing stored.
    """
    require(actor, Permission.SIGN)
    p = load_participant(session, actor, participant)
    if meaning not in SIGNATURE_MEANINGS:
        raise InvalidInputError(f"signature meaning {meaning!r}; valid: {'; '.join(SIGNATURE_MEANINGS)}")
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or not user.active:
        raise AccessDeniedError("signature refused: no active user account")
    if username is not None and username.strip() != user.username:
        raise AccessDeniedError("signature refused: the user name is not the signed-in user's")
    if not password or not verify_password(password, user.password_hash):
        raise AccessDeniedError("signature refused: wrong password (both components are verified at each signing)")
    table_name, rid, _f, _row = resolve_target(session, p, table_name, row_id)
    digest = content_hash(signed_content(session, p, table_name, rid))
    what = f"{table_name} #{rid}" if table_name else "casebook"
    with audited(session, actor, f"electronic signature of {p.trial_number} {what}: {meaning}"):
        sig = Signature(participant_id=p.id, table_name=table_name, row_id=rid, meaning=meaning,
                        signer_user_id=user.id, signer_username=user.username,
                        printed_name=user.full_name or user.username, content_hash=digest)
        session.add(sig)
    return sig


def signature_dict(sig: Signature, *, current_hash: str | None = None) -> dict[str, Any]:
    return {"id": sig.id, "table_name": sig.table_name, "row_id": sig.row_id, "meaning": sig.meaning,
            "signer": sig.signer_username, "printed_name": sig.printed_name,
            "signed_at": ts(sig.signed_at), "content_hash": sig.content_hash,
            "voided_at": ts(sig.voided_at), "void_reason": sig.void_reason,
            "valid": sig.voided_at is None and (current_hash is None or current_hash == sig.content_hash)}


def list_signatures(session: Session, actor: Actor, participant: int | str, *,
                    verify: bool = True, describe: bool = False) -> list[dict[str, Any]]:
    """Signatures of a participant (voided ones too); ``valid`` re-checks the hash of the content.

    ``describe`` adds ``covers``: the signed casebook or form in words, for printed reports
    (one more read per form signature, so pages that only list signatures leave it off).
    """
    p = load_participant(session, actor, participant)
    out = []
    for sig in session.scalars(select(Signature).where(Signature.participant_id == p.id).order_by(Signature.id)):
        current = None
        if verify and sig.voided_at is None:
            try:
                current = content_hash(signed_content(session, p, sig.table_name, sig.row_id))
            except LookupError:  # the signed form was deleted
                current = ""
        d = signature_dict(sig, current_hash=current)
        if describe:
            d["covers"] = _covers(session, p, sig.table_name, sig.row_id)
        out.append(d)
    return out


def signature_summary_by_site(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Per site of the actor's scope: participants, casebooks signed (a signature not voided), casebooks
    whose signature was voided and not signed again, casebooks never signed, and form signatures
    current / voided. Counted from the stored void marks (every write path voids automatically; the
    participant report re-checks each hash); three SELECTs whatever the number of participants."""
    codes = dict(session.execute(restrict_to_sites(select(Site.id, Site.code), actor, Site.id)).all())
    site_of = {pid: codes.get(sid, str(sid)) for pid, sid in session.execute(
        restrict_to_sites(select(Participant.id, Participant.site_id), actor, Participant.site_id))}
    per = {code: {"site": code, "participants": 0, "casebooks_signed": 0, "casebooks_voided": 0,
                  "casebooks_not_signed": 0, "form_signatures_valid": 0, "form_signatures_voided": 0}
           for code in sorted(set(site_of.values()))}
    signed: set[int] = set()
    voided: set[int] = set()
    for pid, table_name, voided_at in session.execute(
            select(Signature.participant_id, Signature.table_name, Signature.voided_at)
            .where(Signature.participant_id.in_(sorted(site_of) or [-1]))):
        if table_name is None:
            (voided if voided_at is not None else signed).add(pid)
        else:
            per[site_of[pid]]["form_signatures_valid" if voided_at is None else "form_signatures_voided"] += 1
    for pid, code in site_of.items():
        d = per[code]
        d["participants"] += 1
        d["casebooks_signed" if pid in signed else "casebooks_voided" if pid in voided else "casebooks_not_signed"] += 1
    return list(per.values())
