"""Participants, identity key, consent, screening (via ``lutarterial.eligibility``), enrolment,
and read access to the audit trail."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError, NotFoundError
from lutarterial.registry.access import Actor, Permission, require, require_site, restrict_to_sites
from lutarterial.registry.audit import audited, lock_writers
from lutarterial.registry.models import (
    AuditEntry,
    Consent,
    Enrolment,
    Participant,
    ParticipantIdentity,
    ParticipantStatus,
    ScreeningResult,
    Site,
)
from lutarterial.registry.services._common import (
    ParticipantHiddenError,
    as_date,
    as_optional_text,
    load_participant,
    require_active_actor,
)
from lutarterial.registry.services.people import get_site

__all__ = [
    "IdentityInput",
    "IdentityRecord",
    "RescreenReport",
    "register_participant",
    "get_participant",
    "list_participants",
    "update_participant",
    "get_identity",
    "set_identity",
    "erase_identity",
    "site_summary",
    "record_consent",
    "withdraw_consent",
    "active_consent",
    "screen_participant",
    "record_screening",
    "rescreen",
    "list_screenings",
    "enrol",
    "participant_audit_trail",
    "participant_audit_page",
    "audit_trail",
]

_MAX_ALLOCATION_ATTEMPTS = 20


@dataclass(frozen=True)
class IdentityInput:
    """The identity key given at registration (kept apart from study data)."""

    family_name: str
    given_name: str
    birth_date: dt.date | str
    hospital_id: str


@dataclass(frozen=True)
class IdentityRecord:
    """The identity key as returned to an admin (a plain value, not an ORM row)."""

    participant_id: int
    trial_number: str
    family_name: str
    given_name: str
    birth_date: dt.date
    hospital_id: str


def _check_identity(identity: IdentityInput) -> dict[str, Any]:
    values = {
        "family_name": as_optional_text(identity.family_name, "family name"),
        "given_name": as_optional_text(identity.given_name, "given name"),
        "birth_date": as_date(identity.birth_date, "birth date", not_future=True),
        "hospital_id": as_optional_text(identity.hospital_id, "hospital ID", max_length=100),
    }
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise InvalidInputError(f"identity key incomplete: {', '.join(missing)} required")
    return values


def _check_demographics(sex: str | None, year_of_birth: int | None) -> tuple[str | None, int | None]:
    if sex is not None:
        sex = str(sex).strip().upper() or None
        if sex is not None and sex not in ("F", "M", "U"):
            raise InvalidInputError(f"sex {sex!r} must be F, M or U (unknown)")
    if year_of_birth is not None:
        try:
            year_of_birth = int(year_of_birth)
        except (TypeError, ValueError):
            raise InvalidInputError(f"year of birth {year_of_birth!r} is not a year") from None
        this_year = dt.datetime.now(dt.timezone.utc).year
        if not 1900 <= year_of_birth <= this_year:
            from lutarterial.errors import ImplausibleValueError

            raise ImplausibleValueError(f"year of birth {year_of_birth} is out of range (1900 to {this_year})")
    return sex, year_of_birth


def register_participant(session: Session, actor: Actor, *, site_code: str, reason: str,
                         identity: IdentityInput | None = None, sex: str | None = None,
                         year_of_birth: int | None = None) -> Participant:
    """Register a participant at ``site_code`` and allocate the next trial number (``BDX-001``).

    Allocation is race-free: ``UNIQUE(site_id, site_seq)`` refuses a duplicate and the insert is
    retried in a savepoint with the next number. The identity key, when given, goes to its own
    table (coordinators may write it but only admins can read it back).
    """
    require(actor, Permission.PARTICIPANT_WRITE)
    site = get_site(session, site_code)
    require_site(actor, site.id, what=f"site {site.code}")
    if identity is not None:
        require(actor, Permission.IDENTITY_WRITE)
        ident = _check_identity(identity)
    sex, year_of_birth = _check_demographics(sex, year_of_birth)
    with audited(session, actor, reason):
        lock_writers(session)  # issue 9: no two registrations read the same "next number"
        for _attempt in range(_MAX_ALLOCATION_ATTEMPTS):
            seq = (session.scalar(select(func.max(Participant.site_seq)).where(Participant.site_id == site.id)) or 0) + 1
            try:
                with session.begin_nested():
                    participant = Participant(
                        trial_number=f"{site.code}-{seq:03d}", site_id=site.id, site_seq=seq,
                        status=ParticipantStatus.REGISTERED.value, sex=sex, year_of_birth=year_of_birth,
                    )
                    session.add(participant)
                    session.flush()
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - needs 20 concurrent registrations at the same site
            raise InvalidInputError(f"could not allocate a trial number at {site.code}; try again")
        if identity is not None:
            session.add(ParticipantIdentity(participant_id=participant.id, **ident))
    return participant


def get_participant(session: Session, actor: Actor, participant: int | str) -> Participant:
    """A participant by id or trial number; :class:`AccessDeniedError` for another site's."""
    return load_participant(session, actor, participant)


