"""Issue 10, item 7: the text output of pbpk, study, batch, endpoint and uptake shows numbers for people.

Every number token of the text output must follow :mod:`lutarterial.cli.formatting`: no exponent
for an ordinary value (1e-4 <= |x| < 1e15) and at most 4 significant digits in a decimal. Before,
``pbpk simulate`` printed ``56.323``, ``pbpk predict`` ``54.3776`` and a raw JSON dict, ``pbpk fit``
``100.02 Gy``, ``endpoint`` ``GMR 13.972``, ``study analyse`` ``1.23e+03`` for a dose of 1,234 Gy.
The JSON output is not touched (tested where each command's JSON is).
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from lutarterial.cli.main import app

runner = CliRunner()
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])", re.IGNORECASE)


def not_for_people(text: str) -> list[str]:
    """Number tokens with an exponent for an ordinary value, or more than 4 significant digits."""
    bad = []
    for tok in NUMBER.findall(text):
        plain = tok.replace(",", "")
        if "e" in plain.lower():
            if 1e-4 <= abs(float(plain)) < 1e15:
                bad.append(tok)
        elif "." in plain and len(plain.lstrip("-").replace(".", "").lstrip("0")) > 4:
            bad.append(tok)
    return bad


def test_the_checker_catches_the_old_formats():
    assert not_for_people("GMR 13.972 (1.0511e+05; 1.6e+03) 54.3776 100.02 Gy") == [
        "13.972", "1.0511e+05", "1.6e+03", "54.3776", "100.02"]
    assert not_for_people("7,400 MBq, 56.32 %, p 1.855e-12, BDX-005 2024-06-18, 0.0001316, 1,234") == []


def _ok(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.output


def test_pbpk_simulate_table():
    out = _ok(["pbpk", "simulate", "--route", "iah", "--nuclide", "Lu-177", "--activity-mbq", "7400",
               "--peptide-ug", "200"])
    assert "7,400 MBq" in out and "rest" in out
    assert not_for_people(out) == []


def test_pbpk_predict_summary():
    out = _ok(["pbpk", "predict", "--scenario", "lutia2024", "--n-virtual", "20"])
    assert "tn_gain" in out and "vs published tn_gain: published_mean 1.17, published_ci95 1-1.37" in out
    assert "{" not in out  # the comparison is no longer a raw JSON dict
    assert not_for_people(out) == []


def test_pbpk_fit_lines():
    from lutarterial.cli.pbpk import fit_lines

    pi = {"median": 3.17912, "pi90": [1.795512, 5.76321]}
    result = {"participant": "BDX-005", "analysis_id": 6, "source_analysis_id": 5,
              "iah_pet_prediction": {"tumour_right": {"iah_iv_ratio": pi}},
              "lesions": [{"name": "lesion 1", "suv_iv": 33.16342, "predicted_suv_iah": 105.4126,
                           "measured_suv_iah": 99.73411, "measured_over_predicted": 0.945912}],
              "absorbed_dose_gy": {"tumour_right": {"median": 100.0213, "pi90": [21.41123, 12345.678]}},
              "notes": ["a note"]}
    text = "\n".join(fit_lines(result))
    assert "IAH/IV tumour_right" in text and "3.179 (90% PI 1.796-5.763)" in text
    assert "100 Gy (90% PI 21.41-12,350)" in text and "note: a note" in text
    assert not_for_people(text) == []


def test_study_analyse_tables():
    from rich.console import Console

    from lutarterial.cli.studies import print_analysis

    doc = {"participant": "BDX-005",
           "per_voi": [{"voi": "lesion 1", "iv_suv_mean": 12345.678, "iah_suv_mean": 99.73411,
                        "ratio_suv_mean": 0.00808123}],
           "dosimetry": [{"voi": "lesion 1", "model": "mono", "teff_h": 1234.5, "dose_gy": 105.3456},
                         {"voi": "kidney left", "model": "mono", "teff_h": None, "dose_gy": 7.726}]}
    con = Console(record=True, width=200)
    print_analysis(doc, ["done"], con)
    text = con.export_text()
    for cell in ("12,350", "99.73", "0.008081", "1,234", "105.3", "7.726"):
        assert cell in text
    assert not_for_people(text) == []


def test_endpoint_text(tmp_path):
    rows = ["participant,voi,kind,iv_suv_mean,iah_suv_mean"]
    for i, (iv, iah) in enumerate([(1.1, 15.37), (1.3, 17.91), (0.9, 14.2), (1.2, 16.03), (1.05, 13.77)]):
        rows += [f"P{i},lesion 1,lesion,{iv},{iah}", f"P{i},lesion 2,lesion,{iv * 1.1:.3f},{iah * 0.97:.3f}"]
    csv = tmp_path / "lesions.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = _ok(["endpoint", "--lesions", str(csv), "--n-boot", "200"])
    assert "GMR 13." in out
    assert not_for_people(out) == []


@pytest.mark.parametrize(("lo", "hi", "shown"), [(1.0, 1.37, "1-1.37"), (21.41123, 12345.678, "21.41-12,350"),
                                                 (-0.5, 0.25, "-0.5 to 0.25")])
def test_human_range(lo, hi, shown):
    from lutarterial.cli.formatting import human_range

    assert human_range(lo, hi) == shown
