"""``lutarterial pbpk fit``: from a participant's stored IV/IAH 68Ga PET analysis to a stored,
audited PBPK prediction; predicted vs measured per lesion; Bland-Altman helper."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lutarterial.pbpk import MASS_BALANCE_TOL
from lutarterial.pbpk.plots import bland_altman, bland_altman_figure, lesion_pairs, plot_bland_altman
from lutarterial.registry import Registry, services, verify_audit_chain
from lutarterial.registry.models import AuditEntry, ImagingAnalysis

from .conftest import Team, enrolled_participant


def _voi(name: str, kind: str, lobe: str | None, iv: float, iah: float | None, vol: float = 20.0) -> dict:
    return {"name": name, "kind": kind, "lobe": lobe, "iv": {"suv_mean": iv, "volume_ml": vol},
            "iah": {"suv_mean": iah, "volume_ml": vol} if iah is not None else {}}


PET = {"vois": [_voi("L1", "lesion", "right", 24.0, 85.0), _voi("L2", "lesion", "right", 30.0, 70.0),
                _voi("L3", "lesion", "left", 15.0, 40.0), _voi("N1", "extrahepatic", None, 12.0, 11.0),
                _voi("healthy liver", "liver", None, 8.0, 8.5, 1500.0), _voi("spleen", "spleen", None, 28.0, 27.0, 180.0),
                _voi("kidney left", "kidney", None, 6.0, 5.8, 150.0)],
       "studies": [{"route": "IV", "injected_mbq": 140.0}, {"route": "IAH", "injected_mbq": 150.0}]}


def test_fit_stores_an_audited_prediction_with_lesion_comparison(reg: Registry, team: Team, registry_url: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from lutarterial.cli.main import run

    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        tn = services.get_participant(s, team.phys_bdx, pid).trial_number
        services.attach_imaging_analysis(s, team.phys_bdx, pid, kind="pet_iah_vs_iv", result=PET, reason="PET read")
    with pytest.raises(SystemExit) as exc:
        run(["pbpk", "fit", "--db", registry_url, "--user", "phys.bdx", "--participant", tn, "--n-draws", "40",
             "--planned-mbq", "7400", "--json"])
    assert exc.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    for key in ("estimates", "iah_pet_prediction", "lesions", "absorbed_dose_gy", "analysis_id", "mass_balance_error"):
        assert key in out
    assert out["mass_balance_error"] <= MASS_BALANCE_TOL
    assert set(out["absorbed_dose_gy"]) >= {"kidneys", "spleen", "red_marrow", "tumour_right"}
    for d in out["absorbed_dose_gy"].values():
        assert d["pi90"][0] <= d["median"] <= d["pi90"][1]
    l1 = next(les for les in out["lesions"] if les["name"] == "L1")
    assert l1["measured_suv_iah"] == 85.0 and "measured_over_predicted" in l1
    assert l1["predicted_suv_iah"] > l1["suv_iv"]  # the arterial first pass
    with reg.session() as s:
        row = s.scalars(select(ImagingAnalysis).where(ImagingAnalysis.kind == "pbpk_prediction")).one()
        assert row.result["participant"] == tn
        assert s.scalars(select(AuditEntry).where(AuditEntry.table_name == "imaging_analyses")).all()
        assert verify_audit_chain(s).ok
    pairs = lesion_pairs([out, {**out, "participant": "X-2"}])
    assert len(pairs) == 8
    stats = bland_altman(pairs)
    assert stats["loa_ratio"][0] <= stats["bias_ratio"] <= stats["loa_ratio"][1]


def test_fit_refuses_a_participant_without_pet(reg: Registry, team: Team, registry_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from lutarterial.cli.main import run

    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        tn = services.get_participant(s, team.phys_bdx, pid).trial_number
    with pytest.raises(SystemExit) as exc:
        run(["pbpk", "fit", "--db", registry_url, "--user", "phys.bdx", "--participant", tn])
    assert exc.value.code == 2 and "no PET analysis" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run(["pbpk", "fit", "--db", registry_url, "--user", "nobody", "--participant", tn])
    assert exc.value.code == 2


def test_bland_altman_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lutarterial.errors import InvalidInputError
    from lutarterial.pbpk.plots import PredictionPair

    pairs = [PredictionPair("A", "L1", 50.0, 55.0), PredictionPair("A", "L2", 40.0, 36.0),
             PredictionPair("B", "L1", 80.0, 88.0)]
    stats = plot_bland_altman(pairs, tmp_path / "ba.png")
    assert (tmp_path / "ba.png").stat().st_size > 1000 and stats["n_participants"] == 2
    png, same = bland_altman_figure(pairs)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and same == stats
    with pytest.raises(InvalidInputError, match="at least 2"):
        bland_altman(pairs[:1])
