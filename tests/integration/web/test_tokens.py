"""API tokens (issue 15): Bearer on every route with the user's rights intersected with the token's,
no CSRF, read-only scope, site restriction, revocation, expiry, audit actor, rate limit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lutarterial.web.tokens import RateLimiter


def _token(client: Any, name: str, scope: str, site: list[str] | None = None, days: int | None = None) -> str:
    r = client.post("/api/v1/tokens", json={"name": name, "scope": scope, "site": site, "expires_days": days,
                                            "reason": "script access"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("lut_" + body["prefix"] + "_")
    return str(body["token"])


def _bearer(app: Any, token: str) -> TestClient:
    c = TestClient(app, raise_server_exceptions=False)
    c.headers["Authorization"] = f"Bearer {token}"
    return c


def test_write_token_needs_no_csrf_and_is_audited_with_its_name(app: Any, login: Any) -> None:
    coord = login("coord.bdx")
    bot = _bearer(app, _token(coord, "nightly", "write"))
    r = bot.post("/api/v1/participants", json={"site": "BDX", "reason": "registered by script"})
    assert r.status_code == 201, r.text
    tn = r.json()["trial_number"]
    audit = coord.get(f"/api/v1/participants/{tn}/audit").json()
    assert {a["actor_username"] for a in audit} == {"coord.bdx (token:nightly)"}
    listed = coord.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["nightly"] and listed[0]["last_used_at"] is not None
    assert "token" not in listed[0] and "token_hash" not in listed[0]


def test_read_token_reads_own_site_only_and_cannot_write(app: Any, login: Any, eligible_record: Any,
                                                        enrolled: Any) -> None:
    tls = enrolled(login("coord.tls"), login("inv.tls"), eligible_record, site="TLS")
    coord = login("coord.bdx")
    bdx = coord.post("/api/v1/participants", json={"site": "BDX", "reason": "new"}).json()["trial_number"]
    ro = _bearer(app, _token(coord, "reader", "read"))
    assert ro.get(f"/api/v1/participants/{bdx}").status_code == 200
    assert {p["trial_number"] for p in ro.get("/api/v1/participants").json()} == {bdx}
    assert ro.get(f"/api/v1/participants/{tls}").status_code in (403, 404)
    r = ro.post("/api/v1/participants", json={"site": "BDX", "reason": "should fail"})
    assert r.status_code == 403 and r.json()["error"] == "AccessDeniedError" and "read-only" in r.json()["detail"]
    r = ro.post(f"/api/v1/participants/{bdx}/labs", json={"analyte": "platelets", "value": 100, "unit": "G/L",
                                                          "collected_date": "2024-01-01", "reason": "x"})
    assert r.status_code == 403
    # a read-only token may use the stateless evaluation (a POST that stores nothing)
    rec, as_of = eligible_record
    assert ro.post("/api/v1/screening/evaluate", json={"record": rec, "as_of": as_of}).status_code == 200


def test_admin_token_restricted_to_a_site_sees_only_that_site(app: Any, login: Any) -> None:
    admin = login("admin")
    bdx = admin.post("/api/v1/participants", json={"site": "BDX", "reason": "new"}).json()["trial_number"]
    tls = admin.post("/api/v1/participants", json={"site": "TLS", "reason": "new"}).json()["trial_number"]
    tok = _bearer(app, _token(admin, "bdx-only", "write", site=["BDX"]))
    assert {p["trial_number"] for p in tok.get("/api/v1/participants").json()} == {bdx}
    assert tok.get(f"/api/v1/participants/{tls}").status_code == 404  # issue 9: other sites look missing
    assert tok.post("/api/v1/participants", json={"site": "TLS", "reason": "x"}).status_code == 403
    assert [s["code"] for s in tok.get("/api/v1/sites").json()] == ["BDX"]


def test_token_cannot_exceed_its_user(login: Any) -> None:
    coord = login("coord.bdx")
    r = coord.post("/api/v1/tokens", json={"name": "x", "scope": "read", "site": ["TLS"], "reason": "try"})
    assert r.status_code == 403 and "cannot reach further" in r.json()["detail"]


def test_revoked_expired_and_malformed_tokens_are_401(app: Any, login: Any) -> None:
    coord = login("coord.bdx")
    plain = _token(coord, "short", "read", days=1)
    bot = _bearer(app, plain)
    assert bot.get("/api/v1/sites").status_code == 200
    tid = coord.get("/api/v1/tokens").json()[0]["id"]
    # expire it in the database (a day passes)
    from lutarterial.registry.audit import audited
    from lutarterial.registry.access import SYSTEM_ACTOR
    from lutarterial.registry.models import ApiToken

    with app.state.backend.write() as s, audited(s, SYSTEM_ACTOR, "test: let the token expire"):
        s.get(ApiToken, tid).expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    app.state._token_cache.clear()
    r = bot.get("/api/v1/sites")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    live = _bearer(app, _token(coord, "live", "read"))
    assert live.get("/api/v1/sites").status_code == 200
    tid2 = [t["id"] for t in coord.get("/api/v1/tokens").json() if t["name"] == "live"][0]
    r = coord.post(f"/api/v1/tokens/{tid2}/revoke", json={"reason": "laptop lost"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    app.state._token_cache.clear()
    assert live.get("/api/v1/sites").status_code == 401
    for bad in ("lut_nope", plain[:-2] + "xx", "", "lut_" + "a" * 8 + "_" + "b" * 40):
        assert _bearer(app, bad).get("/api/v1/sites").status_code == 401, bad


def test_token_cannot_manage_tokens(app: Any, login: Any) -> None:
    bot = _bearer(app, _token(login("coord.bdx"), "w", "write"))
    assert bot.get("/api/v1/tokens").status_code == 403
    assert bot.post("/api/v1/tokens", json={"name": "y", "scope": "write", "reason": "persist"}).status_code == 403


def test_bearer_ignores_the_cookie(app: Any, login: Any) -> None:
    coord = login("coord.bdx")
    coord.headers["Authorization"] = "Bearer lut_aaaaaaaa_" + "b" * 40
    assert coord.get("/api/v1/session").status_code == 401  # the valid cookie is not used


def test_rate_limit_answers_429_with_retry_after(app: Any, login: Any) -> None:
    # a frozen clock: the bucket must not refill while a loaded machine serves the four requests
    app.state.token_limiter = RateLimiter(rate_per_min=60, burst=3, clock=lambda: 1000.0)
    bot = _bearer(app, _token(login("coord.bdx"), "busy", "read"))
    codes = [bot.get("/api/v1/sites").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = bot.get("/api/v1/sites")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "RateLimited"


@pytest.mark.parametrize("elapsed, allowed", [(0.0, False), (0.49, False), (0.51, True)])
def test_token_bucket_refills_at_the_rate(elapsed: float, allowed: bool) -> None:
    now = [100.0]
    lim = RateLimiter(rate_per_min=120, burst=1, clock=lambda: now[0])  # 2 per second
    assert lim.take(1) == 0.0
    now[0] += elapsed
    assert (lim.take(1) == 0.0) is allowed
    assert lim.take(2) == 0.0  # buckets are per token


def test_account_page_creates_shows_once_and_revokes(app: Any, login: Any) -> None:
    coord = login("coord.bdx")
    page = coord.get("/account/tokens")
    assert page.status_code == 200 and "No tokens yet" in page.text
    r = coord.post("/account/tokens", data={"name": "from-page", "scope": "read", "site": "BDX", "expires_days": "7",
                                            "reason": "page test", "csrf_token": coord.csrf}, follow_redirects=True)
    assert r.status_code == 200 and 'id="new-token"' in r.text
    plain = r.text.split('id="new-token"><code>')[1].split("</code>")[0]
    assert plain.startswith("lut_") and _bearer(app, plain).get("/api/v1/sites").status_code == 200
    again = coord.get("/account/tokens")
    assert plain not in again.text and "from-page" in again.text  # shown once
    tid = coord.get("/api/v1/tokens").json()[0]["id"]
    r = coord.post(f"/account/tokens/{tid}/revoke", data={"reason": "done", "csrf_token": coord.csrf},
                   follow_redirects=True)
    assert r.status_code == 200 and "revoked" in r.text
    r = coord.post("/account/tokens", data={"name": "x", "scope": "read", "reason": "no csrf"},
                   headers={"X-CSRF-Token": ""})  # a forged form: no CSRF token
    assert r.status_code == 403
