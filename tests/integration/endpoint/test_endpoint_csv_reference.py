"""``lutarterial endpoint --lesions FILE.csv --json`` against scipy / statsmodels on fixed, hostile CSVs.

The reference is computed here, independently of ``lutarterial.statistics``: from the raw numbers
written into the CSV (the invalid cells known by construction) with pandas,
``scipy.stats.ttest_1samp`` on the per-participant means (primary), ``scipy.stats.ttest_rel`` on
(log IAH, log IV) (per-lesion paired) and ``statsmodels.formula.api.mixedlm("logratio ~ 1",
df, groups=df["participant"]).fit(reml=True)`` (Wald CI from ``conf_int()``, p from ``pvalues``).

Tolerances: t-tests relative 1e-9 (the JSON keeps 12 significant digits); REML fits relative 1e-6
on the GMR and its CI and 1e-5 on p and the variances (same optimiser, groups possibly ordered
differently). The CSVs carry a BOM, Windows line endings, whitespace around cells, unused metric
columns, blank lines, other kinds, and blank / ``NA`` / zero / negative values (excluded, listed).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lutarterial.cli.main import run

BAD = ("", "NA", "0", "-3.2", " na ", "n/a")


def _dataset(seed: int, sizes: list[int], true_log: float, sd_patient: float, sd_lesion: float,
             n_bad: int) -> list[dict]:
    """Rows with iv/iah SUVmean (floats) and, for ``n_bad`` of them, one invalid cell (text)."""
    rng = np.random.default_rng(seed)
    out = []
    for p, n in enumerate(sizes):
        u = rng.normal(0, sd_patient)
        for v in range(n):
            iv = float(np.round(rng.lognormal(2.5, 0.5), 3))
            iah = float(np.round(iv * math.exp(true_log + u + rng.normal(0, sd_lesion)), 3))
            out.append({"participant": f"P{p + 1:02d}", "voi": f"lesion {v + 1}", "kind": "lesion",
                        "iv": iv, "iah": iah, "bad": None})
    for j, i in enumerate(rng.choice(len(out), size=n_bad, replace=False)):
        out[int(i)]["bad"] = ("iv" if j % 2 else "iah", BAD[j % len(BAD)])
    return out


def _write_hostile_csv(path: Path, data: list[dict]) -> None:
    cols = [" participant ", "voi", "Kind", "iv_suv_max", "iv_suv_mean ", "iah_suv_mean", "iah_suv_max", "note"]
    lines = [",".join(cols)]
    for k, r in enumerate(data):
        iv, iah = f"{r['iv']!r}", f"{r['iah']!r}"
        if r["bad"]:
            iv, iah = (r["bad"][1], iah) if r["bad"][0] == "iv" else (iv, r["bad"][1])
        lines.append(f"  {r['participant']} , {r['voi']},{'LESION' if k % 3 == 0 else 'lesion'} ,"
                     f"{r['iv'] * 2:.2f},  {iv} ,{iah},, free text")
        if k % 4 == 0:
            lines.append(f"{r['participant']},healthy liver {k},liver,1,0,2,3,")  # another kind: not analysed
        if k % 5 == 0:
            lines.append("")  # blank line
            lines.append(",,,,,,,")  # empty row
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))


def _cli_json(capsys: pytest.CaptureFixture[str], path: Path) -> dict:
    try:
        run(["endpoint", "--lesions", str(path), "--json", "--n-boot", "200"])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _reference(data: list[dict]) -> dict:
    ok = [r for r in data if not r["bad"]]
    df = pd.DataFrame({"participant": [r["participant"] for r in ok],
                       "log_iv": np.log([r["iv"] for r in ok]), "log_iah": np.log([r["iah"] for r in ok])})
    df["logratio"] = df["log_iah"] - df["log_iv"]
    means = df.groupby("participant")["logratio"].mean()
    prim = stats.ttest_1samp(means.to_numpy(), 0.0)
    pair = stats.ttest_rel(df["log_iah"], df["log_iv"])
    ref = {"n_patients": int(means.size), "n_lesions": len(df), "n_excluded": len(data) - len(ok),
           "primary": (math.exp(means.mean()), [math.exp(x) for x in prim.confidence_interval(0.95)], prim.pvalue),
           "paired": (math.exp(df["logratio"].mean()), [math.exp(x) for x in pair.confidence_interval(0.95)],
                      pair.pvalue),
           "means": means}
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("logratio ~ 1", df, groups=df["participant"]).fit(reml=True)
    lo, hi = fit.conf_int().loc["Intercept"]
    ref["mixed"] = (fit.converged, math.exp(fit.fe_params["Intercept"]), [math.exp(lo), math.exp(hi)],
                    float(fit.pvalues["Intercept"]), float(fit.cov_re.iloc[0, 0]), float(fit.scale))
    return ref


DATASETS = {
    # name: (seed, lesions per participant, true log GMR, SD between participants, SD within, invalid cells)
    "lutia_like_unbalanced": (11, [1, 3, 6, 2, 1, 4, 5, 1, 2, 3, 6, 1, 2, 4, 3, 1, 2, 5, 3, 1, 2, 4, 1, 3, 2, 6, 1],
                              math.log(1.17), 0.15, 0.25, 6),
    "kratochwil_like_large_gain": (5, [4, 2, 1, 5, 3, 2, 1, 4], math.log(3.75), 0.4, 0.3, 3),
    "few_patients_one_lesion_each_but_one": (23, [1, 1, 3, 1], math.log(1.4), 0.2, 0.2, 0),
    "no_effect_strong_clustering": (31, [3, 5, 2, 4, 3, 6, 2, 3, 4, 2], 0.0, 0.5, 0.1, 4),
    # no patient variance: statsmodels' first optimiser (bfgs) fails, the lbfgs retry converges at the
    # boundary; statsmodels reports the fit, so must the CLI (with the optimiser warnings listed)
    "boundary_optimizer_retry": (16, [2, 6, 3, 1, 3, 2, 4, 2, 3, 2, 3, 4, 6, 1, 4, 2, 5, 1, 5, 3], 0.2, 0.0, 0.05, 0),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_cli_matches_scipy_and_statsmodels(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = _dataset(*DATASETS[name])
    f = tmp_path / f"{name}.csv"
    _write_hostile_csv(f, data)
    res, ref = _cli_json(capsys, f), _reference(data)

    assert (res["n_patients"], res["n_lesions"], len(res["excluded"])) == (
        ref["n_patients"], ref["n_lesions"], ref["n_excluded"])
    bad = {(r["participant"], r["voi"]) for r in data if r["bad"]}
    assert {(e["participant"], e["voi"]) for e in res["excluded"]} == bad
    assert all(e["reason"] and e["kind"] == "lesion" for e in res["excluded"])

    gmr, ci, p = ref["primary"]
    assert res["primary"]["gmr"] == pytest.approx(gmr, rel=1e-9)
    assert res["primary"]["ci95"] == pytest.approx(ci, rel=1e-9)
    assert res["primary"]["p_value"] == pytest.approx(p, rel=1e-9)
    gmr, ci, p = ref["paired"]
    assert res["per_lesion_paired"]["gmr"] == pytest.approx(gmr, rel=1e-9)
    assert res["per_lesion_paired"]["ci95"] == pytest.approx(ci, rel=1e-9)
    assert res["per_lesion_paired"]["p_value"] == pytest.approx(p, rel=1e-9)

    rows = {r["participant"]: r for r in res["patients"]}
    assert list(rows) == sorted(ref["means"].index)
    for pid, m in ref["means"].items():
        assert rows[pid]["gmr"] == pytest.approx(math.exp(m), rel=1e-9)

    converged, gmr, ci, p, var_p, var_r = ref["mixed"]
    mm = res["mixed_model"]
    assert converged, "reference fit did not converge: choose another dataset"
    assert mm["converged"] is True, mm
    assert mm["gmr"] == pytest.approx(gmr, rel=1e-6)
    assert mm["ci95"] == pytest.approx(ci, rel=1e-6)
    assert mm["p_value"] == pytest.approx(p, rel=1e-5, abs=1e-12)
    assert mm["patient_variance"] == pytest.approx(var_p, rel=1e-5, abs=1e-8)
    assert mm["residual_variance"] == pytest.approx(var_r, rel=1e-5)
    if name == "boundary_optimizer_retry":
        assert any("Retrying" in w for w in mm["warnings"])


def test_reference_test_can_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Guard: a changed value in the CSV moves the CLI's answer away from the reference."""
    data = _dataset(*DATASETS["kratochwil_like_large_gain"])
    f = tmp_path / "x.csv"
    _write_hostile_csv(f, data)
    ok = next(r for r in data if not r["bad"])
    ok["iah"] *= 1.5  # the reference sees a different number than the file
    assert _cli_json(capsys, f)["primary"]["gmr"] != pytest.approx(_reference(data)["primary"][0], rel=1e-6)


