"""The Python client (issue 15) against a live server: ``lutarterial serve`` in a subprocess on a free
loopback port, on SQLite and PostgreSQL; every main operation round-trips, errors carry the model."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lutarterial.client import ApiError, Client

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tokens(url: str) -> dict[str, str]:
    from lutarterial.registry import Registry
    from lutarterial.registry.access import SYSTEM_ACTOR
    from lutarterial.registry.tokens import create_token
    from lutarterial.web.demo import ensure_demo_users

    ensure_demo_users(url)
    reg = Registry.open(url)
    try:
        out = {}
        with reg.session() as s:
            for user, name, scope in (("admin", "all", "write"), ("coord.bdx", "script", "write"),
                                      ("inv.bdx", "inv", "write"), ("phys.bdx", "phys", "write"),
                                      ("coord.bdx", "ro", "read")):
                out[name] = create_token(s, SYSTEM_ACTOR, username=user, name=name, scope=scope, reason="test")[1]
        return out
    finally:
        reg.dispose()


@pytest.fixture
def live(registry_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    tokens = _tokens(registry_url)
    port = _free_port()
    env = {**os.environ, "LUTARTERIAL_DATA_DIR": str(tmp_path), "LUTARTERIAL_SECRET_KEY": "live-" + "k" * 40}
    proc = subprocess.Popen([sys.executable, "-m", "lutarterial", "serve", "--db", registry_url, "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(base + "/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"lutarterial serve did not start: {out[-2000:]}")
            time.sleep(0.2)
        yield base, tokens
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_client_round_trips_every_main_operation(live: tuple[str, dict[str, str]], eligible_record: Any) -> None:
    base, tok = live
    rec, as_of = eligible_record
    with Client(base, tok["script"]) as coord, Client(base, tok["inv"]) as inv, \
            Client(base, tok["phys"]) as phys, Client(base, tok["all"]) as admin:
        assert [s["code"] for s in coord.sites()] == ["BDX"]
        tn = coord.register_participant(site="BDX", reason="inclusion", sex="F", consent_version="v3.0",
                                        consent_date="2024-01-02")
        assert tn in {p["trial_number"] for p in coord.participants()}
        assert coord.evaluate(rec, as_of=as_of)["overall"] == "eligible"
        scr = coord.screen(tn, rec, as_of=as_of, reason="screening visit")
        assert scr["overall"] == "eligible"
        assert coord.rescreen(scr["id"])["reproduced"] is True
        inv.enrol(tn, enrolled_date=as_of, reason="eligible")
        v = coord.record_visit(tn, kind="follow_up", reason="schedule", planned_date="2025-06-01")
        assert v["kind"] == "follow_up" and v in coord.visits(tn)
        iah = inv.record_iah_cycle(tn, visit_date=as_of, activity_mbq=7400, artery="right hepatic artery",
                                   catheter_position="proper hepatic artery", reason="IAH cycle done")
        assert iah["status"] == "done"
        lab = coord.add_lab(tn, analyte="platelets", value=60, unit="G/L", collected_date="2025-01-10", lln=150,
                            uln=400, reason="hospital report")
        assert lab["ctcae_grade"] == 2 and lab in coord.labs(tn)  # 60: <75.0-50.0
        summary = coord.import_labs(tn, (EXAMPLES / "labs" / "labs_fr.csv").read_text().replace("BDX-001", tn),
                                    reason="hospital export")
        assert (summary["imported"], summary["duplicates"]) == (6, 1)
        ae = coord.add_adverse_event(tn, term="Nausea", grade=1, onset_date="2025-01-11", reason="follow-up")
        assert ae in coord.adverse_events(tn)
        rc = inv.add_recist(tn, assessment_date="2025-03-01", response="SD", target_sum_mm=42.0, reason="CT read")
        assert rc in coord.recist(tn)
        img = phys.attach_imaging_analysis(tn, kind="suv", result={"suv_max": 12.3}, software_version="t",
                                           reason="PET analysed")
        dos = phys.attach_dosimetry_analysis(tn, kind="voxel_dose", result={"tumour_gy": 40.0},
                                             software_version="t", reason="dosimetry", imaging_analysis_id=img)
        an = coord.analyses(tn)
        assert [a["id"] for a in an["imaging"]] == [img] and [a["id"] for a in an["dosimetry"]] == [dos]
        assert any(t["record_kind"] == "visit" for t in coord.timeline(tn))
        trail = coord.participant_audit(tn)
        assert trail and {a["actor_username"] for a in trail} >= {"coord.bdx (token:script)", "inv.bdx (token:inv)"}
        assert admin.audit(limit=5) and admin.verify_audit()["ok"] is True
        with zipfile.ZipFile(io.BytesIO(inv.export_csv_zip())) as zf:
            assert "lab_results.csv" in zf.namelist() and json.loads(zf.read("manifest.json"))["files"]
        assert b"<ODM" in inv.export_odm()
        bundle = json.loads((EXAMPLES / "eligibility" / "bundle.json").read_text())
        tn2 = coord.register_participant(site="BDX", reason="inclusion", consent_version="v3.0",
                                         consent_date="2024-01-02")
        imp = coord.import_screening(tn2, bundle, reason="EHR export", as_of="2024-06-03")
        assert len(imp["bundle_sha256"]) == 64 and imp["trial_number"] == tn2


def test_client_raises_api_error_with_the_error_model(live: tuple[str, dict[str, str]]) -> None:
    base, tok = live
    with Client(base, tok["ro"]) as ro, Client(base, tok["script"]) as rw, \
            Client(base, "lut_aaaaaaaa_" + "b" * 40) as bad:
        with pytest.raises(ApiError) as e:
            ro.participant("BDX-999")
        assert e.value.status == 404 and e.value.error and e.value.detail
        with pytest.raises(ApiError) as e:
            ro.register_participant(site="BDX", reason="read-only token")
        assert e.value.status == 403 and "read-only" in e.value.detail
        with pytest.raises(ApiError) as e:
            rw.add_lab("BDX-001", value=1, unit="G/L", collected_date="2024-13-40", reason="x")
        assert e.value.status == 422 and e.value.problems
        with pytest.raises(ApiError) as e:
            bad.sites()
        assert e.value.status == 401 and e.value.error == "NotAuthenticated"
