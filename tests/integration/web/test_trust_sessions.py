"""Issue 9: sessions that end. A cookie saved before logout, a password change, deactivation,
a role/site change or an administrator's end is replayed and must get 401 on the API and the
sign-in page on HTML routes. Also: the admin session list, security headers, no inline script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lutarterial.registry import Registry, services
from lutarterial.registry.access import SYSTEM_ACTOR

COOKIE = "lutarterial_session"
LAB = {"analyte": "platelets", "value": 150, "unit": "10*9/L", "collected_date": "2024-09-01", "reason": "replay"}


def _replay(app: Any, saved: Any) -> TestClient:
    """A new client that only holds a copy of an old cookie (and its CSRF token)."""
    c = TestClient(app, raise_server_exceptions=False)
    c.cookies.set(COOKIE, saved[0])
    c.headers["X-CSRF-Token"] = saved[1]
    return c


def _save(client: TestClient) -> tuple[str, str]:
    return client.cookies.get(COOKIE), client.csrf  # type: ignore[attr-defined]


def _assert_dead(app: Any, saved: tuple[str, str]) -> None:
    with _replay(app, saved) as c:
        r = c.get("/api/participants")
        assert r.status_code == 401 and r.json()["error"] == "NotAuthenticated"
        assert c.post("/api/participants", json={"site": "BDX", "reason": "replayed"}).status_code in (401, 403)
        r = c.get("/participants", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _alive(app: Any, saved: tuple[str, str]) -> bool:
    with _replay(app, saved) as c:
        return c.get("/api/participants").status_code == 200


def test_replayed_cookie_after_api_logout(app: Any, login: Callable[[str], TestClient]) -> None:
    c = login("coord.bdx")
    saved = _save(c)
    assert _alive(app, saved)
    assert c.post("/api/logout").status_code == 204
    _assert_dead(app, saved)


def test_replayed_cookie_after_form_logout(app: Any, login: Callable[[str], TestClient]) -> None:
    c = login("coord.bdx")
    saved = _save(c)
    assert c.post("/logout", data={"csrf_token": c.csrf}, follow_redirects=False).status_code == 303  # type: ignore[attr-defined]
    _assert_dead(app, saved)


@pytest.mark.parametrize("change", ["password", "deactivate", "roles", "sites"])
def test_account_changes_end_every_session(app: Any, login: Callable[[str], TestClient], registry_url: str,
                                           change: str) -> None:
    saved = [_save(login("inv.bdx")), _save(login("inv.bdx"))]  # two browsers
    other = _save(login("coord.bdx"))
    reg = Registry.open(registry_url)
    try:
        with reg.session() as s:
            user = [u for u in services.list_users(s, SYSTEM_ACTOR) if u.username == "inv.bdx"][0]
            if change == "password":  # as `lutarterial user set-password` does
                services.set_password(s, SYSTEM_ACTOR, user.id, "a new long password", reason="reset")
            elif change == "deactivate":  # `lutarterial user set-active --inactive`
                services.set_user_active(s, SYSTEM_ACTOR, user.id, False, reason="left")
            elif change == "roles":
                services.set_user_roles(s, SYSTEM_ACTOR, user.id, roles=["monitor"], reason="now monitors")
            else:
                services.set_user_roles(s, SYSTEM_ACTOR, user.id, site_codes=["TLS"], reason="moved")
    finally:
        reg.dispose()
    for cookie in saved:
        _assert_dead(app, cookie)
    assert _alive(app, other)  # other users keep their sessions


def test_own_password_change_on_the_web_ends_other_sessions(app: Any, login: Callable[[str], TestClient]) -> None:
    old = _save(login("phys.bdx"))
    c = login("phys.bdx")
    r = c.post("/api/session/password", json={"current_password": "wrong", "new_password": "x" * 12})
    assert r.status_code == 403
    assert _alive(app, old)
    r = c.post("/api/session/password", json={"current_password": "demo-lutarterial",
                                              "new_password": "another demo password"})
    assert r.status_code == 200, r.text
    _assert_dead(app, old)
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert c.get("/api/session").status_code == 200  # this browser got a fresh session


def test_admin_lists_and_ends_sessions(app: Any, login: Callable[[str], TestClient]) -> None:
    victim = login("coord.tls")
    saved = _save(victim)
    admin = login("admin")
    assert login("coord.bdx").get("/api/admin/sessions").status_code == 403
    rows = admin.get("/api/admin/sessions").json()
    mine = [r for r in rows if r["username"] == "coord.tls"]
    assert len(mine) == 1 and mine[0]["active"] and "token" not in str(mine[0]).lower()
    page = admin.get("/admin/sessions")
    assert page.status_code == 200 and "coord.tls" in page.text
    assert 'href="/admin/sessions"' in admin.get("/participants").text
    assert 'href="/admin/sessions"' not in login("coord.bdx").get("/participants").text
    assert login("coord.bdx").get("/admin/sessions").status_code == 403
    r = admin.post(f"/api/admin/sessions/{mine[0]['id']}/end", json={"reason": "lost laptop"})
    assert r.status_code == 200 and r.json()["ended"] is True
    _assert_dead(app, saved)
    assert admin.post("/api/admin/sessions/99999999999999999999999/end", json={"reason": "x"}).status_code in (400, 404, 422)
    ended = [r for r in admin.get("/api/admin/sessions?all=true").json() if r["id"] == mine[0]["id"]]
    assert "lost laptop" in ended[0]["ended_reason"]
    second = _save(login("inv.tls"))  # the page's form ends a session too
    sid = [r for r in admin.get("/api/admin/sessions").json() if r["username"] == "inv.tls"][0]["id"]
    r = admin.post(f"/admin/sessions/{sid}/end", data={"csrf_token": admin.csrf, "reason": "left"},  # type: ignore[attr-defined]
                   follow_redirects=False)
    assert r.status_code == 303
    _assert_dead(app, second)


def test_cli_session_list_and_end(app: Any, login: Callable[[str], TestClient], registry_url: str) -> None:
    from typer.testing import CliRunner

    from lutarterial.cli.main import app as cli

    saved = _save(login("inv.tls"))
    runner = CliRunner()
    r = runner.invoke(cli, ["session", "list", "--db", registry_url, "--json"])
    assert r.exit_code == 0 and "inv.tls" in r.output
    r = runner.invoke(cli, ["session", "end", "--user", "inv.tls", "--db", registry_url])
    assert r.exit_code == 0 and "1 session(s) of inv.tls ended" in r.output
    _assert_dead(app, saved)


def test_idle_timeout_is_enforced_by_the_session_row(app: Any, login: Callable[[str], TestClient],
                                                      registry_url: str) -> None:
    import datetime as dt

    from sqlalchemy import update

    from lutarterial.registry.models import UserSession

    saved = _save(login("inv.bdx"))
    reg = Registry.open(registry_url)
    try:
        with reg.session() as s:  # the row was last seen 31 minutes ago (idle timeout 30 min)
            s.execute(update(UserSession.__table__).values(
                last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=31)))
    finally:
        reg.dispose()
    _assert_dead(app, saved)


def test_security_headers_on_every_response(anon: TestClient, login: Callable[[str], TestClient]) -> None:
    c = login("coord.bdx")
    for client, path in ((anon, "/login"), (anon, "/api/participants"), (c, "/participants"), (c, "/api/session"),
                         (anon, "/static/style.css"), (anon, "/no/such/page")):
        h = client.get(path).headers
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in \
            csp.split("script-src")[1].split(";")[0], path
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "same-origin", path


def test_templates_have_no_inline_script() -> None:
    import re

    import lutarterial.web as web

    folder = Path(web.__file__).parent / "templates"
    for tpl in folder.glob("*.html"):
        text = tpl.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {tpl.name}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {tpl.name}"
        assert "javascript:" not in text, tpl.name


def test_other_sites_participant_answers_like_a_missing_one(login: Callable[[str], TestClient]) -> None:
    tls = login("coord.tls")
    r = tls.post("/api/participants", json={"site": "TLS", "reason": "new"})
    assert r.status_code in (200, 201), r.text
    pid = r.json().get("id")
    bdx = login("coord.bdx")
    hidden = bdx.get(f"/api/participants/{pid}") if pid is not None else None
    missing = bdx.get("/api/participants/987654")
    assert missing.status_code == 404
    if hidden is not None:
        assert hidden.status_code == 404 and "TLS-" not in hidden.text
        assert hidden.json()["error"] == missing.json()["error"] == "NotFoundError"
        assert hidden.json()["detail"] == missing.json()["detail"].replace("987654", str(pid))


@pytest.mark.parametrize("path", ["/api/participants/99999999999999999999999",
                                  "/api/screenings/99999999999999999999999/rescreen",
                                  "/participants/BDX-001/plots/recist\u0663.png",
                                  "/participants/\u0661\u0662/safety",
                                  "/api/participants/BDX-001/visits/10000000000000000000000000"])
def test_out_of_range_numbers_and_odd_path_parts_are_4xx(login: Callable[[str], TestClient], path: str) -> None:
    r = login("coord.bdx").get(path)
    assert 400 <= r.status_code < 500, (path, r.status_code)


def test_visit_number_of_ten_to_the_25_is_refused(login: Callable[[str], TestClient], eligible_record: Any,
                                                   enrolled: Any) -> None:
    coord = login("coord.bdx")
    tn = enrolled(coord, login("inv.bdx"), eligible_record)
    r = coord.post(f"/api/participants/{tn}/visits", json={"kind": "follow_up", "number": 10**25, "status": "done",
                                                           "visit_date": "2024-10-01", "reason": "huge number"})
    assert 400 <= r.status_code < 500, r.text


def test_web_audit_verify_reports_an_edit_around_the_application(login: Callable[[str], TestClient],
                                                                 registry_url: str) -> None:
    from sqlalchemy import text

    mon = login("monitor")
    assert mon.get("/api/audit/verify").json()["ok"] is True
    reg = Registry.open(registry_url)
    try:
        with reg.engine.begin() as conn:
            conn.execute(text("UPDATE sites SET name = 'Elsewhere' WHERE code = 'BDX'"))
    finally:
        reg.dispose()
    rep = mon.get("/api/audit/verify").json()
    assert rep["ok"] is False and rep["chain_ok"] is True and "sites #" in rep["message"] and "name" in rep["message"]
    assert "BROKEN" in mon.get("/audit").text


def test_session_last_seen_refreshed_by_the_event_loop_dependency(app: Any, login: Callable[[str], TestClient],
                                                                  registry_url: str) -> None:
    """Issue 13 (fast): the routes' ``current_user`` runs on the event loop; the rare write it asks
    for (last seen, at most once a minute) still happens, and a session idle too long still ends."""
    import asyncio
    import datetime as dt

    from sqlalchemy import select, update

    from lutarterial.registry.models import UserSession
    from lutarterial.registry.user_sessions import TOUCH_EVERY_S
    from lutarterial.web.deps import current_user

    assert asyncio.iscoroutinefunction(current_user)
    c = login("inv.bdx")
    reg = Registry.open(registry_url)
    try:
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=TOUCH_EVERY_S + 5)
        with reg.session() as s:
            s.execute(update(UserSession.__table__).values(last_seen_at=old))
        assert c.get("/participants").status_code == 200
        with reg.session(readonly=True) as s:
            seen = [r for r in s.scalars(select(UserSession.last_seen_at).where(UserSession.ended_at.is_(None)))]
        assert seen and all((v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)) > old + dt.timedelta(seconds=4)
                            for v in seen)
    finally:
        reg.dispose()


def test_session_check_leaves_the_event_loop_when_no_connection_is_idle(app: Any,
                                                                         login: Callable[[str], TestClient],
                                                                         monkeypatch: Any) -> None:
    """With no idle pooled connection the sign-in check runs in a worker thread (it would otherwise
    hold the event loop, and every request, while it waits); the answer is the same."""
    import threading

    be = app.state.backend
    c = login("coord.bdx")
    threads: list[str] = []
    real = be.session_check

    def spy(*a: Any, **k: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(be, "session_check", spy)
    assert be.idle_connection_available() in (True, False)
    monkeypatch.setattr(be, "idle_connection_available", lambda: True)
    assert c.get("/participants").status_code == 200
    monkeypatch.setattr(be, "idle_connection_available", lambda: False)
    assert c.get("/participants").status_code == 200
    assert len(threads) == 2 and threads[0] != threads[1]  # the event loop's thread, then a worker's
