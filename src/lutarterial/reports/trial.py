"""The trial report (and the endpoint-only report of ``lutarterial endpoint --report``).

``trial_context`` turns computed results into the template's context (figures included);
``write_report`` renders ``report.html`` and ``report.pdf`` into a directory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lutarterial.reports import figures as F
from lutarterial.reports.render import render_html, write_pdf

__all__ = ["lesion_table", "trial_context", "write_report", "write_endpoint_report"]


def lesion_table(log_ratios: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows for the VOI table from :class:`~lutarterial.statistics.ratios.LogRatio` objects."""
    return [{"participant": x.participant, "voi": x.voi, "iv": x.iv, "iah": x.iah, "ratio": math.exp(x.log_ratio)}
            for x in log_ratios]


def trial_context(ep: dict[str, Any], lesions: list[dict[str, Any]], *, sec: dict[str, Any] | None,
                  snapshot: dict[str, Any] | None, versions: dict[str, str], command: str, source: str,
                  title: str = "trial report") -> dict[str, Any]:
    fig: dict[str, Any] = {
        "forest": F.forest_plot(ep["patients"], ep["primary"]),
        "waterfall": F.waterfall_plot([(x["participant"], x["voi"], x["ratio"]) for x in lesions]),
        "slope": F.slope_plot([(x["participant"], x["iv"], x["iah"]) for x in lesions], ep["metric"]),
    }
    if sec is not None:
        fig["consort"] = F.consort_diagram(sec["consort"])
        fig["toxicity"] = F.toxicity_heatmap(sec["safety"]["worst_grade"])
        fig["km"] = F.km_plot([{**sec["survival"][k], "label": "PFS" if k == "pfs" else "hepatic PFS"}
                               for k in ("pfs", "hepatic_pfs")])
        fig["doses"] = F.dose_distribution(sec["dosimetry"]["rows"], ("tumour", "kidney", "spleen", "marrow"))
    ci = ep["primary"].get("ci95")
    if not ci:
        verdict = "No confidence interval: " + str(ep["primary"].get("reason", "too few participants")) + "."
    elif ci[0] > 1:
        verdict = "The 95% CI lies above 1: uptake is higher after the hepatic-artery injection."
    elif ci[1] < 1:
        verdict = "The 95% CI lies below 1: uptake is lower after the hepatic-artery injection."
    else:
        verdict = "The 95% CI includes 1: a difference between the routes is not shown."
    methods_data = (f"{source}. Each participant's current uptake analysis (the latest IAH-vs-IV imaging analysis not "
                    "superseded by a newer one) gives one IV and one IAH value per VOI." if snapshot else
                    f"{source}: one row per VOI with its IV and IAH value.")
    return {"ep": ep, "lesions": lesions, "sec": sec, "snapshot": snapshot, "versions": versions,
            "command": command, "source": source, "fig": fig, "title": title, "methods_data": methods_data,
            "verdict": verdict, "pbpk": None, "signatures": None}


def write_report(out_dir: Path, context: dict[str, Any], *, template: str = "trial.html",
                 stem: str = "report") -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = render_html(template, context)
    html_path = out / f"{stem}.html"
    html_path.write_text(html, encoding="utf-8")
    return [html_path, write_pdf(html, out / f"{stem}.pdf")]


def write_endpoint_report(out_dir: Path, ep: dict[str, Any], *, source: str, command: str,
                          snapshot: dict[str, Any] | None = None, log_ratios: Sequence[Any] | None = None,
                          versions: dict[str, str] | None = None) -> list[Path]:
    """The primary-endpoint report (answer, methods, tables, figures) for ``endpoint --report``."""
    from lutarterial import __version__

    ctx = trial_context(ep, lesion_table(log_ratios or []), sec=None, snapshot=snapshot,
                        versions=versions or {"Software": f"lutarterial {__version__}"}, command=command,
                        source=source, title="primary endpoint report")
    return write_report(out_dir, ctx)
