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
from lutarterial.registry.access import Actor, Permission, require
from lutarterial.registry.audit import audited, canonical_json
from lutarterial.registry.models import Participant, Signature, User
from lutarterial.registry.passwords import verify_password
from lutarterial.registry.services._common import load_participant
from lutarterial.registry.services._dm import ts, DATA_MODELS, resolve_target, row_values

__all__ = ["SIGNATURE_MEANINGS", "sign", "list_signatures", "signed_content", "content_hash", "signature_dict"]

#: Meanings offered to the signer (§11.50(a)(3)).
SIGNATURE_MEANINGS = (
    "reviewed and approved",
    "reviewed: data complete and accurate",
    "author: I entered these data",
    "responsibility: investigator sign-off of the casebook",
)


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
                    verify: bool = True) -> list[dict[str, Any]]:
    """Signatures of a participant (voided ones too); ``valid`` re-checks the hash of the content."""
    p = load_participant(session, actor, participant)
    out = []
    for sig in session.scalars(select(Signature).where(Signature.participant_id == p.id).order_by(Signature.id)):
        current = None
        if verify and sig.voided_at is None:
            try:
                current = content_hash(signed_content(session, p, sig.table_name, sig.row_id))
            except LookupError:  # the signed form was deleted
                current = ""
        out.append(signature_dict(sig, current_hash=current))
    return out
