"""Pure view helpers: the schedule timeline, number formatting and plots from stored results."""

from __future__ import annotations

from typing import Any

from lutarterial.web import plots, views


def _p(visits: list[dict[str, Any]], enrolled: bool = True) -> dict[str, Any]:
    base = {"kind": None, "number": 1, "status": "done", "planned_date": None, "activity_mbq": None, "artery": None,
            "catheter_position": None, "notes": None}
    return {"consents": [{"version": "v3", "signed_date": "2024-01-01", "withdrawal_date": None}],
            "screenings": [{"protocol_version": "2", "as_of": "2024-01-05", "overall": "eligible"}],
            "enrolment": {"enrolled_date": "2024-01-10"} if enrolled else None,
            "visits": [{**base, **v} for v in visits]}


def test_timeline_in_date_order_with_missing_steps_in_protocol_order() -> None:
    items = views.timeline(_p([
        {"kind": "iah_cycle", "visit_date": "2024-03-01", "activity_mbq": 7400.0, "artery": "proper hepatic"},
        {"kind": "iv_cycle", "visit_date": "2024-02-01", "activity_mbq": 7400.0},
    ]))
    labels = [i["label"] for i in items]
    assert labels[:3] == ["Consent (information sheet v3)", "Screening (protocol v2)", "Enrolment"]
    # PET after IV is missing and belongs between the IV cycle and the IAH cycle
    assert labels.index("IV LUTATHERA cycle 1") < labels.index("PET after IV injection") < labels.index(
        "IAH LUTATHERA cycle")
    assert labels[-2:] == ["PET after IAH injection", "Follow-up visit"]
    missing = [i["label"] for i in items if i["state"] == "missing"]
    assert missing == ["PET after IV injection", "PET after IAH injection", "Follow-up visit"]
    iah = next(i for i in items if i["label"] == "IAH LUTATHERA cycle")
    assert ("Activity", "7400 MBq") in iah["details"] and ("Artery", "proper hepatic") in iah["details"]


def test_timeline_before_enrolment_shows_no_schedule() -> None:
    items = views.timeline(_p([], enrolled=False))
    assert all(i["state"] == "done" for i in items) and len(items) == 2


def test_fmt() -> None:
    assert views.fmt(None) == "—" and views.fmt(True) == "yes"
    assert views.fmt(0.123456) == "0.1235"
    assert views.fmt(84840.4) == "84\u202f840"
    assert views.fmt(7400) == "7400"


def test_plots_pick_comparable_columns_and_find_tacs() -> None:
    rows = [{"region": "liver", "suv_mean_iv": 7.8, "suv_mean_iah": 10.9, "volume_ml": 603.0},
            {"region": "lesion 1", "suv_mean_iv": 31.7, "suv_mean_iah": 106.3, "volume_ml": 15.0}]
    assert plots._comparable(["suv_mean_iv", "suv_mean_iah", "volume_ml"]) == ["suv_mean_iv", "suv_mean_iah"]
    assert plots._comparable(["teff_h", "tia_mbq_h", "dose_gy"]) == ["dose_gy"]
    png = plots.table_bars_png("vois", rows)
    assert png is not None and png[:4] == b"\x89PNG"
    tacs = plots.find_tacs({"tacs": [{"region": "liver", "time_h": [4, 24, 96], "activity_mbq": [9.0, 7.0, 3.0]}]})
    assert tacs == [("liver", [4.0, 24.0, 96.0], [9.0, 7.0, 3.0])]
    assert plots.table_bars_png("labels only", [{"region": "x"}]) is None


def _voi(name: str, kind: str, iv: float, iah: float) -> dict[str, Any]:
    return {"name": name, "kind": kind, "lobe": None, "iv": {"suv_mean": iv, "suv_max": 2 * iv, "volume_ml": 10.0},
            "iah": {"suv_mean": iah, "suv_max": 2 * iah, "volume_ml": 10.0},
            "ratio": {"suv_mean": iah / iv, "suv_max": iah / iv}}


