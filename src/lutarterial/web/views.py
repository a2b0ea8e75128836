"""Shaping stored data for pages: the schedule timeline, screening results, analysis tables and
the plots drawn from them. Pure functions of the dicts the backend returns."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lutarterial.web import plots
from lutarterial.web.backend import VISIT_LABELS, normalise_screening

__all__ = ["timeline", "screening_view", "protocol_versions", "engine_available", "safety_plots", "lab_analytes",
           "analyses_view", "plot_png", "fmt"]

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
        import json

        text = json.dumps(v)
        return text if len(text) < 80 else text[:77] + "…"
    return str(v)


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
    if any(r["target_sum_mm"] is not None for r in p["recist"]):
        out.append({"url": f"/participants/{tn}/plots/recist.png", "alt": "RECIST target sum over time",
                    "caption": "RECIST 1.1 sum of target-lesion diameters"})
    return out


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
        if plots.find_tacs(result) and not figs:
            figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-tac.png", "alt": "time-activity curves",
                         "caption": "Time-activity curves"})
        for i, (path, rows) in enumerate(plots.find_tables(result)):
            has_label = any(isinstance(v, str) for v in rows[0].values())
            has_number = any(all(plots._is_num(r.get(k)) for r in rows) for k in rows[0].keys())
            if has_label and has_number:
                figs.append({"url": f"/participants/{tn}/plots/{kind}-{a['id']}-t{i}.png", "alt": path,
                             "caption": path.replace("_", " ")})
        out.append({**a, "plots": figs, "tables": _tables(result)})
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


def plot_png(p: dict[str, Any], name: str, data_dir: Path | None = None) -> bytes | None:
    """The PNG called ``name`` for participant ``p`` (names as linked by the views above)."""
    if name.startswith("lab-"):
        analyte = name[4:]
        pts = [(x["collected_date"], x["value_canonical"], x["ctcae_grade"]) for x in p["labs"] if x["analyte"] == analyte]
        if not pts:
            return None
        unit = next(x["unit_canonical"] for x in p["labs"] if x["analyte"] == analyte)
        return plots.png_cached(("lab", analyte, pts, unit), lambda: plots.lab_series_png(analyte, pts, unit))
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
