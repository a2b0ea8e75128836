"""Issue 10: registry settings and site protocol configuration are audited and validated."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from lutarterial.cli.main import run
from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.registry.access import Actor
from lutarterial.registry.db import Registry
from lutarterial.registry.models import AuditEntry, Role
from lutarterial.registry.services import settings as st


def test_settings_and_site_protocol_audited_and_validated(registry_url: str) -> None:
    reg = Registry.open(registry_url)
    admin = Actor(user_id=None, username="cli:test", roles=frozenset({Role.ADMIN}))
    coord = Actor(user_id=None, username="coord", roles=frozenset({Role.COORDINATOR}))
    try:
        with reg.session() as s:
            assert st.ctcae_require_baseline(s) is False  # default
            st.set_setting(s, admin, "ctcae_require_baseline", "true", reason="SAP v2")
            assert st.ctcae_require_baseline(s) is True
            with pytest.raises(InvalidInputError, match="true or false"):
                st.set_setting(s, admin, "ctcae_require_baseline", "maybe", reason="x")
            with pytest.raises(InvalidInputError, match="unknown setting"):
                st.set_setting(s, admin, "colour", "red", reason="x")
            with pytest.raises(AccessDeniedError):
                st.set_setting(s, coord, "ctcae_require_baseline", False, reason="x")
            st.set_site_protocol(s, admin, "BDX", protocol_version="2", effective_date="2025-03-01",
                                 source="ethics approval, amendment 2", reason="amendment")
            with pytest.raises(InvalidInputError, match="unknown protocol version"):
                st.set_site_protocol(s, admin, "BDX", protocol_version="7", effective_date="2025-03-01",
                                     source="x", reason="x")
            with pytest.raises(InvalidInputError, match="source"):
                st.set_site_protocol(s, admin, "BDX", protocol_version="2", effective_date="2025-03-01",
                                     source=" ", reason="x")
            site_id = st.site_protocol_configs(s)[0].site_id
            assert st.protocol_choice_for_site(s, site_id, dt.date(2025, 2, 28))[0] == "1"
            version, why = st.protocol_choice_for_site(s, site_id, dt.date(2025, 3, 1))
            assert version == "2" and "BDX" in why and "2025-03-01" in why
        with reg.session(readonly=True) as s:
            tables = {a.table_name for a in s.scalars(select(AuditEntry))}
            assert {"registry_settings", "site_protocol_configs"} <= tables
    finally:
        reg.dispose()


def test_cli_setting_and_site_protocol(registry_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def call(*argv: str) -> str:
        try:
            run([*argv, "--db", registry_url])
        except SystemExit as e:
            assert e.code in (0, None)
        return capsys.readouterr().out

    assert "ctcae_require_baseline = false" in call("setting", "show")
    assert "= true" in call("setting", "set", "ctcae_require_baseline", "true", "--reason", "SAP")
    assert "version 2 from 2025-03-01" in call("site-protocol", "set", "BDX", "2", "2025-03-01", "--source", "amendment 2",
                                               "--reason", "approved")
    assert "BDX: version 2 from 2025-03-01 (amendment 2)" in call("site-protocol", "list")