def _err(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    with pytest.raises(SystemExit) as exc:
        run(["endpoint", "--lesions", str(path), "--json", "--n-boot", "200"])
    cap = capsys.readouterr()
    assert exc.value.code == 2 and "Traceback" not in cap.err and not cap.out
    return cap.err


HEAD = "participant,voi,kind,iv_suv_mean,iah_suv_mean\n"


@pytest.mark.parametrize(("text", "message"), [
    ("participant;voi;kind;iv_suv_mean;iah_suv_mean\nA;L1;lesion;1,5;2\n", "separated by semicolons"),
    ("participant\tvoi\tkind\tiv_suv_mean\tiah_suv_mean\nA\tL1\tlesion\t1\t2\n", "separated by tabs"),
    (HEAD + "A,L1,lesion,1,5,2\n", "6 cells but the header has 5"),  # unquoted decimal comma
    (HEAD + "A,L1,lesion,1,2\nA, l1 ,LESION,1,3\n", "line 3: participant 'A' VOI 'l1' already given on line 2"),
    (HEAD + "A,L1,lesion,1,2\nA,L1,liver,1,3\n", "already given on line 2"),  # same VOI, other kind
    ("participant,voi,kind,iv_suv_mean,iah_suv_mean,IV_SUV_MEAN\nA,L1,lesion,1,2,3\n", "given twice"),
    (HEAD + ",L1,lesion,1,2\n", "line 2: participant and voi are required"),
    (HEAD + "BDX-001,L1,lesion,1,2\nbdx-001,L2,lesion,1,3\n", "line 3: participant 'bdx-001' differs from 'BDX-001'"),
    (HEAD + "A,L1,tumour,1,2\n", "line 2: kind 'tumour'"),
    ("", "empty file"),
    ("participant,voi,kind,iv_tnr,iah_tnr\nA,L1,lesion,1,2\n", "metrics in the file: tnr"),
])
def test_refused_with_a_clear_error(text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "bad.csv"
    f.write_text(text, encoding="utf-8")
    assert message in _err(capsys, f)


def test_not_utf8_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "latin1.csv"
    f.write_bytes((HEAD + "Zoé,L1,lesion,1,2\n").encode("latin-1"))
    assert "not UTF-8" in _err(capsys, f)


def test_quoted_decimal_comma_and_short_row_are_excluded_not_misread(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "q.csv"
    f.write_text(HEAD + 'A,L1,lesion,"1,5",2\nA,L2,lesion,2\nA,L3,lesion,2,3\nB,L1,lesion,2,4\n', encoding="utf-8")
    res = _cli_json(capsys, f)
    assert {(e["voi"], e["reason"]) for e in res["excluded"]} == {("L1", "IV not a number ('1,5')"),
                                                                 ("L2", "IAH missing")}
    assert res["n_lesions"] == 2 and res["patients"][0]["gmr"] == pytest.approx(1.5)
