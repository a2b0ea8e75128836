"""CLI of the PBPK package: JSON keys, exit codes; SBML export reproduces the model's rates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lutarterial.cli.main import app
from lutarterial.pbpk import MASS_BALANCE_TOL, load_parameters
from lutarterial.pbpk.model import N_STATE, Model, build_physiology
from lutarterial.pbpk.parameters import half_life_h

runner = CliRunner()




def invoke(args: list[str]):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args)


def test_simulate_json_keys_and_mass_balance(tmp_path: Path) -> None:
    png = tmp_path / "tc.png"
    r = invoke(["pbpk", "simulate", "--route", "iah", "--lobe", "right", "--nuclide", "Lu-177", "--activity-mbq",
                "7400", "--peptide-ug", "200", "--t-end-h", "48", "--json", "--png", str(png)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for key in ("times_h", "time_courses", "percent_ia", "mass_balance_error", "standard_times_h", "nuclide"):
        assert key in out
    assert out["mass_balance_error"] <= MASS_BALANCE_TOL
    assert set(out["time_courses"]["tumour_right"]) == {"vascular", "interstitial", "bound", "internalised", "total"}
    assert set(out["percent_ia"]["kidneys"]) == {"0.5", "1", "4", "24", "48"}
    assert png.stat().st_size > 1000


def test_simulate_text_output() -> None:
    r = invoke(["pbpk", "simulate", "--route", "iv", "--nuclide", "Ga-68", "--activity-mbq", "150",
                "--peptide-ug", "20"])
    assert r.exit_code == 0, r.output
    assert "mass_balance_error" in r.output and "spleen" in r.output


def test_predict_json_keys() -> None:
    r = invoke(["pbpk", "predict", "--scenario", "lutarterial", "--n-virtual", "12", "--seed", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["iah_iv_tumour_ratio"] > 1 and len(out["ci95"]) == 2
    assert out["ci95"][0] <= out["iah_iv_tumour_ratio"] <= out["ci95"][1]
    assert out["mass_balance_error"] <= MASS_BALANCE_TOL
    assert "iah_iv_ratio_healthy_liver" in out["outputs"]


@pytest.mark.parametrize("args,match", [
    (["simulate", "--route", "iv", "--nuclide", "Tc-99m", "--activity-mbq", "100", "--peptide-ug", "10"], "decay data"),
    (["simulate", "--route", "iv", "--lobe", "right", "--nuclide", "Ga-68", "--activity-mbq", "100",
      "--peptide-ug", "10"], "--lobe applies"),
    (["simulate", "--route", "iah", "--lobe", "middle", "--nuclide", "Ga-68", "--activity-mbq", "100",
      "--peptide-ug", "10"], "lobe"),
    (["simulate", "--route", "iv", "--nuclide", "Ga-68", "--activity-mbq", "100", "--peptide-ug", "10",
      "--params", "/nonexistent.yaml"], "does not exist"),
    (["predict", "--scenario", "nope", "--json"], "unknown scenario"),
])
def test_bad_input_exits_2_with_a_message(args: list[str], match: str, capsys: pytest.CaptureFixture[str]) -> None:
    from lutarterial.cli.main import run as main_run

    with pytest.raises(SystemExit) as exc:
        main_run(["pbpk", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and match in err and "Traceback" not in err


def test_bad_parameter_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lutarterial.cli.main import run as main_run

    f = tmp_path / "p.yaml"
    f.write_text("parameters:\n  liver_right_lobe_fraction: 1.4\n")
    with pytest.raises(SystemExit) as exc:
        main_run(["pbpk", "simulate", "--route", "iv", "--nuclide", "Ga-68", "--activity-mbq", "100",
                  "--peptide-ug", "10", "--params", str(f)])
    assert exc.value.code == 2 and "outside 0-1" in capsys.readouterr().err


def test_sbml_export_has_the_model_rates(tmp_path: Path) -> None:
    libsbml = pytest.importorskip("libsbml", reason="python-libsbml is an optional dependency")
    out = tmp_path / "m.xml"
    r = invoke(["pbpk", "sbml", "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = libsbml.readSBML(str(out))
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    m = doc.getModel()
    assert m.getNumSpecies() == N_STATE and m.getNumRules() == N_STATE
    p = load_parameters().sample(1, None, variability=False)
    model = Model(build_physiology(p, "Lu-177"), math.log(2) / half_life_h("Lu-177")[1])  # 177Lu compound
    y = np.random.default_rng(1).uniform(0, 3, N_STATE)
    names = [m.getSpecies(i).getId() for i in range(N_STATE)]
    env = dict(zip(names, y))
    expected = model.rhs(y)
    for i in range(N_STATE):
        rule = m.getRateRule(names[i])
        formula = libsbml.formulaToL3String(rule.getMath())
        value = eval(formula, {"__builtins__": {}}, env)  # arithmetic of names and numbers only
        assert value == pytest.approx(expected[i], rel=1e-9, abs=1e-9)


def test_participant_measurement_reads_both_analysis_formats() -> None:
    from lutarterial.cli.pbpk import participant_measurement
    from lutarterial.errors import InvalidInputError

    single = {"vois": [{"name": "seg 7 right lobe", "kind": "lesion", "lobe": None, "suv_mean": 30.0, "volume_ml": 12},
                       {"name": "L2", "kind": "lesion", "lobe": "L", "suv_mean": 20.0},
                       {"name": "healthy liver", "kind": "liver", "suv_mean": 7.0},
                       {"name": "liver", "kind": "liver", "suv_mean": 9.0},
                       {"name": "spleen", "kind": "spleen", "suv_mean": 25.0},
                       {"name": "bad", "kind": "lesion", "suv_mean": float("nan")}],
              "studies": [{"route": "IV", "injected_activity_bq": 1.2e8}]}
    m, notes = participant_measurement(single, peptide_ug=20.0, time_h=1.0)
    assert [(les.name, les.lobe) for les in m.lesions] == [("seg 7 right lobe", "right"), ("L2", "left")]
    assert m.liver_suv == 7.0 and m.spleen_suv == 25.0 and m.kidney_suv is None
    assert m.activity_mbq == 120.0 and notes == []
    with pytest.raises(InvalidInputError, match="no lesion"):
        participant_measurement({"vois": [{"name": "liver", "kind": "liver", "suv_mean": 7.0}]}, peptide_ug=20.0,
                                time_h=1.0)