def list_participants(session: Session, actor: Actor, *, site_code: str | None = None,
                      status: str | None = None) -> list[Participant]:
    """Participants of the actor's sites (all sites for admin), ordered by trial number."""
    require_active_actor(actor)
    stmt = select(Participant).order_by(Participant.trial_number)
    stmt = restrict_to_sites(stmt, actor, Participant.site_id)
    if site_code:
        site = get_site(session, site_code)
        require_site(actor, site.id, what=f"site {site.code}")
        stmt = stmt.where(Participant.site_id == site.id)
    if status:
        try:
            stmt = stmt.where(Participant.status == ParticipantStatus(status).value)
        except ValueError:
            valid = ", ".join(x.value for x in ParticipantStatus)
            raise InvalidInputError(f"participant status {status!r}; valid: {valid}") from None
    return list(session.scalars(stmt))


def update_participant(session: Session, actor: Actor, participant: int | str, *, reason: str,
                       sex: str | None = None, year_of_birth: int | None = None) -> Participant:
    """Correct demographics (sex, year of birth). Status changes only through the workflow services."""
    require(actor, Permission.PARTICIPANT_WRITE)
    p = load_participant(session, actor, participant)
    sex, year_of_birth = _check_demographics(sex, year_of_birth)
    with audited(session, actor, reason):
        if sex is not None:
            p.sex = sex
        if year_of_birth is not None:
            p.year_of_birth = year_of_birth
    return p


def get_identity(session: Session, actor: Actor, participant: int | str) -> IdentityRecord:
    """The identity key of a participant: **admin only** (every other role is refused)."""
    require(actor, Permission.IDENTITY_READ)
    p = load_participant(session, actor, participant)
    ident = session.scalars(select(ParticipantIdentity).where(ParticipantIdentity.participant_id == p.id)).first()
    if ident is None:
        raise NotFoundError(f"no identity key recorded for {p.trial_number}")
    return IdentityRecord(p.id, p.trial_number, ident.family_name, ident.given_name, ident.birth_date,
                          ident.hospital_id)


def set_identity(session: Session, actor: Actor, participant: int | str, identity: IdentityInput, *,
                 reason: str) -> None:
    """Record or correct the identity key. Coordinators may record it once; corrections: admin."""
    require(actor, Permission.IDENTITY_WRITE)
    p = load_participant(session, actor, participant)
    values = _check_identity(identity)
    ident = session.scalars(select(ParticipantIdentity).where(ParticipantIdentity.participant_id == p.id)).first()
    if ident is not None and not actor.is_admin:
        raise AccessDeniedError("only an admin may correct an identity key already recorded")
    with audited(session, actor, reason):
        if ident is None:
            session.add(ParticipantIdentity(participant_id=p.id, **values))
        else:
            for k, v in values.items():
                setattr(ident, k, v)


def erase_identity(session: Session, actor: Actor, participant: int | str, *, reason: str) -> None:
    """Erase the identity key (admin only), e.g. on a data-protection request; study data stay
    pseudonymous and the audit trail records the erasure (its values were never in it)."""
    require(actor, Permission.IDENTITY_READ)
    p = load_participant(session, actor, participant)
    ident = session.scalars(select(ParticipantIdentity).where(ParticipantIdentity.participant_id == p.id)).first()
    if ident is None:
        raise NotFoundError(f"no identity key recorded for {p.trial_number}")
    with audited(session, actor, reason):
        session.delete(ident)


def site_summary(session: Session, actor: Actor) -> dict[str, dict[str, int]]:
    """Participants per site and status for the sites the actor sees: ``{"BDX": {"enrolled": 3}}``."""
    require_active_actor(actor)
    stmt = (select(Participant.site_id, Participant.status, func.count())
            .group_by(Participant.site_id, Participant.status))
    stmt = restrict_to_sites(stmt, actor, Participant.site_id)
    codes = {s.id: s.code for s in session.scalars(select(Site))}
    out: dict[str, dict[str, int]] = {codes[sid]: {} for sid in codes if actor.sees_site(sid)}
    for site_id, status, count in session.execute(stmt):
        out.setdefault(codes[site_id], {})[status] = int(count)
    return out


