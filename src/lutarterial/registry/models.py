"""ORM model of the trial registry (SQLAlchemy 2.0 typed declarative mapping).

Why this shape:

* **Study data and identity are apart.** :class:`Participant` carries only the pseudonymous
  trial number (``BDX-001``); the identity key (name, birth date, hospital ID) lives in
  :class:`ParticipantIdentity`, which only :func:`lutarterial.registry.services.get_identity`
  reads, and only for admins.
* **Results keep their provenance.** Screening results store the input record and the protocol
  version that produced them; imaging and dosimetry analyses store their inputs' DICOM UIDs and
  file hashes, so every number can be recomputed and compared.
* **Every row of every table below, except the audit trail itself, is audited**
  (:class:`Audited` mixin): the session guard in :mod:`lutarterial.registry.audit` refuses to
  flush a change that is not made inside an audit context with an actor and a reason.
* Types are portable between SQLite and PostgreSQL (``JSON``, ``Date``, timezone-aware
  ``DateTime`` stored as UTC). Enumerated values are stored as short strings checked by the
  service layer (and by CHECK constraints where cheap), so adding a value needs no type change.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Audited",
    "Role",
    "ParticipantStatus",
    "VisitKind",
    "VisitStatus",
    "Site",
    "User",
    "UserRole",
    "SiteMembership",
    "Participant",
    "ParticipantIdentity",
    "Consent",
    "ScreeningResult",
    "Enrolment",
    "Visit",
    "LabResult",
    "AdverseEvent",
    "RegistrySetting",
    "SiteProtocolConfig",
    "RecistAssessment",
    "ImagingAnalysis",
    "DosimetryAnalysis",
    "ImagingStudy",
    "ImagingSeries",
    "ImagingFile",
    "AnalysisJob",
    "AuditEntry",
    "UserSession",
    "LoginAttempt",
    "ApiToken",
    "ApiTokenUse",
    "DataImport",
    "ScheduleEntry",
    "DataQuery",
    "QueryMessage",
    "Signature",
    "RecordLock",
    "SdvMark",
    "DM_TABLES",
    "AUDITED_MODELS",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def utcnow() -> dt.datetime:
    """Current time in UTC, timezone-aware (the only clock read of the registry models)."""
    return dt.datetime.now(dt.timezone.utc)


class Role(str, enum.Enum):
    """Roles of the trial team; permissions per role are in :mod:`lutarterial.registry.access`."""

    COORDINATOR = "coordinator"
    INVESTIGATOR = "investigator"
    PHYSICIST = "physicist"
    MONITOR = "monitor"
    ADMIN = "admin"
    DATA_MANAGER = "data_manager"  # issue 13: queries, locks (no study-data writes)
    STATISTICIAN = "statistician"  # issue 12: read-only, all sites, pseudonymised data only


class ParticipantStatus(str, enum.Enum):
    """Where a participant stands in the trial; set by the services, never typed in freely."""

    REGISTERED = "registered"  # pseudonym allocated, no consent yet
    CONSENTED = "consented"
    SCREEN_FAILED = "screen_failed"
    ELIGIBLE = "eligible"
    ENROLLED = "enrolled"
    TREATED = "treated"  # IAH LUTATHERA cycle done
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"


class VisitKind(str, enum.Enum):
    """Visits of the LUTARTERIAL schedule (NCT04837885).

    Prior IV LUTATHERA cycles (``iv_cycle``, numbers 1-4), 68Ga/177Lu PET or SPECT after the
    IAH injection and after an IV injection, the IAH LUTATHERA cycle itself, and follow-up visits.
    """

    SCREENING = "screening"
    IV_CYCLE = "iv_cycle"
    PET_AFTER_IAH = "pet_after_iah"
    PET_AFTER_IV = "pet_after_iv"
    IAH_CYCLE = "iah_cycle"
    FOLLOW_UP = "follow_up"
    END_OF_STUDY = "end_of_study"


class VisitStatus(str, enum.Enum):
    PLANNED = "planned"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


class Audited:
    """Mixin of audited tables: ``audit_participant_id`` tells which participant a row concerns."""

    #: Columns whose values are replaced by ``"<redacted>"`` in the audit trail (secrets, identity).
    __audit_redact__: tuple[str, ...] = ()

    @property
    def audit_participant_id(self) -> int | None:
        return getattr(self, "participant_id", None)


# --- sites and users --------------------------------------------------------------------------


class Site(Audited, Base):
    """A trial site; ``code`` (3 capital letters) prefixes the trial numbers (``BDX-001``)."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class User(Audited, Base):
    """A person who logs in. ``password_hash`` is ``scrypt$n$r$p$salt_hex$hash_hex``."""

    __tablename__ = "users"
    __audit_redact__ = ("password_hash",)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(400))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Consecutive failed logins; the account locks for a while after too many (see services.people).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    roles: Mapped[list[UserRole]] = relationship(back_populates="user", lazy="selectin")
    memberships: Mapped[list[SiteMembership]] = relationship(back_populates="user", lazy="selectin")


