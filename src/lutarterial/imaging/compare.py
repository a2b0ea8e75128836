"""IAH versus IV: per-VOI ratios, per-patient summary, residual subtraction, lobar mode.

* VOIs are matched by name (case- and space-insensitive) across the two studies; unmatched
  VOIs are listed with a message, never silently dropped.
* Ratio of each metric = IAH / IV. The patient summary is the geometric mean over hepatic
  lesions with a two-sided t-based confidence interval on the log ratios (n >= 2).
* Residual activity: when the later scan starts within ten half-lives of the earlier
  injection, the earlier study's activity, physically decayed to the later study's reference time
  (fraction 2^-(t2 - t1)/T), is subtracted VOI by VOI from the later study (mean, total,
  and — as an approximation that assumes a uniform residual — max and peak); SUVs, %IA,
  TNR and TSR are recomputed from the corrected values, and the residual is reported.
  No biological washout is assumed (conservative for DOTA-peptide uptake in tumour).
* Lobar mode (LUTIA design, NCT03590119): TNR per lobe = pooled lesion mean in the lobe /
  healthy liver of that lobe; ratio = TNR(IA lobe) / TNR(control lobe).

Public API::

    compare_studies(iv, iah, *, iv_timing=None, iah_timing=None) -> Comparison
    geometric_mean_ci(values, confidence=0.95) -> RatioSummary
    lobar_tnr(metrics) -> dict[lobe, float]
    lobar_comparison(metrics, ia_lobe, control_lobe) -> LobarResult
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lutarterial.errors import InvalidInputError
from lutarterial.imaging.metrics import HEALTHY_LIVER, StudyMetrics, VoiMetrics, add_ratios
from lutarterial.imaging.types import PetTiming, VoiKind

__all__ = [
    "RATIO_METRICS",
    "RatioSummary",
    "VoiComparison",
    "Residual",
    "Comparison",
    "LobarResult",
    "geometric_mean_ci",
    "compare_studies",
    "lobar_tnr",
    "lobar_comparison",
]

RATIO_METRICS = ("suv_mean", "suv_max", "suv_peak", "sul_mean", "sul_peak", "suvbsa_mean", "percent_ia",
                 "mean_bqml", "total_bq", "tnr", "tsr", "volume_ml")
SUMMARY_METRICS = ("suv_mean", "suv_max", "suv_peak", "tnr", "percent_ia")


@dataclass(frozen=True)
class RatioSummary:
    n: int
    geometric_mean: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = 0.95


def geometric_mean_ci(values: Sequence[float], confidence: float = 0.95) -> RatioSummary:
    """Geometric mean and t-based CI of positive ratios (CI needs at least two values)."""
    vals = [float(v) for v in values if v is not None]
    if any(not (v > 0 and math.isfinite(v)) for v in vals):
        raise InvalidInputError("ratios must be positive and finite for a geometric mean")
    if not 0 < confidence < 1:
        raise InvalidInputError("confidence must lie between 0 and 1")
    n = len(vals)
    if n == 0:
        return RatioSummary(0, None, None, None, confidence)
    logs = [math.log(v) for v in vals]
    m = sum(logs) / n
    if n < 2:
        return RatioSummary(1, math.exp(m), None, None, confidence)
    from scipy.stats import t as student_t

    sd = math.sqrt(sum((x - m) ** 2 for x in logs) / (n - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return RatioSummary(n, math.exp(m), math.exp(m - half), math.exp(m + half), confidence)


@dataclass(frozen=True)
class VoiComparison:
    name: str
    kind: VoiKind
    lobe: str | None
    iv: VoiMetrics
    iah: VoiMetrics
    ratio: dict[str, float | None]


@dataclass(frozen=True)
class Residual:
    corrected_study: str  # "iv" or "iah": the later study
    elapsed_s: float  # from the earlier injection to the later scan
    fraction: float  # fraction of the earlier study's (decay-corrected) activity still present
    per_voi_bqml: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    vois: tuple[VoiComparison, ...]
    summary: dict[str, object]
    unmatched_iv: tuple[str, ...] = ()
    unmatched_iah: tuple[str, ...] = ()
    residual: Residual | None = None
    messages: tuple[str, ...] = field(default_factory=tuple)


def _key(name: str) -> str:
    return " ".join(name.lower().split())


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _subtract(later: StudyMetrics, earlier: StudyMetrics, frac: float) -> tuple[StudyMetrics, dict[str, float]]:
    e = {_key(v.name): v for v in earlier.vois}
    f = later.suv
    out, resid = [], {}
    for v in later.vois:
        ev = e.get(_key(v.name))
        if ev is None or ev.mean_bqml is None or v.mean_bqml is None:
            out.append(v)
            continue
        r = frac * ev.mean_bqml
        resid[v.name] = r

        def sub(x: float | None, r: float = r) -> float | None:
            return None if x is None else x - r

        mean, mx, pk = sub(v.mean_bqml), sub(v.max_bqml), sub(v.peak_bqml)
        total = mean * v.volume_ml if mean is not None else None

        def k(x: float | None, fac: float | None) -> float | None:
            return None if x is None or fac is None else x * fac

        out.append(replace(
            v, mean_bqml=mean, max_bqml=mx, peak_bqml=pk, total_bq=total,
            percent_ia=(total / f.decayed_dose_bq * 100.0) if (f and f.decayed_dose_bq and total is not None) else None,
            suv_mean=k(mean, f.bw if f else None), suv_max=k(mx, f.bw if f else None),
            suv_peak=k(pk, f.bw if f else None), sul_mean=k(mean, f.lbm if f else None),
            sul_peak=k(pk, f.lbm if f else None), suvbsa_mean=k(mean, f.bsa if f else None),
        ))
    return replace(later, vois=tuple(add_ratios(out))), resid


def compare_studies(
    iv: StudyMetrics, iah: StudyMetrics, *, iv_timing: PetTiming | None = None, iah_timing: PetTiming | None = None,
    confidence: float = 0.95,
) -> Comparison:
    """Per-VOI IAH/IV ratios and the per-patient summary (see module docstring)."""
    messages: list[str] = []
    residual = None
    if iv_timing and iah_timing and iv_timing.injection_time and iah_timing.injection_time:
        first_is_iv = iv_timing.injection_time <= iah_timing.injection_time
        t_first, t_second = (iv_timing, iah_timing) if first_is_iv else (iah_timing, iv_timing)
        hl = t_first.half_life_s or t_second.half_life_s
        # "second scan within ten half-lives of the first injection" (issue 3)
        second_scan = t_second.scan_time or t_second.injection_time
        gap = (second_scan - t_first.injection_time).total_seconds()  # type: ignore[operator]
        if hl and gap < 10 * hl:
            if not (t_first.scan_time and t_second.scan_time):
                raise InvalidInputError("residual correction needs the reference times of both scans")
            frac = 2.0 ** (-(t_second.scan_time - t_first.scan_time).total_seconds() / hl)
            if first_is_iv:
                iah, resid = _subtract(iah, iv, frac)
            else:
                iv, resid = _subtract(iv, iah, frac)
            later = "iah" if first_is_iv else "iv"
            residual = Residual(later, gap, frac, resid)
            messages.append(
                f"the {later.upper()} scan came {gap / hl:.1f} half-lives after the other injection: residual activity "
                f"(fraction {frac:.4f} of the earlier study) subtracted per VOI; max/peak corrections assume "
                "a uniform residual"
            )
    a = {_key(v.name): v for v in iv.vois}
    b = {_key(v.name): v for v in iah.vois}
    unmatched_iv = tuple(sorted(a[k].name for k in a.keys() - b.keys()))
    unmatched_iah = tuple(sorted(b[k].name for k in b.keys() - a.keys()))
    if unmatched_iv or unmatched_iah:
        messages.append(
            "VOIs not matched by name and left out of the comparison: "
            + (f"IV only: {', '.join(unmatched_iv)}" if unmatched_iv else "")
            + ("; " if unmatched_iv and unmatched_iah else "")
            + (f"IAH only: {', '.join(unmatched_iah)}" if unmatched_iah else "")
        )
    comps = []
    for k, v_iv in a.items():
        v_iah = b.get(k)
        if v_iah is None:
            continue
        if v_iv.kind is not v_iah.kind:
            raise InvalidInputError(
                f"VOI {v_iv.name!r} is a {v_iv.kind.value} in the IV study but a {v_iah.kind.value} in the IAH study"
            )
        ratio = {m: _ratio(getattr(v_iah, m), getattr(v_iv, m)) for m in RATIO_METRICS}
        comps.append(VoiComparison(v_iv.name, v_iv.kind, v_iv.lobe or v_iah.lobe, v_iv, v_iah, ratio))
    if not comps:
        raise InvalidInputError("no VOI names match between the IV and IAH studies")
    summary: dict[str, object] = {}
    for label, kind in (("lesions", VoiKind.LESION), ("extrahepatic", VoiKind.EXTRAHEPATIC)):
        group = [c for c in comps if c.kind is kind]
        if group:
            summary[label] = {
                m: geometric_mean_ci([c.ratio[m] for c in group if c.ratio[m] is not None and c.ratio[m] > 0],
                                     confidence).__dict__
                for m in SUMMARY_METRICS
            }
            bad = [c.name for c in group if c.ratio["suv_mean"] is not None and c.ratio["suv_mean"] <= 0]
            if bad:
                messages.append(f"non-positive ratios left out of the geometric mean: {', '.join(bad)}")
    summary["organs"] = {c.name: c.ratio["suv_mean"] for c in comps
                         if c.kind in (VoiKind.LIVER, VoiKind.SPLEEN, VoiKind.KIDNEY, VoiKind.MARROW)}
    if any(c.name == HEALTHY_LIVER for c in comps):
        summary["healthy_liver_ratio"] = next(c.ratio["suv_mean"] for c in comps if c.name == HEALTHY_LIVER)
    return Comparison(tuple(comps), summary, unmatched_iv, unmatched_iah, residual, tuple(messages))


@dataclass(frozen=True)
class LobarResult:
    ia_lobe: str
    control_lobe: str
    tnr_ia: float
    tnr_control: float
    ratio: float


def lobar_tnr(metrics: StudyMetrics) -> dict[str, float]:
    """TNR per lobe: pooled (volume-weighted) lesion mean in the lobe / healthy liver of the lobe."""
    by = metrics.by_name()
    out = {}
    lobes = sorted({v.lobe for v in metrics.vois if v.kind is VoiKind.LESION and v.lobe})
    for lobe in lobes:
        hl = by.get(f"{HEALTHY_LIVER} ({lobe})")
        if hl is None:
            raise InvalidInputError(
                f"lesions are marked with lobe {lobe!r} but no liver VOI carries that lobe; add a liver VOI "
                f"with \"lobe\": \"{lobe}\" to the names file"
            )
        les = [v for v in metrics.vois if v.kind is VoiKind.LESION and v.lobe == lobe]
        level = [(v.suv_mean if v.suv_mean is not None else v.mean_bqml, v.n_voxels) for v in les]
        pooled = sum(x * n for x, n in level if x is not None) / sum(n for x, n in level if x is not None)
        ref = hl.suv_mean if hl.suv_mean is not None else hl.mean_bqml
        if not ref:
            raise InvalidInputError(f"healthy liver of lobe {lobe!r} has zero uptake; TNR undefined")
        out[lobe] = pooled / ref
    return out


def lobar_comparison(metrics: StudyMetrics, ia_lobe: str, control_lobe: str) -> LobarResult:
    """IA lobe versus control lobe TNR ratio within one study (LUTIA-style design)."""
    t = lobar_tnr(metrics)
    for lobe in (ia_lobe, control_lobe):
        if lobe not in t:
            raise InvalidInputError(f"no lesions with lobe {lobe!r}; lobes with lesions: {sorted(t) or 'none'}")
    return LobarResult(ia_lobe, control_lobe, t[ia_lobe], t[control_lobe], t[ia_lobe] / t[control_lobe])
