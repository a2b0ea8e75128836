"""Issue 13 (fast): the app with ``LUTARTERIAL_WEB_THREADS=0`` (each process of a multi-worker
``serve``): sync routes and dependencies run on the event loop's thread. The same answers as with
worker threads, on SQLite and PostgreSQL: sign-in, pages, JSON, an audited write, the session
refresh the cookie check asks for, an API token, errors, logout."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from lutarterial.registry import Registry
from lutarterial.registry.models import UserSession
from lutarterial.registry.user_sessions import TOUCH_EVERY_S
from lutarterial.web.app import create_app
from lutarterial.web.demo import DEMO_PASSWORD, ensure_demo_users
from lutarterial.web.settings import WebSettings

SECRET = "integration-test-secret-" + "k" * 40


@pytest.fixture
def inline_app(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("LUTARTERIAL_WEB_THREADS", "0")
    ensure_demo_users(registry_url)
    application = create_app(registry_url, settings=WebSettings(secret_key=SECRET), upgrade=False)
    assert application.state.perf.inline
    yield application
    application.state.backend.close()


def _login(app: Any, username: str) -> TestClient:
    c = TestClient(app, raise_server_exceptions=False)
    r = c.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def test_routes_run_on_the_loop_thread_with_the_same_answers(inline_app: Any, registry_url: str,
                                                             enrolled: Any, eligible_record: Any) -> None:
    be = inline_app.state.backend
    seen: list[int] = []
    real = be.participant

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    be.participant = spy
    with _login(inline_app, "coord.bdx") as coord, _login(inline_app, "inv.bdx") as inv:
        tn = enrolled(coord, inv, eligible_record)
        loop_threads: list[int] = []

        @inline_app.get("/__loop_thread")
        async def loop_thread() -> dict[str, int]:  # an async route runs on the loop's thread
            loop_threads.append(threading.get_ident())
            return {}

        coord.get("/__loop_thread")
        r = coord.get(f"/api/participants/{tn}")
        assert r.status_code == 200 and r.json()["trial_number"] == tn
        assert seen and seen[-1] == loop_threads[-1]  # the sync route ran inline

        r = coord.post(f"/api/participants/{tn}/labs", json={
            "analyte": "platelets", "value": 120, "unit": "10*9/L", "collected_date": "2024-09-01",
            "lln": 150, "uln": 400, "reason": "inline write"})
        assert r.status_code == 201, r.text
        assert any(lab["value"] == 120 for lab in coord.get(f"/api/participants/{tn}").json()["labs"])
        for path in ("/participants", f"/participants/{tn}", f"/participants/{tn}/audit"):
            page = coord.get(path)
            assert page.status_code == 200 and tn in page.text, path
        # errors keep their shape inline: validation (422) and a missing participant (404)
        bad = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "platelets"})
        assert bad.status_code == 422 and "error" in bad.json()
        assert coord.get("/api/participants/BDX-999").status_code == 404
        assert coord.get("/api/participants/BDX-999").json()["error"]


def test_session_refresh_and_logout_inline(inline_app: Any, registry_url: str) -> None:
    c = _login(inline_app, "inv.bdx")
    reg = Registry.open(registry_url)
    try:
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=TOUCH_EVERY_S + 5)
        with reg.session() as s:
            s.execute(update(UserSession.__table__).values(last_seen_at=old))
        assert c.get("/participants").status_code == 200  # the refresh write runs inline too
        with reg.session(readonly=True) as s:
            seen = list(s.scalars(select(UserSession.last_seen_at).where(UserSession.ended_at.is_(None))))
        assert seen and all((v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)) > old + dt.timedelta(seconds=4)
                            for v in seen)
        cookie = c.cookies.get("lutarterial_session")
        assert c.post("/api/logout").status_code == 204
        with TestClient(inline_app, raise_server_exceptions=False) as replay:
            replay.cookies.set("lutarterial_session", cookie)
            assert replay.get("/api/participants").status_code == 401
    finally:
        reg.dispose()
        c.close()


def test_api_token_inline(inline_app: Any) -> None:
    with _login(inline_app, "coord.bdx") as c:
        r = c.post("/api/v1/tokens", json={"name": "inline script", "scope": "read", "reason": "inline test"})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    with TestClient(inline_app, raise_server_exceptions=False) as script:
        r = script.get("/api/participants", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and isinstance(r.json(), list)
        assert script.get("/api/participants", headers={"Authorization": "Bearer lut_wrong"}).status_code == 401