# --- consent ----------------------------------------------------------------------------------


def active_consent(session: Session, participant: Participant) -> Consent | None:
    """The latest signed consent not withdrawn, if any."""
    return session.scalars(
        select(Consent).where(Consent.participant_id == participant.id, Consent.withdrawal_date.is_(None))
        .order_by(Consent.signed_date.desc(), Consent.id.desc())
    ).first()


def record_consent(session: Session, actor: Actor, participant: int | str, *, version: str,
                   signed_date: dt.date | str, reason: str) -> Consent:
    """Record signature of an information-and-consent form version (re-consent adds a row)."""
    require(actor, Permission.CONSENT_WRITE)
    p = load_participant(session, actor, participant)
    version_text = as_optional_text(version, "consent version", max_length=50)
    if version_text is None:
        raise InvalidInputError("consent version is required (e.g. 'v2.0 2021-03-01')")
    signed = as_date(signed_date, "consent signature date", not_future=True)
    if p.status == ParticipantStatus.WITHDRAWN.value:
        raise InvalidInputError(f"{p.trial_number} has withdrawn; a new consent needs a new registration")
    with audited(session, actor, reason):
        consent = Consent(participant_id=p.id, version=version_text, signed_date=signed)
        session.add(consent)
        if p.status == ParticipantStatus.REGISTERED.value:
            p.status = ParticipantStatus.CONSENTED.value
    return consent


def withdraw_consent(session: Session, actor: Actor, participant: int | str, *, withdrawal_date: dt.date | str,
                     reason: str, note: str | None = None) -> Consent:
    """Record withdrawal of consent; data collected before it are kept (ICH E6), none after."""
    require(actor, Permission.CONSENT_WRITE)
    p = load_participant(session, actor, participant)
    consent = active_consent(session, p)
    if consent is None:
        raise InvalidInputError(f"{p.trial_number} has no active consent to withdraw")
    when = as_date(withdrawal_date, "withdrawal date")
    assert when is not None
    if when < consent.signed_date:
        raise InvalidInputError(f"withdrawal date {when} is before the signature date {consent.signed_date}")
    with audited(session, actor, reason):
        consent.withdrawal_date = when
        consent.withdrawal_note = as_optional_text(note, "withdrawal note", max_length=2000)
        p.status = ParticipantStatus.WITHDRAWN.value
    return consent


# --- screening --------------------------------------------------------------------------------


def _eligibility_engine() -> Any:
    try:
        module = importlib.import_module("lutarterial.eligibility")
    except ImportError as exc:  # pragma: no cover - the package ships with lutarterial
        raise InvalidInputError(f"the screening engine is not available: {exc}") from None
    screen = getattr(module, "screen", None)
    if screen is None:
        raise InvalidInputError("the screening engine (lutarterial.eligibility.screen) is not available in this build")
    return screen


def _run_engine(record: dict[str, Any], as_of: dt.date | None, protocol_version: str | None) -> dict[str, Any]:
    screen = _eligibility_engine()
    result = screen(record, as_of=as_of, protocol_version=protocol_version)
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def _verdict(result: dict[str, Any]) -> str:
    for key in ("verdict", "overall", "status"):
        if isinstance(result.get(key), str):
            return result[key]
    raise InvalidInputError("screening result has no verdict ('verdict': eligible/ineligible/incomplete)")


