"""``lutarterial demo``: seeds every stage through the audited services, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lutarterial.web.demo import DEMO_USERS, STAGES, seed_demo


@pytest.mark.slow
def test_demo_seeds_every_stage_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = seed_demo(url)
    assert first.audit_ok and first.audit_rows > 50
    assert set(first.stages.values()) == set(STAGES)
    assert len(first.created) == len(first.stages) and not first.notes
    second = seed_demo(url)
    assert second.created == [] and sorted(second.existing) == sorted(first.created)
    assert second.audit_ok and second.audit_rows == first.audit_rows  # nothing written the second time

    from lutarterial.registry.db import Registry
    from lutarterial.registry.models import DosimetryAnalysis, ImagingAnalysis, ImagingSeries, Participant, User, Visit

    reg = Registry.open(url)
    try:
        with reg.session(readonly=True) as s:
            assert s.query(Participant).count() == len(first.created)
            assert s.query(User).count() == len(DEMO_USERS)
            analyses = s.query(ImagingAnalysis).all()
            # issue 11: every treated participant (IAH given) imported and analysed through the pipeline
            treated = [t for t, st in first.stages.items() if st in ("iah_given", "follow_up")]
            assert len(analyses) == len(treated) == 4
            for analysis in analyses:
                assert analysis.result["vois"] and analysis.result["summary"]["lesions"]
                assert analysis.series_instance_uids and analysis.study_instance_uid
                assert analysis.parameters["engine"] == "lutarterial.imaging.compare.compare_studies"
                assert analysis.superseded_by_id is None and len(analysis.input_hashes) == 4
            dos = s.query(DosimetryAnalysis).all()
            assert len(dos) == 4 and all(d.kind == "spect_iah_dosimetry" and len(d.result["time_h"]) == 4 for d in dos)
            # DICOM dates agree with the visits the series are linked to
            for se in s.query(ImagingSeries).filter(ImagingSeries.modality.in_(("PT", "NM"))):
                visit = s.get(Visit, se.visit_id)
                assert visit is not None and se.route in ("iv", "iah")
                day = se.injection_time[:10] if se.modality == "NM" else se.acquisition_time[:10]
                assert day == visit.visit_date.isoformat()
            tn = s.get(Participant, analyses[0].participant_id).trial_number
    finally:
        reg.dispose()

    # the imaging page links the engine's figure, served from the data directory by its hash
    from fastapi.testclient import TestClient

    from lutarterial.web.app import create_app
    from lutarterial.web.demo import DEMO_PASSWORD
    from lutarterial.web.settings import WebSettings

    app = create_app(url, settings=WebSettings(secret_key="x" * 40), upgrade=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/api/login", json={"username": "phys.bdx", "password": DEMO_PASSWORD}).status_code == 200
        for page in ("imaging", "dosimetry"):
            html = c.get(f"/participants/{tn}/{page}").text
            assert f"/participants/{tn}/plots/{page}-" in html
            srcs = [part.split('"')[0] for part in html.split('src="')[1:] if f"/plots/{page}-" in part]
            for src in srcs:
                r = c.get(src)
                assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
        html = c.get(f"/participants/{tn}/imaging").text
        fig = next(part.split('"')[0] for part in html.split('src="')[1:] if "-fig0.png" in part)
        # a figure whose file was altered is not served
        for f in (tmp_path / "figures").iterdir():
            f.write_bytes(f.read_bytes() + b"x")
        assert c.get(fig).status_code == 404


def test_demo_command_prints_json_summary(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env_src = str(Path(__file__).resolve().parents[3] / "src")
    out = subprocess.run([sys.executable, "-m", "lutarterial", "demo", "--db", str(db), "--json"],
                         capture_output=True, text=True, timeout=300, env={"PYTHONPATH": env_src, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["audit_ok"] is True and summary["demo_password"]
    assert db.exists()


def test_serve_help_lists_options() -> None:
    from typer.testing import CliRunner

    from lutarterial.cli.main import app

    res = CliRunner().invoke(app, ["serve", "--help"])
    assert res.exit_code == 0
    for opt in ("--db", "--port", "--host", "--demo"):
        assert opt in res.output


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "lutarterial", "demo", "--db", "mysql://x@y/z"],
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "error:" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_demo_imaging_numbers_come_from_the_engines(tmp_path: Path) -> None:
    """The stored IAH/IV lesion ratios are measured by the imaging engine on noisy synthetic
    images: close to the phantom's known ratio (within 10 %), but not copied from it."""
    from lutarterial.web.demo import _imaging_and_dosimetry

    demo = _imaging_and_dosimetry(7, tmp_path / "patient", tmp_path)
    vois = {v["name"]: v for v in demo.imaging["vois"]}
    assert demo.truth_lesion_ratios
    for name, truth in demo.truth_lesion_ratios.items():
        measured = vois[name]["ratio"]["suv_mean"]
        assert measured == pytest.approx(truth, rel=0.10)
        assert measured != truth  # measured on noisy voxels, not the truth stored
    gm = demo.imaging["summary"]["lesions"]["suv_mean"]
    assert gm["n"] == len(demo.truth_lesion_ratios) and gm["ci_low"] < gm["geometric_mean"] < gm["ci_high"]
    # identifiers of the real series written, figures stored by content hash
    assert demo.study_instance_uid.startswith("1.2.") and len(demo.series_instance_uids) == 2
    assert len(set(demo.series_instance_uids)) == 2
    for f in demo.imaging["figures"] + demo.dosimetry["figures"]:
        assert (tmp_path / "figures" / f"{f['sha256']}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # dosimetry engine output: dose per VOI and cumulative checks against limits
    doses = {v["voi"]: v for v in demo.dosimetry["vois"]}
    assert doses["lesion 1"]["dose_gy"] > doses["liver"]["dose_gy"] > 0
    assert any(c["organ"] == "kidney" and c["limit"] > 0 for c in demo.dosimetry["cumulative"])
