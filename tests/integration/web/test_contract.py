"""The API contract (issue 15): /api/v1 canonical, /api aliases deprecated, one error model everywhere."""

from __future__ import annotations

from typing import Any

from lutarterial.web.contract import ERROR_STATUSES


def test_v1_and_alias_answer_the_same_and_the_alias_is_marked_deprecated(login: Any) -> None:
    c = login("coord.bdx")
    v1, old = c.get("/api/v1/sites"), c.get("/api/sites")
    assert v1.status_code == old.status_code == 200 and v1.json() == old.json()
    assert "deprecation" not in v1.headers and "link" not in v1.headers
    assert old.headers["deprecation"] == "true"
    assert old.headers["link"] == '</api/v1/sites>; rel="successor-version"'
    r = c.post("/api/participants", json={"site": "BDX", "reason": "via the old path"})
    assert r.status_code == 201 and r.headers["deprecation"] == "true"


def test_openapi_lists_v1_only_with_the_error_model_on_every_operation(anon: Any) -> None:
    spec = anon.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Error"]["required"] == ["error", "detail"]
    api = {p: item for p, item in spec["paths"].items() if p.startswith("/api")}
    assert api and all(p.startswith("/api/v1/") for p in api)
    for path, item in api.items():
        for method, op in item.items():
            for status in ERROR_STATUSES:
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, status)
    body = spec["paths"]["/api/v1/participants/{tn}/labs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"]["analyte"] == "platelets"
    assert set(spec["components"]["securitySchemes"]) >= {"bearerAuth", "sessionCookie"}


def test_every_error_has_the_model(anon: Any, login: Any) -> None:
    c = login("coord.bdx")
    answers = [
        anon.get("/api/v1/participants"),                                         # 401
        c.get("/api/v1/participants/BDX-999"),                                     # 404
        c.get("/api/v1/nowhere"),                                                  # 404 (no route)
        c.post("/api/v1/participants", json={"site": 3}),                          # 422
        c.post("/api/v1/participants", content=b"{not json", headers={"content-type": "application/json"}),
        c.get("/api/v1/participants/BDX-001/identity"),                            # 403 or 404
        c.post("/api/v1/participants", json={"site": "BDX\u0000", "reason": "x"}),  # 400 NUL
        c.get("/api/v1/screenings/123456789012345678901/rescreen"),                # 404: no such id
    ]
    for r in answers:
        assert 400 <= r.status_code < 500, r.text
        body = r.json()
        assert set(body) <= {"error", "detail", "problems"} and isinstance(body["detail"], str), body
    problems = answers[3].json()["problems"]
    assert answers[3].status_code == 422 and any(p.startswith("site:") for p in problems)
    assert answers[6].status_code == 400 and answers[7].status_code == 404


def test_uploads_are_not_refused_for_binary_content(login: Any) -> None:
    """A multipart/binary body with NUL bytes reaches the route (only JSON bodies are checked)."""
    c = login("coord.bdx")
    r = c.post("/api/v1/participants", content=b"PK\x03\x04\x00\x00" + b"1" * 30,
               headers={"content-type": "application/octet-stream"})
    assert r.status_code == 422 and r.json()["error"] == "InvalidInputError"  # the route's own validation
    r = c.post("/api/v1/participants", content=b'{"site": "BDX", "reason": "x", "year_of_birth": 1' + b"0" * 30 + b"}",
               headers={"content-type": "application/json"})
    assert r.status_code == 400 and "out of range" in r.json()["detail"]


def test_out_of_range_path_ids_answer_404_and_query_numbers_422(login: Any) -> None:
    """Issue 9: a 23-digit id names no record (404, the error model), never 400/500."""
    c = login("coord.bdx")
    for path in ("/api/v1/participants/12345678901234567890123", "/api/participants/1" + "0" * 25 + "/visits"):
        r = c.get(path)
        assert r.status_code == 404 and r.json()["error"] == "NotFoundError", (path, r.status_code)
    r = c.get("/api/v1/participants/999999999999999999")  # 18 digits: routed, still unknown
    assert r.status_code in (400, 404) and r.status_code != 500
    r = c.get("/api/v1/audit?limit=" + "9" * 25)
    assert r.status_code == 422