def record_screening(session: Session, actor: Actor, participant: int | str, *, record: dict[str, Any],
                     result: dict[str, Any], protocol_version: str, as_of: dt.date | str, reason: str,
                     engine: str = "") -> ScreeningResult:
    """Store a screening computed elsewhere, with the record and protocol version that produced it.

    Prefer :func:`screen_participant`, which runs the engine itself. Requires an active consent.
    """
    require(actor, Permission.SCREENING_WRITE)
    p = load_participant(session, actor, participant)
    if active_consent(session, p) is None:
        raise InvalidInputError(f"{p.trial_number} has no active signed consent; record consent before screening")
    if p.status in (ParticipantStatus.ENROLLED.value, ParticipantStatus.TREATED.value,
                    ParticipantStatus.COMPLETED.value):
        raise InvalidInputError(f"{p.trial_number} is already {p.status}; screening is closed")
    if not isinstance(record, dict) or not isinstance(result, dict):
        raise InvalidInputError("screening record and result must be JSON objects")
    _refuse_direct_identifiers(record)
    from lutarterial.plausibility import require_finite_tree

    require_finite_tree(record, "screening record")  # issue 9: no NaN/Infinity stored as data
    require_finite_tree(result, "screening result")
    version = as_optional_text(protocol_version, "protocol version", max_length=50)
    if version is None:
        raise InvalidInputError("protocol version is required")
    when = as_date(as_of, "screening date (as_of)")
    verdict = _verdict(result)
    with audited(session, actor, reason):
        row = ScreeningResult(participant_id=p.id, protocol_version=version, as_of=when, record=record,
                              result=result, overall=verdict, engine=engine)
        session.add(row)
        p.status = (ParticipantStatus.ELIGIBLE if verdict == "eligible" else
                    ParticipantStatus.SCREEN_FAILED if verdict == "ineligible" else
                    ParticipantStatus.CONSENTED).value
    return row


def screen_participant(session: Session, actor: Actor, participant: int | str, record: dict[str, Any], *,
                       reason: str, as_of: dt.date | str | None = None,
                       protocol_version: str | None = None) -> ScreeningResult:
    """Screen ``record`` with ``lutarterial.eligibility.screen`` and store record, version and result.

    ``as_of`` defaults to the record's ``screening_date``; ``protocol_version`` to the version in
    force on that date (the engine decides). The stored result is the engine's ``to_dict()``.
    """
    require(actor, Permission.SCREENING_WRITE)
    p = load_participant(session, actor, participant)
    _refuse_direct_identifiers(record)
    from lutarterial.plausibility import require_finite_tree

    require_finite_tree(record, "screening record")
    when = as_date(as_of, "screening date (as_of)", required=False)
    if protocol_version is None:
        # issue 10: the site's audited protocol configuration decides (else the packaged default)
        from lutarterial.registry.services.settings import protocol_choice_for_site, site_protocol_dates

        day = when
        if day is None and isinstance(record, dict):
            try:
                day = as_date(record.get("screening_date"), "screening_date", required=False)
            except InvalidInputError:
                day = None  # the engine reports the bad date
        if day is not None and site_protocol_dates(session, p.site_id):
            protocol_version, _why = protocol_choice_for_site(session, p.site_id, day)
    result = _run_engine(record, when, protocol_version)
    version = str(result.get("protocol_version") or protocol_version or "")
    when = when or as_date(result.get("as_of"), "screening date (as_of)")
    from lutarterial import __version__

    return record_screening(session, actor, participant, record=record, result=result, protocol_version=version,
                            as_of=when, reason=reason, engine=f"lutarterial.eligibility {__version__}")


#: Keys that would put direct identifiers into study data; those belong in the identity key.
_IDENTIFIER_KEYS = frozenset({"name", "family_name", "given_name", "first_name", "last_name", "surname",
                              "hospital_id", "mrn", "ipp", "nir", "ssn", "address", "phone", "email"})


