"""JSON documents never hold NaN/inf: null with a reason instead (strict JSON parsers reject NaN)."""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np

from lutarterial.imaging.compare import Comparison, VoiComparison
from lutarterial.imaging.metrics import VoiMetrics
from lutarterial.imaging.report import comparison_dict, json_safe, metrics_dict
from lutarterial.imaging.types import VoiKind


def _m(mean, **kw):
    base = dict(name="lesion 1", kind=VoiKind.LESION, lobe=None, derived=False, n_voxels=10, volume_ml=1.0,
                mean_bqml=mean, max_bqml=mean, peak_bqml=mean, sd_bqml=0.0, total_bq=mean, percent_ia=0.1,
                suv_mean=mean, suv_max=mean, suv_peak=None, tnr=float("nan"))
    base.update(kw)
    return VoiMetrics(**base)


def test_json_safe_replaces_non_finite_everywhere():
    doc = {"a": [1.0, float("nan"), {"b": float("inf")}], "t": datetime(2026, 1, 2, 3, 4), "n": np.float64(2.5),
           "c": (float("-inf"), 3)}
    out = json_safe(doc)
    assert out == {"a": [1.0, None, {"b": None}], "t": "2026-01-02T03:04:00", "n": 2.5, "c": [None, 3]}
    json.dumps(out, allow_nan=False)


def test_metrics_nan_becomes_null_with_reason():
    d = metrics_dict(_m(5.0))
    assert d["tnr"] is None and "tnr" in d["null_reasons"]
    assert d["suv_peak"] is None and "suv_peak" not in d.get("null_reasons", {})  # None is not a NaN
    assert "null_reasons" not in metrics_dict(_m(5.0, tnr=2.0))


def test_ratio_with_zero_or_missing_iv_is_null_with_reason():
    iv, iah = _m(0.0), _m(3.0)
    ratio = {"suv_mean": None, "suv_max": None, "suv_peak": None, "tnr": float("nan"), "percent_ia": 1.0}
    comp = Comparison((VoiComparison("lesion 1", VoiKind.LESION, None, iv, iah, ratio),),
                      {"lesions": {"suv_mean": {"n": 0, "geometric_mean": math.nan}}}, (), (), None, ())
    doc = comparison_dict(comp)
    text = json.dumps(doc, allow_nan=False)  # would raise on NaN
    v = json.loads(text)["vois"][0]
    assert v["ratio"]["suv_mean"] is None and v["ratio_null_reasons"]["suv_mean"] == "IV value is zero"
    assert v["ratio_null_reasons"]["suv_peak"].startswith("metric not available in both")
    assert v["ratio"]["percent_ia"] == 1.0 and "percent_ia" not in v["ratio_null_reasons"]
    assert doc["summary"]["lesions"]["suv_mean"]["geometric_mean"] is None
    assert set(v) >= {"name", "kind", "iv", "iah", "ratio", "tnr"} and set(v["tnr"]) == {"iv", "iah"}
