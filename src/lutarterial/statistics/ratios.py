"""The IAH/IV uptake endpoint: per-lesion log ratios pooled over participants.

Lesions are nested in participants, so the **primary** estimand is patient-level: for each
participant the mean of ``log(IAH/IV)`` over its lesions; across participants a one-sample
t-test of those means against 0. ``gmr = exp(mean)`` is the geometric mean ratio of the typical
participant, its 95% CI the exponentiated t-interval. Sensitivity analyses, each named:

* ``mixed_model`` — ``log ratio ~ 1 + (1 | participant)``, statsmodels ``MixedLM`` fitted by
  REML; Wald CI and p from the fixed intercept. A fit that does not converge reports
  ``converged: false`` and no number.
* ``per_lesion_paired`` — one-sample t-test over all lesion log ratios, treating lesions as
  independent (comparable with LUTIA, Ebbers et al. EJNMMI 2024, which reported 1.17,
  95% CI 1.00–1.37); it overstates precision when lesions of a participant are alike.
* ``bootstrap`` — participants (clusters) resampled with replacement, the primary statistic
  recomputed (mean of participant means); percentile and BCa intervals (Efron 1987; the
  acceleration from the jackknife over participants), drawn by ``numpy.random.default_rng(seed)``.

A value that is missing, not a number, not finite or not positive on either route excludes the
lesion, listed with the reason; it is never read as 0. Fewer than two participants: intervals
and p-values are ``None`` with a ``reason``.

``primary`` also holds ``fraction_lesions_above_1`` and ``fraction_patients_above_1`` (ratio,
resp. participant GMR, strictly above 1; ``{"k", "n", "fraction", "ci95"}`` with exact
Clopper–Pearson intervals); ``patients`` is a list of one row per participant.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lutarterial.errors import InvalidInputError
from lutarterial.statistics.exact import clopper_pearson

__all__ = [
    "METRICS",
    "KINDS",
    "OTHER_METRICS",
    "LesionValue",
    "Exclusion",
    "LogRatio",
    "build_log_ratios",
    "primary_estimand",
    "mixed_model",
    "per_lesion_paired",
    "cluster_bootstrap",
    "patient_rows",
    "fractions_above_1",
    "analyse_ratios",
    "DEFAULT_SEED",
    "DEFAULT_N_BOOT",
]

METRICS = ("suv_mean", "suv_max", "suv_peak", "tnr", "percent_ia")
#: Metrics accepted by :func:`analyse_ratios` besides the uptake metrics (secondary endpoints).
OTHER_METRICS = ("gy_per_gbq",)
KINDS = ("lesion", "extrahepatic", "liver", "spleen", "kidney", "marrow")
DEFAULT_SEED = 20240601
DEFAULT_N_BOOT = 10000
#: Upper bound of the resamples (the index matrix is n_boot x participants, held in memory).
MAX_N_BOOT = 200_000
_FEW = "fewer than 2 participants: no interval or p-value"


@dataclass(frozen=True)
class LesionValue:
    """One VOI's metric on both routes as read (values may be ``None``, text or numbers)."""

    participant: str
    voi: str
    kind: str
    iv: Any
    iah: Any


@dataclass(frozen=True)
class Exclusion:
    participant: str
    voi: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"participant": self.participant, "voi": self.voi, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class LogRatio:
    participant: str
    voi: str
    kind: str
    iv: float
    iah: float
    log_ratio: float

    @property
    def ratio(self) -> float:
        return self.iah / self.iv


def _problem(x: Any) -> tuple[float | None, str | None]:
    """(value, None) for a usable value, else (None, what is wrong with it)."""
    if x is None or (isinstance(x, str) and not x.strip()):
        return None, "missing"
    if isinstance(x, bool):
        return None, f"not a number ({x!r})"
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None, f"not a number ({str(x)!r})"
    if not math.isfinite(f):
        return None, f"not finite ({f})"
    if f <= 0:
        return None, f"not positive ({f:g})"
    return f, None


