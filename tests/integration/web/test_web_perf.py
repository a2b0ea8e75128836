"""Issue 13 (fast): the global audit page may reuse a recent chain verification; the API never does."""

from __future__ import annotations

from typing import Any


def test_audit_page_reuses_verification_api_recomputes(app: Any, login: Any) -> None:
    be = app.state.backend
    coord = login("coord.bdx")
    mon = login("monitor")
    first = mon.get("/api/audit/verify").json()
    assert first["ok"] is True and first["verified_at"]
    before = first["rows_checked"]
    assert coord.post("/api/participants", json={"site": "BDX", "reason": "perf test"}).status_code == 201
    # the page within CHAIN_CACHE_S shows the cached verification (row count of the last pass) ...
    assert be.CHAIN_CACHE_S > 0
    assert f"{before} rows verified" in mon.get("/audit").text
    # ... the API recomputes (more rows now) and refreshes what the page shows
    fresh = mon.get("/api/audit/verify").json()
    assert fresh["ok"] is True and fresh["rows_checked"] > before
    assert f"{fresh['rows_checked']} rows verified" in mon.get("/audit").text
    # with the cache off the page recomputes too
    be.CHAIN_CACHE_S = 0
    assert coord.post("/api/participants", json={"site": "BDX", "reason": "perf test 2"}).status_code == 201
    assert f"{fresh['rows_checked']} rows verified" not in mon.get("/audit").text


def test_pages_render_with_template_reload_off(app: Any, login: Any) -> None:
    assert app.state.templates.env.auto_reload is False
    assert app.state.perf.threads >= 1
    coord = login("coord.bdx")
    assert coord.get("/participants").status_code == 200


def test_worker_factory_builds_the_app_from_the_environment(upgraded_sqlite_url: str, monkeypatch: Any,
                                                            tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from lutarterial.web.perf import app_from_env

    monkeypatch.setenv("LUTARTERIAL_DB", upgraded_sqlite_url)
    monkeypatch.setenv("LUTARTERIAL_WEB_DEMO", "1")
    monkeypatch.setenv("LUTARTERIAL_SECRET_KEY", "k" * 40)
    app = app_from_env()
    assert app.state.demo is True
    with TestClient(app) as client:
        assert client.get("/login").status_code == 200
