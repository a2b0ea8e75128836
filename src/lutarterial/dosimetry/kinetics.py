"""Time-activity curves: exponential fits, AICc model choice, time-integrated activity (TIA).

Why: the absorbed dose is proportional to the TIA (the area under the activity curve from
injection to infinity), so the TIA and its uncertainty are the core of every dose number.

Models (t in hours from the start of administration, activity in MBq; names as in NUKFIT,
Kletting et al., Med Phys 2013;40:102504):

* ``mono``        A1 e^(-l1 t)                                  (2 parameters)
* ``mono_uptake`` A1 (e^(-l1 t) - e^(-l2 t)), l2 > l1            (3: washout with uptake phase)
* ``bi``          A1 e^(-l1 t) + A2 e^(-l2 t)                   (4)
* ``tri_uptake``  A1 e^(-l1 t) + A2 e^(-l2 t) - (A1+A2) e^(-l3 t) (5: bi-exponential with uptake)

The TIA of a sum of exponentials is the sum of A_i / l_i (integration 0 -> infinity); its
standard deviation comes from the fit covariance by the delta method, sd^2 = g^T C g with g the
analytic gradient. The model is chosen by the corrected Akaike criterion (AICc), among models
with fewer parameters than points (and n - k - 1 > 0, where AICc is defined).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lutarterial.errors import InvalidInputError

__all__ = [
    "MODELS",
    "FitResult",
    "fit_model",
    "fit_tac",
    "aicc",
    "tia_trapezoid_physical_tail",
    "tia_hanscheid2018",
    "tia_madsen2018",
    "validate_tac",
]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class _Model:
    name: str
    n_params: int
    func: Callable[..., np.ndarray]
    tia: Callable[[np.ndarray], float]
    tia_grad: Callable[[np.ndarray], np.ndarray]
    # rates used to report the effective half-life (slowest washout) and for sanity checks
    washout_rates: Callable[[np.ndarray], list[float]]
    amplitudes: Callable[[np.ndarray], list[float]]


def _mono(t: np.ndarray, a1: float, l1: float) -> np.ndarray:
    return a1 * np.exp(-l1 * t)


def _mono_uptake(t: np.ndarray, a1: float, l1: float, l2: float) -> np.ndarray:
    return a1 * (np.exp(-l1 * t) - np.exp(-l2 * t))


def _bi(t: np.ndarray, a1: float, l1: float, a2: float, l2: float) -> np.ndarray:
    return a1 * np.exp(-l1 * t) + a2 * np.exp(-l2 * t)


def _tri_uptake(t: np.ndarray, a1: float, l1: float, a2: float, l2: float, l3: float) -> np.ndarray:
    return a1 * np.exp(-l1 * t) + a2 * np.exp(-l2 * t) - (a1 + a2) * np.exp(-l3 * t)


MODELS: dict[str, _Model] = {
    "mono": _Model(
        "mono", 2, _mono,
        tia=lambda p: p[0] / p[1],
        tia_grad=lambda p: np.array([1 / p[1], -p[0] / p[1] ** 2]),
        washout_rates=lambda p: [p[1]],
        amplitudes=lambda p: [p[0]],
    ),
    "mono_uptake": _Model(
        "mono_uptake", 3, _mono_uptake,
        tia=lambda p: p[0] * (1 / p[1] - 1 / p[2]),
        tia_grad=lambda p: np.array([1 / p[1] - 1 / p[2], -p[0] / p[1] ** 2, p[0] / p[2] ** 2]),
        washout_rates=lambda p: [p[1]],
        amplitudes=lambda p: [p[0]],
    ),
    "bi": _Model(
        "bi", 4, _bi,
        tia=lambda p: p[0] / p[1] + p[2] / p[3],
        tia_grad=lambda p: np.array([1 / p[1], -p[0] / p[1] ** 2, 1 / p[3], -p[2] / p[3] ** 2]),
        washout_rates=lambda p: [p[1], p[3]],
        amplitudes=lambda p: [p[0], p[2]],
    ),
    "tri_uptake": _Model(
        "tri_uptake", 5, _tri_uptake,
        tia=lambda p: p[0] / p[1] + p[2] / p[3] - (p[0] + p[2]) / p[4],
        tia_grad=lambda p: np.array([
            1 / p[1] - 1 / p[4], -p[0] / p[1] ** 2, 1 / p[3] - 1 / p[4], -p[2] / p[3] ** 2,
            (p[0] + p[2]) / p[4] ** 2,
        ]),
        washout_rates=lambda p: [p[1], p[3]],
        amplitudes=lambda p: [p[0], p[2]],
    ),
}


@dataclass(frozen=True)
class FitResult:
    """One fitted (or integrated) time-activity curve."""

    model: str
    params: tuple[float, ...]
    tia_mbq_h: float
    tia_sd_mbq_h: float | None
    teff_h: float | None
    aicc: float | None
    rss: float
    n_points: int
    warnings: tuple[str, ...] = field(default_factory=tuple)
    candidates: tuple[tuple[str, float | None], ...] = field(default_factory=tuple)

    def activity_mbq(self, time_h: np.ndarray | float) -> np.ndarray:
        t = np.asarray(time_h, dtype=float)
        return MODELS[self.model].func(t, *self.params)


def validate_tac(time_h: Sequence[float], activity_mbq: Sequence[float], label: str = "TAC") -> tuple[np.ndarray, np.ndarray]:
    """Check and sort a time-activity curve; raise a clear error for anything unphysical."""
    t = np.asarray(time_h, dtype=float)
    a = np.asarray(activity_mbq, dtype=float)
    if t.shape != a.shape or t.ndim != 1 or t.size == 0:
        raise InvalidInputError(f"{label}: times and activities must be 1-D and of equal, non-zero length")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
        raise InvalidInputError(f"{label}: times and activities must be finite numbers")
    if np.any(t <= 0):
        raise InvalidInputError(f"{label}: time_h must be > 0 (hours after the start of administration)")
    if np.any(a < 0):
        raise InvalidInputError(f"{label}: activity_mbq must be >= 0 (negative activity at t={t[a < 0][0]} h)")
    order = np.argsort(t, kind="stable")
    t, a = t[order], a[order]
    if np.any(np.diff(t) <= 0):
        dup = t[1:][np.diff(t) <= 0][0]
        raise InvalidInputError(f"{label}: duplicate time point {dup} h; times must be strictly increasing")
    return t, a


def aicc(rss: float, n: int, k: int) -> float | None:
    """Corrected Akaike information criterion (least squares form); None when undefined (n-k-1 <= 0)."""
    if n - k - 1 <= 0:
        return None
    rss = max(rss, 1e-300)
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def _initial_guesses(name: str, t: np.ndarray, a: np.ndarray) -> list[np.ndarray]:
    tail = a > 0
    if tail.sum() >= 2:
        slope, icpt = np.polyfit(t[tail][-2:], np.log(a[tail][-2:]), 1) if tail.sum() == 2 else np.polyfit(
            t[tail][-3:], np.log(a[tail][-3:]), 1)
    else:
        slope, icpt = -LN2 / 100.0, math.log(max(a.max(), 1e-9))
    lam = max(-slope, 1e-4)
    a0 = max(math.exp(icpt), a.max())
    fast = max(10 * lam, 5.0 / max(t[0], 1e-3))
    if name == "mono":
        return [np.array([a0, lam])]
    if name == "mono_uptake":
        return [np.array([a0, lam, fast]), np.array([a0, lam, 1.0 / max(t[0], 1e-3)])]
    if name == "bi":
        return [np.array([0.5 * a0, lam, 0.5 * a0, fast]), np.array([0.8 * a0, lam, 0.5 * a0, 3 * lam])]
    return [np.array([a0, lam, 0.3 * a0, 3 * lam + 1e-3, fast]),
            np.array([0.7 * a0, lam, 0.5 * a0, 5 * lam, 2 * fast])]


def fit_model(name: str, time_h: Sequence[float], activity_mbq: Sequence[float],
              relative_sd: bool = True, physical_half_life_h: float | None = None) -> FitResult:
    """Least-squares fit of one model; weights 1/A (relative errors, floored at 1 % of the peak)
    unless ``relative_sd`` is False (equal weights).

    Raises InvalidInputError when the model has as many parameters as points or the fit fails.
    """
    from scipy.optimize import curve_fit

    t, a = validate_tac(time_h, activity_mbq)
    model = MODELS.get(name)
    if model is None:
        raise InvalidInputError(f"unknown kinetic model {name!r}; choose from {', '.join(MODELS)}")
    n, k = t.size, model.n_params
    if k >= n:
        raise InvalidInputError(f"model {name} has {k} parameters but only {n} time points")
    # relative errors, floored at 1 % of the peak so a zero reading (activity below detection) does not
    # get an infinite weight
    sigma = np.maximum(a, 0.01 * max(a.max(), 1e-12)) if relative_sd else None
    # rates are fitted as log(lambda): positive by construction, no bounds needed, so the fast
    # Levenberg-Marquardt solver applies; the covariance is mapped back by the Jacobian diag(lambda)
    rate_idx = [1] if name == "mono" else ([1, 2] if name == "mono_uptake" else
                                           ([1, 3] if name == "bi" else [1, 3, 4]))

    def to_model(theta: np.ndarray) -> np.ndarray:
        p = np.array(theta, dtype=float)
        p[rate_idx] = np.exp(np.clip(p[rate_idx], -50, 50))
        return p

    def f_theta(tt: np.ndarray, *theta: float) -> np.ndarray:
        return model.func(tt, *to_model(np.asarray(theta)))

    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for p0 in _initial_guesses(name, t, a):
        th0 = np.array(p0, dtype=float)
        th0[rate_idx] = np.log(np.maximum(th0[rate_idx], 1e-8))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                th, cov_th = curve_fit(f_theta, t, a, p0=th0, sigma=sigma, absolute_sigma=False, maxfev=4000)
        except (RuntimeError, ValueError):
            continue
        popt = to_model(th)
        jac = np.ones(k)
        jac[rate_idx] = popt[rate_idx]
        pcov = cov_th * np.outer(jac, jac)
        resid = (a - model.func(t, *popt)) / (sigma if sigma is not None else 1.0)
        rss = float(np.sum(resid**2))
        if not np.isfinite(rss):
            continue
        if best is None or rss < best[0]:
            best = (rss, popt, pcov)
    if best is None:
        raise InvalidInputError(f"model {name} did not converge on this TAC")
    rss, popt, pcov = best
    notes: list[str] = []
    tia = float(model.tia(popt))
    sd: float | None = None
    if np.all(np.isfinite(pcov)) and n > k:
        g = model.tia_grad(popt)
        var = float(g @ pcov @ g)
        sd = math.sqrt(var) if var >= 0 else None
    else:
        notes.append(f"{name}: covariance not estimable (as many parameters as points); no TIA uncertainty")
    rates = model.washout_rates(popt)
    slowest = min(rates)
    teff = float(LN2 / slowest) if slowest > 0 else math.inf
    if any(x < 0 for x in model.amplitudes(popt)):
        notes.append(f"{name}: negative amplitude fitted (unphysical); prefer a simpler model")
    if name == "mono_uptake" and popt[2] <= popt[1]:
        notes.append(f"{name}: uptake rate not faster than washout (unphysical)")
    if physical_half_life_h is not None and teff > physical_half_life_h * 1.0001:
        notes.append(
            f"{name}: effective half-life {teff:.1f} h longer than the physical half-life "
            f"{physical_half_life_h:.1f} h (unphysical: biological uptake after the last point or noise)")
    if tia < 0:
        notes.append(f"{name}: negative TIA (unphysical)")
    return FitResult(name, tuple(float(x) for x in popt), tia, sd, teff, aicc(rss, n, k), rss, n, tuple(notes))


def fit_tac(time_h: Sequence[float], activity_mbq: Sequence[float], model: str = "auto",
            physical_half_life_h: float | None = None, relative_sd: bool = True) -> FitResult:
    """Fit a TAC; with ``model='auto'`` choose by AICc among the models the data can support.

    A model is a candidate only with fewer parameters than points; AICc needs n - k - 1 > 0.
    When no candidate has a defined AICc the simplest model is used and a warning says the data
    are too sparse for model selection. Unphysical fits (negative amplitudes, effective half-life
    longer than physical) are avoided when a physical alternative exists and always reported.
    """
    t, a = validate_tac(time_h, activity_mbq)
    if model != "auto":
        return fit_model(model, t, a, relative_sd, physical_half_life_h)
    n = t.size
    if n < 3:
        raise InvalidInputError(
            f"{n} time point(s): too few for a fit; use model 'trapezoid' or a single-time-point method")
    fits: list[FitResult] = []
    for name, m in MODELS.items():
        if m.n_params >= n:
            continue
        try:
            fits.append(fit_model(name, t, a, relative_sd, physical_half_life_h))
        except InvalidInputError:
            continue
    if not fits:
        raise InvalidInputError("no kinetic model converged on this TAC; use model 'trapezoid'")
    cands = tuple((f.model, f.aicc) for f in fits)
    scored = [f for f in fits if f.aicc is not None]
    extra: list[str] = []
    def is_physical(f: FitResult) -> bool:
        return not any("unphysical" in w for w in f.warnings)

    physical = [f for f in scored if is_physical(f)]
    unscored_physical = [f for f in fits if f.aicc is None and is_physical(f)]
    if physical:
        chosen = min(physical, key=lambda f: f.aicc)  # type: ignore[arg-type,return-value]
    elif unscored_physical:
        # AICc is undefined when n = k + 1; a physical fit beats an unphysical one with a score
        chosen = unscored_physical[0]
        extra.append(f"only {n} points: AICc undefined for {chosen.model} (n = k + 1); chosen as the simplest "
                     "physical fit, without model selection")
    elif scored:
        chosen = min(scored, key=lambda f: f.aicc)  # type: ignore[arg-type,return-value]
        extra.append("every candidate fit is unphysical; result needs review")
    else:
        chosen = fits[0]
        extra.append(f"only {n} points: too sparse for AICc model selection; used {chosen.model}")
    return FitResult(chosen.model, chosen.params, chosen.tia_mbq_h, chosen.tia_sd_mbq_h, chosen.teff_h,
                     chosen.aicc, chosen.rss, chosen.n_points, chosen.warnings + tuple(extra), cands)


def tia_trapezoid_physical_tail(time_h: Sequence[float], activity_mbq: Sequence[float],
                                physical_half_life_h: float) -> FitResult:
    """Trapezoid from (0, 0) through the points, then physical decay after the last point.

    The tail A_last / lambda_phys assumes no biological clearance after the last scan, so the
    TIA is an upper bound for the tail part (the conservative choice for organs at risk).
    """
    t, a = validate_tac(time_h, activity_mbq)
    tt = np.concatenate([[0.0], t])
    aa = np.concatenate([[0.0], a])
    area = float(np.sum(0.5 * (aa[1:] + aa[:-1]) * np.diff(tt)))
    tail = float(a[-1] * physical_half_life_h / LN2)
    return FitResult("trapezoid", (), area + tail, None, None, None, 0.0, t.size,
                     ("trapezoid: no uncertainty from a fit; tail assumes physical decay only",))


def tia_hanscheid2018(time_h: float, activity_mbq: float) -> float:
    """Single-time-point TIA, Hänscheid et al., J Nucl Med 2018;59:75-81.

    TIA ~= A(t) * 2t / ln 2. Compared with the mono-exponential truth A(t) e^(lambda t)/lambda it
    is exact when the scan time t equals the effective half-life (and again at t = 2 Teff, the
    second root of e^x/x = 2/ln2), overestimates by at most 6.1 % in between and underestimates
    outside (x 3/4 at t = 3 Teff): scan near Teff, e.g. ~72-96 h for kidneys after 177Lu-DOTATATE.
    """
    t, a = validate_tac([time_h], [activity_mbq], "single time point")
    return float(a[0] * 2.0 * t[0] / LN2)


def tia_madsen2018(time_h: float, activity_mbq: float, population_teff_h: float,
                   population_teff_sd_h: float | None = None) -> tuple[float, float | None]:
    """Single-time-point TIA, Madsen et al., Med Phys 2018;45:2318-2324.

    Assumes a mono-exponential washout with a population effective half-life:
    TIA = A(t) e^(lambda_eff t) / lambda_eff, lambda_eff = ln2 / Teff. Returns (TIA, sd) with the
    sd propagated from the population half-life sd (delta method) when given.
    """
    t, a = validate_tac([time_h], [activity_mbq], "single time point")
    if not population_teff_h > 0:
        raise InvalidInputError("population effective half-life must be > 0 h")
    lam = LN2 / population_teff_h
    tia = float(a[0] * math.exp(lam * t[0]) / lam)
    sd = None
    if population_teff_sd_h is not None:
        # dTIA/dlam = TIA (t - 1/lam); dlam/dT = -lam/T
        dtia_dT = tia * (t[0] - 1 / lam) * (-lam / population_teff_h)
        sd = abs(dtia_dT) * population_teff_sd_h
    return tia, sd
