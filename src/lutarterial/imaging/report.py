"""Machine-readable output of quantification and comparison: JSON-ready dicts and CSV text.

Shapes (stable, used by the CLI ``--json``/``--csv`` and the web demo)::

    quantify:  {"image": {...}, "suv_factors": {...}, "vois": [{"name", "kind", "lobe", "volume_ml",
                "suv_mean", "suv_max", "suv_peak", ...}], "notes": [...]}
    uptake:    {"vois": [{"name", "kind", "lobe", "iv": {...}, "iah": {...}, "ratio": {"suv_mean", ...},
                "tnr": {"iv", "iah"}}], "summary": {...}, "unmatched": {"iv": [...], "iah": [...]},
                "residual": {...} | null, "messages": [...]}
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Any

from lutarterial.imaging.compare import Comparison, LobarResult
from lutarterial.imaging.metrics import StudyMetrics, VoiMetrics
from lutarterial.imaging.types import Image

__all__ = ["METRIC_FIELDS", "metrics_dict", "study_dict", "comparison_dict", "study_csv", "comparison_csv",
           "json_safe"]

METRIC_FIELDS = ("volume_ml", "n_voxels", "suv_mean", "suv_max", "suv_peak", "sul_mean", "sul_peak", "suvbsa_mean",
                 "mean_bqml", "max_bqml", "peak_bqml", "sd_bqml", "total_bq", "percent_ia", "tnr", "tsr",
                 "recovery_coefficient",
                 # issue 10: minimum, the values before partial-volume correction, and how SUVpeak was sampled
                 "suv_min", "min_bqml", "suv_mean_uncorrected", "suv_max_uncorrected", "suv_peak_uncorrected",
                 "mean_bqml_uncorrected", "max_bqml_uncorrected", "peak_bqml_uncorrected", "peak_method")


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def json_safe(x: Any) -> Any:
    """Deep copy with every NaN/inf float replaced by None (JSON has no NaN; strict parsers reject it)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "isoformat"):
        return x.isoformat()
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return json_safe(x.item())
    return x


def metrics_dict(m: VoiMetrics) -> dict[str, Any]:
    d: dict[str, Any] = {k: _clean(getattr(m, k)) for k in METRIC_FIELDS}
    bad = {k: "not finite (e.g. division by a zero reference)" for k in METRIC_FIELDS
           if isinstance(getattr(m, k), float) and not math.isfinite(getattr(m, k))}
    if bad:
        d["null_reasons"] = bad
    d["derived"] = m.derived
    return d


def _ratio_reason(iah: Any, iv: Any) -> str:
    if iv is None or iah is None:
        return "metric not available in " + ("both studies" if iv is None and iah is None
                                             else "the IV study" if iv is None else "the IAH study")
    if isinstance(iv, float) and iv == 0:
        return "IV value is zero"
    return "not finite"


def study_dict(metrics: StudyMetrics, image: Image | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if image is not None:
        out["image"] = {
            "modality": image.modality, "quantity": image.quantity.value, "shape": list(image.geometry.shape),
            "spacing_mm": list(image.geometry.spacing_mm), "series_uid": image.series_uid,
            "frame_of_reference_uid": image.frame_of_reference_uid,
        }
    out["reference_time"] = metrics.reference_time
    out["injected_activity_bq"] = metrics.injected_activity_bq
    out["suv_factors"] = dataclasses.asdict(metrics.suv) if metrics.suv else None
    out["vois"] = [{"name": v.name, "kind": v.kind.value, "lobe": v.lobe, **metrics_dict(v)} for v in metrics.vois]
    out["notes"] = list(metrics.notes)
    return json_safe(out)  # type: ignore[no-any-return]


def comparison_dict(c: Comparison, lobar: dict[str, LobarResult] | None = None) -> dict[str, Any]:
    vois = []
    for v in c.vois:
        vois.append({
            "name": v.name, "kind": v.kind.value, "lobe": v.lobe,
            "iv": metrics_dict(v.iv), "iah": metrics_dict(v.iah),
            "ratio": {k: _clean(x) for k, x in v.ratio.items()},
            "tnr": {"iv": _clean(v.iv.tnr), "iah": _clean(v.iah.tnr)},
        })
        reasons = {k: _ratio_reason(getattr(v.iah, k, None), getattr(v.iv, k, None))
                   for k, x in v.ratio.items() if _clean(x) is None}
        if reasons:
            vois[-1]["ratio_null_reasons"] = reasons
    out: dict[str, Any] = {
        "vois": vois,
        "summary": c.summary,
        "unmatched": {"iv": list(c.unmatched_iv), "iah": list(c.unmatched_iah)},
        "residual": dataclasses.asdict(c.residual) if c.residual else None,
        "messages": list(c.messages),
    }
    if lobar:
        out["lobar"] = {k: dataclasses.asdict(v) for k, v in lobar.items()}
    return json_safe(out)  # type: ignore[no-any-return]


def study_csv(metrics: StudyMetrics) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "kind", "lobe", "derived", *METRIC_FIELDS])
    for v in metrics.vois:
        w.writerow([v.name, v.kind.value, v.lobe or "", v.derived, *(_fmt(getattr(v, k), k) for k in METRIC_FIELDS)])
    return buf.getvalue()


def comparison_csv(c: Comparison) -> str:
    from lutarterial.imaging.compare import RATIO_METRICS

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "kind", "lobe", *(f"iv_{k}" for k in METRIC_FIELDS), *(f"iah_{k}" for k in METRIC_FIELDS),
                *(f"ratio_{k}" for k in RATIO_METRICS)])
    for v in c.vois:
        w.writerow([v.name, v.kind.value, v.lobe or "", *(_fmt(getattr(v.iv, k), k) for k in METRIC_FIELDS),
                    *(_fmt(getattr(v.iah, k), k) for k in METRIC_FIELDS), *(_fmt(v.ratio[k], k) for k in RATIO_METRICS)])
    return buf.getvalue()


#: CSV precision per column (issue 10; docs/imaging.md): 4 significant digits for activity
#: concentrations, SUVs, totals, %IA and ratios (PET/SPECT quantification is good to a few per
#: cent), volume to 0.001 mL (a 2 mm voxel is 0.008 mL), recovery coefficients to 3 decimals.
CSV_ROUNDING: dict[str, str] = {"volume_ml": "d3", "recovery_coefficient": "d3"}
_CSV_DEFAULT = "s4"


def _fmt(x: Any, column: str = "") -> str:
    from lutarterial.units_rounding import csv_value

    if isinstance(x, float) and not math.isfinite(x):
        return ""
    return csv_value(column, x, CSV_ROUNDING, default=_CSV_DEFAULT)
