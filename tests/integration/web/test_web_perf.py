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


def test_participant_audit_page_is_paginated_newest_first(app: Any, login: Any) -> None:
    """The page shows 50 entries a page (its cost no longer grows with the trail); the CSV and the
    API keep the whole trail."""
    from lutarterial.web.routes.pages import AUDIT_PAGE_SIZE

    coord = login("coord.bdx")
    tn = coord.post("/api/participants", json={"site": "BDX", "reason": "paging test"}).json()["trial_number"]
    for i in range(AUDIT_PAGE_SIZE + 5):
        r = coord.post(f"/api/participants/{tn}/labs", json={
            "analyte": "platelets", "value": 100 + i, "unit": "10*9/L", "collected_date": "2024-02-01",
            "lln": 150, "uln": 400, "reason": f"paging lab {i}"})
        assert r.status_code == 201, r.text
    trail = coord.get(f"/api/participants/{tn}/audit").json()
    assert len(trail) > AUDIT_PAGE_SIZE
    first = coord.get(f"/participants/{tn}/audit")
    assert first.status_code == 200
    ids = [int(x) for x in __import__("re").findall(r'<td class="num small">(\d+)</td>', first.text)]
    assert len(ids) == AUDIT_PAGE_SIZE and ids == sorted(ids, reverse=True)
    assert ids[0] == max(e["id"] for e in trail)
    assert f"Page 1 of {-(-len(trail) // AUDIT_PAGE_SIZE)}" in first.text and f"{len(trail)} entries" in first.text
    assert f'href="/participants/{tn}/audit?page=2"' in first.text
    second = coord.get(f"/participants/{tn}/audit?page=2")
    ids2 = [int(x) for x in __import__("re").findall(r'<td class="num small">(\d+)</td>', second.text)]
    assert ids2 and max(ids2) < min(ids) and len(ids) + len(ids2) == min(len(trail), 2 * AUDIT_PAGE_SIZE)
    beyond = coord.get(f"/participants/{tn}/audit?page=99")  # no row on the page: the count still shows
    assert beyond.status_code == 200 and f"{len(trail)} entries" in beyond.text
    csv_lines = coord.get(f"/participants/{tn}/audit.csv").text.strip().splitlines()
    assert len(csv_lines) == len(trail) + 1  # header + every entry


def test_global_audit_count_is_capped(app: Any, login: Any, monkeypatch: Any) -> None:
    from lutarterial.web.routes import pages

    mon = login("monitor")
    exact = mon.get("/audit")
    assert exact.status_code == 200 and "more than" not in exact.text
    monkeypatch.setattr(pages, "AUDIT_COUNT_CAP", 3)
    capped = mon.get("/audit")
    assert capped.status_code == 200
    assert "more than 3 entries" in capped.text and 'rel="next"' in capped.text


def test_audit_value_preview_equals_cut_json() -> None:
    import json

    from lutarterial.web.views import fmt

    for v in [{"a": 1}, list(range(100)), {"k": "x" * 200}, {"a": [1, 2, {"b": None}]}, [], {"é": "ü" * 30},
              {"n": 1.5, "t": True}, ["x" * 76], ["x" * 77]]:
        text = json.dumps(v)
        assert fmt(v) == (text if len(text) < 80 else text[:77] + "…")


def test_json_answers_built_in_the_route_are_fastapis_bytes(app: Any, login: Any) -> None:
    """The participant JSON and the lab save answer from the route's thread (no second trip through
    the worker threads) with exactly the bytes FastAPI's own serialisation gives."""
    from typing import Any as _Any

    from pydantic import TypeAdapter

    adapter = TypeAdapter(dict[str, _Any])
    coord = login("coord.bdx")
    tn = coord.post("/api/participants", json={"site": "BDX", "reason": "json test"}).json()["trial_number"]
    r = coord.post(f"/api/participants/{tn}/labs", json={"analyte": "platelets", "value": 1.5e-05 * 1e7,
                                                         "unit": "10*9/L", "collected_date": "2024-02-01",
                                                         "reason": "json test"})
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    assert r.content == adapter.dump_json(r.json())
    g = coord.get(f"/api/participants/{tn}")
    assert g.status_code == 200 and g.headers["content-type"] == "application/json"
    assert g.content == adapter.dump_json(app.state.backend.participant(
        app.state.backend.authenticate("coord.bdx", "demo-lutarterial") or _missing(), tn))
    assert g.json()["labs"][0]["value"] == 150.0


def _missing() -> Any:
    raise AssertionError("demo user coord.bdx did not authenticate")


