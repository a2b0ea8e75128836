"""Registry settings and site protocol configuration (issue 10); every change audited.

* ``ctcae_require_baseline`` (bool, default false): how labs entered in the registry are graded.
  False: a missing baseline is taken as normal and the grading says so (``baseline_assumed``);
  true: the strict rule of ``grade_lab(require_baseline=True)``.
* Site protocol configuration: a site's effective date for a protocol version, with the
  document that sets it. Screenings at that site use the version from that date on
  (:func:`lutarterial.protocol.loader.choose_version`); otherwise the packaged default applies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError, LutarterialError
from lutarterial.registry.access import Actor, Permission, require
from lutarterial.registry.audit import audited
from lutarterial.registry.models import RegistrySetting, Site, SiteProtocolConfig, utcnow
from lutarterial.registry.services._common import as_date, as_optional_text, flush_like_orm

__all__ = [
    "SETTINGS",
    "CTCAE_REQUIRE_BASELINE",
    "get_setting",
    "setting_subquery",
    "setting_or_default",
    "set_setting",
    "ctcae_require_baseline",
    "set_site_protocol",
    "site_protocol_configs",
    "site_protocol_dates",
    "protocol_choice_for_site",
]

CTCAE_REQUIRE_BASELINE = "ctcae_require_baseline"
#: Known settings: key -> (type, default, description).
SETTINGS: dict[str, tuple[type, Any, str]] = {
    CTCAE_REQUIRE_BASELINE: (bool, False, "grade labs strictly: no CTCAE grade that a missing baseline could change"),
}


def _require_known(key: str) -> None:
    if key not in SETTINGS:
        raise InvalidInputError(f"unknown setting {key!r}; known: {', '.join(sorted(SETTINGS))}")


_VALUE_OF = select(RegistrySetting.__table__.c.value).where(RegistrySetting.__table__.c.key == bindparam("key"))


def get_setting(session: Session, key: str) -> Any:
    """The stored value of ``key``, or its default."""
    _require_known(key)
    flush_like_orm(session)
    row = session.execute(_VALUE_OF, {"key": key}).first()  # prebuilt Core: read on every lab save
    return SETTINGS[key][1] if row is None else row.value


def setting_subquery(key: str) -> Any:
    """The stored value of ``key`` as a scalar subquery (NULL when unset), to read a setting in the
    same statement as something else; turn what it gives into the value with :func:`setting_or_default`."""
    _require_known(key)
    t = RegistrySetting.__table__.c
    return select(t.value).where(t.key == key).scalar_subquery()


def setting_or_default(key: str, stored: Any) -> Any:
    """What :func:`get_setting` gives for ``key`` when the stored value read is ``stored`` (``None``:
    unset; :func:`set_setting` never stores a null)."""
    return SETTINGS[key][1] if stored is None else stored


def _coerce(key: str, value: Any) -> Any:
    typ = SETTINGS[key][0]
    if typ is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise InvalidInputError(f"setting {key} must be true or false, got {value!r}")
    return typ(value)


def set_setting(session: Session, actor: Actor, key: str, value: Any, *, reason: str) -> RegistrySetting:
    """Store ``key`` = ``value`` (admins; audited with ``reason``)."""
    require(actor, Permission.SITE_MANAGE)
    _require_known(key)
    val = _coerce(key, value)
    with audited(session, actor, reason):
        row = session.scalars(select(RegistrySetting).where(RegistrySetting.key == key)).first()
        if row is None:
            row = RegistrySetting(key=key, value=val)
            session.add(row)
        else:
            row.value = val
            row.updated_at = utcnow()
    return row


def ctcae_require_baseline(session: Session) -> bool:
    return bool(get_setting(session, CTCAE_REQUIRE_BASELINE))


def _site(session: Session, site: int | str) -> Site:
    if isinstance(site, int) or (isinstance(site, str) and site.isdigit()):
        obj = session.get(Site, int(site))
    else:
        obj = session.scalars(select(Site).where(Site.code == str(site).strip().upper())).first()
    if obj is None:
        raise InvalidInputError(f"no site {site!r}")
    return obj


def set_site_protocol(session: Session, actor: Actor, site: int | str, *, protocol_version: str,
                      effective_date: dt.date | str, source: str, reason: str) -> SiteProtocolConfig:
    """Set the date from which ``protocol_version`` applies at ``site`` (admins; audited).

    ``source`` names the document that sets the date (ethics approval, amendment notice).
    """
    from lutarterial.protocol.loader import load_protocol

    require(actor, Permission.SITE_MANAGE)
    s = _site(session, site)
    try:
        version = load_protocol(str(protocol_version).strip()).version
    except LutarterialError as exc:
        raise InvalidInputError(str(exc)) from None
    when = as_date(effective_date, "effective date")
    doc = as_optional_text(source, "source document", max_length=300)
    if not doc:
        raise InvalidInputError("source is required: the document that sets the effective date")
    with audited(session, actor, reason):
        row = session.scalars(select(SiteProtocolConfig).where(
            SiteProtocolConfig.site_id == s.id, SiteProtocolConfig.protocol_version == version)).first()
        if row is None:
            row = SiteProtocolConfig(site_id=s.id, protocol_version=version, effective_date=when, source=doc)
            session.add(row)
        else:
            row.effective_date, row.source = when, doc  # type: ignore[assignment]
    return row


def site_protocol_configs(session: Session, site_id: int | None = None) -> list[SiteProtocolConfig]:
    stmt = select(SiteProtocolConfig).order_by(SiteProtocolConfig.site_id, SiteProtocolConfig.effective_date)
    if site_id is not None:
        stmt = stmt.where(SiteProtocolConfig.site_id == site_id)
    return list(session.scalars(stmt))


def site_protocol_dates(session: Session, site_id: int) -> dict[str, dt.date]:
    return {r.protocol_version: r.effective_date for r in site_protocol_configs(session, site_id)}


def protocol_choice_for_site(session: Session, site_id: int, on: dt.date,
                             explicit: str | None = None) -> tuple[str, str]:
    """(version, why) for a screening at ``site_id`` on ``on``; see ``choose_version``."""
    from lutarterial.protocol.loader import choose_version

    site = session.get(Site, site_id)
    try:
        p, why = choose_version(on, explicit=explicit, site_effective_dates=site_protocol_dates(session, site_id),
                                site=site.code if site else None)
    except LutarterialError as exc:
        raise InvalidInputError(str(exc)) from None
    return p.version, why
