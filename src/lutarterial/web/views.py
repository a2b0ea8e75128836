"""Shaping stored data for pages: the schedule timeline, screening results, analysis tables and
the plots drawn from them. Pure functions of the dicts the backend returns."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from lutarterial.web import plots
from lutarterial.web.backend import VISIT_LABELS, normalise_screening

__all__ = ["timeline", "screening_view", "protocol_versions", "engine_available", "safety_plots", "lab_analytes",
           "analyses_view", "plot_png", "fmt", "changes_html", "recist_evaluation", "recist_view"]

_SHA256 = re.compile(r"[0-9a-f]{64}")

#: The LUTARTERIAL schedule in protocol order, with how many of each the page expects.
_SCHEDULE = (("iv_cycle", 1), ("pet_after_iv", 1), ("iah_cycle", 1), ("pet_after_iah", 1), ("follow_up", 1))


def fmt(v: Any) -> str:
    """Numbers to 4 significant digits, everything else as text; for tables."""
    if isinstance(v, bool) or v is None:
        return "—" if v is None else ("yes" if v else "no")
    if isinstance(v, float):
        if 1e4 <= abs(v) < 1e12:
            return f"{v:,.0f}".replace(",", "\u202f")  # 84 840: digits grouped, no exponent
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return _json_preview(v)
    return str(v)


_PREVIEW_ENCODER = json.JSONEncoder()


def _few_items(v: Any, budget: int = 64) -> bool:
    """Whether ``v`` (JSON-like) holds at most ``budget`` items in all (stops counting past it)."""
    stack = [v]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            budget -= len(cur)
            stack.extend(x for x in cur.values() if isinstance(x, (dict, list)))
        elif isinstance(cur, list):
            budget -= len(cur)
            stack.extend(x for x in cur if isinstance(x, (dict, list)))
        if budget < 0:
            return False
    return True


def _json_preview(v: Any, width: int = 80) -> str:
    """``json.dumps(v)`` cut to ``width`` characters with "…", without encoding all of a large
    value (a screening record in an audit row is kilobytes; the audit page shows 80 characters).
    A value of few items is encoded whole by the C encoder (faster than stopping early)."""
    if _few_items(v):
        text = json.dumps(v)
        return text if len(text) < width else text[:width - 3] + "…"
    parts: list[str] = []
    n = 0
    for chunk in _PREVIEW_ENCODER.iterencode(v):
        parts.append(chunk)
        n += len(chunk)
        if n >= width:
            break
    text = "".join(parts)
    return text if n < width else text[:width - 3] + "…"


def _escape(text: str) -> str:
    """Exactly markupsafe's ``escape`` of a plain string, as text (no Markup object per piece)."""
    return (text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;")
            .replace('"', "&#34;"))


class Changes(list):  # type: ignore[type-arg]
    """The changed fields of an audit row (``{"field", "old", "new"}`` each), which keeps its
    :func:`changes_html` once rendered: an audit row never changes (see ``Backend._audit_rows``)."""

    __slots__ = ("html",)


def changes_html(changes: list[dict[str, Any]]) -> Markup:
    """The "Changes" cell of an audit row: ``<div><strong>field</strong>: <del>old</del> → new</div>``
    per changed field, every value through :func:`fmt` and escaped as the template would (issue 13,
    fast: a page of laboratory inserts is hundreds of such cells; one string instead of a Markup
    object per piece). The same HTML as the template loop it replaces. A :class:`Changes` keeps it."""
    kept = getattr(changes, "html", None)
    if kept is not None:
        return kept  # type: ignore[no-any-return]
    out = []
    for c in changes:
        old = c["old"]
        out.append("<div><strong>" + _escape(str(c["field"])) + "</strong>: "
                   + ("" if old is None else "<del>" + _escape(fmt(old)) + "</del> → ")
                   + _escape(fmt(c["new"])) + "</div>")
    html = Markup("".join(out))
    if isinstance(changes, Changes):
        changes.html = html
    return html


