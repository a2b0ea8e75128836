"""The physician's figure: coronal MIPs with VOI outlines side by side, and a lesion waterfall.

Rendered with matplotlib's Agg backend into PNG bytes (the caller writes the file).
MIPs are displayed in SUVbw when the study has SUV factors, else in Bq/mL; superior is up,
patient right on the image left (radiological convention).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from lutarterial.imaging.compare import Comparison
from lutarterial.imaging.metrics import StudyMetrics
from lutarterial.imaging.types import Image, LabelMap, Quantity, VoiKind

__all__ = ["render_png"]

_COLORS = {VoiKind.LESION: "#ff3b30", VoiKind.EXTRAHEPATIC: "#ff9500", VoiKind.LIVER: "#34c759",
           VoiKind.SPLEEN: "#af52de", VoiKind.KIDNEY: "#007aff", VoiKind.MARROW: "#ffcc00", VoiKind.OTHER: "#8e8e93"}


def _mip(image: Image, metrics: StudyMetrics | None) -> tuple[np.ndarray, str]:
    arr = image.array
    scale, unit = 1.0, image.quantity.value
    if image.quantity is Quantity.BQML and metrics is not None and metrics.suv is not None:
        scale, unit = metrics.suv.bw, "SUVbw"
    d = image.geometry.direction_matrix
    # Coronal MIP: project along the axis closest to anterior-posterior (LPS y).
    ap_axis = int(np.argmax(np.abs(d[1, :])))  # 0=i, 1=j, 2=k in index space
    np_axis = 2 - ap_axis
    return np.max(arr, axis=np_axis) * scale, unit


def _panel(ax, image: Image, labels: LabelMap | None, metrics: StudyMetrics | None, title: str, vmax: float):  # type: ignore[no-untyped-def]
    mip, unit = _mip(image, metrics)
    g = image.geometry
    d = g.direction_matrix
    ap_axis = int(np.argmax(np.abs(d[1, :])))
    remaining = [a for a in (0, 1, 2) if a != ap_axis]  # index axes left in the MIP, order i, j, k
    # mip has numpy axes (k?, j?, i?) minus the projected one, i.e. reversed 'remaining'
    sp_rows, sp_cols = g.spacing_mm[remaining[1]], g.spacing_mm[remaining[0]]
    im = ax.imshow(mip, cmap="gray_r", vmin=0, vmax=vmax, origin="lower" if d[2, remaining[1]] > 0 else "upper",
                   aspect=sp_rows / sp_cols, interpolation="nearest")
    if labels is not None:
        np_axis = 2 - ap_axis
        for v in labels.vois:
            proj = np.any(v.full(g.shape), axis=np_axis)
            if proj.any():
                ax.contour(proj.astype(float), levels=[0.5], colors=[_COLORS[v.spec.kind]], linewidths=0.8,
                           origin="lower" if d[2, remaining[1]] > 0 else "upper")
    ax.set_title(f"{title} ({unit})", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def render_png(
    studies: Sequence[tuple[str, Image, LabelMap | None, StudyMetrics | None]],
    comparison: Comparison | None = None,
    *,
    dpi: int = 110,
) -> bytes:
    """PNG bytes: one MIP panel per study (title, image, labels, metrics) plus a waterfall plot."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    n = len(studies) + (1 if comparison is not None else 0)
    fig = Figure(figsize=(4.2 * n, 6.0), dpi=dpi, constrained_layout=True)
    axes = fig.subplots(1, n, squeeze=False)[0]
    vmax = 0.0
    for _, img, _, met in studies:
        mip, _ = _mip(img, met)
        vmax = max(vmax, float(np.percentile(mip, 99.5)))
    for ax, (title, img, lab, met) in zip(axes, studies, strict=False):
        im = _panel(ax, img, lab, met, title, vmax or 1.0)
        fig.colorbar(im, ax=ax, shrink=0.6)
    if comparison is not None:
        ax = axes[-1]
        rows = sorted(((c.name, c.ratio.get("suv_mean")) for c in comparison.vois
                       if c.kind in (VoiKind.LESION, VoiKind.EXTRAHEPATIC) and c.ratio.get("suv_mean")),
                      key=lambda r: -float(r[1]))  # type: ignore[arg-type]
        if rows:
            kinds = {c.name: c.kind for c in comparison.vois}
            vals = np.array([r[1] for r in rows], dtype=float)
            ax.bar(range(len(rows)), vals - 1.0, bottom=1.0, color=[_COLORS[kinds[r[0]]] for r in rows])
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_yscale("log")
            from matplotlib.ticker import FormatStrFormatter, LogLocator

            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(1.5, 3.0, 4.0, 7.0)))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
            ax.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=60, ha="right", fontsize=8)
            les = comparison.summary.get("lesions")
            if isinstance(les, dict) and les["suv_mean"]["geometric_mean"]:
                gm = les["suv_mean"]["geometric_mean"]
                ax.axhline(gm, color="#ff3b30", ls="--", lw=0.8, label=f"lesion GM {gm:.2f}")
                ax.legend(fontsize=8)
        ax.set_title("Lesion SUVmean IAH/IV (waterfall)", fontsize=10)
        ax.set_ylabel("IAH / IV")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