def test_imaging_comparison_shows_per_voi_ratios_and_lesion_geometric_mean_with_ci() -> None:
    result = {"vois": [_voi("liver", "liver", 7.0, 8.0), _voi("lesion 1", "lesion", 30.0, 90.0)],
              "summary": {"lesions": {"suv_mean": {"n": 3, "geometric_mean": 2.5, "ci_low": 1.2, "ci_high": 5.1,
                                                   "confidence": 0.95}},
                          "extrahepatic": {"suv_mean": {"n": 1, "geometric_mean": 0.9, "ci_low": None,
                                                        "ci_high": None, "confidence": 0.95}},
                          "organs": {"liver": 8 / 7}},
              "unmatched": {"iv": [], "iah": ["lesion 9"]}, "messages": []}
    [a] = views.analyses_view({"trial_number": "BDX-001", "imaging": [{"id": 3, "result": result}]}, "imaging")
    head = {h["label"]: h["value"] for h in a["headline"]}
    assert head["Liver lesions: IAH/IV SUVmean ratio, geometric mean"] == "2.50 (95 % CI 1.20–5.10, n = 3)"
    assert "no CI with one value" in head["Extrahepatic lesions: IAH/IV SUVmean ratio, geometric mean"]
    table = a["tables"][0]
    col = table["columns"].index("ratio IAH/IV")
    assert [r[col] for r in table["rows"]] == [round(8 / 7, 2), 3.0]
    assert any("lesion 9" in r[0] for t in a["tables"] if t["title"] == "Messages" for r in t["rows"])


def test_dosimetry_headline_names_limits_reached_and_lesion_doses() -> None:
    result = {"nuclide": "Lu-177", "vois": [
        {"voi": "kidney left", "cycle": "1", "kind": "organ", "dose_gy": 24.0, "dose_sd_gy": 0.00012},
        {"voi": "lesion 1", "cycle": "1", "kind": "lesion", "dose_gy": 61.25}],
        "cumulative": [{"voi": "kidney left", "organ": "kidney", "quantity": "dose_gy", "total": 24.0, "limit": 23.0,
                        "fraction_of_limit": 24 / 23, "status": "above", "source": "Emami 1991"}]}
    [a] = views.analyses_view({"trial_number": "BDX-001", "dosimetry": [{"id": 4, "result": result}]}, "dosimetry")
    head = {h["label"]: h["value"] for h in a["headline"]}
    assert head["Organ limits"] == ("1 limit(s) reached or exceeded: kidney left absorbed dose (Gy) "
                                    "24.0 (limit 23.0)")
    assert head["Lesion absorbed dose"] == "lesion 1 61.2 Gy" or head["Lesion absorbed dose"] == "lesion 1 61.3 Gy"
    dose_table = a["tables"][0]
    assert dose_table["rows"][0][dose_table["columns"].index("SD (Gy)")] == 0.00012  # small SDs not shown as 0
    assert any(f["url"].endswith("-dose.png") for f in a["plots"])
    png = views.plot_png({"trial_number": "BDX-001", "dosimetry": [{"id": 4, "result": result}]}, "dosimetry-4-dose")
    assert png is not None and png[:4] == b"\x89PNG"


def test_recist_best_overall_response_comes_from_the_clinical_engine() -> None:
    def rec(date: str, base: bool, sizes: dict[str, float]) -> dict[str, Any]:
        lesions = [{"id": k, "role": "target", "organ": "liver", "diameter_mm": v} if base else {"id": k, "diameter_mm": v}
                   for k, v in sizes.items()]
        return {"assessment_date": date, "target_sum_mm": sum(sizes.values()), "response": "NE",
                "details": {"baseline": base, "lesions": lesions}}

    p = {"trial_number": "BDX-001", "labs": [], "recist": [
        rec("2024-01-01", True, {"L1": 50.0, "L2": 30.0}), rec("2024-03-01", False, {"L1": 30.0, "L2": 20.0}),
        rec("2024-04-15", False, {"L1": 30.0, "L2": 20.0})]}
    view = views.recist_view(p)
    assert view is not None and view["best_overall_response"] == "PR"  # -37.5 %, confirmed after >= 4 weeks
    assert [r["overall"] for r in view["rows"]] == [None, "PR", "PR"]
    p["recist"] = p["recist"][:2]  # unconfirmed PR: the engine's rule, not the recorded response
    assert views.recist_view(p)["best_overall_response"] != "PR"  # type: ignore[index]
    assert any(pl["url"].endswith("recist-spider.png") for pl in views.safety_plots(p))
    assert views.plot_png(p, "recist-spider")[:4] == b"\x89PNG"  # type: ignore[index]
    p["recist"][1]["details"] = None  # measurements missing: no engine evaluation, the recorded table instead
    assert views.recist_view(p) is None
