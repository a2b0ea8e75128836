"""Sites, users, roles, site memberships and authentication."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError, NotFoundError
from lutarterial.registry.access import ALL_SITES_ROLES, SYSTEM_ACTOR, Actor, Permission, require
from lutarterial.registry.audit import audited
from lutarterial.registry.models import Role, Site, SiteMembership, User, UserRole
from lutarterial.registry import throttle as _throttle
from lutarterial.registry.passwords import hash_password, verify_password
from lutarterial.registry.user_sessions import end_user_sessions

__all__ = [
    "ensure_sites",
    "list_sites",
    "get_site",
    "create_user",
    "authenticate",
    "actor_for",
    "actor_by_username",
    "get_user",
    "list_users",
    "set_user_active",
    "set_password",
    "set_user_roles",
    "parse_roles",
    "is_locked",
    "unlock_user",
    "MAX_FAILED_LOGINS",
    "LOCKOUT",
]

_SITE_CODE = re.compile(r"^[A-Z]{3}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# A hash of a random password, verified when a username is unknown so that the time taken does
# not reveal which usernames exist.
_DUMMY_HASH = hash_password("not-a-real-password-0")


def ensure_sites(session: Session, sites: Iterable[dict[str, str]], *, actor: Actor = SYSTEM_ACTOR,
                 reason: str = "site configuration (db upgrade)") -> list[Site]:
    """Create missing sites and update names of existing ones (by code); audited."""
    require(actor, Permission.SITE_MANAGE)
    out: list[Site] = []
    with audited(session, actor, reason):
        for spec in sites:
            code = str(spec["code"]).strip().upper()
            if not _SITE_CODE.match(code):
                raise InvalidInputError(f"site code {code!r} must be three capital letters (e.g. BDX)")
            site = session.scalars(select(Site).where(Site.code == code)).first()
            if site is None:
                site = Site(code=code, name=spec["name"], city=spec.get("city", ""), active=True)
                session.add(site)
            else:
                if site.name != spec["name"]:
                    site.name = spec["name"]
                if spec.get("city") is not None and site.city != spec.get("city", ""):
                    site.city = spec.get("city", "")
            out.append(site)
    return out


def list_sites(session: Session) -> list[Site]:
    """All sites (not confidential: any logged-in user may list them)."""
    return list(session.scalars(select(Site).order_by(Site.code)))


def get_site(session: Session, code: str) -> Site:
    site = session.scalars(select(Site).where(Site.code == str(code).strip().upper())).first()
    if site is None:
        known = ", ".join(s.code for s in list_sites(session)) or "none (run `lutarterial db upgrade`)"
        raise NotFoundError(f"site {code!r} does not exist; known sites: {known}")
    return site


def parse_roles(roles: Iterable[str | Role]) -> frozenset[Role]:
    """Roles from names; an unknown name is refused with the list of valid ones."""
    out: set[Role] = set()
    for r in roles:
        try:
            out.add(r if isinstance(r, Role) else Role(str(r).strip().lower()))
        except ValueError:
            valid = ", ".join(x.value for x in Role)
            raise InvalidInputError(f"unknown role {r!r}; valid roles: {valid}") from None
    return frozenset(out)


def create_user(session: Session, actor: Actor, *, username: str, password: str, roles: Iterable[str | Role],
                site_codes: Iterable[str] = (), full_name: str = "", reason: str) -> User:
    """Create a user with roles and site memberships (admin only; the first admin via the CLI).

    Non-admin users need at least one site. The password is stored scrypt-hashed only.
    """
    require(actor, Permission.USER_MANAGE)
    username = str(username).strip().lower()
    if not _USERNAME.match(username):
        raise InvalidInputError(f"username {username!r}: use 2-64 lowercase letters, digits, '.', '_' or '-'")
    role_set = parse_roles(roles)
    if not role_set:
        raise InvalidInputError("a user needs at least one role")
    sites = [get_site(session, c) for c in dict.fromkeys(str(c).strip().upper() for c in site_codes)]
    if not sites and not (role_set & ALL_SITES_ROLES):
        raise InvalidInputError("a user who is not admin or statistician needs at least one site (--site BDX)")
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise InvalidInputError(f"user {username!r} already exists")
    pw_hash = hash_password(password)
    with audited(session, actor, reason):
        user = User(username=username, full_name=str(full_name or "").strip(), password_hash=pw_hash, active=True)
        session.add(user)
        session.flush()
        for role in sorted(role_set, key=lambda r: r.value):
            session.add(UserRole(user_id=user.id, role=role.value))
        for site in sites:
            session.add(SiteMembership(user_id=user.id, site_id=site.id))
    session.refresh(user)
    return user


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    if actor.user_id != user_id:
        require(actor, Permission.USER_MANAGE)
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    return user


def list_users(session: Session, actor: Actor) -> list[User]:
    require(actor, Permission.USER_MANAGE)
    return list(session.scalars(select(User).order_by(User.username)))


def _actor_of(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        roles=frozenset(Role(r.role) for r in user.roles),
        site_ids=frozenset(m.site_id for m in user.memberships),
    )


#: Sign-in throttling lives in :mod:`lutarterial.registry.throttle` (issue 9): per (account,
#: client address) back-off, a per-client limit, and an account lock only after failures from
#: several sources (OWASP ASVS 2.2.1; EU Annex 11 §12.1 and 21 CFR 11.300(d) ask for safeguards
#: against unauthorised use). The names below stay for callers of the old rule.
MAX_FAILED_LOGINS = _throttle.LOCK_FAILURES
LOCKOUT = _throttle.LOCKOUT
_LOGIN_ACTOR = Actor(user_id=None, username="system:login", roles=frozenset({Role.ADMIN}))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


@contextlib.contextmanager
def _login_writer(session: Session) -> Iterator[Session]:
    """A short write transaction for the attempt log, separate from the caller's session (often
    read-only), so a failed attempt is remembered although the request changes nothing else."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        if session.connection().get_execution_options().get("sqlite_begin") == "IMMEDIATE":
            # The caller's write session already holds SQLite's write lock: a second connection
            # would wait for it; record the attempt in the caller's unit of work instead.
            yield session
            return
        bind = bind.execution_options(sqlite_begin="IMMEDIATE")
    with Session(bind=bind, expire_on_commit=False) as w:
        with w.begin():
            yield w


