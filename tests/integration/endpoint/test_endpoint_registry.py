"""``lutarterial endpoint`` on a registry: current analyses, site scope, statistician role, CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lutarterial.cli.main import run
from lutarterial.errors import AccessDeniedError
from lutarterial.registry import Registry, services
from lutarterial.registry.access import SYSTEM_ACTOR
from lutarterial.registry.audit import audited
from lutarterial.registry.models import ImagingAnalysis, Role
from lutarterial.registry.services import actor_by_username


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[dict, str]:
    try:
        run(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    out = capsys.readouterr().out
    return json.loads(out), out


def test_statistician_sees_all_sites_latest_analysis_and_same_bytes(db: str, capsys: pytest.CaptureFixture[str]):
    argv = ["endpoint", "--db", db, "--user", "stat", "--json", "--n-boot", "500", "--seed", "3"]
    res, text1 = _json(capsys, argv)
    _, text2 = _json(capsys, argv)
    assert text1 == text2  # byte-identical for the same snapshot and seed
    assert list(json.loads(text1)) == sorted(["metric", "kind", "n_patients", "n_lesions", "excluded", "primary",
                                              "mixed_model", "per_lesion_paired", "bootstrap", "patients"])
    assert res["n_patients"] == 3 and res["n_lesions"] == 4
    assert isinstance(res["patients"], list)  # one row per participant (issue contract)
    assert all(set(r) == {"participant", "n_lesions", "gmr", "min_ratio", "max_ratio"} for r in res["patients"])
    rows = {r["participant"]: r for r in res["patients"]}
    assert set(rows) == {"BDX-001", "BDX-002", "TLS-001"}
    # BDX-001's latest analysis counts: lesion 1 = 20/10, lesion 2 excluded (IV 0), never a 0 ratio
    assert rows["BDX-001"]["n_lesions"] == 1 and rows["BDX-001"]["gmr"] == pytest.approx(2.0)
    assert res["excluded"] == [{"kind": "lesion", "participant": "BDX-001", "reason": "IV not positive (0)",
                                "voi": "lesion 2"}]
    assert res["bootstrap"]["seed"] == 3 and res["bootstrap"]["n_boot"] == 500


def test_superseded_analysis_is_skipped(db: str, capsys: pytest.CaptureFixture[str]):
    reg = Registry.open(db)
    try:
        with reg.session() as s:
            with audited(s, SYSTEM_ACTOR, "supersede the newer analysis for the test"):
                rows = s.query(ImagingAnalysis).filter(ImagingAnalysis.participant_id == 1).all()
                newest = max(rows, key=lambda a: a.id)
                newest.superseded_by_id = min(a.id for a in rows)
    finally:
        reg.dispose()
    res, _ = _json(capsys, ["endpoint", "--db", db, "--user", "stat", "--json", "--n-boot", "200"])
    row = [r for r in res["patients"] if r["participant"] == "BDX-001"][0]
    assert row["n_lesions"] == 2  # the first analysis (15/10, 10/8) is current again


def test_site_scope_and_read_only_statistician(db: str, capsys: pytest.CaptureFixture[str]):
    res, _ = _json(capsys, ["endpoint", "--db", db, "--user", "inv.bdx", "--json", "--n-boot", "200"])
    assert {r["participant"] for r in res["patients"]} == {"BDX-001", "BDX-002"}
    reg = Registry.open(db)
    try:
        with reg.session(readonly=True) as s:
            stat = actor_by_username(s, "stat")
            assert Role.STATISTICIAN in stat.roles and stat.read_only and stat.all_sites and not stat.is_admin
            with pytest.raises(AccessDeniedError):
                services.get_identity(s, stat, "TLS-001")
        with reg.session() as s, pytest.raises(AccessDeniedError):
            services.register_participant(s, stat, site_code="BDX", reason="not allowed")
    finally:
        reg.dispose()


def test_secondary_json_and_errors(db: str, capsys: pytest.CaptureFixture[str]):
    res, _ = _json(capsys, ["endpoint", "secondary", "--db", db, "--user", "stat", "--json", "--n-boot", "200"])
    assert {"consort", "safety", "response", "survival", "dosimetry"} <= set(res)
    assert res["consort"]["registered"] == 3 and res["consort"]["analysed"] == 3
    for argv, code, msg in ((["endpoint", "--db", db, "--user", "nobody"], 3, "no registry user"),
                            (["endpoint", "--db", db], 2, "--user"),
                            (["endpoint", "--db", db, "--user", "stat", "--metric", "suv_mode"], 2, "metric"),
                            (["endpoint", "--lesions", "/nonexistent.csv"], 2, "no such file")):
        with pytest.raises(SystemExit) as exc:
            run(argv)
        assert exc.value.code == code
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and "Traceback" not in err


def test_csv_input_exclusions_and_missing_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "l.csv"
    f.write_text("participant,voi,kind,iv_suv_mean,iah_suv_mean\nP1,L1,lesion,2,3\nP1,L2,lesion,-1,3\n"
                 "P2,L1,lesion,4,5\nP2,L2,lesion,,5\nP3,L1,liver,4,5\n")
    res, _ = _json(capsys, ["endpoint", "--lesions", str(f), "--json", "--n-boot", "200"])
    assert res["n_patients"] == 2 and res["n_lesions"] == 2
    assert [(e["participant"], e["reason"]) for e in res["excluded"]] == [("P1", "IV not positive (-1)"),
                                                                           ("P2", "IV missing")]
    liver, _ = _json(capsys, ["endpoint", "--lesions", str(f), "--json", "--kind", "liver", "--n-boot", "200"])
    assert liver["n_lesions"] == 1 and liver["primary"]["ci95"] is None and liver["primary"]["reason"]
    with pytest.raises(SystemExit) as exc:
        run(["endpoint", "--lesions", str(f), "--metric", "tnr"])
    assert exc.value.code == 2 and "iv_tnr" in capsys.readouterr().err


def test_other_imaging_kinds_never_replace_the_uptake_analysis(db: str, capsys: pytest.CaptureFixture[str]):
    reg = Registry.open(db)
    try:
        with reg.session() as s:
            phys = actor_by_username(s, "phys.tls")
            services.attach_imaging_analysis(s, phys, "TLS-001", kind="pbpk_prediction", reason="newer, other kind",
                                             result={"vois": [{"name": "lesion A", "kind": "lesion",
                                                               "iv": {"suv_mean": 1.0}, "iah": {"suv_mean": 9.0}}]})
    finally:
        reg.dispose()
    res, _ = _json(capsys, ["endpoint", "--db", db, "--user", "stat", "--json", "--n-boot", "200"])
    row = [r for r in res["patients"] if r["participant"] == "TLS-001"][0]
    assert row["n_lesions"] == 2 and row["max_ratio"] == pytest.approx(1.5)  # 9/6 from pet_iah_vs_iv, not 9/1
