"""The web layer's only door to the registry: a thin adapter over its audited services.

Every write calls a :mod:`lutarterial.registry.services` function with the signed-in user's
``Actor`` and the user's reason, inside one unit of work; the registry checks the site and the
role and writes the audit row. Reads go through the same access-checked lookups
(``get_participant`` refuses another site's participant) before related rows are read.
Values returned are plain dicts/lists (JSON-ready), never ORM objects, so nothing lazy-loads
after the session closes.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, exists, func, inspect, select
from sqlalchemy import types as sa_types
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError, LutarterialError
from lutarterial.registry import models as m
from lutarterial.registry.access import Actor, Permission, can
from lutarterial.registry.models import Role

__all__ = ["WebUser", "Backend", "normalise_screening", "VISIT_LABELS", "PARTICIPANT_TABLES"]

VISIT_LABELS: dict[str, str] = {
    "screening": "Screening",
    "iv_cycle": "IV LUTATHERA cycle",
    "pet_after_iv": "PET after IV injection",
    "iah_cycle": "IAH LUTATHERA cycle",
    "pet_after_iah": "PET after IAH injection",
    "follow_up": "Follow-up visit",
    "end_of_study": "End of study",
}

#: Tables of study data a participant owns, for the CSV exports page.
PARTICIPANT_TABLES = ("participants", "consents", "screening_results", "enrolments", "visits", "lab_results",
                      "adverse_events", "recist_assessments", "imaging_analyses", "dosimetry_analyses")


@dataclass(frozen=True)
class WebUser:
    """The signed-in user as the templates and routes see it."""

    id: int
    username: str
    full_name: str
    actor: Actor
    sites: tuple[str, ...]

    @property
    def role(self) -> str:
        return self.actor.roles_text()

    @property
    def read_only(self) -> bool:
        return self.actor.read_only

    @property
    def can_write(self) -> bool:
        return not self.actor.read_only

    @property
    def is_admin(self) -> bool:
        return self.actor.is_admin

    @property
    def can_register(self) -> bool:
        return can(self.actor, Permission.PARTICIPANT_WRITE)

    @property
    def can_audit(self) -> bool:
        """Whether the global audit page is offered: monitors and admins (the issue's audience).

        The registry's ``audit_trail`` still limits the rows to the user's sites (admins: all).
        """
        return bool(self.actor.roles & {Role.MONITOR, Role.ADMIN})

    @property
    def can_export(self) -> bool:
        perm = getattr(Permission, "EXPORT", None)
        return True if perm is None else can(self.actor, perm)

    def can(self, permission: str) -> bool:
        return can(self.actor, permission)


def _svc(name: str) -> Callable[..., Any]:
    """A registry service function by name, or a clear error if this build lacks it."""
    for module in ("lutarterial.registry.services", "lutarterial.registry.services.participants",
                   "lutarterial.registry.services.people", "lutarterial.registry.services.clinical",
                   "lutarterial.registry.services.visits", "lutarterial.registry.services.analyses",
                   "lutarterial.registry.exports"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        fn = getattr(mod, name, None)
        if fn is not None:
            return fn  # type: ignore[no-any-return]
    raise InvalidInputError(f"the registry service {name!r} is not available in this build")


def _iso(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        v = v.astimezone(dt.timezone.utc) if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
        return v.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: _iso(getattr(obj, f)) for f in fields}


_VISIT_F = ("id", "kind", "number", "status", "planned_date", "visit_date", "activity_mbq", "artery",
            "catheter_position", "notes")
_LAB_F = ("id", "visit_id", "analyte", "loinc", "value", "unit", "value_canonical", "unit_canonical", "collected_date",
          "ctcae_term", "ctcae_grade", "lln", "uln")  # lln/uln: reference lines on the lab plots (issue 13)
_AE_F = ("id", "term", "meddra_code", "grade", "onset_date", "resolution_date", "serious", "relatedness", "outcome",
         "action_taken")
_RECIST_F = ("id", "visit_id", "assessment_date", "target_sum_mm", "response", "details")
_ANALYSIS_F = ("id", "kind", "visit_id", "study_instance_uid", "series_instance_uids", "input_hashes", "parameters",
               "result", "software_version", "created_at",
               "superseded_by_id", "superseded_reason", "reproduced_at")  # issue 11
_CONSENT_F = ("id", "version", "signed_date", "withdrawal_date", "withdrawal_note")
_SCREENING_F = ("id", "protocol_version", "as_of", "overall", "engine", "created_at", "record", "result")
_ENROL_F = ("id", "enrolled_date", "screening_result_id")


@lru_cache(maxsize=64)
def _part_stmt(model: Any, fields: tuple[str, ...], order: tuple[str, ...]) -> tuple[Any, tuple[int, ...]]:
    """``SELECT fields FROM model WHERE participant_id = :pid ORDER BY order``, built once, and the
    positions of its date and date-time columns (the only values :func:`_iso` changes).

    Why: building an ORM statement, computing its cache key and making ORM objects cost about
    0.3 ms per query, nine times per participant page (issue 13, fast); a prebuilt Core statement
    of only the columns shown keeps its cache key and returns plain rows. Same SQL order as before.
    """
    cols = inspect(model).columns
    stmt = (select(*(cols[f] for f in fields)).where(cols["participant_id"] == bindparam("pid"))
            .order_by(*(cols[o] for o in order)))
    dates = tuple(i for i, f in enumerate(fields) if isinstance(cols[f].type, (sa_types.Date, sa_types.DateTime)))
    return stmt, dates


#: Parts of a participant that many participants have no row in (screening-only, not yet treated):
#: the participant's row read says with an EXISTS each whether to read them (issue 13, fast: the
#: participant JSON read nine parts one by one; a screened participant has rows in three).
_OPTIONAL_PARTS: dict[str, Any] = {"enrolment": m.Enrolment, "visits": m.Visit, "adverse_events": m.AdverseEvent,
                                   "recist": m.RecistAssessment, "imaging": m.ImagingAnalysis,
                                   "dosimetry": m.DosimetryAnalysis}


@lru_cache(maxsize=None)
def _row_extra(banner: bool) -> str:
    """The ``extra`` of ``load_participant_row`` for :meth:`Backend._participant_in`: ``has_<part>``
    flags of :data:`_OPTIONAL_PARTS`, and the banner's columns when asked (registered once)."""
    from lutarterial.registry.services._common import participant_row_columns, participant_row_extra

    cols: tuple[Any, ...] = tuple(exists().where(model.__table__.c.participant_id == _PT.id).label(f"has_{key}")
                                  for key, model in _OPTIONAL_PARTS.items())
    if banner:
        from lutarterial.web.dm import banner_columns

        cols += participant_row_extra(banner_columns())
    return participant_row_columns("web_parts+dm_banner" if banner else "web_parts", cols)


def _part_rows(s: Session, model: Any, fields: tuple[str, ...], order: tuple[str, ...], pid: int
               ) -> list[dict[str, Any]]:
    """The rows of one part of a participant as ``{field: value}`` with dates as ISO text (``_row``).

    Fetched at once (iterating a result fetches row by row) and only the date columns converted
    (issue 13, fast: a participant with 300 laboratory values made 3,900 ``_iso`` calls per read,
    most of the participant JSON's CPU time under the load test). Same values as ``_row``."""
    stmt, dates = _part_stmt(model, fields, order)
    out = []
    for row in s.execute(stmt, {"pid": pid}).all():
        d = dict(zip(fields, row))
        for i in dates:
            d[fields[i]] = _iso(row[i])
        out.append(d)
    return out


_AUDIT_F = ("id", "occurred_at", "actor_username", "actor_roles", "site_id", "table_name", "row_id", "participant_id",
            "action", "reason")
_PT = m.Participant.__table__.c
_SR = m.ScreeningResult.__table__.c
_DQ = m.DataQuery.__table__.c
_IN_SITES = _PT.site_id.in_(bindparam("sites", expanding=True))
_PT_TABLE = m.Participant.__table__
#: The participant's last screening verdict (highest id), and its queries of one status: correlated
#: subqueries of the list read, so the list page is one statement (each is an indexed lookup).
_LAST_OVERALL = (select(_SR.overall).where(_SR.participant_id == _PT.id).order_by(_SR.id.desc()).limit(1)
                 .correlate(_PT_TABLE).scalar_subquery())


def _query_count(status: str) -> Any:
    return (select(func.count()).select_from(m.DataQuery.__table__)
            .where(_DQ.participant_id == _PT.id, _DQ.status == status).correlate(_PT_TABLE).scalar_subquery())


#: The participant list (``_list_unfiltered``): all sites (admins) or the actor's ``:sites``, with the
#: last verdict, and (``_Q``) the counts of open and answered queries.
_LIST_ALL = select(_PT.id, _PT.trial_number, _PT.site_id, _PT.status, _PT.sex, _PT.year_of_birth,
                   _PT.created_at, _LAST_OVERALL.label("last_overall")).order_by(_PT.trial_number)
_LIST_SITES = _LIST_ALL.where(_IN_SITES)
_LIST_Q_ALL = _LIST_ALL.add_columns(_query_count("open").label("q_open"),
                                    _query_count("answered").label("q_answered"))
_LIST_Q_SITES = _LIST_Q_ALL.where(_IN_SITES)
_AE = m.AuditEntry.__table__.c
#: One participant's trail, newest first (the rows of the ``participant_audit_page`` service), prebuilt Core.
_P_AUDIT_COUNT = select(func.count()).select_from(m.AuditEntry.__table__).where(_AE.participant_id == bindparam("pid"))
_P_AUDIT_PAGE = (select(*(_AE[f] for f in _AUDIT_F), _AE.old_values, _AE.new_values, _AE.row_hash,
                         _P_AUDIT_COUNT.scalar_subquery().label("total"))
                 .where(_AE.participant_id == bindparam("pid")).order_by(_AE.id.desc())
                 .limit(bindparam("lim")).offset(bindparam("off")))


def normalise_screening(result: dict[str, Any]) -> dict[str, Any]:
    """The engine's ``to_dict()`` with each criterion's protocol text added for display."""
    out = dict(result)
    out["overall"] = result.get("verdict") or result.get("overall") or "unknown"
    texts: dict[str, str] = {}
    try:
        from lutarterial.protocol import load_protocol

        proto = load_protocol(str(result.get("protocol_version")))
        texts = {c.id: c.title or c.text for c in proto.criteria}
    except (LutarterialError, ImportError, KeyError, ValueError):
        pass
    out["criteria"] = [
        {"id": c.get("id", "?"), "status": c.get("status", "unknown"), "reason": c.get("reason", ""),
         "text": texts.get(str(c.get("id")), ""), "evidence": c.get("evidence", [])}
        for c in result.get("criteria", [])
    ]
    return out


class Backend:
    """An open registry plus the adapter methods the routes call."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self._sites: dict[int, tuple[str, str]] | None = None
        self._users: dict[int, tuple[float, WebUser | None]] = {}
        # audit row (id, row hash) -> (old values, new values, changes): see _audit_rows
        self._audit_memo: dict[tuple[int, str], tuple[Any, Any, Any]] = {}
        self._audit_memo_lock = threading.Lock()

    #: Audit rows whose parsed values and changes are kept (oldest dropped first), and the largest
    #: stored text (old + new values, characters) kept: a screening record is parsed each time.
    AUDIT_MEMO_SIZE = 2048
    AUDIT_MEMO_MAX_TEXT = 8000

    #: Seconds a loaded user (roles, sites, active flag) is reused before it is read again.
    USER_TTL_S = 2.0

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, engine_kwargs: dict[str, Any] | None = None) -> Backend:
        from lutarterial.registry.db import Registry, make_engine, quick_engine_for
        from lutarterial.registry.db import upgrade as db_upgrade

        if upgrade:
            db_upgrade(url)
        if engine_kwargs:  # issue 13 (fast): a pool sized to the worker threads (web/perf.py)
            engine, quick = make_engine(url, **engine_kwargs), None
            try:
                quick = quick_engine_for(url, **engine_kwargs)  # autocommit reads (PostgreSQL)
                return cls(Registry.open(engine, quick_engine=quick))
            except BaseException:
                for eng in (engine, quick):
                    if eng is not None:
                        eng.dispose()
                raise
        return cls(Registry.open(url))

    def close(self) -> None:
        self.registry.dispose()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.registry.session(readonly=True) as s:
            yield s

    @contextmanager
    def quick(self) -> Iterator[Session]:
        """A read of a few independent statements for a hot page (``Registry.quick_read``: on
        PostgreSQL no BEGIN/ROLLBACK round trips; writes refused)."""
        with self.registry.quick_read() as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.registry.session() as s:
            yield s

    # --- users --------------------------------------------------------------------------------

    def site_map(self, s: Session | None = None) -> dict[int, tuple[str, str]]:
        """Site id -> (code, name); sites change only by ``db upgrade`` (cached)."""
        if self._sites is None:
            if s is None:
                with self.read() as s2:
                    return self.site_map(s2)
            self._sites = {site.id: (site.code, site.name) for site in _svc("list_sites")(s)}
        return self._sites

    def _web_user(self, s: Session, actor: Actor) -> WebUser:
        user = s.get(m.User, actor.user_id)
        sites = self.site_map(s)
        ids = sorted(sites) if actor.all_sites else sorted(actor.site_ids)  # admin, statistician: all
        return WebUser(id=int(actor.user_id or 0), username=actor.username, full_name=user.full_name if user else "",
                       actor=actor, sites=tuple(sites[i][0] for i in ids if i in sites))

    def authenticate(self, username: str, password: str, client: str = "?") -> WebUser | None:
        with self.read() as s:
            actor = _svc("authenticate")(s, username, password, client=client)
            user = None if actor is None else self._web_user(s, actor)
        if user is not None:
            self._users[user.id] = (time.monotonic(), user)  # fresh roles/sites right after sign-in
        return user

    # --- server-side sessions (issue 9; lutarterial.registry.user_sessions) --------------------

    def start_session(self, user_id: int, *, client: str = "", user_agent: str = "") -> str:
        """A new session row; returns the random token for the cookie (the row keeps its hash)."""
        from lutarterial.registry.user_sessions import start_session

        with self.write() as s:
            return start_session(s, user_id, client_addr=client, user_agent=user_agent)

    def session_check(self, token: str, *, idle_s: float, max_age_s: float
                      ) -> tuple[int | None, tuple[int, dict[str, Any]] | None]:
        """The read half of :meth:`session_user`: ``(user id or None, (session id, update) or None)``."""
        from lutarterial.registry.user_sessions import check_session

        with self.registry.quick_connection() as conn:  # one indexed read: no ORM session (issue 13, fast)
            uid, sid, pending = check_session(conn, token, idle_s=idle_s, max_age_s=max_age_s)
        return uid, ((sid, pending) if sid is not None and pending else None)

    def idle_connection_available(self) -> bool:
        """Whether the connection pool holds an idle connection now (a read on the event loop would
        not wait for one); False for a pool that cannot tell."""
        checkedin = getattr(self.registry.quick_engine.pool, "checkedin", None)
        try:
            return callable(checkedin) and int(checkedin()) > 0
        except (TypeError, ValueError):
            return False

    def session_apply(self, session_id: int, values: dict[str, Any]) -> None:
        """The write half of :meth:`session_user` (may wait for the database's write lock)."""
        from lutarterial.registry.user_sessions import apply_update

        with self.write() as s:
            apply_update(s, session_id, values)

    def cached_user(self, user_id: int) -> WebUser | None:
        """The user from the :meth:`load_user` cache while it is fresh, else None (no database)."""
        hit = self._users.get(user_id)
        if hit is not None and time.monotonic() - hit[0] < self.USER_TTL_S:
            return hit[1]
        return None

    def session_user(self, token: str, *, idle_s: float, max_age_s: float) -> WebUser | None:
        """The user of a live session: one indexed SELECT by token hash per request (never cached,
        so a logout, password change, deactivation or admin end applies at the next request)."""
        uid, pending = self.session_check(token, idle_s=idle_s, max_age_s=max_age_s)
        if pending is not None:
            self.session_apply(*pending)
        return None if uid is None else self.load_user(uid)

    def end_session(self, token: str, reason: str = "logout") -> None:
        from lutarterial.registry.user_sessions import end_session

        with self.write() as s:
            end_session(s, token, reason=reason)

    def change_own_password(self, user: WebUser, current: str, new: str) -> None:
        """A user changes their password; every session of theirs ends (the caller starts a new one)."""
        from lutarterial.registry.passwords import verify_password

        with self.write() as s:
            row = s.get(m.User, user.id)
            if row is None or not verify_password(current, row.password_hash):
                raise AccessDeniedError("the current password is wrong")
            _svc("set_password")(s, user.actor, user.id, new, reason="password changed by the user",
                                 current_password=current)

    def list_sessions(self, user: WebUser, *, active_only: bool = True) -> list[dict[str, Any]]:
        from lutarterial.registry.user_sessions import list_sessions

        with self.read() as s:
            return [x.to_dict() for x in list_sessions(s, user.actor, active_only=active_only)]

    def end_session_by_id(self, user: WebUser, session_id: int, *, reason: str) -> bool:
        from lutarterial.registry.user_sessions import end_session_by_id

        with self.write() as s:
            return end_session_by_id(s, user.actor, session_id, reason=reason)

    def load_user(self, user_id: int) -> WebUser | None:
        """The user behind a session, re-read from the registry at most every ``USER_TTL_S``
        seconds, so a deactivation or a change of roles/sites applies within that time."""
        now = time.monotonic()
        hit = self._users.get(user_id)
        if hit is not None and now - hit[0] < self.USER_TTL_S:
            return hit[1]
        user = self._load_user(user_id)
        self._users[user_id] = (now, user)
        return user

    def forget_user(self, user_id: int) -> None:
        self._users.pop(user_id, None)

    def _load_user(self, user_id: int) -> WebUser | None:
        with self.read() as s:
            try:
                actor = _svc("actor_for")(s, int(user_id))
            except (AccessDeniedError, LutarterialError, ValueError, TypeError):
                return None
            return self._web_user(s, actor)

    def sites_of(self, user: WebUser) -> list[dict[str, str]]:
        sites = self.site_map()
        return [{"code": c, "name": n} for i, (c, n) in sorted(sites.items(), key=lambda kv: kv[1][0])
                if user.actor.all_sites or i in user.actor.site_ids]

    # --- participants -------------------------------------------------------------------------

    def _summary(self, p: m.Participant, last: str | None = None) -> dict[str, Any]:
        code, name = self.site_map().get(p.site_id, ("?", "?"))
        return {"id": p.id, "trial_number": p.trial_number, "site_code": code, "site_name": name, "status": p.status,
                "sex": p.sex, "year_of_birth": p.year_of_birth, "created_at": _iso(p.created_at),
                "last_screening": last}

    def list_participants(self, user: WebUser, *, site: str | None = None, status: str | None = None) -> list[dict]:
        return self.list_participants_with_queries(user, site=site, status=status, queries=False)[0]

    def list_participants_with_queries(self, user: WebUser, *, site: str | None = None, status: str | None = None,
                                       queries: bool = True) -> tuple[list[dict], dict[str, dict[str, int]]]:
        """:meth:`list_participants` and (``queries``) the open/answered query counts per trial number
        of the user's sites (:func:`lutarterial.web.dm.query_counts_in`), in one read."""
        if not site and not status:
            return self._list_unfiltered(user, queries=queries)
        with self.read() as s:
            if status and status not in {x.value for x in m.ParticipantStatus}:
                raise InvalidInputError(f"unknown status {status!r}")
            rows = _svc("list_participants")(s, user.actor, site_code=site or None, status=status or None)
            last: dict[int, str] = {}
            if rows:
                q = (select(m.ScreeningResult.participant_id, m.ScreeningResult.overall)
                     .where(m.ScreeningResult.participant_id.in_([p.id for p in rows]))
                     .order_by(m.ScreeningResult.id))
                for pid, overall in s.execute(q):
                    last[pid] = overall
            counts: dict[str, dict[str, int]] = {}
            if queries:
                from lutarterial.web.dm import query_counts_in

                counts = query_counts_in(s, user, None if site or status else {p.id: p.trial_number for p in rows})
            return [self._summary(p, last.get(p.id)) for p in rows], counts

    def _list_unfiltered(self, user: WebUser, *, queries: bool) -> tuple[list[dict], dict[str, dict[str, int]]]:
        """The participant list of the user's sites (the list page without filters, and the API), with the
        last screening verdict and the open/answered query counts: one prebuilt Core statement with
        correlated subqueries (issue 13, fast: ORM rows with their joined site, statements built per
        request, then three reads, were the cost).
        The same scope rule as ``list_participants``/``restrict_to_sites``: admins all sites, an actor
        without a site nothing."""
        from lutarterial.registry.services._common import require_active_actor

        actor = user.actor
        require_active_actor(actor)
        every = actor.all_sites
        params = {} if every else {"sites": sorted(actor.site_ids) or [-1]}
        stmt = (_LIST_Q_ALL if every else _LIST_Q_SITES) if queries else (_LIST_ALL if every else _LIST_SITES)
        with self.quick() as s:
            rows = s.execute(stmt, params).all()
        counts: dict[str, dict[str, int]] = {}
        if queries:  # participants with a query not closed (the list's badge)
            counts = {r.trial_number: {"open": int(r.q_open), "answered": int(r.q_answered)}
                      for r in rows if r.q_open or r.q_answered}
        return [self._summary(r, r.last_overall) for r in rows], counts

    #: Parts of a participant record; pages ask only for what they show.
    PARTS = frozenset({"consents", "screenings", "enrolment", "visits", "labs", "adverse_events", "recist",
                       "imaging", "dosimetry"})

    def participant(self, user: WebUser, trial_number: str, parts: frozenset[str] | set[str] | None = None,
                    *, banner: bool = False) -> dict[str, Any]:
        """Everything (or ``parts``) about one participant that the user may read; no identity key.

        ``banner``: add ``dm_banner`` (signatures, lock, open queries: :func:`lutarterial.web.dm.banner`),
        read in the same transaction (the pages show it on every tab; the API never asks for it).
        """
        with self.quick() as s:
            return self._participant_in(s, user, trial_number, parts, banner=banner)

    def _participant_in(self, s: Session, user: WebUser, trial_number: str, parts: frozenset[str] | set[str] | None,
                        *, banner: bool = False) -> dict[str, Any]:
        """:meth:`participant` inside an open read session (a page reads more in the same transaction)."""
        from lutarterial.registry.services._common import load_participant_row

        want = self.PARTS if parts is None else frozenset(parts)
        from lutarterial.web.dm import banner_in

        # the same access check as load_participant, no ORM object; which optional parts have rows, and
        # the banner's counts when asked, in the same SELECT
        p = load_participant_row(s, user.actor, trial_number, extra=_row_extra(banner))
        out = self._summary(p)
        if banner:
            out["dm_banner"] = banner_in(s, user, p)

        def rows(key: str, model: Any, fields: tuple[str, ...], order: tuple[str, ...]) -> list[dict[str, Any]]:
            # a part the participant has no row in is not read (``has_<part>``: an EXISTS of the row read)
            if key not in want or not getattr(p, f"has_{key}", True):
                return []
            return _part_rows(s, model, fields, order, p.id)

        out["consents"] = rows("consents", m.Consent, _CONSENT_F, ("id",))
        out["screenings"] = [{**r, "reproduced": None}
                             for r in rows("screenings", m.ScreeningResult, _SCREENING_F, ("id",))]
        enr = rows("enrolment", m.Enrolment, _ENROL_F, ("id",))
        out["enrolment"] = enr[0] if enr else None
        out["visits"] = rows("visits", m.Visit, _VISIT_F, ("visit_date", "id"))
        out["labs"] = rows("labs", m.LabResult, _LAB_F, ("collected_date", "id"))
        out["adverse_events"] = rows("adverse_events", m.AdverseEvent, _AE_F, ("onset_date",))
        out["recist"] = rows("recist", m.RecistAssessment, _RECIST_F, ("assessment_date",))
        out["imaging"] = rows("imaging", m.ImagingAnalysis, _ANALYSIS_F, ("id",))
        out["dosimetry"] = rows("dosimetry", m.DosimetryAnalysis, (*_ANALYSIS_F, "imaging_analysis_id"), ("id",))
        out["parts"] = sorted(want)
        return out

    def register(self, user: WebUser, *, site: str, reason: str, sex: str | None = None,
                 year_of_birth: int | None = None, identity: dict[str, Any] | None = None,
                 consent_version: str | None = None, consent_date: str | None = None) -> str:
        """Register (and optionally record consent) in one unit of work; returns the trial number."""
        with self.write() as s:
            ident = None
            if identity and any(v for v in identity.values()):
                from lutarterial.registry.services.participants import IdentityInput

                ident = IdentityInput(**identity)
            p = _svc("register_participant")(s, user.actor, site_code=site, reason=reason, identity=ident,
                                             sex=sex or None, year_of_birth=year_of_birth)
            if consent_version or consent_date:
                _svc("record_consent")(s, user.actor, p.id, version=consent_version or "", signed_date=consent_date,
                                       reason=reason)
            return str(p.trial_number)

    def record_consent(self, user: WebUser, tn: str, *, version: str, signed_date: str, reason: str) -> None:
        with self.write() as s:
            _svc("record_consent")(s, user.actor, tn, version=version, signed_date=signed_date, reason=reason)

    def withdraw_consent(self, user: WebUser, tn: str, *, withdrawal_date: str, reason: str,
                         note: str | None = None) -> None:
        with self.write() as s:
            _svc("withdraw_consent")(s, user.actor, tn, withdrawal_date=withdrawal_date, reason=reason, note=note)

    def identity(self, user: WebUser, tn: str) -> dict[str, Any]:
        """The identity key (the registry allows admins only)."""
        with self.read() as s:
            rec = _svc("get_identity")(s, user.actor, tn)
            return {"trial_number": rec.trial_number, "family_name": rec.family_name, "given_name": rec.given_name,
                    "birth_date": _iso(rec.birth_date), "hospital_id": rec.hospital_id}

    def screen(self, user: WebUser, tn: str, *, record: dict[str, Any], as_of: str, reason: str,
               protocol_version: str | None = None) -> dict[str, Any]:
        with self.write() as s:
            row = _svc("screen_participant")(s, user.actor, tn, record, as_of=as_of, reason=reason,
                                             protocol_version=protocol_version or None)
            return {"id": row.id, "overall": row.overall, "protocol_version": row.protocol_version}

    def rescreen(self, user: WebUser, screening_id: int) -> dict[str, Any]:
        with self.read() as s:
            return dict(_svc("rescreen")(s, user.actor, screening_id).to_dict())

    def enrol(self, user: WebUser, tn: str, *, enrolled_date: str, reason: str) -> None:
        with self.write() as s:
            _svc("enrol")(s, user.actor, tn, enrolled_date=enrolled_date, reason=reason)

    def record_visit(self, user: WebUser, tn: str, *, reason: str, **fields: Any) -> dict[str, Any]:
        with self.write() as s:
            v = _svc("record_visit")(s, user.actor, tn, reason=reason, **fields)
            return _row(v, _VISIT_F)

    def record_iah_cycle(self, user: WebUser, tn: str, *, reason: str, **fields: Any) -> dict[str, Any]:
        with self.write() as s:
            v = _svc("record_iah_cycle")(s, user.actor, tn, reason=reason, **fields)
            return _row(v, _VISIT_F)

    def attach_analysis(self, user: WebUser, tn: str, *, dosimetry: bool, reason: str, **fields: Any) -> int:
        with self.write() as s:
            name = "attach_dosimetry_analysis" if dosimetry else "attach_imaging_analysis"
            return int(_svc(name)(s, user.actor, tn, reason=reason, **fields).id)

    def timeline(self, user: WebUser, tn: str) -> list[dict[str, Any]]:
        with self.read() as s:
            return [{"date": _iso(i.date), "kind": i.kind, "label": i.label, "status": i.status,
                     "record_kind": i.record_kind, "record_id": i.record_id}
                    for i in _svc("participant_timeline")(s, user.actor, tn)]

    def add_lab(self, user: WebUser, tn: str, *, reason: str, **fields: Any) -> dict[str, Any]:
        with self.write() as s:
            x = _svc("record_lab")(s, user.actor, tn, reason=reason, **fields)
            return _row(x, _LAB_F)

    def add_adverse_event(self, user: WebUser, tn: str, *, reason: str, **fields: Any) -> dict[str, Any]:
        with self.write() as s:
            x = _svc("record_adverse_event")(s, user.actor, tn, reason=reason, **fields)
            return _row(x, _AE_F)

    def add_recist(self, user: WebUser, tn: str, *, reason: str, **fields: Any) -> dict[str, Any]:
        with self.write() as s:
            x = _svc("record_recist")(s, user.actor, tn, reason=reason, **fields)
            return _row(x, _RECIST_F)

    # --- audit ----------------------------------------------------------------------------------

    def _audit_rows(self, s: Session, entries: list[Any], names: dict[int, str] | None = None
                    ) -> list[dict[str, Any]]:
        """Audit rows for display: field-level changes, UTC stamp, trial number (``names``: participant
        id -> trial number already known, e.g. the one participant of its own trail: no lookup)."""
        from lutarterial.registry.db import json_loads as from_json  # 5x json.loads on large values

        tns: dict[int, str] = dict(names or {})
        pids = {e.participant_id for e in entries if e.participant_id is not None} - tns.keys()
        if pids:
            for pid, tn in s.execute(select(m.Participant.id, m.Participant.trial_number)
                                     .where(m.Participant.id.in_(pids))):
                tns[pid] = tn
        from lutarterial.web.views import Changes

        out = []
        memo, lock = self._audit_memo, self._audit_memo_lock
        for e in entries:
            d = _row(e, _AUDIT_F)
            # An audit row never changes (append-only, hash-chained): its parsed values and changes
            # (and, once rendered, their HTML) are kept by id and row hash, so the participant audit
            # page re-reads only the entries added since it was last shown (issue 13, fast). What is
            # kept is shared between answers: nothing downstream changes it.
            key = (e.id, e.row_hash)
            hit = memo.get(key)
            if hit is None:
                old = from_json(e.old_values) if e.old_values else {}
                new = from_json(e.new_values) if e.new_values else {}
                keys = [k for k in dict.fromkeys([*new.keys(), *old.keys()]) if old.get(k) != new.get(k)]
                hit = (old, new, Changes({"field": k, "old": old.get(k), "new": new.get(k)} for k in keys))
                if len(e.old_values or "") + len(e.new_values or "") <= self.AUDIT_MEMO_MAX_TEXT:
                    with lock:
                        memo[key] = hit
                        if len(memo) > self.AUDIT_MEMO_SIZE:
                            del memo[next(iter(memo))]
            old, new, d["changes"] = hit
            d["occurred_at"] = str(d["occurred_at"]).replace("T", " ").split(".")[0].rstrip("Z") + "Z"
            d["old_values"], d["new_values"] = old, new
            d["trial_number"] = tns.get(e.participant_id)
            out.append(d)
        return out

    def participant_audit(self, user: WebUser, tn: str) -> list[dict[str, Any]]:
        with self.read() as s:
            return self._audit_rows(s, _svc("participant_audit_trail")(s, user.actor, tn))

    def participant_audit_view(self, user: WebUser, tn: str, *, limit: int, offset: int, parts: frozenset[str] |
                               set[str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
        """The participant audit page in one read: :meth:`participant` (``parts``, with the banner),
        one page of the trail newest first and the number of entries in all (issue 13, fast: the page
        read the participant twice in two transactions, the second time as an ORM object)."""
        with self.quick() as s:
            p = self._participant_in(s, user, tn, parts or set(), banner=True)
            pid = p["id"]
            limit = max(1, min(int(limit), 5000))
            # the page rows carry the count of all entries (an uncorrelated subquery, evaluated once)
            entries = s.execute(_P_AUDIT_PAGE, {"pid": pid, "lim": limit, "off": max(0, int(offset))}).all()
            total = int(entries[0].total) if entries else int(s.execute(_P_AUDIT_COUNT, {"pid": pid}).scalar() or 0)
            return p, self._audit_rows(s, entries, {pid: p["trial_number"]}), total

    def audit(self, user: WebUser, *, table: str | None = None, username: str | None = None,
              limit: int = 300) -> list[dict[str, Any]]:
        if not user.can_audit:
            raise AccessDeniedError(f"user {user.username!r} ({user.role}) may not read the global audit trail")
        with self.read() as s:
            rows = self._audit_rows(s, _svc("audit_trail")(s, user.actor, table=table or None,
                                                           limit=limit if not username else 5000))
        if username:
            rows = [r for r in rows if r["actor_username"] == username.strip().lower()][:limit]
        return rows

    #: Seconds the global audit page may show the last full verification of the hash chain instead of
    #: recomputing it (issue 13, fast: a full pass over every audit row on every page view was the
    #: page's main cost and grows with the trail). ``GET /api/audit/verify`` always recomputes.
    CHAIN_CACHE_S = 30.0

    def verify_chain(self, *, max_age_s: float | None = None) -> dict[str, Any]:
        """Verify the audit hash chain; reuse a verification younger than ``max_age_s`` seconds
        (default :attr:`CHAIN_CACHE_S`; ``0`` recomputes). A fresh result always replaces the cached
        one, so a break found by the API shows on the page at once. ``verified_at`` says when."""
        from lutarterial.registry.audit_proof import verify_registry

        age = self.CHAIN_CACHE_S if max_age_s is None else max_age_s
        cached = getattr(self, "_chain", None)
        if cached is not None and age > 0 and time.monotonic() - cached[0] < age:
            return dict(cached[1])
        with self.read() as s:  # issue 9: chain + reconciliation + checkpoint + triggers (no new checkpoint)
            rep = verify_registry(s, checkpoint=False)
        d = dict(rep.to_dict())
        d["checked"] = d.get("rows_checked")
        problems = d.get("problems") or []
        d["message"] = "" if d.get("ok") else (f"{problems[0]}" + (f" (+{len(problems) - 1} more; "
                                                                    "`lutarterial audit verify` lists all)"
                                                                    if len(problems) > 1 else ""))
        d["verified_at"] = _iso(dt.datetime.now(dt.timezone.utc))
        self._chain = (time.monotonic(), dict(d))
        return d

    # --- exports (lutarterial.registry.exports) -------------------------------------------------

    def export_tables(self) -> list[str]:
        return [*PARTICIPANT_TABLES, "audit_entries"]

    def export_zip(self, user: WebUser, site: str | None = None) -> bytes:
        """All CSV tables the user may export plus ``manifest.json``, as a zip (registry's export)."""
        import tempfile
        from pathlib import Path

        from lutarterial.registry.exports import export_csv

        with tempfile.TemporaryDirectory() as tmp, self.read() as s:
            out = export_csv(s, user.actor, Path(tmp) / "export.zip", site_code=site or None)
            return out.read_bytes()

    def export_csv(self, user: WebUser, table: str) -> bytes:
        """One table of :meth:`export_zip`."""
        import io
        import zipfile

        if table not in self.export_tables():
            from lutarterial.errors import NotFoundError

            raise NotFoundError(f"no export table {table!r}; tables: {', '.join(self.export_tables())}")
        with zipfile.ZipFile(io.BytesIO(self.export_zip(user))) as zf:
            return zf.read(f"{table}.csv")

    def export_odm(self, user: WebUser, site: str | None = None) -> bytes:
        """CDISC ODM 1.3.2 XML with audit records (registry's ``odm_document``)."""
        from lutarterial.registry.exports import odm_document

        with self.read() as s:
            return bytes(odm_document(s, user.actor, site_code=site or None))