def _after_attempt(session: Session, username: str, client: str, user_id: int | None, *, success: bool,
                   now: dt.datetime) -> None:
    with _login_writer(session) as w:
        _throttle.record_attempt(w, username, client, success=success, now=now)
        if user_id is None:
            return
        user = w.get(User, user_id)
        if user is None:  # pragma: no cover - deleted meanwhile
            return
        if success:
            if user.failed_logins or user.locked_until is not None:
                with audited(w, _LOGIN_ACTOR, "successful login: lock cleared"):
                    user.failed_logins = 0
                    user.locked_until = None
        elif _throttle.should_lock(w, username, now=now):
            with audited(w, _LOGIN_ACTOR,
                         f"account locked for {int(LOCKOUT.total_seconds() // 60)} min: at least "
                         f"{_throttle.LOCK_FAILURES} failed logins from {_throttle.LOCK_SOURCES} or more addresses"):
                user.failed_logins = (user.failed_logins or 0) + 1
                user.locked_until = now + LOCKOUT


def authenticate(session: Session, username: str, password: str, *, now: dt.datetime | None = None,
                 client: str = "?") -> Actor | None:
    """The :class:`Actor` for valid credentials of an active, unlocked user, else ``None``.

    Takes the same time whether or not the username exists (a dummy hash is verified).
    ``client`` is the caller's address: a (username, client) pair that keeps failing must wait
    longer and longer, and an address that fails too often is refused for every username
    (:class:`~lutarterial.registry.throttle.ThrottledError`); the account itself is locked only
    by failures from several addresses (see :mod:`lutarterial.registry.throttle`).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    name = str(username).strip().lower()
    _throttle.check_allowed(session, name, client, now=now)
    user = session.scalars(select(User).where(User.username == name)).first()
    if user is None:
        verify_password(password, _DUMMY_HASH)
        _after_attempt(session, name, client, None, success=False, now=now)
        return None
    locked_until = _aware(user.locked_until)
    if locked_until is not None and locked_until > now:
        verify_password(password, _DUMMY_HASH)
        return None
    ok = verify_password(password, user.password_hash)
    if not ok:
        _after_attempt(session, name, client, user.id, success=False, now=now)
        return None
    if not user.active:
        return None
    actor = _actor_of(user)
    _after_attempt(session, name, client, user.id, success=True, now=now)
    return actor


def is_locked(user: User, *, now: dt.datetime | None = None) -> bool:
    """Whether the account is locked by failed logins at ``now``."""
    locked_until = _aware(user.locked_until)
    return locked_until is not None and locked_until > (now or dt.datetime.now(dt.timezone.utc))


def actor_for(session: Session, user_id: int) -> Actor:
    """The current :class:`Actor` of a logged-in user (re-read each request: roles may change).

    Raises :class:`AccessDeniedError` when the user was deactivated or removed.
    """
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise AccessDeniedError("this account is not active; log in again or ask an administrator")
    return _actor_of(user)


def actor_by_username(session: Session, username: str) -> Actor:
    """The stored roles and sites of the active user ``username``, for commands run with the
    operating system's authority over the database on behalf of ``--user`` (no password: whoever
    holds the database URL can read it anyway). Unknown, inactive or role-less: access denied."""
    uid = session.scalars(select(User.id).where(User.username == username.strip().lower())).first()
    if uid is None:
        raise AccessDeniedError(f"no registry user {username!r}")
    actor = actor_for(session, uid)
    if not actor.roles:
        raise AccessDeniedError(f"user {username!r} has no role")
    return actor


def set_user_active(session: Session, actor: Actor, user_id: int, active: bool, *, reason: str) -> User:
    """Activate or deactivate a user (users are never deleted: the audit trail refers to them).

    Activating also lifts a lock caused by failed logins.
    """
    require(actor, Permission.USER_MANAGE)
    user = get_user(session, actor, user_id)
    with audited(session, actor, reason):
        user.active = bool(active)
        if active:
            user.failed_logins = 0
            user.locked_until = None
    if active:
        _throttle.clear_failures(session, user.username)
    else:
        end_user_sessions(session, user.id, reason=f"account deactivated: {reason}")
    return user


def unlock_user(session: Session, actor: Actor, user_id: int, *, reason: str) -> User:
    """Lift a sign-in lock and forget the recorded failures (admin only); seen by every process."""
    require(actor, Permission.USER_MANAGE)
    user = get_user(session, actor, user_id)
    if user.failed_logins or user.locked_until is not None:
        with audited(session, actor, reason):
            user.failed_logins = 0
            user.locked_until = None
    _throttle.clear_failures(session, user.username)
    return user


def set_password(session: Session, actor: Actor, user_id: int, new_password: str, *, reason: str,
                 current_password: str | None = None) -> None:
    """Change a password: admins for anyone; a user for themself with the current password."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    if actor.user_id == user_id and not actor.is_admin:
        if current_password is None or not verify_password(current_password, user.password_hash):
            raise AccessDeniedError("the current password is wrong")
    elif actor.user_id != user_id:
        require(actor, Permission.USER_MANAGE)
    pw_hash = hash_password(new_password)
    with audited(session, actor, reason):
        user.password_hash = pw_hash
    end_user_sessions(session, user.id, reason="password changed")


def set_user_roles(session: Session, actor: Actor, user_id: int, *, roles: Iterable[str | Role] | None = None,
                   site_codes: Iterable[str] | None = None, reason: str) -> User:
    """Replace a user's roles and/or site memberships (admin only); each change audited."""
    require(actor, Permission.USER_MANAGE)
    user = get_user(session, actor, user_id)
    with audited(session, actor, reason):
        if roles is not None:
            wanted = {r.value for r in parse_roles(roles)}
            if not wanted:
                raise InvalidInputError("a user needs at least one role")
            for ur in list(user.roles):
                if ur.role not in wanted:
                    session.delete(ur)
            have = {ur.role for ur in user.roles}
            for role in sorted(wanted - have):
                session.add(UserRole(user_id=user.id, role=role))
        if site_codes is not None:
            wanted_ids = {get_site(session, c).id for c in site_codes}
            for m in list(user.memberships):
                if m.site_id not in wanted_ids:
                    session.delete(m)
            have_ids = {m.site_id for m in user.memberships}
            for sid in sorted(wanted_ids - have_ids):
                session.add(SiteMembership(user_id=user.id, site_id=sid))
    end_user_sessions(session, user.id, reason="roles or site memberships changed")
    session.expire(user)
    return user


