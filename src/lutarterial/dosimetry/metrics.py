"""Dose metrics: DVH, D_x, EUD, BED (linear-quadratic), cumulative dose over cycles vs limits."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from lutarterial.errors import InvalidInputError

__all__ = [
    "DoseStats",
    "dose_stats",
    "dvh",
    "d_x",
    "geud_niemierko",
    "eud_radiobiological",
    "bed_monoexponential",
    "Limit",
    "default_limits",
    "radiobiology_defaults",
    "CycleDose",
    "LimitCheck",
    "cumulative_check",
]


def _doses(dose_gy: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    d = np.asarray(dose_gy, float)
    if mask is not None:
        m = np.asarray(mask, bool)
        if m.shape != d.shape:
            raise InvalidInputError(f"mask shape {m.shape} differs from dose shape {d.shape}")
        d = d[m]
    d = d.ravel()
    if d.size == 0:
        raise InvalidInputError("empty VOI: no voxels in the mask")
    if not np.all(np.isfinite(d)):
        raise InvalidInputError("dose values must be finite")
    return d


def d_x(dose_gy: np.ndarray, percent: float, mask: np.ndarray | None = None) -> float:
    """D_x: the minimum dose received by the hottest x % of the volume (equal-volume voxels).

    D_x = the dose of the k-th hottest voxel with k = ceil(x/100 x N) (at least 1); D100 = min.
    """
    if not 0 < percent <= 100:
        raise InvalidInputError("percent must be in (0, 100]")
    d = np.sort(_doses(dose_gy, mask))[::-1]
    k = max(1, math.ceil(percent / 100.0 * d.size - 1e-9))
    return float(d[k - 1])


def dvh(dose_gy: np.ndarray, mask: np.ndarray | None = None, n_bins: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative DVH: (dose_gy, fraction of volume receiving >= dose)."""
    d = _doses(dose_gy, mask)
    edges = np.linspace(0.0, float(d.max()) * 1.0001 + 1e-12, n_bins + 1)
    frac = np.array([(d >= e).mean() for e in edges])
    return edges, frac


def geud_niemierko(dose_gy: np.ndarray, a: float, mask: np.ndarray | None = None) -> float:
    """Generalised EUD (Niemierko, Med Phys 1999;26:1100): (mean D_i^a)^(1/a).

    a < 0 for tumours (cold spots dominate), a >= 1 for serial organs, a = 1 gives the mean.
    """
    d = _doses(dose_gy, mask)
    if a == 0:
        raise InvalidInputError("gEUD parameter a must be non-zero")
    if a < 0 and np.any(d <= 0):
        return 0.0
    return float(np.mean(d**a) ** (1.0 / a))


def eud_radiobiological(dose_gy: np.ndarray, alpha_per_gy: float, mask: np.ndarray | None = None) -> float:
    """Radiobiological EUD for tumours (O'Donoghue, J Nucl Med 1999;40:1337): -ln(mean e^(-alpha D))/alpha."""
    if not alpha_per_gy > 0:
        raise InvalidInputError("alpha must be > 0 /Gy")
    d = _doses(dose_gy, mask)
    m = float(np.mean(np.exp(-alpha_per_gy * (d - d.min())))) if d.size else 1.0
    return float(d.min() - math.log(m) / alpha_per_gy)


@dataclass(frozen=True)
class DoseStats:
    mean_gy: float
    min_gy: float
    max_gy: float
    d2_gy: float
    d50_gy: float
    d70_gy: float
    d90_gy: float
    n_voxels: int


def dose_stats(dose_gy: np.ndarray, mask: np.ndarray | None = None) -> DoseStats:
    d = _doses(dose_gy, mask)
    return DoseStats(float(d.mean()), float(d.min()), float(d.max()), d_x(d, 2), d_x(d, 50), d_x(d, 70),
                     d_x(d, 90), int(d.size))


