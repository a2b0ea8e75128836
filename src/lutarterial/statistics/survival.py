"""Kaplan–Meier estimates (lifelines) with the median, its 95% CI and numbers at risk.

The survival function and its pointwise 95% CI (exponential Greenwood, lifelines' default) come
from ``lifelines.KaplanMeierFitter``; the median's CI is where the CI bands cross 0.5
(``lifelines.utils.median_survival_times``; Brookmeyer & Crowley 1982 style). A median that
is not reached is ``None`` with ``median_reached = False`` — never the last follow-up time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lutarterial.errors import InvalidInputError

__all__ = ["KaplanMeierSummary", "kaplan_meier"]


@dataclass(frozen=True)
class KaplanMeierSummary:
    label: str
    n: int
    events: int
    median: float | None
    median_ci95: tuple[float | None, float | None] | None
    median_reached: bool
    at_risk: tuple[tuple[float, int], ...]
    #: (time, survival, ci_low, ci_high) steps for plotting
    curve: tuple[tuple[float, float, float, float], ...] = field(default_factory=tuple)
    time_unit: str = "days"
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "label": self.label, "n": self.n, "events": self.events, "median": self.median,
            "median_ci95": list(self.median_ci95) if self.median_ci95 else None,
            "median_reached": self.median_reached, "time_unit": self.time_unit,
            "at_risk": [{"time": t, "n": k} for t, k in self.at_risk],
            "method": "Kaplan-Meier (lifelines), exponential Greenwood 95% CI",
        }
        if self.reason:
            d["reason"] = self.reason
        return d


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def kaplan_meier(durations: Sequence[float], events: Sequence[bool], *, label: str = "",
                 at_risk_times: Sequence[float] | None = None, time_unit: str = "days") -> KaplanMeierSummary:
    """Kaplan–Meier fit of ``durations`` (>= 0) with ``events`` (True = event, False = censored)."""
    if len(durations) != len(events):
        raise InvalidInputError("durations and events must have the same length")
    t = [float(x) for x in durations]
    e = [bool(x) for x in events]
    if any(not math.isfinite(x) or x < 0 for x in t):
        raise InvalidInputError("durations must be finite and non-negative")
    n = len(t)
    grid = sorted(set(at_risk_times)) if at_risk_times is not None else _default_grid(t)
    at_risk = tuple((float(g), sum(1 for x in t if x >= g)) for g in grid)
    if n == 0:
        return KaplanMeierSummary(label, 0, 0, None, None, False, at_risk, (), time_unit, "no participants")
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    kmf = KaplanMeierFitter(label=label or "KM")
    kmf.fit(t, event_observed=e)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    curve = tuple((float(tt), float(s), float(lo), float(hi))
                  for tt, s, lo, hi in zip(sf.index, sf.values, ci.iloc[:, 0].values, ci.iloc[:, 1].values))
    med = _finite(kmf.median_survival_time_)
    mci = median_survival_times(ci)
    lo, hi = _finite(mci.iloc[0, 0]), _finite(mci.iloc[0, 1])
    reason = None if any(e) else "no events: the median is not reached"
    return KaplanMeierSummary(label, n, sum(e), med, (lo, hi), med is not None, at_risk, curve, time_unit, reason)


def _default_grid(t: Sequence[float]) -> list[float]:
    """0 and every 90 days up to the longest follow-up (numbers at risk under a KM plot)."""
    top = max(t) if t else 0.0
    return [90.0 * k for k in range(int(top // 90) + 1)]