def build_log_ratios(rows: Iterable[LesionValue], *, kind: str = "lesion") -> tuple[list[LogRatio], list[Exclusion]]:
    """Log ratios of the rows of ``kind``; others of that kind excluded with the reason.

    Rows of another kind are not part of this endpoint and are neither used nor listed.
    A participant/VOI pair given twice is an input error (which one would count?).
    """
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InvalidInputError(f"kind {kind!r}; valid: {', '.join(KINDS)}")
    seen: set[tuple[str, str]] = set()
    included: list[LogRatio] = []
    excluded: list[Exclusion] = []
    for r in rows:
        if r.kind.strip().lower() != kind:
            continue
        key = (r.participant, " ".join(r.voi.lower().split()))
        if key in seen:
            raise InvalidInputError(f"VOI {r.voi!r} of participant {r.participant!r} appears twice")
        seen.add(key)
        iv, why_iv = _problem(r.iv)
        iah, why_iah = _problem(r.iah)
        reasons = [f"IV {why_iv}" for _ in [0] if why_iv] + [f"IAH {why_iah}" for _ in [0] if why_iah]
        if reasons:
            excluded.append(Exclusion(r.participant, r.voi, kind, "; ".join(reasons)))
            continue
        assert iv is not None and iah is not None
        included.append(LogRatio(r.participant, r.voi, kind, iv, iah, math.log(iah) - math.log(iv)))
    included.sort(key=lambda x: (x.participant, x.voi))
    excluded.sort(key=lambda x: (x.participant, x.voi))
    return included, excluded