def timeline(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Consent, screening, enrolment and every visit in date order, with the protocol's expected
    visits that are not recorded yet shown as missing (dashed) so the next step is visible."""
    items: list[dict[str, Any]] = []
    for c in p["consents"]:
        items.append({"label": f"Consent (information sheet {c['version']})", "when": c["signed_date"],
                      "state": "done", "status": "withdrawn" if c["withdrawal_date"] else "signed", "details": []})
    for s in p["screenings"]:
        items.append({"label": f"Screening (protocol v{s['protocol_version']})", "when": s["as_of"], "state": "done",
                      "status": s["overall"], "details": []})
    if p["enrolment"]:
        items.append({"label": "Enrolment", "when": p["enrolment"]["enrolled_date"], "state": "done",
                      "status": "enrolled", "details": []})
    seen: dict[str, int] = {}
    for v in p["visits"]:
        seen[v["kind"]] = seen.get(v["kind"], 0) + 1
        label = VISIT_LABELS.get(v["kind"], v["kind"])
        if v["kind"] in ("iv_cycle", "follow_up"):
            label += f" {v['number']}"
        details = []
        if v["activity_mbq"] is not None:
            details.append(("Activity", f"{v['activity_mbq']:.0f} MBq"))
        if v["artery"]:
            details.append(("Artery", v["artery"]))
        if v["catheter_position"]:
            details.append(("Catheter", v["catheter_position"]))
        if v["notes"]:
            details.append(("Notes", v["notes"]))
        items.append({"label": label, "when": v["visit_date"] or (f"planned {v['planned_date']}" if v["planned_date"]
                                                                  else None),
                      "state": "done" if v["status"] == "done" else "planned", "status": v["status"],
                      "details": details, "sort": v["visit_date"] or v["planned_date"], "kind": v["kind"]})
    items.sort(key=lambda i: str(i.get("sort") or i["when"] or "9999"))
    if p["enrolment"] or p["visits"]:
        order = [k for k, _n in _SCHEDULE]
        for kind in order:
            if kind in seen:
                continue
            missing = {"label": VISIT_LABELS[kind], "when": None, "state": "missing", "status": None,
                       "details": [], "kind": kind}
            # before the first recorded step that comes later in the protocol
            later = [n for n, it in enumerate(items) if it.get("kind") in order
                     and order.index(it["kind"]) > order.index(kind)]
            items.insert(later[0] if later else len(items), missing)
    return items


def screening_view(result: dict[str, Any]) -> dict[str, Any]:
    return normalise_screening(result)


def protocol_versions() -> list[str]:
    try:
        from lutarterial.protocol import available_versions

        return list(available_versions())
    except Exception:  # noqa: BLE001 - optional engine
        return []


def engine_available() -> bool:
    try:
        from lutarterial.eligibility import screen  # noqa: F401
    except ImportError:
        return False
    return True


def lab_analytes() -> list[str]:
    from lutarterial.units import ANALYTES

    return sorted(ANALYTES)


def safety_plots(p: dict[str, Any]) -> list[dict[str, str]]:
    tn = quote(p["trial_number"])
    out = []
    for analyte in sorted({lab["analyte"] for lab in p["labs"]}):
        out.append({"url": f"/participants/{tn}/plots/lab-{quote(analyte)}.png",
                    "alt": f"{analyte} over time", "caption": f"{analyte} over time (canonical unit)"})
    if recist_evaluation(p) is not None:
        out.append({"url": f"/participants/{tn}/plots/recist-spider.png", "alt": "RECIST spider plot",
                    "caption": "RECIST 1.1: change of the target sum from baseline (lutarterial.clinical)"})
    elif any(r["target_sum_mm"] is not None for r in p["recist"]):
        out.append({"url": f"/participants/{tn}/plots/recist.png", "alt": "RECIST target sum over time",
                    "caption": "RECIST 1.1 sum of target-lesion diameters"})
    return out


def recist_evaluation(p: dict[str, Any]) -> Any:
    """The clinical engine's RECIST 1.1 result re-run on the stored lesion measurements, or None.

    Used when every stored assessment carries its lesions (``details.lesions``, the engine's
    input format) and there is exactly one baseline; the best overall response (with the
    protocol's confirmation rule) then comes from ``lutarterial.clinical.recist``, not the page.
    """
    from lutarterial.clinical.recist import evaluate_recist, parse_recist_input
    from lutarterial.errors import LutarterialError

    recs = p.get("recist") or []
    docs = []
    for r in recs:
        det = r.get("details") or {}
        if not isinstance(det, dict) or not isinstance(det.get("lesions"), list):
            return None
        docs.append({"date": str(r["assessment_date"]), "baseline": bool(det.get("baseline")), "lesions": det["lesions"],
                     "new_lesions": det.get("new_lesions") or []})  # issue 13: new lesions entered per lesion
    if not docs or sum(d["baseline"] for d in docs) != 1:
        return None
    try:
        return evaluate_recist(parse_recist_input({"assessments": docs})[1], patient=p.get("trial_number"))
    except LutarterialError:
        return None


def recist_view(p: dict[str, Any]) -> dict[str, Any] | None:
    """Best overall response and per-time-point rows from :func:`recist_evaluation`."""
    res = recist_evaluation(p)
    if res is None:
        return None
    rows = [{"date": a.date, "baseline": a.baseline, "sum_mm": a.sum_mm, "change_from_baseline_pct":
             a.change_from_baseline_pct, "change_from_nadir_pct": a.change_from_nadir_pct, "target": a.target,
             "non_target": a.non_target, "new_lesions": a.new_lesions, "overall": a.overall} for a in res.assessments]
    return {"best_overall_response": res.best_overall_response, "reason": res.best_overall_response_reason,
            "progression_date": res.progression_date, "rows": rows, "baseline_issues": list(res.baseline_issues)}


def _tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    tables = []
    scalars = [(k, v) for k, v in result.items() if not isinstance(v, (dict, list))]
    if scalars:
        tables.append({"title": "Summary", "columns": ["quantity", "value"], "rows": [list(kv) for kv in scalars]})
    for k, v in result.items():
        if isinstance(v, dict) and v and all(not isinstance(x, (dict, list)) for x in v.values()):
            tables.append({"title": k.replace("_", " "), "columns": ["key", "value"], "rows": [list(x) for x in v.items()]})
    for path, rows in plots.find_tables(result):
        cols = list(dict.fromkeys(c for r in rows for c in r.keys() if not isinstance(r.get(c), (dict, list))))
        if not any(isinstance(r.get(c), (int, float)) for r in rows for c in cols):
            continue  # a table of labels only (e.g. the TACs, shown as a plot)
        tables.append({"title": path.replace("_", " "), "columns": cols, "rows": [[r.get(c) for c in cols] for r in rows]})
    return tables


def _r(v: Any, nd: int = 3) -> Any:
    return round(v, nd) if isinstance(v, float) else v


def _is_uptake_comparison(result: dict[str, Any]) -> bool:
    """The imaging engine's IAH-vs-IV comparison (``imaging.report.comparison_dict``)."""
    vois = result.get("vois")
    return (isinstance(vois, list) and bool(vois) and all(isinstance(v, dict) for v in vois)
            and all(isinstance(v.get("ratio"), dict) and isinstance(v.get("iv"), dict) for v in vois))


def _is_tac_dosimetry(result: dict[str, Any]) -> bool:
    """The dosimetry engine's per-VOI result (``dosimetry.workflow.tac_dosimetry``)."""
    vois = result.get("vois")
    return (isinstance(vois, list) and bool(vois) and all(isinstance(v, dict) for v in vois)
            and all("dose_gy" in v and "voi" in v for v in vois))


def _ci_text(g: dict[str, Any]) -> str:
    gm = g.get("geometric_mean")
    if gm is None:
        return "—"
    if g.get("ci_low") is None or g.get("ci_high") is None:
        return f"{gm:.2f} (n = {g.get('n')}, no CI with one value)"
    conf = int(round(100 * float(g.get("confidence") or 0.95)))
    return f"{gm:.2f} ({conf} % CI {g['ci_low']:.2f}–{g['ci_high']:.2f}, n = {g.get('n')})"


def _uptake_view(result: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Headline (lesion geometric-mean IAH/IV ratio with CI) and per-VOI tables."""
    summary = result.get("summary") or {}
    headline = []
    for group, label in (("lesions", "Liver lesions"), ("extrahepatic", "Extrahepatic lesions")):
        g = (summary.get(group) or {}).get("suv_mean")
        if isinstance(g, dict):
            headline.append({"label": f"{label}: IAH/IV SUVmean ratio, geometric mean", "value": _ci_text(g)})
    organs = summary.get("organs") or {}
    if isinstance(organs.get("liver"), (int, float)):
        headline.append({"label": "Whole liver: IAH/IV SUVmean ratio", "value": f"{organs['liver']:.2f}"})
    rows = []
    for v in result["vois"]:
        iv, iah, ratio = v.get("iv") or {}, v.get("iah") or {}, v.get("ratio") or {}
        rows.append([v.get("name"), v.get("kind"), _r(iv.get("volume_ml"), 1), _r(iv.get("suv_mean"), 2),
                     _r(iah.get("suv_mean"), 2), _r(ratio.get("suv_mean"), 2), _r(iv.get("suv_max"), 2),
                     _r(iah.get("suv_max"), 2), _r(ratio.get("suv_max"), 2), _r(iv.get("percent_ia"), 2),
                     _r(iah.get("percent_ia"), 2)])
    tables = [{"title": "Uptake per volume of interest: IV vs IAH",
               "columns": ["VOI", "kind", "volume (mL)", "SUVmean IV", "SUVmean IAH", "ratio IAH/IV",
                           "SUVmax IV", "SUVmax IAH", "ratio SUVmax", "%IA IV", "%IA IAH"],
               "rows": rows, "note": "SUV body-weight; ratio = IAH / IV of the same VOI; %IA = percent of "
                                     "the injected 68Ga activity in the VOI."}]
    grows = []
    for group in ("lesions", "extrahepatic"):
        for metric, g in (summary.get(group) or {}).items():
            if isinstance(g, dict):
                grows.append([group, metric, g.get("n"), _r(g.get("geometric_mean")), _r(g.get("ci_low")),
                              _r(g.get("ci_high")), g.get("confidence")])
    if grows:
        tables.append({"title": "IAH/IV ratio across lesions (geometric mean, t-interval on log ratios)",
                       "columns": ["group", "metric", "n", "geometric mean", "CI low", "CI high", "confidence"],
                       "rows": grows, "note": ""})
    studies = result.get("studies")
    if isinstance(studies, list) and studies:
        tables.append({"title": "Studies compared", "columns": ["route", "injected (MBq)", "scan time",
                                                                "StudyInstanceUID", "PET SeriesInstanceUID"],
                       "rows": [[st.get("route"), st.get("injected_mbq"), st.get("scan_time"),
                                 st.get("study_instance_uid"), st.get("pet_series_instance_uid")] for st in studies],
                       "note": "", "mono": True})
    msgs = [str(m) for m in result.get("messages") or []]
    unmatched = result.get("unmatched") or {}
    for route, names in unmatched.items():
        if names:
            msgs.append(f"VOIs only in the {route.upper()} study (not compared): {', '.join(map(str, names))}")
    if msgs:
        tables.append({"title": "Messages", "columns": ["message"], "rows": [[m] for m in msgs], "note": ""})
    return headline, tables


_QUANTITY = {"dose_gy": "absorbed dose (Gy)", "bed_gy": "BED (Gy)"}


def _dosimetry_view(result: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Headline (limits reached or not), dose per VOI and cumulative dose against limits."""
    rows = []
    for v in result["vois"]:
        sd = v.get("dose_sd_gy")
        rows.append([v.get("voi"), v.get("cycle"), v.get("kind"), v.get("model"), _r(v.get("teff_h"), 1),
                     _r(v.get("tia_mbq_h"), 0), _r(v.get("mass_g"), 1), _r(v.get("dose_gy"), 2),
                     float(f"{sd:.2g}") if isinstance(sd, (int, float)) else None, _r(v.get("bed_gy"), 2),
                     "; ".join(map(str, v.get("warnings") or [])) or None])
    tables = [{"title": "Absorbed dose per volume of interest",
               "columns": ["VOI", "cycle", "kind", "TAC model", "Teff (h)", "TIA (MBq·h)", "mass (g)", "dose (Gy)",
                           "SD (Gy)", "BED (Gy)", "warnings"],
               "rows": rows, "note": f"Nuclide {result.get('nuclide', '?')}; self-dose from the fitted "
                                     "time-integrated activity; BED with the organ's α/β and repair half-time."}]
    cum = result.get("cumulative") or []
    headline = []
    if cum:
        crow = []
        for c in cum:
            frac = c.get("fraction_of_limit")
            crow.append([c.get("voi"), c.get("organ"), _QUANTITY.get(c.get("quantity"), c.get("quantity")),
                         _r(c.get("total"), 2), c.get("limit"),
                         f"{100 * frac:.0f} %" if isinstance(frac, (int, float)) else None, c.get("status"),
                         c.get("source")])
        tables.append({"title": "Cumulative dose against organ limits", "columns":
                       ["VOI", "organ", "quantity", "total", "limit", "of limit", "status", "source"],
                       "rows": crow, "note": "Totals over the cycles listed (this analysis plus prior cycles given "
                                             "to the engine), in Gy."})
        over = [c for c in cum if c.get("status") not in ("below", None)]
        worst = max(cum, key=lambda c: c.get("fraction_of_limit") or 0.0)
        headline.append({"label": "Organ limits", "value": (
            f"{len(over)} limit(s) reached or exceeded: " + ", ".join(f"{c['voi']} {_QUANTITY.get(c['quantity'], c['quantity'])} {c.get('total') or 0:.1f} "
                                                        f"(limit {c.get('limit')})" for c in over)
            if over else f"all below; highest: {worst.get('voi')} "
                         f"{_QUANTITY.get(worst.get('quantity'), worst.get('quantity'))} {worst.get('total') or 0:.1f} Gy "
                         f"= {100 * (worst.get('fraction_of_limit') or 0):.0f} % of the {worst.get('limit')} Gy limit")})
    lesions = [v for v in result["vois"] if v.get("kind") == "lesion" and isinstance(v.get("dose_gy"), (int, float))]
    if lesions:
        headline.append({"label": "Lesion absorbed dose", "value": ", ".join(
            f"{v['voi']} {v['dose_gy']:.1f} Gy" for v in lesions)})
    return headline, tables


def analyses_view(p: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    tn = quote(p["trial_number"])
    out = []
    for a in p[kind]:
        result = a["result"] or {}
        figs = []
        for i, f in enumerate(result.get("figures") or []):
            if isinstance(f, dict) and _SHA256.fullmatch(str(f.get("sha256", ""))):
                figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-fig{i}.png",
                             "alt": str(f.get("caption") or "figure"), "caption": str(f.get("caption") or "")})
        headline: list[dict[str, str]] = []
        if _is_uptake_comparison(result):
            headline, tables = _uptake_view(result)
        elif _is_tac_dosimetry(result):
            headline, tables = _dosimetry_view(result)
            figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-dose.png", "alt": "absorbed dose per VOI",
                         "caption": "Absorbed dose per VOI (Gy)"})
            if plots.find_tacs(result) and not any("-fig" in f["url"] for f in figs):
                figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-tac.png",
                             "alt": "time-activity curves", "caption": "Time-activity curves"})
        else:
            tables = _tables(result)
            if plots.find_tacs(result) and not figs:
                figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-tac.png", "alt": "time-activity curves",
                             "caption": "Time-activity curves"})
            for i, (path, rows) in enumerate(plots.find_tables(result)):
                has_label = any(isinstance(v, str) for v in rows[0].values())
                has_number = any(all(plots._is_num(r.get(k)) for r in rows) for k in rows[0].keys())
                if has_label and has_number:
                    figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-t{i}.png", "alt": path,
                                 "caption": path.replace("_", " ")})
        out.append({**a, "plots": figs, "tables": tables, "headline": headline})
    return out


