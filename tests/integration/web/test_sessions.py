"""Signed session cookies, expiry, the secret key file and error pages (no database needed
beyond the app fixture)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from lutarterial.errors import InvalidInputError
from lutarterial.web.sessions import SignedSessionMiddleware, csrf_matches, sign, unsign
from lutarterial.web.settings import WebSettings, load_or_create_secret

KEY = "unit-test-secret-" + "u" * 40


def test_sign_round_trip_and_tamper_detection() -> None:
    token = sign({"uid": 7, "csrf": "abc"}, KEY)
    assert unsign(token, KEY) == {"uid": 7, "csrf": "abc"}
    body, mac = token.rsplit(".", 1)
    assert unsign(token, "another-secret-" + "z" * 40) is None
    flipped = mac[:-2] + ("AA" if not mac.endswith("AA") else "BB")
    assert unsign(body + "." + flipped, KEY) is None
    forged = sign({"uid": 1, "csrf": "abc"}, KEY).split(".")[0] + "." + mac
    assert unsign(forged, KEY) is None
    assert unsign("garbage", KEY) is None and unsign("", KEY) is None


def test_csrf_comparison() -> None:
    assert csrf_matches({"csrf": "t0k"}, "t0k")
    assert not csrf_matches({"csrf": "t0k"}, "t0K")
    assert not csrf_matches({"csrf": "t0k"}, None)
    assert not csrf_matches({}, "t0k")


def _app(clock: list[float], settings: WebSettings) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SignedSessionMiddleware, settings=settings, clock=lambda: clock[0])

    @app.get("/login")
    def login(request: Request) -> dict[str, Any]:
        request.session.update({"uid": 3, "iat": clock[0], "seen": clock[0]})
        return {}

    @app.get("/me")
    def me(request: Request) -> dict[str, Any]:
        return {"uid": request.session.get("uid")}

    return app


@pytest.mark.parametrize(("idle_s", "logged_in"), [(29 * 60, True), (31 * 60, False)])
def test_idle_timeout_boundary(idle_s: int, logged_in: bool) -> None:
    clock = [1_000_000.0]
    c = TestClient(_app(clock, WebSettings(secret_key=KEY, idle_timeout_s=30 * 60, session_max_age_s=8 * 3600)))
    c.get("/login")
    clock[0] += idle_s
    assert (c.get("/me").json()["uid"] == 3) is logged_in


def test_absolute_lifetime_even_when_active() -> None:
    clock = [1_000_000.0]
    c = TestClient(_app(clock, WebSettings(secret_key=KEY, idle_timeout_s=30 * 60, session_max_age_s=3600)))
    c.get("/login")
    for _ in range(3):  # active every 20 min (the idle timer never fires) up to exactly 60 min
        clock[0] += 20 * 60
        assert c.get("/me").json()["uid"] == 3
    clock[0] += 20 * 60  # 80 min after sign-in: past the 60 min lifetime
    assert c.get("/me").json()["uid"] is None


def test_short_secret_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        WebSettings(secret_key="short")


def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / "data")
    path = tmp_path / "data" / "web_secret_key"
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(tmp_path / "data") == first


def test_unexpected_error_is_a_500_page_without_traceback(app: Any, login: Any) -> None:
    @app.get("/boom-for-test")
    def boom() -> None:
        raise RuntimeError("secret internals")

    c = login("coord.bdx")
    r = c.get("/boom-for-test", headers={"accept": "text/html"})
    assert r.status_code == 500 and "internal error (reference" in r.text
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_unknown_page_is_a_404_page(login: Any) -> None:
    r = login("coord.bdx").get("/no-such-page")
    assert r.status_code == 404 and "there is no page at /no-such-page" in r.text