class UserRole(Audited, Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    user: Mapped[User] = relationship(back_populates="roles")


class SiteMembership(Audited, Base):
    __tablename__ = "site_memberships"
    __table_args__ = (UniqueConstraint("user_id", "site_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    user: Mapped[User] = relationship(back_populates="memberships")
    site: Mapped[Site] = relationship(lazy="joined")


# --- participants -----------------------------------------------------------------------------


class Participant(Audited, Base):
    """A participant, known in study data only by the pseudonymous ``trial_number``.

    ``site_seq`` is the per-site sequence number; ``UNIQUE(site_id, site_seq)`` plus a retry in
    :func:`~lutarterial.registry.services.register_participant` makes allocation race-free.
    """

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("site_id", "site_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_number: Mapped[str] = mapped_column(String(20), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    site_seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ParticipantStatus.REGISTERED.value)
    sex: Mapped[str | None] = mapped_column(String(1), default=None)
    year_of_birth: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship(lazy="joined")

    @property
    def audit_participant_id(self) -> int | None:
        return self.id


class ParticipantIdentity(Audited, Base):
    """The identity key: readable only through the admin-only service ``get_identity``.

    Its values never appear in the audit trail (redacted), which monitors may read.
    """

    __tablename__ = "participant_identities"
    __audit_redact__ = ("family_name", "given_name", "birth_date", "hospital_id")
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), unique=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    hospital_id: Mapped[str] = mapped_column(String(100))


class Consent(Audited, Base):
    """Informed consent to one version of the information sheet; withdrawal keeps the row."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    version: Mapped[str] = mapped_column(String(50))
    signed_date: Mapped[dt.date] = mapped_column(Date)
    withdrawal_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    withdrawal_note: Mapped[str | None] = mapped_column(Text, default=None)


class ScreeningResult(Audited, Base):
    """One screening: the input record and protocol version that produced ``result``.

    ``overall`` mirrors the engine's overall decision (e.g. ``eligible``/``ineligible``/
    ``incomplete``); ``result`` is the engine's ``ScreeningResult.to_dict()``.
    """

    __tablename__ = "screening_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    protocol_version: Mapped[str] = mapped_column(String(50))
    as_of: Mapped[dt.date] = mapped_column(Date)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    overall: Mapped[str] = mapped_column(String(30))
    engine: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Enrolment(Audited, Base):
    """Enrolment of an eligible participant, pointing at the screening that justified it."""

    __tablename__ = "enrolments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), unique=True)
    screening_result_id: Mapped[int] = mapped_column(ForeignKey("screening_results.id"))
    enrolled_date: Mapped[dt.date] = mapped_column(Date)
    enrolled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class Visit(Audited, Base):
    """A visit of the protocol schedule (see :class:`VisitKind`).

    Treatment visits (``iv_cycle``, ``iah_cycle``) carry the administered ``activity_mbq``;
    the IAH cycle also the injected ``artery`` and ``catheter_position``.
    """

    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("participant_id", "kind", "number"),
        CheckConstraint("activity_mbq IS NULL OR activity_mbq >= 0", name="activity_nonneg"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default=VisitStatus.PLANNED.value)
    planned_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    visit_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    activity_mbq: Mapped[float | None] = mapped_column(Float, default=None)
    artery: Mapped[str | None] = mapped_column(String(200), default=None)
    catheter_position: Mapped[str | None] = mapped_column(String(200), default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)


class LabResult(Audited, Base):
    """A laboratory value as reported, its canonical-unit value and (when graded) CTCAE grade."""

    __tablename__ = "lab_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    analyte: Mapped[str] = mapped_column(String(50))
    loinc: Mapped[str | None] = mapped_column(String(20), default=None)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(50))
    value_canonical: Mapped[float] = mapped_column(Float)
    unit_canonical: Mapped[str] = mapped_column(String(50))
    lln: Mapped[float | None] = mapped_column(Float, default=None)  # lower limit of normal, in ``unit``
    uln: Mapped[float | None] = mapped_column(Float, default=None)  # upper limit of normal, in ``unit``
    collected_date: Mapped[dt.date] = mapped_column(Date)
    ctcae_term: Mapped[str | None] = mapped_column(String(200), default=None)
    ctcae_grade: Mapped[int | None] = mapped_column(Integer, default=None)
    grading: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class AdverseEvent(Audited, Base):
    """An adverse event with CTCAE v5 term and grade, seriousness and relatedness."""

    __tablename__ = "adverse_events"
    __table_args__ = (CheckConstraint("grade BETWEEN 1 AND 5", name="grade_range"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    term: Mapped[str] = mapped_column(String(200))
    meddra_code: Mapped[str | None] = mapped_column(String(20), default=None)
    grade: Mapped[int] = mapped_column(Integer)
    onset_date: Mapped[dt.date] = mapped_column(Date)
    resolution_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    serious: Mapped[bool] = mapped_column(Boolean, default=False)
    relatedness: Mapped[str] = mapped_column(String(30), default="unknown")
    outcome: Mapped[str | None] = mapped_column(String(50), default=None)
    action_taken: Mapped[str | None] = mapped_column(String(100), default=None)


class RecistAssessment(Audited, Base):
    """A RECIST 1.1 time-point assessment; ``details`` holds the engine's full result."""

    __tablename__ = "recist_assessments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    assessment_date: Mapped[dt.date] = mapped_column(Date)
    target_sum_mm: Mapped[float | None] = mapped_column(Float, default=None)
    response: Mapped[str] = mapped_column(String(10))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class _AnalysisColumns:
    """Columns shared by imaging and dosimetry analyses: inputs' identifiers, hashes, result."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    study_instance_uid: Mapped[str | None] = mapped_column(String(64), default=None)
    series_instance_uids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    input_hashes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    software_version: Mapped[str] = mapped_column(String(50), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImagingAnalysis(_AnalysisColumns, Audited, Base):
    """A quantitative imaging analysis (e.g. IAH vs IV uptake comparison) and its inputs."""

    __tablename__ = "imaging_analyses"
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    # issue 11: a newer analysis of the same kind replaces this one (both kept); NULL = current
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("imaging_analyses.id"), default=None)
    superseded_reason: Mapped[str | None] = mapped_column(Text, default=None)
    reproduced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class DosimetryAnalysis(_AnalysisColumns, Audited, Base):
    """An absorbed-dose analysis; may point at the imaging analysis it used."""

    __tablename__ = "dosimetry_analyses"
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    imaging_analysis_id: Mapped[int | None] = mapped_column(ForeignKey("imaging_analyses.id"), default=None)
    # issue 11: a newer analysis of the same kind replaces this one (both kept); NULL = current
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("dosimetry_analyses.id"), default=None)
    superseded_reason: Mapped[str | None] = mapped_column(Text, default=None)
    reproduced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


# --- audit trail ------------------------------------------------------------------------------


class AuditEntry(Base):
    """One append-only audit row. ``id`` is the chain position (1, 2, ... without gaps).

    ``row_hash = sha256(prev_hash + canonical_json(row without hashes))``; ``old_values`` and
    ``new_values`` are stored as canonical JSON text so the hash is reproducible byte for byte
    on every database. Database triggers refuse UPDATE and DELETE of this table.
    """

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[str] = mapped_column(String(32), index=True)  # ISO 8601 UTC, ...Z
    actor_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor_username: Mapped[str] = mapped_column(String(100))
    actor_roles: Mapped[str] = mapped_column(String(200), default="")
    site_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    row_id: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    action: Mapped[str] = mapped_column(String(10))
    old_values: Mapped[str | None] = mapped_column(Text, default=None)
    new_values: Mapped[str | None] = mapped_column(Text, default=None)
    reason: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: issue 9: how ``row_hash`` was made: ``None`` = plain SHA-256 (entries written before the
    #: keyed chain), ``"hmac-sha256"`` = HMAC-SHA256 under the audit key kept outside the database.
    hash_alg: Mapped[str | None] = mapped_column(String(16), default=None)


# --- issue 9: server-side sessions and log-in throttling --------------------------------------


class UserSession(Base):
    """A signed-in browser/API session. The cookie carries only a random token; this row keeps
    its SHA-256 (never the token), so a stolen database gives no usable cookie. A session is
    valid while ``ended_at`` is NULL and the idle/absolute timeouts have not passed. Not audited
    (it changes on every login); ends are recorded with a reason."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    ended_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class LoginAttempt(Base):
    """One sign-in attempt (username as typed, lower-cased; client address). The throttle reads
    these rows, so every worker process sees the same counts; not audited (it is itself a log)."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(120), index=True)
    client_addr: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    success: Mapped[bool] = mapped_column(Boolean, default=False)


# --- issue 11: imaging studies, series and files; background analysis jobs ---------------------


class ImagingStudy(Audited, Base):
    """A DICOM study imported for a participant (its files live in the content-addressed store).

    The patient's identifiers in the headers are kept only as SHA-256 digests (pseudonymity):
    enough to refuse a study whose PatientID, PatientName or birth date contradicts the
    participant's other studies, without storing the identity in study data.
    """

    __tablename__ = "imaging_studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    patient_id_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    patient_name_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    birth_date_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImagingSeries(Audited, Base):
    """One series (PT, NM, CT, SEG, RTSTRUCT, or a NIfTI label map ``LABELS``) of an imported study.

    ``route`` (``iv``/``iah``) comes from the linked visit or is given at import;
    ``time_after_admin_h`` = acquisition - RadiopharmaceuticalStartDateTime;
    ``content_sha256`` = SHA-256 over the sorted file digests (the series' input hash).
    """

    __tablename__ = "imaging_series"
    __table_args__ = (CheckConstraint("route IS NULL OR route IN ('iv', 'iah')", name="route"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_studies.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    modality: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    frame_of_reference_uid: Mapped[str | None] = mapped_column(String(64), default=None)
    acquisition_time: Mapped[str | None] = mapped_column(String(32), default=None)  # ISO, scanner local time
    radiopharmaceutical: Mapped[str | None] = mapped_column(String(100), default=None)
    nuclide: Mapped[str | None] = mapped_column(String(50), default=None)
    injected_mbq: Mapped[float | None] = mapped_column(Float, default=None)
    injection_time: Mapped[str | None] = mapped_column(String(32), default=None)
    route: Mapped[str | None] = mapped_column(String(3), default=None)
    time_after_admin_h: Mapped[float | None] = mapped_column(Float, default=None)
    institution: Mapped[str | None] = mapped_column(String(100), default=None)
    camera: Mapped[str | None] = mapped_column(String(100), default=None)
    n_files: Mapped[int] = mapped_column(Integer, default=0)
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImagingFile(Audited, Base):
    """One stored file: ``store_path`` is relative to the store (``sha256/ab/<digest>``), never overwritten."""

    __tablename__ = "imaging_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    sop_instance_uid: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    store_path: Mapped[str] = mapped_column(String(200))
    original_name: Mapped[str] = mapped_column(String(300))


class AnalysisJob(Audited, Base):
    """A background analysis run (web) with its progress; survives page reloads and restarts.

    ``status``: queued, running, done, failed. ``result_ids``: {"imaging": id, "dosimetry": id}.
    """

    __tablename__ = "analysis_jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result_ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


# --- issue 15: API tokens, lab and screening imports ------------------------------------------


class ApiToken(Audited, Base):
    """A personal API token (``Authorization: Bearer lut_<prefix>_<secret>``).

    Only the SHA-256 of the whole token is stored; ``prefix`` (random, shown in lists) finds the
    row. The token acts with its user's roles and sites intersected with ``scope`` (``read`` or
    ``write``) and ``site_ids`` (a subset of the user's sites; ``None`` = all of them).
    """

    __tablename__ = "api_tokens"
    __audit_redact__ = ("token_hash",)
    __table_args__ = (CheckConstraint("scope IN ('read', 'write')", name="scope"),
                      UniqueConstraint("user_id", "name"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))
    site_ids: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ApiTokenUse(Base):
    """When a token was last used (not audited: it changes on every request)."""

    __tablename__ = "api_token_uses"
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), primary_key=True, autoincrement=False)
    last_used_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataImport(Audited, Base):
    """One imported file (labs or a screening record): its SHA-256, format and summary."""

    __tablename__ = "data_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # labs | screening
    file_format: Mapped[str] = mapped_column(String(20))  # fhir | ndjson | csv
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"), default=None, index=True)
    screening_result_id: Mapped[int | None] = mapped_column(ForeignKey("screening_results.id"), default=None)
    source_name: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- issue 13: data management (schedule, queries, e-signatures, locks, SDV) --------------------


class ScheduleEntry(Audited, Base):
    """A participant's planned date and window for one visit of the protocol's schedule.

    Computed from the protocol version file (``schedule`` block) at enrolment and recomputed, in
    the same audited transaction, whenever an anchor (enrolment date, IAH cycle date) changes.
    """

    __tablename__ = "schedule_entries"
    __table_args__ = (UniqueConstraint("participant_id", "visit_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column(Integer, default=1)
    anchor: Mapped[str | None] = mapped_column(String(40), default=None)
    anchor_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    target_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    window_start: Mapped[dt.date | None] = mapped_column(Date, default=None)
    window_end: Mapped[dt.date | None] = mapped_column(Date, default=None)
    protocol_version: Mapped[str] = mapped_column(String(50), default="")


class DataQuery(Audited, Base):
    """A query (discrepancy) on a participant, a form (``table_name``/``row_id``) or one ``field``.

    ``source`` is ``manual`` (monitor, data manager) or ``check`` (an automatic edit check,
    ``check_key`` deduplicates). Status ``open`` -> ``answered`` (site) -> ``closed`` (opener),
    or re-opened.
    """

    __tablename__ = "dm_queries"
    __table_args__ = (CheckConstraint("status IN ('open', 'answered', 'closed')", name="status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    table_name: Mapped[str | None] = mapped_column(String(64), default=None)
    row_id: Mapped[int | None] = mapped_column(Integer, default=None)
    field: Mapped[str | None] = mapped_column(String(100), default=None)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="open")
    source: Mapped[str] = mapped_column(String(12), default="manual")
    check_key: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    opened_by: Mapped[str] = mapped_column(String(100))
    assigned_to: Mapped[str | None] = mapped_column(String(100), default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class QueryMessage(Audited, Base):
    """One step of a query's thread (open, assign, answer, close, reopen) with its text."""

    __tablename__ = "dm_query_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("dm_queries.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    action: Mapped[str] = mapped_column(String(12))
    text: Mapped[str] = mapped_column(Text, default="")
    username: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Signature(Audited, Base):
    """An electronic signature (21 CFR 11.50/11.70) of a casebook (no ``table_name``) or one form.

    ``content_hash`` is the SHA-256 of the canonical JSON of exactly the signed data; a change to
    that data voids the signature (``voided_at``, ``void_reason``) in the same audited transaction.
    """

    __tablename__ = "signatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    table_name: Mapped[str | None] = mapped_column(String(64), default=None)
    row_id: Mapped[int | None] = mapped_column(Integer, default=None)
    meaning: Mapped[str] = mapped_column(String(60))
    signer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    signer_username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    voided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    void_reason: Mapped[str | None] = mapped_column(Text, default=None)


class RecordLock(Audited, Base):
    """A lock on a participant (no ``table_name``) or one form; writes are refused until unlocked."""

    __tablename__ = "record_locks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    table_name: Mapped[str | None] = mapped_column(String(64), default=None)
    row_id: Mapped[int | None] = mapped_column(Integer, default=None)
    locked_by: Mapped[str] = mapped_column(String(100))
    locked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lock_reason: Mapped[str] = mapped_column(Text)
    unlocked_by: Mapped[str | None] = mapped_column(String(100), default=None)
    unlocked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    unlock_reason: Mapped[str | None] = mapped_column(Text, default=None)


class SdvMark(Audited, Base):
    """Source-data verification of a form or one field by a monitor; cleared when the value changes."""

    __tablename__ = "sdv_marks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    row_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(100), default=None)
    value_hash: Mapped[str] = mapped_column(String(64))
    verified_by: Mapped[str] = mapped_column(String(100))
    verified_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cleared_reason: Mapped[str | None] = mapped_column(Text, default=None)



# --- issue 10: registry settings (CTCAE baseline rule) and site protocol configuration ----------


class RegistrySetting(Audited, Base):
    """One registry-wide setting; ``key`` e.g. ``ctcae_require_baseline`` (value ``true``/``false``).

    Audited like study data, so who changed how labs are graded, and why, is in the audit trail.
    """

    __tablename__ = "registry_settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SiteProtocolConfig(Audited, Base):
    """A site's effective date for a protocol version: from ``effective_date`` on, screenings at
    that site use ``protocol_version`` (the packaged default applies otherwise). ``source`` names
    the document that sets the date (ethics approval letter, amendment notice)."""

    __tablename__ = "site_protocol_configs"
    __table_args__ = (UniqueConstraint("site_id", "protocol_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    protocol_version: Mapped[str] = mapped_column(String(50))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

#: Data-management tables: changes to them are not "data changes" (no lock refusal, no voiding).
DM_TABLES = frozenset({"schedule_entries", "dm_queries", "dm_query_messages", "signatures", "record_locks",
                       "sdv_marks"})


AUDITED_MODELS: tuple[type[Base], ...] = (
    Site,
    User,
    UserRole,
    SiteMembership,
    Participant,
    ParticipantIdentity,
    Consent,
    ScreeningResult,
    Enrolment,
    Visit,
    LabResult,
    AdverseEvent,
    RecistAssessment,
    ImagingAnalysis,
    DosimetryAnalysis,
    ImagingStudy,
    ImagingSeries,
    ImagingFile,
    AnalysisJob,
    ApiToken,
    DataImport,
    ScheduleEntry,
    DataQuery,
    QueryMessage,
    Signature,
    RecordLock,
    SdvMark,
    RegistrySetting,
    SiteProtocolConfig,
)