def bed_monoexponential(dose_gy: float | np.ndarray, teff_h: float, alpha_beta_gy: float = 2.6,
                        repair_half_time_h: float = 2.8) -> float | np.ndarray:
    """Biologically effective dose for a mono-exponentially decreasing dose rate.

    BED = D + D^2/(alpha/beta) x lambda/(mu + lambda), lambda = ln2/Teff, mu = ln2/T_rep
    (Dale, Br J Radiol 1985;58:515; Baechler et al., Med Phys 2008;35:1123; Bodei et al.,
    EJNMMI 2008). Defaults are the kidney values (alpha/beta 2.6 Gy, T_rep 2.8 h; Wessels 2008).
    Ignores the uptake phase (slightly overestimates BED when uptake is slow).
    """
    if not (teff_h > 0 and alpha_beta_gy > 0 and repair_half_time_h > 0):
        raise InvalidInputError("Teff, alpha/beta and repair half-time must be > 0")
    d = np.asarray(dose_gy, float)
    if np.any(d < 0):
        raise InvalidInputError("dose must be >= 0 Gy")
    lam = math.log(2) / teff_h
    mu = math.log(2) / repair_half_time_h
    out = d + d**2 / alpha_beta_gy * lam / (mu + lam)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Limit:
    organ: str
    quantity: str  # "dose_gy" or "bed_gy"
    limit: float
    source: str


@lru_cache(maxsize=1)
def _limits_yaml() -> dict:
    return yaml.safe_load(resources.files("lutarterial.dosimetry").joinpath("data/limits.yaml").read_text("utf-8"))


def default_limits() -> tuple[Limit, ...]:
    return tuple(Limit(d["organ"], d["quantity"], float(d["limit"]), d["source"]) for d in _limits_yaml()["limits"])


def radiobiology_defaults(organ: str) -> tuple[float, float] | None:
    """(alpha/beta Gy, repair half-time h) for an organ from data/limits.yaml, or None."""
    rb = _limits_yaml()["radiobiology"].get(organ)
    return None if rb is None else (float(rb["alpha_beta_gy"]), float(rb["repair_half_time_h"]))


@dataclass(frozen=True)
class CycleDose:
    """Dose to one organ in one cycle (``route`` 'IV' or 'IAH'); Teff needed for BED."""

    cycle: str
    organ: str
    dose_gy: float
    teff_h: float | None = None
    route: str = "IV"


@dataclass(frozen=True)
class LimitCheck:
    organ: str
    quantity: str
    total: float
    limit: float
    fraction_of_limit: float
    status: str  # "below", "exceeded", "unknown"
    reason: str
    source: str


def cumulative_check(cycles: Sequence[CycleDose], limits: Sequence[Limit] | None = None,
                     radiobiology: Mapping[str, tuple[float, float]] | None = None) -> tuple[LimitCheck, ...]:
    """Sum dose (and BED, cycle by cycle: full repair between cycles) per organ and compare to limits.

    A BED limit is 'unknown' when a cycle lacks its effective half-life; never silently passed.
    """
    lims = tuple(limits) if limits is not None else default_limits()
    for c in cycles:
        if not (math.isfinite(c.dose_gy) and c.dose_gy >= 0):
            raise InvalidInputError(f"cycle {c.cycle} {c.organ}: dose must be >= 0 Gy")
    out = []
    for lim in lims:
        rows = [c for c in cycles if c.organ == lim.organ]
        if not rows:
            out.append(LimitCheck(lim.organ, lim.quantity, float("nan"), lim.limit, float("nan"), "unknown",
                                  "no cycle dose for this organ", lim.source))
            continue
        if lim.quantity == "dose_gy":
            total = float(sum(c.dose_gy for c in rows))
        elif lim.quantity == "bed_gy":
            rb = (radiobiology or {}).get(lim.organ) or radiobiology_defaults(lim.organ)
            if rb is None or any(c.teff_h is None for c in rows):
                out.append(LimitCheck(lim.organ, lim.quantity, float("nan"), lim.limit, float("nan"), "unknown",
                                      "BED needs the effective half-life of every cycle", lim.source))
                continue
            total = float(sum(bed_monoexponential(c.dose_gy, c.teff_h, rb[0], rb[1]) for c in rows))  # type: ignore[arg-type]
        else:
            raise InvalidInputError(f"unknown limit quantity {lim.quantity!r}")
        status = "exceeded" if total > lim.limit else "below"
        out.append(LimitCheck(lim.organ, lim.quantity, total, lim.limit, total / lim.limit, status,
                              f"{len(rows)} cycle(s) summed", lim.source))
    return tuple(out)
