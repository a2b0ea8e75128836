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

__all__ = ["METRIC_FIELDS", "metrics_dict", "study_dict", "comparison_dict", "study_csv", "comparison_csv"]

METRIC_FIELDS = ("volume_ml", "n_voxels", "suv_mean", "suv_max", "suv_peak", "sul_mean", "sul_peak", "suvbsa_mean",
                 "mean_bqml", "max_bqml", "peak_bqml", "sd_bqml", "total_bq", "percent_ia", "tnr", "tsr",
                 "recovery_coefficient")


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def metrics_dict(m: VoiMetrics) -> dict[str, Any]:
    d: dict[str, Any] = {k: _clean(getattr(m, k)) for k in METRIC_FIELDS}
    d["derived"] = m.derived
    return d


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
    return out


def comparison_dict(c: Comparison, lobar: dict[str, LobarResult] | None = None) -> dict[str, Any]:
    vois = []
    for v in c.vois:
        vois.append({
            "name": v.name, "kind": v.kind.value, "lobe": v.lobe,
            "iv": metrics_dict(v.iv), "iah": metrics_dict(v.iah),
            "ratio": {k: _clean(x) for k, x in v.ratio.items()},
            "tnr": {"iv": _clean(v.iv.tnr), "iah": _clean(v.iah.tnr)},
        })
    out: dict[str, Any] = {
        "vois": vois,
        "summary": c.summary,
        "unmatched": {"iv": list(c.unmatched_iv), "iah": list(c.unmatched_iah)},
        "residual": dataclasses.asdict(c.residual) if c.residual else None,
        "messages": list(c.messages),
    }
    if lobar:
        out["lobar"] = {k: dataclasses.asdict(v) for k, v in lobar.items()}
    return out


def study_csv(metrics: StudyMetrics) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "kind", "lobe", "derived", *METRIC_FIELDS])
    for v in metrics.vois:
        w.writerow([v.name, v.kind.value, v.lobe or "", v.derived, *(_fmt(getattr(v, k)) for k in METRIC_FIELDS)])
    return buf.getvalue()


def comparison_csv(c: Comparison) -> str:
    from lutarterial.imaging.compare import RATIO_METRICS

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "kind", "lobe", *(f"iv_{k}" for k in METRIC_FIELDS), *(f"iah_{k}" for k in METRIC_FIELDS),
                *(f"ratio_{k}" for k in RATIO_METRICS)])
    for v in c.vois:
        w.writerow([v.name, v.kind.value, v.lobe or "", *(_fmt(getattr(v.iv, k)) for k in METRIC_FIELDS),
                    *(_fmt(getattr(v.iah, k)) for k in METRIC_FIELDS), *(_fmt(v.ratio[k]) for k in RATIO_METRICS)])
    return buf.getvalue()


def _fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}" if math.isfinite(x) else ""
    return str(x)
