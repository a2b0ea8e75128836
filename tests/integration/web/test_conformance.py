"""The published OpenAPI tells the truth (issue 15): schemathesis 4 drives every operation of
``/openapi.json`` in-process (ASGI) with a logged-in API token on a seeded database, with the checks
not_a_server_error, status_code_conformance, content_type_conformance and
response_schema_conformance, and the test fails on any finding.

Bounded: ``EXAMPLES`` generated cases per operation, derandomized (fixed seed), no example
database; all findings of all operations are collected and reported together.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis import GenerationMode
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 6  # per operation and per mode (valid inputs, then invalid ones)

pytestmark = pytest.mark.slow


def _seed(app: Any, login: Any, eligible_record: Any, enrolled: Any) -> tuple[str, str]:
    """Participants at several stages, with labs, so reads find data; an admin write token and a trial number."""
    coord, inv = login("coord.bdx"), login("inv.bdx")
    tn = enrolled(coord, inv, eligible_record)
    coord.post(f"/api/v1/participants/{tn}/labs", json={"analyte": "platelets", "value": 90, "unit": "G/L",
                                                        "collected_date": "2024-03-01", "reason": "seed"})
    coord.post("/api/v1/participants", json={"site": "BDX", "reason": "seed", "sex": "M"})
    r = login("admin").post("/api/v1/tokens", json={"name": "conformance", "scope": "write", "reason": "test"})
    assert r.status_code == 201, r.text
    return str(r.json()["token"]), tn


def test_openapi_conformance(app: Any, login: Any, eligible_record: Any, enrolled: Any) -> None:
    token, tn = _seed(app, login, eligible_record, enrolled)
    app.state.token_limiter = None  # thousands of requests in seconds: not what the limit is for
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    findings: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if not op.path.startswith("/api/v1/"):
            continue
        operations += 1

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                                 suppress_health_check=list(hypothesis.HealthCheck),
                                 phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
            @hypothesis.given(case=op.as_strategy(generation_mode=mode), existing=st.booleans())
            def run(case: Any, existing: bool) -> None:
                if existing and case.path_parameters and "tn" in case.path_parameters:
                    case.path_parameters["tn"] = tn  # half the cases address a real participant
                try:
                    case.call_and_validate(headers=headers, checks=CHECKS)
                except Exception as exc:  # collect every finding, keep going
                    findings.append(f"{op.method.upper()} {op.path} ({mode.value}): {type(exc).__name__}: {str(exc)[:600]}")

            run()
    assert operations >= 20
    unique = sorted(set(f.split("\n")[0] + " | " + f.split("\n")[1] if "\n" in f else f for f in findings))
    assert not findings, f"{len(findings)} finding(s):\n" + "\n".join(unique[:40])