def test_json_now_writes_nan_as_null_like_fastapi(app: Any, login: Any) -> None:
    """A stored analysis result holding NaN/Infinity (e.g. an undefined ratio) must come back as
    valid JSON (``null``), as FastAPI's own serialisation writes it; ``NaN`` is not JSON and
    browsers' ``JSON.parse`` and strict clients refuse the whole answer. (PostgreSQL's JSON type
    refuses NaN at the write, so only SQLite can hold one.)"""
    import json

    import pytest

    if not str(app.state.backend.registry.engine.url).startswith("sqlite"):
        pytest.skip("PostgreSQL's JSON type cannot store NaN")

    from lutarterial.registry import models as m
    from lutarterial.registry.audit import audited

    coord = login("coord.bdx")
    tn = coord.post("/api/participants", json={"site": "BDX", "reason": "nan test"}).json()["trial_number"]
    be = app.state.backend
    user = be.authenticate("coord.bdx", "demo-lutarterial") or _missing()
    with be.write() as s:
        p = s.scalars(__import__("sqlalchemy").select(m.Participant).where(m.Participant.trial_number == tn)).one()
        with audited(s, user.actor, "nan test"):
            s.add(m.ImagingAnalysis(participant_id=p.id, kind="uptake",
                                    result={"ratio": float("nan"), "max": float("inf")}))
    g = coord.get(f"/api/participants/{tn}")
    assert g.status_code == 200
    body = json.loads(g.content, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"not JSON: {c}")))
    assert body["imaging"][0]["result"] == {"ratio": None, "max": None}


def test_audit_changes_cell_equals_the_template_loop() -> None:
    """The audit page's "Changes" cell built in Python (``changes_html``) is byte-for-byte the HTML of
    the Jinja2 loop it replaced, escaping included (values with <, &, quotes, non-ASCII, nested JSON,
    long values cut to 80 characters)."""
    import random

    import jinja2

    from lutarterial.web.views import changes_html, fmt

    env = jinja2.Environment(autoescape=True)
    env.filters["fmt"] = fmt
    loop = env.from_string('{% for c in changes %}<div><strong>{{ c.field }}</strong>: {% if c.old is not none %}'
                           '<del>{{ c.old|fmt }}</del> → {% endif %}{{ c.new|fmt }}</div>{% endfor %}')
    values = [None, 1, 1.5, 123456.7, True, False, "a<b>&'\"c", "é", [], {}, {"x": [1, {"y": "<z>"}]},
              list(range(200)), {"k": "x" * 200}, "x" * 100, 1e-9, {"a": [{"b": list(range(50))}] * 20}]
    rng = random.Random(13)
    for _ in range(2000):
        changes = [{"field": rng.choice(["a", "b<&>", "grading", "é'\""]), "old": rng.choice(values),
                    "new": rng.choice(values)} for _ in range(rng.randrange(0, 5))]
        assert str(changes_html(changes)) == loop.render(changes=changes)


def test_audit_rows_kept_by_id_give_the_same_pages_and_api(app: Any, login: Any, eligible_record: Any) -> None:
    """The parsed values and changes of audit rows are kept by (id, row hash): the pages and the API
    give the same answer from the memo as without it; a large row (a screening record) is not kept,
    and the memo holds at most AUDIT_MEMO_SIZE rows."""
    be = app.state.backend
    coord, mon = login("coord.bdx"), login("monitor")
    tn = coord.post("/api/participants", json={"site": "BDX", "reason": "memo test", "sex": "F",
                                               "consent_version": "v3.0", "consent_date": "2024-01-02"}
                    ).json()["trial_number"]
    rec, as_of = eligible_record
    r = coord.post(f"/api/participants/{tn}/screenings", json={"record": rec, "as_of": as_of,
                                                              "reason": "screening with a large record"})
    assert r.status_code == 201, r.text
    for i in range(4):
        assert coord.post(f"/api/participants/{tn}/labs", json={
            "analyte": "platelets", "value": 100 + i, "unit": "10*9/L", "collected_date": "2024-02-01",
            "lln": 150, "uln": 400, "reason": f"memo lab {i}"}).status_code == 201

    def answers() -> tuple[str, str, Any, str]:
        return (coord.get(f"/participants/{tn}/audit").text, mon.get("/audit").text,
                coord.get(f"/api/participants/{tn}/audit").json(), coord.get(f"/participants/{tn}/audit.csv").text)

    be._audit_memo.clear()
    be.AUDIT_MEMO_SIZE = 0  # nothing kept: every row parsed and rendered afresh
    plain = answers()
    assert not be._audit_memo
    be.AUDIT_MEMO_SIZE = 2048
    filled, from_memo = answers(), answers()
    assert filled == plain and from_memo == plain
    assert "memo lab 3" in plain[0] and "platelets" in plain[0]
    kept_ids = {key[0] for key in be._audit_memo}
    trail = plain[2]
    big = [e["id"] for e in trail if e["table_name"] == "screening_results"]
    small = [e["id"] for e in trail if e["table_name"] == "lab_results"]
    assert big and not kept_ids & set(big)  # the screening record's row is over AUDIT_MEMO_MAX_TEXT
    assert set(small) <= kept_ids
    be.AUDIT_MEMO_SIZE = 3
    be._audit_memo.clear()
    assert answers() == plain and len(be._audit_memo) == 3
