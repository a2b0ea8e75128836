"""The uptake endpoint's statistics against scipy / statsmodels on fixed data.

Tolerances: the same computation done by the reference library -> relative 1e-9 (t-tests) or
1e-6 (REML fits, optimiser-dependent); Monte Carlo comparisons state their own bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lutarterial.errors import InvalidInputError
from lutarterial.statistics.ratios import (
    LesionValue,
    analyse_ratios,
    build_log_ratios,
    cluster_bootstrap,
    mixed_model,
    primary_estimand,
)

# Fixed data: 6 participants, 1-4 lesions each (IV, IAH SUVmean).
FIXED = {
    "A": [(10.0, 14.0), (8.0, 11.5), (12.0, 20.0)],
    "B": [(5.0, 4.5)],
    "C": [(7.0, 6.0), (9.0, 8.0)],
    "D": [(15.0, 30.0), (11.0, 18.0), (6.0, 10.0), (9.0, 15.9)],
    "E": [(4.0, 5.2), (3.0, 3.7)],
    "F": [(20.0, 21.0), (18.0, 19.0)],
}


def rows(data=FIXED, kind="lesion"):
    return [LesionValue(p, f"L{i}", kind, iv, iah) for p, vals in data.items() for i, (iv, iah) in enumerate(vals)]


def logs(data=FIXED):
    return {p: [math.log(iah / iv) for iv, iah in vals] for p, vals in data.items()}


def test_primary_matches_scipy_t_on_patient_means():
    means = [np.mean(v) for v in logs().values()]
    ref = stats.ttest_1samp(means, 0.0)
    ci = ref.confidence_interval(0.95)
    out = primary_estimand(build_log_ratios(rows())[0])
    assert out["n_patients"] == 6 and out["n_lesions"] == 14
    assert out["gmr"] == pytest.approx(math.exp(np.mean(means)), rel=1e-12)
    assert out["ci95"] == pytest.approx([math.exp(ci.low), math.exp(ci.high)], rel=1e-9)
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_per_lesion_paired_matches_scipy_t_on_all_lesions():
    allv = [x for v in logs().values() for x in v]
    ref = stats.ttest_1samp(allv, 0.0)
    ci = ref.confidence_interval(0.95)
    out = analyse_ratios(rows(), n_boot=200)["per_lesion_paired"]
    assert out["gmr"] == pytest.approx(math.exp(np.mean(allv)), rel=1e-12)
    assert out["ci95"] == pytest.approx([math.exp(ci.low), math.exp(ci.high)], rel=1e-9)
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_mixed_model_matches_statsmodels_formula_api():
    import pandas as pd
    import statsmodels.formula.api as smf

    df = pd.DataFrame([{"p": p, "y": y} for p, v in logs().items() for y in v])
    ref = smf.mixedlm("y ~ 1", df, groups=df["p"]).fit(reml=True)
    out = mixed_model(build_log_ratios(rows())[0])
    assert out["converged"] is True and ref.cov_re.iloc[0, 0] > 0.01  # an interior solution
    lo, hi = ref.conf_int().iloc[0]
    assert out["gmr"] == pytest.approx(math.exp(ref.fe_params.iloc[0]), rel=1e-6)
    assert out["ci95"] == pytest.approx([math.exp(lo), math.exp(hi)], rel=1e-6)
    assert out["p_value"] == pytest.approx(ref.pvalues.iloc[0], rel=1e-5)
    assert out["patient_variance"] == pytest.approx(ref.cov_re.iloc[0, 0], rel=1e-5)
    assert out["residual_variance"] == pytest.approx(ref.scale, rel=1e-6)


def test_exclusions_listed_with_reasons_never_zero():
    data = [LesionValue("A", "L1", "lesion", 10, 12), LesionValue("A", "L2", "lesion", 0, 12),
            LesionValue("B", "L1", "lesion", 10, -1), LesionValue("B", "L2", "lesion", None, 3),
            LesionValue("B", "L3", "lesion", "abc", 3), LesionValue("C", "L1", "lesion", float("nan"), 3),
            LesionValue("C", "L2", "lesion", 5, float("inf")), LesionValue("C", "L3", "lesion", 5, 6),
            LesionValue("C", "liver", "liver", 0, 0)]  # other kind: not part of the lesion endpoint
    out = analyse_ratios(data, n_boot=200)
    reasons = {(e["participant"], e["voi"]): e["reason"] for e in out["excluded"]}
    assert reasons == {("A", "L2"): "IV not positive (0)", ("B", "L1"): "IAH not positive (-1)",
                       ("B", "L2"): "IV missing", ("B", "L3"): "IV not a number ('abc')",
                       ("C", "L1"): "IV not finite (nan)", ("C", "L2"): "IAH not finite (inf)"}
    assert out["n_patients"] == 2 and out["n_lesions"] == 2  # B has nothing left
    assert [r["participant"] for r in out["patients"]] == ["A", "C"]


def test_one_patient_has_estimate_but_no_interval_or_p():
    out = analyse_ratios(rows({"A": FIXED["A"]}), n_boot=200)
    assert out["n_patients"] == 1
    assert out["primary"]["gmr"] == pytest.approx(math.exp(np.mean(logs()["A"])))
    for key in ("primary", "per_lesion_paired", "mixed_model"):
        assert out[key]["ci95"] is None and out[key]["p_value"] is None and "reason" in out[key]
    assert out["mixed_model"]["converged"] is False and out["mixed_model"]["gmr"] is None
    assert out["bootstrap"]["percentile"]["ci95"] is None and out["bootstrap"]["bca"]["ci95"] is None
    assert "reason" in out["bootstrap"]


def test_one_lesion_and_no_lesion():
    out = analyse_ratios([LesionValue("A", "L1", "lesion", 2.0, 3.0)], n_boot=200)
    assert out["primary"]["gmr"] == pytest.approx(1.5) and out["primary"]["ci95"] is None
    assert out["patients"][0] == {"participant": "A", "n_lesions": 1, "gmr": pytest.approx(1.5),
                                          "min_ratio": pytest.approx(1.5), "max_ratio": pytest.approx(1.5)}
    empty = analyse_ratios([], n_boot=200)
    assert empty["n_patients"] == 0 and empty["primary"]["gmr"] is None
    assert empty["patients"] == []
    assert empty["primary"]["fraction_lesions_above_1"] == {"k": 0, "n": 0, "fraction": None, "ci95": None}


def test_one_lesion_per_patient_mixed_model_not_fitted_but_primary_is():
    out = analyse_ratios(rows({p: v[:1] for p, v in FIXED.items()}), n_boot=200)
    assert out["mixed_model"]["converged"] is False and out["mixed_model"]["gmr"] is None
    assert "not separable" in out["mixed_model"]["reason"]
    assert out["primary"]["ci95"] is not None


def test_fractions_above_one_strict():
    data = {"A": [(1.0, 2.0), (1.0, 1.0)], "B": [(2.0, 1.0)], "C": [(1.0, 1.0)]}
    p = analyse_ratios(rows(data), n_boot=200)["primary"]
    fl, fp = p["fraction_lesions_above_1"], p["fraction_patients_above_1"]
    assert set(fl) == set(fp) == {"k", "n", "fraction", "ci95"}
    assert (fl["k"], fl["n"]) == (1, 4) and fl["fraction"] == pytest.approx(1 / 4)  # a ratio of exactly 1 is not > 1
    assert (fp["k"], fp["n"]) == (1, 3) and fp["fraction"] == pytest.approx(1 / 3)
    # exact Clopper-Pearson from the beta quantiles (Clopper & Pearson 1934), tolerance 1e-9
    from scipy.stats import beta
    assert fl["ci95"] == pytest.approx([beta.ppf(0.025, 1, 4), beta.ppf(0.975, 2, 3)], abs=1e-9)
    assert fp["ci95"] == pytest.approx([beta.ppf(0.025, 1, 3), beta.ppf(0.975, 2, 2)], abs=1e-9)


def test_duplicate_voi_and_bad_kind_or_metric_refused():
    with pytest.raises(InvalidInputError, match="twice"):
        build_log_ratios([LesionValue("A", "L1", "lesion", 1, 2), LesionValue("A", "l1 ", "lesion", 1, 2)])
    with pytest.raises(InvalidInputError, match="kind"):
        build_log_ratios([], kind="brain")
    with pytest.raises(InvalidInputError, match="metric"):
        analyse_ratios([], metric="suv_mode")


def test_bootstrap_reproducible_and_seed_sensitive():
    lr = build_log_ratios(rows())[0]
    a = cluster_bootstrap(lr, n_boot=500, seed=7)
    assert a == cluster_bootstrap(lr, n_boot=500, seed=7)
    assert a["percentile"] != cluster_bootstrap(lr, n_boot=500, seed=8)["percentile"]
    for bad in (10, 99, 200_001, 150.5):
        with pytest.raises(InvalidInputError):
            cluster_bootstrap(lr, n_boot=bad)
    assert cluster_bootstrap(lr, n_boot=100)["n_boot"] == 100
    with pytest.raises(InvalidInputError, match="seed"):
        cluster_bootstrap(lr, n_boot=100, seed=-1)


def test_bca_and_percentile_match_scipy_bootstrap_iid():
    """One lesion per participant = i.i.d. data: our intervals vs scipy.stats.bootstrap.

    Different random draws, so they agree to Monte Carlo error: 20,000 resamples put the 2.5%
    and 97.5% quantiles within ~0.005 on the log scale; bound 0.015 (3x).
    """
    rng = np.random.default_rng(11)
    y = rng.lognormal(0.0, 0.4, size=30) ** 1.5  # skewed so BCa differs from percentile
    lr = build_log_ratios([LesionValue(f"P{i:02d}", "L", "lesion", 1.0, float(math.exp(v)))
                           for i, v in enumerate(y)])[0]
    ours = cluster_bootstrap(lr, n_boot=20000, seed=3)
    for method in ("BCa", "percentile"):
        ref = stats.bootstrap((y,), np.mean, n_resamples=20000, method=method, random_state=5).confidence_interval
        got = ours["bca" if method == "BCa" else "percentile"]["ci95"]
        assert math.log(got[0]) == pytest.approx(ref.low, abs=0.015)
        assert math.log(got[1]) == pytest.approx(ref.high, abs=0.015)
    assert ours["bca"]["ci95"] != ours["percentile"]["ci95"]


@pytest.mark.parametrize("true_gmr", [1.2])
def test_primary_ci_coverage_lutia_like(true_gmr):
    """27 participants, 1-6 lesions each, random patient effect + lesion noise, 400 simulations.

    Nominal 95%; with 400 simulations the binomial SD is 1.1 percentage points, so coverage
    must lie in [0.917, 0.983] (3 SD). Seeded: deterministic.
    """
    rng = np.random.default_rng(2024)
    hits = 0
    n_sims = 400
    for _ in range(n_sims):
        data = []
        for p in range(27):
            u = rng.normal(math.log(true_gmr), 0.25)
            for k in range(int(rng.integers(1, 7))):
                iv = float(rng.uniform(3, 20))
                data.append(LesionValue(f"P{p}", f"L{k}", "lesion", iv, iv * math.exp(u + rng.normal(0, 0.3))))
        ci = primary_estimand(build_log_ratios(data)[0])["ci95"]
        hits += ci[0] <= true_gmr <= ci[1]
    assert 0.917 <= hits / n_sims <= 0.983, hits / n_sims


def test_mixed_model_not_converged_reports_no_number(monkeypatch):
    """An optimiser stopped after one iteration does not converge: converged false, every number null."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    original = MixedLM.fit

    def one_iteration(self, *args, **kwargs):
        kwargs.update(maxiter=1, method=["lbfgs"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MixedLM, "fit", one_iteration)
    out = analyse_ratios(rows(), n_boot=200)["mixed_model"]
    assert out["converged"] is False and "did not converge" in out["reason"]
    for key in ("gmr", "ci95", "p_value", "patient_variance", "residual_variance"):
        assert out[key] is None
    assert any("converge" in w for w in out["warnings"])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_pos = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from([f"P{i}" for i in range(8)]),
                       st.lists(st.tuples(_pos, _pos), min_size=1, max_size=5), min_size=2, max_size=8))
def test_primary_and_per_lesion_equal_scipy_on_any_positive_data(data):
    """Any positive data: primary and per-lesion results are scipy's t-tests (or null with a reason)."""
    lr = build_log_ratios(rows(data))[0]
    out = primary_estimand(lr)
    means = [float(np.mean(v)) for _, v in sorted(logs(data).items())]
    assert out["gmr"] == pytest.approx(math.exp(np.mean(means)), rel=1e-9)
    if out["ci95"] is None:
        assert out["reason"] and out["p_value"] is None
    else:
        ref = stats.ttest_1samp(means, 0.0)
        ci = ref.confidence_interval(0.95)
        assert out["ci95"] == pytest.approx([math.exp(ci.low), math.exp(ci.high)], rel=1e-7)
        assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
        assert out["ci95"][0] <= out["gmr"] <= out["ci95"][1]