def _refuse_direct_identifiers(value: Any, path: str = "record") -> None:
    """Refuse a screening record carrying names or hospital numbers (GDPR: pseudonymous study data)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if str(key).lower() in _IDENTIFIER_KEYS and sub not in (None, ""):
                raise InvalidInputError(f"{path}.{key}: direct identifiers do not belong in study data; "
                                        "record them in the participant's identity key")
            _refuse_direct_identifiers(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _refuse_direct_identifiers(sub, f"{path}[{i}]")


def list_screenings(session: Session, actor: Actor, participant: int | str) -> list[ScreeningResult]:
    p = load_participant(session, actor, participant)
    return list(session.scalars(select(ScreeningResult).where(ScreeningResult.participant_id == p.id)
                                .order_by(ScreeningResult.id)))


@dataclass(frozen=True)
class RescreenReport:
    """Whether re-running the engine on a stored record reproduces the stored result."""

    screening_id: int
    protocol_version: str
    stored_verdict: str
    new_verdict: str
    differences: tuple[str, ...] = field(default=())

    @property
    def reproduced(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"screening_id": self.screening_id, "protocol_version": self.protocol_version,
                "stored_verdict": self.stored_verdict, "new_verdict": self.new_verdict,
                "reproduced": self.reproduced, "differences": list(self.differences)}


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path or '(root)'}: stored {a!r}, now {b!r}")


def rescreen(session: Session, actor: Actor, screening_id: int) -> RescreenReport:
    """Re-run the engine on a stored screening's record, date and protocol version; compare.

    Read-only: nothing is stored. A difference means the engine or the protocol definition
    changed behaviour for this record since it was screened.
    """
    row = session.get(ScreeningResult, screening_id)
    if row is None:
        raise NotFoundError(f"screening {screening_id} does not exist")
    try:
        load_participant(session, actor, row.participant_id)
    except ParticipantHiddenError:  # another site's: answered exactly like a missing one (issue 9)
        raise ParticipantHiddenError(f"screening {screening_id} does not exist") from None
    new = _run_engine(row.record, row.as_of, row.protocol_version)
    differences: list[str] = []
    _diff(row.result, new, "", differences)
    return RescreenReport(row.id, row.protocol_version, row.overall, _verdict(new), tuple(differences))


# --- enrolment --------------------------------------------------------------------------------


def enrol(session: Session, actor: Actor, participant: int | str, *, enrolled_date: dt.date | str, reason: str,
          screening_result_id: int | None = None) -> Enrolment:
    """Enrol an eligible participant (investigator or admin), on the latest eligible screening.

    Refused without an active consent, without an eligible screening, or twice.
    """
    require(actor, Permission.ENROLMENT_WRITE)
    p = load_participant(session, actor, participant)
    if session.scalars(select(Enrolment).where(Enrolment.participant_id == p.id)).first() is not None:
        raise InvalidInputError(f"{p.trial_number} is already enrolled")
    consent = active_consent(session, p)
    if consent is None:
        raise InvalidInputError(f"{p.trial_number} has no active signed consent")
    stmt = select(ScreeningResult).where(ScreeningResult.participant_id == p.id)
    if screening_result_id is not None:
        stmt = stmt.where(ScreeningResult.id == screening_result_id)
    screening = session.scalars(stmt.order_by(ScreeningResult.id.desc())).first()
    if screening is None or screening.overall != "eligible":
        state = "no screening" if screening is None else f"latest screening is {screening.overall}"
        raise InvalidInputError(f"{p.trial_number} cannot be enrolled: {state} (needs an eligible screening)")
    when = as_date(enrolled_date, "enrolment date", not_future=True)
    assert when is not None
    if when < consent.signed_date:
        raise InvalidInputError(f"enrolment date {when} is before consent ({consent.signed_date})")
    with audited(session, actor, reason):
        enrolment = Enrolment(participant_id=p.id, screening_result_id=screening.id, enrolled_date=when,
                              enrolled_by_user_id=actor.user_id)
        session.add(enrolment)
        p.status = ParticipantStatus.ENROLLED.value
    return enrolment


# --- audit trail (read) -----------------------------------------------------------------------


def participant_audit_trail(session: Session, actor: Actor, participant: int | str) -> list[AuditEntry]:
    """Every audit row about one participant, oldest first (identity values are redacted)."""
    p = load_participant(session, actor, participant)
    return list(session.scalars(select(AuditEntry).where(AuditEntry.participant_id == p.id).order_by(AuditEntry.id)))


def participant_audit_page(session: Session, actor: Actor, participant: int | str, *, limit: int,
                           offset: int = 0) -> tuple[list[AuditEntry], int]:
    """One page of a participant's audit rows, newest first, and how many rows there are in all.

    Why: the trail grows with every save, and a page that renders all of it costs more with every
    entry (issue 13, fast); the CSV and the API still give the whole trail.
    """
    p = load_participant(session, actor, participant)
    where = AuditEntry.participant_id == p.id
    total = int(session.scalar(select(func.count()).select_from(AuditEntry).where(where)) or 0)
    limit = max(1, min(int(limit), 5000))
    rows = list(session.scalars(select(AuditEntry).where(where).order_by(AuditEntry.id.desc())
                                .limit(limit).offset(max(0, int(offset)))))
    return rows, total


def audit_trail(session: Session, actor: Actor, *, site_code: str | None = None, table: str | None = None,
                limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    """Audit rows, newest first: admins all; others only rows of their own sites' participants."""
    require_active_actor(actor)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    stmt = restrict_to_sites(stmt, actor, AuditEntry.site_id)
    if site_code:
        site = get_site(session, site_code)
        require_site(actor, site.id, what=f"site {site.code}")
        stmt = stmt.where(AuditEntry.site_id == site.id)
    if table:
        stmt = stmt.where(AuditEntry.table_name == table)
    limit = max(1, min(int(limit), 5000))
    return list(session.scalars(stmt.limit(limit).offset(max(0, int(offset)))))