def _by_patient(lr: Sequence[LogRatio]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for x in lr:
        out[x.participant].append(x.log_ratio)
    return dict(sorted(out.items()))


def _exp(x: float | None) -> float | None:
    return None if x is None else math.exp(x)


def _t_test(values: Sequence[float], n_patients: int) -> dict[str, Any]:
    """One-sample t-test of ``values`` against 0 on the log scale, reported as ratios."""
    v = np.asarray(values, dtype=float)
    n = v.size
    out: dict[str, Any] = {"gmr": None, "ci95": None, "p_value": None, "mean_log": None, "se_log": None,
                           "df": None, "t": None}
    if n == 0:
        out["reason"] = "no usable values"
        return out
    m = float(v.mean())
    out.update(gmr=math.exp(m), mean_log=m)
    if n_patients < 2:
        out["reason"] = _FEW
        return out
    if n < 2:
        out["reason"] = "fewer than 2 values: no interval or p-value"
        return out
    sd = float(v.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(m)):  # identical values (up to rounding)
        out.update(se_log=0.0, df=n - 1, reason="all values equal: the t-test is undefined")
        return out
    from scipy import stats

    res = stats.ttest_1samp(v, 0.0)
    ci = res.confidence_interval(0.95)
    out.update(ci95=[math.exp(float(ci.low)), math.exp(float(ci.high))], p_value=float(res.pvalue),
               se_log=sd / math.sqrt(n), df=n - 1, t=float(res.statistic))
    return out


def primary_estimand(lr: Sequence[LogRatio]) -> dict[str, Any]:
    """Patient-level estimand: t-test of the participants' mean log ratios against 0."""
    groups = _by_patient(lr)
    means = [float(np.mean(v)) for v in groups.values()]
    out = _t_test(means, len(groups))
    out.update(n_patients=len(groups), n_lesions=len(lr),
               method="one-sample t-test of per-participant mean log(IAH/IV) against 0; gmr = exp(mean)")
    return out


def per_lesion_paired(lr: Sequence[LogRatio]) -> dict[str, Any]:
    """One-sample t-test over all lesion log ratios (lesions treated as independent)."""
    out = _t_test([x.log_ratio for x in lr], len(_by_patient(lr)))
    out.update(n_lesions=len(lr), method="one-sample t-test of all lesion log(IAH/IV) against 0 "
                                          "(paired per lesion; ignores clustering in participants)")
    return out


def mixed_model(lr: Sequence[LogRatio]) -> dict[str, Any]:
    """Random-intercept model of the log ratio (statsmodels MixedLM, REML, default optimisers)."""
    groups = _by_patient(lr)
    out: dict[str, Any] = {"gmr": None, "ci95": None, "p_value": None, "patient_variance": None,
                           "residual_variance": None, "converged": False, "n_patients": len(groups),
                           "n_lesions": len(lr),
                           "method": "log(IAH/IV) ~ 1 + (1 | participant), statsmodels MixedLM, REML; Wald 95% CI"}
    if len(groups) < 2:
        out["reason"] = _FEW + " (model not fitted)"
        return out
    if len(lr) == len(groups):
        out["reason"] = ("every participant has one value: patient and residual variance are not "
                         "separable (model not fitted)")
        return out
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    y = np.array([x.log_ratio for x in lr])
    g = np.array([x.participant for x in lr])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = MixedLM(y, np.ones((len(y), 1)), groups=g).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as exc:
            out["reason"] = f"model fit failed: {exc}"
            return out
    notes = sorted({str(w.message).splitlines()[0] for w in caught if issubclass(w.category, ConvergenceWarning)})
    fe, se = float(res.fe_params[0]), float(res.bse_fe[0])
    # statsmodels retries with other optimisers when the first fails (a ConvergenceWarning is
    # still issued); ``res.converged`` is the final optimiser's verdict, as in statsmodels' summary.
    failed = not bool(res.converged)
    if notes:
        out["warnings"] = notes
    if failed:
        out["reason"] = "the REML optimisation did not converge; no estimate is reported"
        return out
    if not (math.isfinite(fe) and math.isfinite(se) and se > 0):
        out["reason"] = "no valid standard error (Hessian not positive definite); no estimate is reported"
        return out
    from scipy.stats import norm

    lo, hi = (float(x) for x in np.asarray(res.conf_int(alpha=0.05))[0])
    out.update(gmr=math.exp(fe), ci95=[math.exp(lo), math.exp(hi)], p_value=float(2 * norm.sf(abs(fe / se))),
               patient_variance=float(np.asarray(res.cov_re)[0, 0]), residual_variance=float(res.scale),
               converged=True, mean_log=fe, se_log=se)
    if out["patient_variance"] is not None and out["patient_variance"] <= 1e-10:
        out["note"] = "patient variance estimated at the boundary (0): lesions of a participant are no more alike"
    return out


def _percentile_of_score(a: np.ndarray, score: float) -> float:
    return float(((a < score).sum() + (a <= score).sum()) / (2 * a.size))


def cluster_bootstrap(lr: Sequence[LogRatio], *, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
                      confidence: float = 0.95) -> dict[str, Any]:
    """Participants resampled with replacement; percentile and BCa intervals of the primary GMR.

    The statistic is the mean of the participants' mean log ratios (each resampled participant
    brings all its lesions). BCa: bias correction ``z0`` from the share of bootstrap statistics
    below the estimate (ties count half), acceleration ``a`` from the jackknife over participants
    (Efron & Tibshirani 1993, §14.3). The interval is computed on the log scale and exponentiated
    (percentile-type intervals are transformation-respecting).
    """
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or not 100 <= n_boot <= MAX_N_BOOT:
        raise InvalidInputError(f"n_boot must be a whole number from 100 to {MAX_N_BOOT}")
    n_boot = int(n_boot)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise InvalidInputError("seed must be a whole number >= 0")
    groups = _by_patient(lr)
    out: dict[str, Any] = {"percentile": {"ci95": None}, "bca": {"ci95": None}, "n_boot": n_boot, "seed": int(seed),
                           "gmr": None, "method": "participants resampled with replacement "
                                                  "(numpy default_rng); statistic: mean of participant mean log ratios"}
    means = np.array([float(np.mean(v)) for v in groups.values()])
    n = means.size
    if n:
        out["gmr"] = math.exp(float(means.mean()))
    if n < 2:
        out["reason"] = _FEW
        return out
    if n < 10:
        out["note"] = (f"only {n} participants: the bootstrap distribution takes few distinct values and its "
                       "intervals are unreliable")
    rng = np.random.default_rng(int(seed))
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = means[idx].mean(axis=1)
    theta = float(means.mean())
    alpha = (1 - confidence) / 2
    pct = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
    out["percentile"] = {"ci95": [math.exp(float(pct[0])), math.exp(float(pct[1]))]}
    from scipy.special import ndtr, ndtri

    p0 = _percentile_of_score(boot, theta)
    jack = (means.sum() - means) / (n - 1)
    d = jack.mean() - jack
    den = 6.0 * float((d ** 2).sum()) ** 1.5
    if not 0 < p0 < 1 or den == 0:
        out["bca"] = {"ci95": None, "reason": "degenerate bootstrap distribution: BCa undefined"}
        return out
    z0 = float(ndtri(p0))
    a = float((d ** 3).sum()) / den
    adj = []
    for q in (alpha, 1 - alpha):
        zq = float(ndtri(q))
        adj.append(float(ndtr(z0 + (z0 + zq) / (1 - a * (z0 + zq)))))
    bca = np.percentile(boot, [100 * adj[0], 100 * adj[1]])
    out["bca"] = {"ci95": [math.exp(float(bca[0])), math.exp(float(bca[1]))], "z0": z0, "acceleration": a,
                  "adjusted_levels": adj}
    return out


def patient_rows(lr: Sequence[LogRatio]) -> list[dict[str, Any]]:
    """One row per participant: ``participant``, ``n_lesions``, ``gmr``, ``min_ratio``, ``max_ratio``."""
    rows = []
    for p, vals in _by_patient(lr).items():
        ratios = [math.exp(v) for v in vals]
        rows.append({"participant": p, "n_lesions": len(vals), "gmr": math.exp(float(np.mean(vals))),
                     "min_ratio": min(ratios), "max_ratio": max(ratios)})
    return rows


def _fraction(k: int, n: int) -> dict[str, Any]:
    """``{"k", "n", "fraction", "ci95"}``; exact Clopper–Pearson 95% CI (``None`` when ``n == 0``)."""
    ci = clopper_pearson(k, n)
    return {"k": ci.k, "n": ci.n, "fraction": ci.proportion, "ci95": list(ci.ci95) if ci.ci95 else None}


def fractions_above_1(lr: Sequence[LogRatio]) -> dict[str, dict[str, Any]]:
    """Shares (strictly > 1) of lesion ratios and of participant GMRs, with exact Clopper–Pearson CIs."""
    groups = _by_patient(lr)
    k_les = sum(1 for x in lr if x.log_ratio > 0)
    k_pat = sum(1 for v in groups.values() if float(np.mean(v)) > 0)
    return {"fraction_lesions_above_1": _fraction(k_les, len(lr)),
            "fraction_patients_above_1": _fraction(k_pat, len(groups))}


def analyse_ratios(rows: Iterable[LesionValue], *, metric: str = "suv_mean", kind: str = "lesion",
                   seed: int = DEFAULT_SEED, n_boot: int = DEFAULT_N_BOOT,
                   extra_exclusions: Sequence[Exclusion] = ()) -> dict[str, Any]:
    """Every statistic of the endpoint as one JSON-ready dict (keys: see module docstring)."""
    if metric not in METRICS and metric not in OTHER_METRICS:
        raise InvalidInputError(f"metric {metric!r}; valid: {', '.join(METRICS)}")
    lr, excluded = build_log_ratios(rows, kind=kind)
    excluded = sorted([*excluded, *extra_exclusions], key=lambda x: (x.participant, x.voi, x.reason))
    return {
        "metric": metric,
        "kind": kind,
        "n_patients": len(_by_patient(lr)),
        "n_lesions": len(lr),
        "excluded": [e.to_dict() for e in excluded],
        "primary": {**primary_estimand(lr), **fractions_above_1(lr)},
        "mixed_model": mixed_model(lr),
        "per_lesion_paired": per_lesion_paired(lr),
        "bootstrap": cluster_bootstrap(lr, n_boot=n_boot, seed=seed),
        "patients": patient_rows(lr),
    }
