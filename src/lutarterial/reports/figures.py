"""Report figures (matplotlib, Agg canvas, no pyplot state) returned as PNG data URIs.

Every function takes plain result dicts/lists and returns ``data:image/png;base64,...`` text,
or ``None`` when there is nothing to draw (the template then says so).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["forest_plot", "waterfall_plot", "slope_plot", "consort_diagram", "km_plot", "toxicity_heatmap",
           "dose_distribution", "uptake_bars", "tac_plot", "limits_plot", "to_data_uri", "png_uri"]

_DPI = 110


def _fig(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plain_log_ticks(axis: Any) -> None:
    """Log-axis ticks at 1, 2, 5 x 10^k written as plain numbers (0.5, 1, 2), not as 2x10^0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def forest_plot(rows: Sequence[dict[str, Any]], pooled: dict[str, Any], label: str = "Primary (patient-level)") -> str | None:
    """Participant GMRs (lesion range as a line) and the pooled GMR with its 95% CI (diamond)."""
    if not rows:
        return None
    n = len(rows)
    fig = _fig(6.5, 0.9 + 0.28 * (n + 2))
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        y = n + 1 - i
        ax.plot([r["min_ratio"], r["max_ratio"]], [y, y], color="#777", lw=1)
        ax.plot([r["gmr"]], [y], "s", color="#1f4e79", ms=4 + min(r["n_lesions"], 6))
    labels = [f"{r['participant']} (n={r['n_lesions']})" for r in rows]
    ticks = [n + 1 - i for i in range(n)]
    if pooled.get("gmr") is not None:
        g = pooled["gmr"]
        lo, hi = pooled["ci95"] if pooled.get("ci95") else (g, g)
        ax.fill([lo, g, hi, g], [0, 0.3, 0, -0.3], color="#c0392b")
        ticks.append(0)
        labels.append(label)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("IAH / IV ratio (log scale); squares: participant GMR, lines: lesion range")
    ax.set_ylim(-0.8, n + 1.8)
    return to_data_uri(fig)


def waterfall_plot(ratios: Sequence[tuple[str, str, float]]) -> str | None:
    """Per-lesion IAH/IV ratio, sorted, as % change from IV (bars above 0: more uptake after IAH)."""
    if not ratios:
        return None
    vals = sorted(ratios, key=lambda x: -x[2])
    fig = _fig(6.5, 2.8)
    ax = fig.add_subplot()
    pct = [100 * (r - 1) for _, _, r in vals]
    ax.bar(range(len(vals)), pct, color=["#1f4e79" if p > 0 else "#c0392b" for p in pct])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks([])
    ax.set_xlabel(f"{len(vals)} VOIs, sorted")
    ax.set_ylabel("IAH vs IV (% change)")
    return to_data_uri(fig)


def slope_plot(pairs: Sequence[tuple[str, float, float]], metric: str) -> str | None:
    """Each VOI's IV value joined to its IAH value (log scale)."""
    if not pairs:
        return None
    fig = _fig(4.2, 3.6)
    ax = fig.add_subplot()
    for _, iv, iah in pairs:
        ax.plot([0, 1], [iv, iah], "-o", color="#1f4e79" if iah > iv else "#c0392b", alpha=0.7, ms=3, lw=1)
    ax.set_xticks([0, 1], ["IV", "IAH"])
    ax.set_xlim(-0.3, 1.3)
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_ylabel(metric)
    return to_data_uri(fig)


def consort_diagram(c: dict[str, Any]) -> str:
    """CONSORT-style flow boxes with counts; exclusions to the right."""
    fig = _fig(6.5, 5.0)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    main = [("Registered", c["registered"]), ("Screened", c["screened"]), ("Enrolled", c["enrolled"]),
            ("PET pair (IV and IAH) done", c["pet_pair_done"]), ("IAH cycle given", c["iah_given"]),
            ("Analysed (primary endpoint)", c["analysed"])]
    side = {1: f"Ineligible: {c['ineligible']}\n" + ", ".join(f"{k} {v}" for k, v in c["ineligible_by_criterion"].items())
               + f"\nIncomplete: {c['incomplete']}",
            2: f"Withdrawn: {c['withdrawn']}"}
    box = {"boxstyle": "round,pad=0.4", "fc": "#eef3f8", "ec": "#1f4e79"}
    for i, (name, k) in enumerate(main):
        y = 9.3 - i * 1.65
        ax.text(3.2, y, f"{name}\nn = {k}", ha="center", va="center", fontsize=9, bbox=box)
        if i:
            ax.annotate("", xy=(3.2, y + 0.45), xytext=(3.2, y + 1.2), arrowprops={"arrowstyle": "->"})
        if i in side:
            ax.text(7.6, y - 0.8, side[i], ha="center", va="center", fontsize=8,
                    bbox={"boxstyle": "round,pad=0.4", "fc": "#fff", "ec": "#777"})
            ax.annotate("", xy=(5.9, y - 0.8), xytext=(3.2, y - 0.8), arrowprops={"arrowstyle": "->", "color": "#777"})
    return to_data_uri(fig)


