"""Personal API tokens: create (shown once), list, revoke, and authenticate a Bearer token.

A token is ``lut_<prefix>_<secret>``: ``prefix`` (8 random URL-safe characters) finds the row,
only the SHA-256 of the whole token is stored (``api_tokens.token_hash``), and the comparison is
constant-time. The 256-bit random secret makes a slow hash unnecessary (unlike passwords).

A token acts for its user with the user's *current* roles and sites (re-read on every use),
intersected with the token's restriction: ``scope`` ``read`` (no writes; enforced by the web
layer for unsafe methods and by :func:`authenticate_token`'s ``read_only`` flag) or ``write``,
and ``site_ids`` (a subset of the user's sites at creation; a site the user has since left is
dropped, never added). It never has more than its user. Every change it makes is audited with
the actor name ``<user> (token:<name>)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import AccessDeniedError, InvalidInputError, NotFoundError
from lutarterial.registry.access import Actor
from lutarterial.registry.audit import audited
from lutarterial.registry.models import ApiToken, ApiTokenUse, Site, User, utcnow

__all__ = ["TOKEN_PREFIX", "SCOPES", "SiteRestrictedActor", "TokenInfo", "TokenActor", "create_token",
           "list_tokens", "revoke_token", "authenticate_token", "token_actor_name", "hash_token"]

TOKEN_PREFIX = "lut_"
SCOPES = ("read", "write")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,59}$")
_TOKEN = re.compile(r"^lut_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")
_MAX_EXPIRY_DAYS = 3650


@dataclass(frozen=True)
class SiteRestrictedActor(Actor):
    """An actor limited to ``site_ids`` even if one of its roles is admin (a site-restricted token)."""

    @property
    def is_admin(self) -> bool:
        return False

    @property
    def all_sites(self) -> bool:
        return False

    def sees_site(self, site_id: int) -> bool:
        return site_id in self.site_ids


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed (never the secret or its hash)."""

    id: int
    name: str
    prefix: str
    username: str
    scope: str
    sites: tuple[str, ...] | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and _aware(self.expires_at) <= utcnow():
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        def iso(v: dt.datetime | None) -> str | None:
            return None if v is None else _aware(v).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"id": self.id, "name": self.name, "prefix": self.prefix, "username": self.username,
                "scope": self.scope, "sites": list(self.sites) if self.sites is not None else None,
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "last_used_at": iso(self.last_used_at), "revoked_at": iso(self.revoked_at), "status": self.status}


@dataclass(frozen=True)
class TokenActor:
    """What a valid Bearer token authenticates: the restricted actor and the token's facts."""

    actor: Actor
    user_id: int
    token_id: int
    token_name: str
    read_only: bool


def _aware(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo is not None else v.replace(tzinfo=dt.timezone.utc)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_actor_name(username: str, token_name: str) -> str:
    """The actor name written in the audit trail for a change made with a token (<= 100 chars)."""
    return f"{username} (token:{token_name})"[:100]


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def _may_manage(actor: Actor, user: User) -> None:
    if actor.user_id != user.id and not actor.is_admin:
        raise AccessDeniedError(f"user {actor.username!r} may manage only their own API tokens")


def create_token(session: Session, actor: Actor, *, username: str, name: str, scope: str, reason: str,
                 sites: list[str] | None = None, expires_days: int | None = None) -> tuple[TokenInfo, str]:
    """Create a token for ``username``; returns its info and the plain token (shown once, never stored).

    The user manages their own tokens; an admin (or the CLI) may create one for any user.
    ``sites`` must be sites of the user (admins: any site); ``expires_days`` 1..3650 or None.
    """
    user = _user(session, username)
    _may_manage(actor, user)
    if not user.active:
        raise InvalidInputError(f"user {user.username!r} is not active")
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InvalidInputError("token name: 1-60 letters, digits, spaces or . _ : - (starting with a letter or digit)")
    if scope not in SCOPES:
        raise InvalidInputError(f"token scope {scope!r}: use read or write")
    if session.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id, ApiToken.name == name)) is not None:
        raise InvalidInputError(f"user {user.username!r} already has a token named {name!r}; revoke it or pick "
                                "another name")
    from lutarterial.registry.services.people import actor_for

    owner = actor_for(session, user.id)
    site_ids: list[int] | None = None
    if sites:
        codes = sorted({c.strip().upper() for c in sites if c and c.strip()})
        rows = {s.code: s.id for s in session.scalars(select(Site).where(Site.code.in_(codes)))}
        unknown = [c for c in codes if c not in rows]
        if unknown:
            raise InvalidInputError(f"unknown site(s): {', '.join(unknown)}")
        foreign = [c for c in codes if not owner.sees_site(rows[c])]  # admins/statisticians: any site
        if foreign:
            raise AccessDeniedError(f"user {user.username!r} is not a member of {', '.join(foreign)}: a token "
                                    "cannot reach further than its user")
        site_ids = sorted(rows[c] for c in codes)
    expires_at = None
    if expires_days is not None:
        if not 1 <= int(expires_days) <= _MAX_EXPIRY_DAYS:
            raise InvalidInputError(f"expiry: 1 to {_MAX_EXPIRY_DAYS} days")
        expires_at = utcnow() + dt.timedelta(days=int(expires_days))
    prefix = secrets.choice("abcdefghijkmnpqrstuvwxyz") + "".join(
        secrets.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(7))
    plain = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with audited(session, actor, reason):
        row = ApiToken(user_id=user.id, name=name, prefix=prefix, token_hash=hash_token(plain), scope=scope,
                       site_ids=site_ids, expires_at=expires_at, created_at=utcnow())
        session.add(row)
    return _info(session, row, user.username), plain


