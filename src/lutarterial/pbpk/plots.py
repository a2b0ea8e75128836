"""Figures of the PBPK package: time courses, and predicted-vs-measured Bland-Altman.

The Bland-Altman functions are for the trial report (``lutarterial.reports``): feed them the
stored ``pbpk_prediction`` analysis results of all participants::

    from lutarterial.pbpk.plots import lesion_pairs, bland_altman, plot_bland_altman
    pairs = lesion_pairs(results)           # results: list of pbpk_prediction result dicts
    stats = bland_altman(pairs)             # bias and limits of agreement (ratio scale)
    plot_bland_altman(pairs, "ba.png")      # PNG; returns the stats too
    png, stats = bland_altman_figure(pairs) # PNG bytes for reports.figures.png_uri(png)

Agreement is assessed on the log scale (SUV errors are proportional): difference
d = ln(measured) - ln(predicted), mean m = (ln measured + ln predicted)/2; bias and 95 % limits
of agreement (bias +- 1.96 SD) are reported back-transformed as measured/predicted ratios.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import InvalidInputError

__all__ = ["PredictionPair", "lesion_pairs", "bland_altman", "bland_altman_figure", "plot_bland_altman",
           "plot_time_courses"]


@dataclass(frozen=True)
class PredictionPair:
    participant: str
    lesion: str
    predicted: float
    measured: float


def lesion_pairs(results: Iterable[Mapping[str, Any]]) -> list[PredictionPair]:
    """Predicted vs measured IAH SUV of every lesion that has a measured IAH value."""
    out = []
    for r in results:
        tn = str(r.get("participant", "?"))
        for les in r.get("lesions") or []:
            if les.get("measured_suv_iah") is not None and les.get("predicted_suv_iah"):
                out.append(PredictionPair(tn, str(les.get("name")), float(les["predicted_suv_iah"]),
                                          float(les["measured_suv_iah"])))
    return out


def bland_altman(pairs: Sequence[PredictionPair]) -> dict[str, Any]:
    """Bias and 95 % limits of agreement of measured vs predicted (log scale, as ratios)."""
    good = [p for p in pairs if p.predicted > 0 and p.measured > 0 and math.isfinite(p.predicted)
            and math.isfinite(p.measured)]
    if len(good) < 2:
        raise InvalidInputError(f"Bland-Altman needs at least 2 lesions with predicted and measured IAH SUV, "
                                f"got {len(good)}")
    d = np.array([math.log(p.measured) - math.log(p.predicted) for p in good])
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"n_lesions": len(good), "n_participants": len({p.participant for p in good}),
            "bias_ratio": round(math.exp(bias), 4),
            "loa_ratio": [round(math.exp(bias - 1.96 * sd), 4), round(math.exp(bias + 1.96 * sd), 4)],
            "sd_log": round(sd, 4)}


def plot_bland_altman(pairs: Sequence[PredictionPair], path: str | Path,
                      title: str = "IAH 68Ga PET: measured vs PBPK-predicted lesion SUV") -> dict[str, Any]:
    """Write the Bland-Altman PNG; returns :func:`bland_altman`'s statistics."""
    png, stats = bland_altman_figure(pairs, title)
    Path(path).write_bytes(png)
    return stats


def bland_altman_figure(pairs: Sequence[PredictionPair],
                        title: str = "IAH 68Ga PET: measured vs PBPK-predicted lesion SUV") -> tuple[bytes, dict[str, Any]]:
    """The Bland-Altman figure as PNG bytes (for ``lutarterial.reports.figures.png_uri``) and its statistics."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = bland_altman(pairs)
    mean = np.array([math.exp(0.5 * (math.log(p.measured) + math.log(p.predicted))) for p in pairs])
    ratio = np.array([p.measured / p.predicted for p in pairs])
    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=110)
    ax.scatter(mean, ratio, s=18, color="#1f77b4")
    ax.axhline(stats["bias_ratio"], color="k", lw=1, label=f"bias {stats['bias_ratio']:.2f}")
    for v in stats["loa_ratio"]:
        ax.axhline(v, color="k", lw=0.8, ls="--")
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("geometric mean of measured and predicted SUV")
    ax.set_ylabel("measured / predicted")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, title=f"95% LoA {stats['loa_ratio'][0]:.2f}-{stats['loa_ratio'][1]:.2f}",
              title_fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue(), stats


def plot_time_courses(res: Any, path: str | Path) -> Path:
    """Activity (MBq, physically decayed) per organ over time for the first patient of a result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lutarterial.pbpk.model import ORGANS

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    t = res.times_h
    for organ in (*ORGANS, "blood"):
        axes[0].plot(t, res.organ_activity(organ)[0], label=organ)
    axes[0].plot(t, res.urine_activity()[0], label="urine", ls="--")
    axes[0].set_xlabel("time (h)")
    axes[0].set_ylabel("activity (MBq)")
    axes[0].legend(fontsize=6, ncol=2)
    for organ in ("tumour_right", "tumour_left", "liver_right", "liver_left", "spleen", "kidneys"):
        axes[1].plot(t, res.suv(organ)[0], label=organ)
    axes[1].set_xlabel("time (h)")
    axes[1].set_ylabel("SUV")
    axes[1].legend(fontsize=6)
    adm = res.administration
    fig.suptitle(f"{res.nuclide} {adm.activity_mbq:g} MBq, {adm.peptide_ug:g} ug, {adm.route}"
                 + (f" ({adm.lobe})" if adm.route == "iah" else ""), fontsize=9)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(str(p))
    plt.close(fig)
    return p
