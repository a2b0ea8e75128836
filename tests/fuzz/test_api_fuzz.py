"""Bounded fuzzing of every write route of the API (issue 9, item 7): no 500, no NaN in or out.

The write routes are read from the app's own OpenAPI document (so new routes are fuzzed without
editing this file). For each one, derandomized hypothesis builds bodies from the route's schema
with nonsense values (NaN/Infinity tokens, 1e400, huge and negative integers, dates of year 1 or
2999, odd unicode, wrong JSON types) or sends raw garbage, with path parameters that are a real
trial number or nonsense. Asserted, signed in as the administrator (who may write everything):

* never a 5xx; every error is the JSON error body (``error`` and ``detail``);
* a body holding a non-finite number is refused with 422;
* a 2xx answer is strict JSON (no NaN/Infinity).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=5, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
SECRET = "fuzz-test-secret-" + "k" * 48
#: Routes not fuzzed, with the reason.
SKIP = {
    "/api/v1/login": "fuzzing log-ins trips the account throttle (tested by the session tests)",
    "/api/v1/logout": "would end the fuzzing session",
    "/api/v1/session/password": "would change the fuzzing user's password and end the session",
    "/api/v1/admin/sessions/{session_id}/end": "may end the fuzzing session itself",
}

ODD_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=16) | st.sampled_from(
    ["", " ", "١٢٣", "Ⅻ", "𝟗", "\u202e", "' OR 1=1 --", "<script>", "../../x", "9" * 30, "NaN", "BDX", "platelets",
     "10*9/L", "g/dL", "SD", "follow_up", "iv_cycle", "2024-09-01"])
DATE_TEXT = st.sampled_from(["0001-01-01", "1899-12-31", "1900-01-01", "2999-12-31", "2024-02-30", "2024-09-01",
                             "yesterday", "", "9999999999-01-01"])
NUM_TOKEN = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
NUMBER = st.sampled_from([-150, -1, 0, 1e308, -1e308, 10**25, -(10**25), 2**63, 5e-324, 0.5, 7400, 150])
LEAF = st.none() | st.booleans() | NUMBER | ODD_TEXT | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
ANY = st.recursive(LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(ODD_TEXT, c, max_size=3), max_leaves=8)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            for sub in schema[key]:
                if sub.get("type") != "null":
                    return _resolve(spec, sub)
    return schema


def _value_for(spec: dict[str, Any], schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    s = _resolve(spec, schema)
    kind = s.get("type")
    fmt = s.get("format", "")
    if fmt in ("date", "date-time"):
        return DATE_TEXT | ANY
    if kind == "number":
        return NUMBER | st.just("__NONFINITE__") | ANY
    if kind == "integer":
        return NUMBER | st.integers() | ANY
    if kind == "string":
        return ODD_TEXT | ANY
    if kind == "boolean":
        return st.booleans() | ANY
    return ANY


@st.composite
def body_for(draw: Any, spec: dict[str, Any], schema: dict[str, Any] | None) -> tuple[str, bool]:
    """(raw JSON text, holds a non-finite number?)"""
    if schema is None or draw(st.integers(min_value=0, max_value=5)) == 0:
        raw = draw(st.sampled_from(["", "{", "[]", "null", "NaN", '{"reason": NaN}', "\"x\"", "{}"]) | ANY.map(json.dumps))
        return raw, _has_nonfinite(raw)
    props = _resolve(spec, schema).get("properties", {})
    doc: dict[str, Any] = {}
    for name, sub in props.items():
        if name == "reason" and draw(st.integers(min_value=0, max_value=4)):
            doc[name] = "fuzzing"
        elif draw(st.integers(min_value=0, max_value=3)):
            doc[name] = draw(_value_for(spec, sub))
    raw = json.dumps(doc, allow_nan=True, ensure_ascii=False)
    nonfinite = False
    while '"__NONFINITE__"' in raw:
        raw = raw.replace('"__NONFINITE__"', draw(NUM_TOKEN), 1)
        nonfinite = True
    return raw, nonfinite or _has_nonfinite(raw)


def _has_nonfinite(raw: str) -> bool:
    """Whether JSON text holds a NaN/Infinity token or a number that overflows a double."""
    from lutarterial.web.finite_json import non_finite_paths

    try:
        return bool(non_finite_paths(raw))
    except ValueError:
        return False


def _routes(app: Any) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    spec = app.openapi()
    out = []
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue  # /api/... are aliases of the same operations
        for method, op in ops.items():
            if method.upper() not in ("POST", "PUT", "PATCH", "DELETE") or path in SKIP:
                continue
            content = op.get("requestBody", {}).get("content", {})
            ctype = next(iter(content), "")
            schema = content.get(ctype, {}).get("schema") if ctype else None
            out.append((method.upper(), path, schema, ctype))
    return out


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str, dict[str, Any]]]:
    from fastapi.testclient import TestClient

    from lutarterial.registry.db import upgrade
    from lutarterial.web.app import create_app
    from lutarterial.web.demo import DEMO_PASSWORD, _records, ensure_demo_users
    from lutarterial.web.settings import WebSettings

    d = tmp_path_factory.mktemp("apifuzz")
    url = f"sqlite:///{d / 'registry.db'}"
    upgrade(url)
    ensure_demo_users(url)
    app = create_app(url, settings=WebSettings(secret_key=SECRET), upgrade=False)
    clients = []

    def login(user: str) -> Any:
        c = TestClient(app, raise_server_exceptions=False)
        r = c.post("/api/login", json={"username": user, "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        clients.append(c)
        return c

    admin, coord, inv = login("admin"), login("coord.bdx"), login("inv.bdx")
    eligible, _ = _records()
    rec, as_of = eligible[0]
    r = coord.post("/api/participants", json={"site": "BDX", "reason": "fuzz", "sex": "F",
                                              "consent_version": "v3.0", "consent_date": "2024-01-02"})
    assert r.status_code == 201, r.text
    tn = r.json()["trial_number"]
    r = coord.post(f"/api/participants/{tn}/screenings", json={"record": rec, "as_of": as_of.isoformat(),
                                                               "reason": "fuzz"})
    assert r.status_code == 201, r.text
    r = inv.post(f"/api/participants/{tn}/enrolment", json={"enrolled_date": as_of.isoformat(), "reason": "fuzz"})
    assert r.status_code == 201, r.text
    yield app, admin, tn, app.openapi()
    for c in clients:
        c.close()
    app.state.backend.close()
    shutil.rmtree(d, ignore_errors=True)


def _all_routes() -> list[str]:
    """Route ids for parametrisation (the app is built once more, cheaply, without a database)."""
    return [f"{m} {p}" for m, p in _ROUTE_IDS]


def _route_ids() -> list[tuple[str, str]]:
    import tempfile

    from lutarterial.web.app import create_app
    from lutarterial.web.settings import WebSettings

    d = Path(tempfile.mkdtemp())
    try:
        app = create_app(f"sqlite:///{d / 'x.db'}", settings=WebSettings(secret_key=SECRET), upgrade=True)
        ids = [(m, p) for m, p, _s, _c in _routes(app)]
        app.state.backend.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return ids


_ROUTE_IDS = _route_ids()


def test_write_routes_found() -> None:
    paths = {p for _m, p in _ROUTE_IDS}
    assert {"/api/v1/participants", "/api/v1/participants/{tn}/labs",
            "/api/v1/participants/{tn}/imaging-analyses"} <= paths


@pytest.mark.parametrize("route", _all_routes())
def test_write_route_survives_nonsense(api: tuple[Any, Any, str, dict[str, Any]], route: str) -> None:
    app, client, tn, spec = api
    method, path = route.split(" ", 1)
    schema, ctype = next((s, c) for m, p, s, c in _routes(app) if m == method and p == path)
    params = re.findall(r"{(\w+)}", path)

    @FUZZ
    @given(data=st.data())
    def inner(data: Any) -> None:
        url = path
        for name in params:
            value = tn if name == "tn" and data.draw(st.booleans()) else data.draw(
                st.sampled_from(["1", "0", "-1", "99999999999999999999999", "١", "%F0%9F%99%82", "BDX-999", "x"]))
            url = url.replace("{" + name + "}", value)
        if ctype.startswith("multipart"):
            files = {"files": ("x.dcm", data.draw(st.binary(max_size=300)), "application/octet-stream")}
            r = client.request(method, url, files=files, data={"reason": "fuzzing"})
            nonfinite = False
            raw = "<multipart>"
        else:
            raw, nonfinite = data.draw(body_for(spec, schema))
            r = client.request(method, url, content=raw.encode(), headers={"Content-Type": "application/json"})
        assert r.status_code < 500, f"{method} {url} {raw[:300]} -> {r.status_code} {r.text[:500]}"
        if r.status_code >= 400:
            body = r.json()
            assert body.get("error") and "detail" in body, r.text[:300]
            assert "Traceback" not in r.text
        if nonfinite:
            # 422 from the finite-JSON guard, or 400 when an earlier guard (e.g. oversized integers) refused first
            assert r.status_code in (400, 422), f"{method} {url}: non-finite number {raw[:300]} -> {r.status_code}"
        if 200 <= r.status_code < 300 and r.content:
            json.loads(r.text, parse_constant=_refuse)

    inner()


def _refuse(name: str) -> Any:
    raise AssertionError(f"{name} in a 2xx answer")


def test_module_is_bounded() -> None:
    assert FUZZ.max_examples <= 10 and math.isfinite(FUZZ.max_examples)