def _site_codes(session: Session, ids: list[Any] | None) -> tuple[str, ...] | None:
    if ids is None:
        return None
    codes = {s.id: s.code for s in session.scalars(select(Site).where(Site.id.in_([int(i) for i in ids])))}
    return tuple(codes.get(int(i), str(i)) for i in ids)


def _info(session: Session, row: ApiToken, username: str) -> TokenInfo:
    used = session.get(ApiTokenUse, row.id)
    return TokenInfo(id=row.id, name=row.name, prefix=row.prefix, username=username, scope=row.scope,
                     sites=_site_codes(session, row.site_ids), created_at=row.created_at, expires_at=row.expires_at,
                     last_used_at=used.last_used_at if used else None, revoked_at=row.revoked_at)


def list_tokens(session: Session, actor: Actor, *, username: str | None = None) -> list[TokenInfo]:
    """Tokens of ``username`` (default: the actor's own; another user's: admins only), oldest first."""
    user = _user(session, username) if username else session.get(User, actor.user_id) if actor.user_id else None
    if user is None:
        if actor.is_admin and not username:
            rows = list(session.scalars(select(ApiToken).order_by(ApiToken.id)))
            names = {u.id: u.username for u in session.scalars(select(User))}
            return [_info(session, r, names.get(r.user_id, "?")) for r in rows]
        raise NotFoundError("no user to list tokens for")
    _may_manage(actor, user)
    rows = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))
    return [_info(session, r, user.username) for r in rows]


def revoke_token(session: Session, actor: Actor, *, reason: str, token_id: int | None = None,
                 username: str | None = None, name: str | None = None) -> TokenInfo:
    """Revoke a token by id, or by ``username`` + ``name``; revoking twice is refused."""
    if token_id is not None:
        row = session.get(ApiToken, int(token_id))
    elif username and name:
        row = session.scalar(select(ApiToken).where(ApiToken.user_id == _user(session, username).id,
                                                    ApiToken.name == name.strip()))
    else:
        raise InvalidInputError("name the token: its id, or the user and the token name")
    if row is None:
        raise NotFoundError("no such API token")
    owner = session.get(User, row.user_id)
    assert owner is not None
    _may_manage(actor, owner)
    if row.revoked_at is not None:
        raise InvalidInputError(f"token {row.name!r} is already revoked")
    with audited(session, actor, reason):
        row.revoked_at = utcnow()
    return _info(session, row, owner.username)


def authenticate_token(session: Session, token: str, *, touch: bool = True) -> TokenActor | None:
    """The restricted actor of a valid token, or ``None`` (malformed, unknown, revoked, expired,
    or its user inactive). ``touch`` records the time of use (``api_token_uses``, not audited)."""
    m = _TOKEN.match(token.strip())
    if not m:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.prefix == m.group(1)))
    if row is None or not hmac.compare_digest(row.token_hash, hash_token(token.strip())):
        return None
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and _aware(row.expires_at) <= now):
        return None
    from lutarterial.registry.services.people import actor_for

    try:
        owner = actor_for(session, row.user_id)
    except AccessDeniedError:
        return None
    site_ids = owner.site_ids
    cls: type[Actor] = Actor
    if row.site_ids is not None:
        allowed = {int(i) for i in row.site_ids}
        everywhere = bool(getattr(owner, "all_sites", owner.is_admin))
        site_ids = frozenset(allowed) if everywhere else frozenset(owner.site_ids & allowed)
        cls = SiteRestrictedActor
    actor = cls(user_id=owner.user_id, username=token_actor_name(owner.username, row.name), roles=owner.roles,
                site_ids=frozenset(site_ids))
    if touch:
        use = session.get(ApiTokenUse, row.id)
        if use is None:
            session.add(ApiTokenUse(token_id=row.id, last_used_at=now))
        else:
            use.last_used_at = now
    return TokenActor(actor=actor, user_id=int(owner.user_id or 0), token_id=row.id, token_name=row.name,
                      read_only=row.scope == "read")
