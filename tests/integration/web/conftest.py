"""Fixtures of the web API tests: the app on a fresh database (SQLite and PostgreSQL, from the
shared ``registry_url`` fixture), the demo users, and signed-in clients per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lutarterial.web.app import create_app
from lutarterial.web.demo import DEMO_PASSWORD, ensure_demo_users
from lutarterial.web.settings import WebSettings

SECRET = "integration-test-secret-" + "k" * 40


@pytest.fixture
def app(registry_url: str) -> Iterator[Any]:
    ensure_demo_users(registry_url)
    application = create_app(registry_url, settings=WebSettings(secret_key=SECRET), upgrade=False)
    yield application
    application.state.backend.close()


@pytest.fixture
def anon(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def login(app: Any) -> Callable[[str], TestClient]:
    """``login("coord.bdx")`` -> a client signed in through the API, with ``.csrf`` set."""
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        c = TestClient(app, raise_server_exceptions=False)
        r = c.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        c.csrf = r.json()["csrf_token"]  # type: ignore[attr-defined]
        c.headers["X-CSRF-Token"] = c.csrf  # type: ignore[attr-defined]
        clients.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in clients:
        c.close()


ELIGIBLE_RECORD_KEY = "eligible_record"


@pytest.fixture(scope="session")
def eligible_record() -> tuple[dict[str, Any], str]:
    """A synthetic record the real engine finds eligible, and its screening date."""
    from lutarterial.web.demo import _records

    eligible, _ineligible = _records()
    assert eligible, "the synthetic generator produced no eligible record"
    rec, as_of = eligible[0]
    return rec, as_of.isoformat()


@pytest.fixture
def enrolled() -> Callable[..., str]:
    return _enrolled


def _enrolled(coord: TestClient, inv: TestClient, record: tuple[dict[str, Any], str], site: str = "BDX") -> str:
    """Register, consent, screen (real engine) and enrol a participant through the API."""
    rec, as_of = record
    r = coord.post("/api/participants", json={"site": site, "reason": "new participant", "sex": "F",
                                              "consent_version": "v3.0", "consent_date": "2024-01-02"})
    assert r.status_code == 201, r.text
    tn = r.json()["trial_number"]
    r = coord.post(f"/api/participants/{tn}/screenings", json={"record": rec, "as_of": as_of, "reason": "screening"})
    assert r.status_code == 201 and r.json()["overall"] == "eligible", r.text
    r = inv.post(f"/api/participants/{tn}/enrolment", json={"enrolled_date": as_of, "reason": "eligible"})
    assert r.status_code == 201, r.text
    return str(tn)
