"""Response plots (matplotlib, Agg backend): spider plot and swimmer plot, returned as PNG bytes.

The functions return bytes rather than writing files so the domain stays free of I/O; the CLI
writes them. matplotlib is imported inside the functions (it is slow to import).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from lutarterial.clinical.recist import RecistResult

__all__ = ["spider_plot_png", "swimmer_plot_png"]

_COLOURS = {"CR": "#1a9850", "PR": "#91cf60", "SD": "#fee08b", "Non-CR/Non-PD": "#fee08b", "PD": "#d73027",
            "NE": "#999999"}


def _weeks(d: str, d0: str) -> float:
    return (dt.date.fromisoformat(d) - dt.date.fromisoformat(d0)).days / 7.0


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def spider_plot_png(results: Sequence[RecistResult], *, title: str = "Target lesions: change from baseline") -> bytes:
    """Spider plot: % change of the sum of target diameters from baseline against weeks on study.

    Dashed lines at +20 % (PD threshold, from baseline here for orientation only: PD is judged
    from the nadir) and -30 % (PR threshold). Assessments without a complete sum are skipped.
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for r in results:
        base = r.assessments[0]
        xs, ys = [0.0], [0.0]
        for a in r.assessments[1:]:
            if a.change_from_baseline_pct is not None:
                xs.append(_weeks(a.date, base.date))
                ys.append(a.change_from_baseline_pct)
        line, = ax.plot(xs, ys, marker="o", linewidth=1.5, label=str(r.patient or "patient"))
        if r.progression_date:
            pd_pts = [(x, y) for a, x, y in zip(r.assessments[1:], xs[1:], ys[1:], strict=False) if a.overall == "PD"]
            for x, y in pd_pts[:1]:
                ax.plot([x], [y], marker="X", markersize=10, color=line.get_color())
    ax.axhline(20, linestyle="--", color="#d73027", linewidth=1)
    ax.axhline(-30, linestyle="--", color="#1a9850", linewidth=1)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("weeks from baseline")
    ax.set_ylabel("change in sum of diameters (%)")
    ax.set_title(title)
    if len(results) <= 12:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def swimmer_plot_png(results: Sequence[RecistResult], *, title: str = "Time on study and responses") -> bytes:
    """Swimmer plot: one bar per patient up to the last assessment, response markers at each visit."""
    plt = _figure()
    n = max(1, len(results))
    fig, ax = plt.subplots(figsize=(8, max(2.6, 1.2 + 0.45 * n)), dpi=100)
    labels = []
    for i, r in enumerate(results):
        base = r.assessments[0].date
        last = _weeks(r.assessments[-1].date, base) if len(r.assessments) > 1 else 0.0
        ax.barh(i, last, color="#c6dbef", edgecolor="#6baed6", height=0.5)
        for a in r.assessments[1:]:
            resp = a.overall or "NE"
            ax.plot([_weeks(a.date, base)], [i], marker="D" if resp != "PD" else "X", linestyle="none",
                    color=_COLOURS.get(resp, "#999999"), markersize=8, markeredgecolor="black")
        labels.append(f"{r.patient or i} ({r.best_overall_response})")
    ax.set_yticks(range(len(results)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("weeks from baseline")
    ax.set_title(title)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="D" if k != "PD" else "X", linestyle="none", color=c, markeredgecolor="black", label=k)
               for k, c in _COLOURS.items() if k != "Non-CR/Non-PD"]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="overall", title_fontsize=7)
    ax.set_ylim(-0.75, len(results) - 0.25)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