def _stored_figure(data_dir: Path | None, ref: Any) -> bytes | None:
    """A figure kept by content hash in ``<data dir>/figures/<sha256>.png``; checked against its hash.

    Only a 64-hex name is looked up, so a stored result cannot point the server at another file.
    """
    if data_dir is None or not isinstance(ref, dict) or not _SHA256.fullmatch(str(ref.get("sha256", ""))):
        return None
    path = Path(data_dir) / "figures" / f"{ref['sha256']}.png"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == ref["sha256"] else None


def lab_plot_context(p: dict[str, Any], analyte: str) -> tuple[float | None, float | None,
                                                                list[tuple[float, float, int]], list[tuple[Any, str]]]:
    """LLN/ULN (latest given, converted to the canonical unit), CTCAE grade bands and treatment dates.

    The bands come from the grading engine itself (``lutarterial.clinical.ctcae.grade_lab`` run
    on a grid of values with the same LLN/ULN), so the plot never carries rules of its own.
    """
    labs = [x for x in p.get("labs") or [] if x["analyte"] == analyte]
    ref = next((x for x in reversed(labs) if x.get("lln") is not None or x.get("uln") is not None), None)
    lln = uln = None
    bands: list[tuple[float, float, int]] = []
    if ref is not None and ref["value"]:
        factor = ref["value_canonical"] / ref["value"]
        lln = ref["lln"] * factor if ref.get("lln") is not None else None
        uln = ref["uln"] * factor if ref.get("uln") is not None else None
        bands = _grade_bands(analyte, ref, [x["value_canonical"] for x in labs], lln, uln)
    markers = [(v["visit_date"], ("IV C" + str(v["number"])) if v["kind"] == "iv_cycle" else "IAH")
               for v in p.get("visits") or [] if v.get("kind") in ("iv_cycle", "iah_cycle") and v.get("status") == "done"
               and v.get("visit_date")]
    return lln, uln, bands, markers