def km_plot(curves: Sequence[dict[str, Any]]) -> str | None:
    """Kaplan-Meier step curves with 95% CI bands; numbers at risk printed under the axis."""
    curves = [c for c in curves if c.get("curve")]
    if not curves:
        return None
    fig = _fig(6.5, 3.4)
    ax = fig.add_subplot()
    colours = ("#1f4e79", "#c0392b", "#27ae60")
    for col, c in zip(colours, curves):
        t = [p[0] for p in c["curve"]]
        ax.step(t, [p[1] for p in c["curve"]], where="post", color=col, label=c["label"])
        ax.fill_between(t, [p[2] for p in c["curve"]], [p[3] for p in c["curve"]], step="post", color=col, alpha=0.12)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"{curves[0].get('time_unit', 'days')} from the IAH cycle")
    ax.set_ylabel("progression-free")
    ax.legend(fontsize=8, loc="lower left")
    lines = ["at risk  " + "  ".join(f"{a['time']:g}:{a['n']}" for a in c["at_risk"]) + f"  ({c['label']})"
             for c in curves]
    fig.text(0.01, -0.04 * len(lines), "\n".join(lines), fontsize=7, family="monospace")
    return to_data_uri(fig)


def toxicity_heatmap(rows: Sequence[dict[str, Any]]) -> str | None:
    """Worst CTCAE grade per participant (columns) and term (rows), IV cycles and after IAH."""
    rows = [r for r in rows if r["phase"] in ("iv_cycles", "after_iah")]
    if not rows:
        return None
    import numpy as np
    from matplotlib.colors import ListedColormap

    terms = sorted({r["term"] for r in rows})
    parts = sorted({r["participant"] for r in rows})
    fig = _fig(6.5, 1.2 + 0.3 * len(terms))
    cmap = ListedColormap(["#f4f4f4", "#fde0a6", "#f6a04d", "#e0452b", "#8b0000", "#000000"])
    for k, phase in enumerate(("iv_cycles", "after_iah")):
        ax = fig.add_subplot(1, 2, k + 1)
        grid = np.zeros((len(terms), len(parts)))
        for r in rows:
            if r["phase"] == phase:
                grid[terms.index(r["term"]), parts.index(r["participant"])] = r["worst_grade"]
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=5, aspect="auto")
        for (i, j), g in np.ndenumerate(grid):
            if g:
                ax.text(j, i, int(g), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(parts)), parts, rotation=60, fontsize=6)
        ax.set_yticks(range(len(terms)), terms if k == 0 else [""] * len(terms), fontsize=7)
        ax.set_title("IV cycles" if phase == "iv_cycles" else "after the IAH cycle", fontsize=8)
    return to_data_uri(fig)


def dose_distribution(rows: Sequence[dict[str, Any]], regions: Sequence[str]) -> str | None:
    """Absorbed dose per GBq by region, IAH cycle vs IV cycles (points, log scale)."""
    if not rows:
        return None
    fig = _fig(6.5, 2.8)
    ax = fig.add_subplot()
    for i, region in enumerate(regions):
        for dx, route, col in ((-0.15, "IV", "#7f8c8d"), (0.15, "IAH", "#1f4e79")):
            ys = [r["gy_per_gbq"] for r in rows if r["region"] == region and r["route"] == route and r["gy_per_gbq"] > 0]
            ax.plot([i + dx] * len(ys), ys, "o", color=col, alpha=0.7, ms=4, label=route if i == 0 else None)
    ax.set_xticks(range(len(regions)), regions)
    ax.set_yscale("log")
    ax.set_ylabel("Gy/GBq")
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def uptake_bars(vois: Sequence[dict[str, Any]], metric: str = "suv_mean") -> str | None:
    """One participant: IV and IAH value per VOI with the ratio written above."""
    vois = [v for v in vois if (v.get("iv") or {}).get(metric) is not None and (v.get("iah") or {}).get(metric) is not None]
    if not vois:
        return None
    fig = _fig(6.5, 2.8)
    ax = fig.add_subplot()
    x = range(len(vois))
    iv = [v["iv"][metric] for v in vois]
    iah = [v["iah"][metric] for v in vois]
    ax.bar([i - 0.2 for i in x], iv, 0.4, label="IV", color="#7f8c8d")
    ax.bar([i + 0.2 for i in x], iah, 0.4, label="IAH", color="#1f4e79")
    for i, (a, b) in enumerate(zip(iv, iah)):
        if a and a > 0:
            ax.text(i, max(a, b) * 1.02, f"{b / a:.2f}", ha="center", fontsize=7)
    ax.set_xticks(list(x), [v["name"] for v in vois], rotation=40, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def tac_plot(tacs: Sequence[dict[str, Any]]) -> str | None:
    """Time-activity curves as measured (MBq vs h)."""
    tacs = [t for t in tacs if t.get("time_h")]
    if not tacs:
        return None
    fig = _fig(6.0, 3.0)
    ax = fig.add_subplot()
    for t in tacs:
        ax.plot(t["time_h"], t["activity_mbq"], "-o", ms=3, lw=1, label=t.get("region", "?"))
    ax.set_yscale("log")
    ax.set_xlabel("time after injection (h)")
    ax.set_ylabel("activity (MBq)")
    ax.legend(fontsize=6, ncol=2)
    return to_data_uri(fig)


def limits_plot(cumulative: Sequence[dict[str, Any]]) -> str | None:
    """Fraction of each organ-at-risk limit reached (bar per VOI and quantity; 1 = limit)."""
    rows = [c for c in cumulative if c.get("fraction_of_limit") is not None]
    if not rows:
        return None
    fig = _fig(6.0, 0.8 + 0.3 * len(rows))
    ax = fig.add_subplot()
    labels = [f"{c['voi']} ({c['quantity']})" for c in rows]
    fr = [c["fraction_of_limit"] for c in rows]
    ax.barh(range(len(rows)), fr, color=["#c0392b" if f >= 1 else "#1f4e79" for f in fr])
    ax.axvline(1.0, color="k", ls="--", lw=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlabel("fraction of the limit")
    ax.set_xlim(0, max(1.1, max(fr) * 1.1) if not math.isnan(max(fr)) else 1.1)
    return to_data_uri(fig)