def _grade_bands(analyte: str, ref: dict[str, Any], values: list[float], lln: float | None,
                 uln: float | None) -> list[tuple[float, float, int]]:
    try:
        from lutarterial.clinical.ctcae import grade_lab
    except ImportError:
        return []
    span = [v for v in (*values, lln, uln) if v is not None]
    if not span:
        return []
    top = max(span) * 1.6 or 1.0
    n = 160
    grid = [top * i / n for i in range(n + 1)]
    def grade(v: float) -> int | None:
        try:
            return grade_lab(analyte, v, ref["unit_canonical"], lln=lln, uln=uln).grade
        except Exception:  # noqa: BLE001 - a value the engine cannot grade leaves no band
            return None

    out: list[tuple[float, float, int]] = []
    prev_g = grade(grid[0])
    start, prev_v = grid[0], grid[0]
    for v in grid[1:]:
        g = grade(v)
        if g != prev_g:
            lo, hi = prev_v, v  # the boundary lies in (lo, hi]: bisect it to 1e-6 of the range
            for _ in range(30):
                mid = (lo + hi) / 2
                if grade(mid) == prev_g:
                    lo = mid
                else:
                    hi = mid
            if prev_g is not None:
                out.append((start, hi, prev_g))
            start, prev_g = hi, g
        prev_v = v
    if prev_g is not None:
        out.append((start, top, prev_g))
    return out


def plot_png(p: dict[str, Any], name: str, data_dir: Path | None = None) -> bytes | None:
    """The PNG called ``name`` for participant ``p`` (names as linked by the views above)."""
    if name.startswith("lab-"):
        analyte = name[4:]
        pts = [(x["collected_date"], x["value_canonical"], x["ctcae_grade"]) for x in p["labs"] if x["analyte"] == analyte]
        if not pts:
            return None
        unit = next(x["unit_canonical"] for x in p["labs"] if x["analyte"] == analyte)
        lln, uln, bands, markers = lab_plot_context(p, analyte)  # issue 13: reference lines, grade bands, cycles
        return plots.png_cached(("lab", analyte, pts, unit, lln, uln, tuple(bands), tuple(markers)),
                                lambda: plots.lab_series_png(analyte, pts, unit, lln=lln, uln=uln, bands=bands,
                                                             markers=markers))
    if name == "recist-spider":
        res = recist_evaluation(p)
        if res is None:
            return None
        from lutarterial.clinical.plots import spider_plot_png

        return plots.png_cached(("spider", repr(res)), lambda: spider_plot_png([res]))
    if name == "recist":
        pts = [(r["assessment_date"], r["target_sum_mm"], r["response"]) for r in p["recist"]]
        return plots.png_cached(("recist", pts), lambda: plots.recist_png(pts))
    for kind in ("imaging", "dosimetry"):
        if name.startswith(kind + "-"):
            try:
                ident, part = name[len(kind) + 1:].split("-", 1)
                a = next(x for x in p[kind] if str(x["id"]) == ident)
            except (ValueError, StopIteration):
                return None
            result = a["result"] or {}
            if part.startswith("fig") and part[3:].isdigit():
                figs = result.get("figures") or []
                i = int(part[3:])
                return _stored_figure(data_dir, figs[i]) if i < len(figs) else None
            if part == "dose" and _is_tac_dosimetry(result):
                rows = [{"voi": f"{v['voi']} ({v.get('cycle')})" if len({x.get('cycle') for x in result['vois']}) > 1
                         else v["voi"], "dose_gy": v["dose_gy"]} for v in result["vois"]]
                return plots.png_cached(("dose", rows), lambda: plots.table_bars_png(
                    "absorbed dose per VOI (Gy)", rows, ["dose_gy"]) or b"") or None
            if part == "tac":
                curves = plots.find_tacs(result)
                return plots.png_cached(("tac", curves), lambda: plots.tac_png(curves)) if curves else None
            if part.startswith("t") and part[1:].isdigit():
                tables = plots.find_tables(result)
                i = int(part[1:])
                if i >= len(tables):
                    return None
                path, rows = tables[i]
                return plots.png_cached(("bars", path, rows), lambda: plots.table_bars_png(path, rows) or b"") or None
    return None
