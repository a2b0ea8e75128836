"""PNG plots of stored results, drawn with matplotlib's Agg backend (no display needed).

The web layer draws from what the registry stored (the engines' result dictionaries), so a
plot always shows the numbers that are in the database and in the exports. Result layouts are
read tolerantly: a time-activity curve is any mapping with ``time_h`` and an ``activity``-like
array; a per-region table is any list of mappings with a text label and numeric columns.
Plots are cached in memory by the hash of their input (results are immutable once stored).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["png_cached", "lab_series_png", "recist_png", "table_bars_png", "tac_png", "find_tables", "find_tacs"]

_CACHE: OrderedDict[str, bytes] = OrderedDict()
_LOCK = threading.Lock()
_MAX = 256
_PALETTE = ["#1f5f8b", "#e07b39", "#3a9d5d", "#9c4f96", "#c23b22", "#5b6878", "#17becf", "#bcbd22", "#8c564b",
            "#e377c2"]


def png_cached(key_data: Any, draw: Callable[[], bytes]) -> bytes:
    """Return ``draw()``, memoised on the canonical JSON of ``key_data``."""
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True, default=str).encode()).hexdigest()
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    png = draw()
    with _LOCK:
        _CACHE[key] = png
        while len(_CACHE) > _MAX:
            _CACHE.popitem(last=False)
    return png


def _figure(width: float = 6.4, height: float = 3.4) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    fig.set_layout_engine("tight")
    ax = fig.add_subplot(1, 1, 1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, alpha=0.25)
    return fig, ax


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _as_date(v: Any) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])


_GRADE_COLOURS = {None: "#5b6878", 0: "#3a9d5d", 1: "#d9a400", 2: "#e07b39", 3: "#c23b22", 4: "#7a1a12", 5: "#000000"}


def lab_series_png(analyte: str, points: Sequence[tuple[Any, float, int | None]], unit: str, *,
                   lln: float | None = None, uln: float | None = None,
                   bands: Sequence[tuple[float, float, int]] = (),
                   markers: Sequence[tuple[Any, str]] = ()) -> bytes:
    """Canonical-unit values of one analyte over time; points coloured by CTCAE grade.

    ``lln``/``uln``: reference lines (canonical unit); ``bands``: (low, high, grade) value ranges
    shaded by CTCAE grade (computed by the grading engine, see ``views``); ``markers``: treatment
    dates (IV/IAH LUTATHERA cycles) as labelled vertical lines.
    """
    fig, ax = _figure(9.6, 3.8)
    pts = sorted((_as_date(d), v, g) for d, v, g in points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    for lo, hi, g in bands:
        if g and g > 0:
            ax.axhspan(lo, hi, color=_GRADE_COLOURS.get(g, "#999999"), alpha=0.10, lw=0, zorder=0)
            ax.text(1.0, (lo + hi) / 2, f" G{g}", transform=ax.get_yaxis_transform(), fontsize=7, va="center",
                    color=_GRADE_COLOURS.get(g, "#999999"), clip_on=False)
    if lln is not None:
        ax.axhline(lln, color="#3a6ea5", lw=1, ls="--", label=f"LLN {lln:g} {unit}")
    if uln is not None:
        ax.axhline(uln, color="#a53a3a", lw=1, ls="--", label=f"ULN {uln:g} {unit}")
    for i, (day, label) in enumerate(markers):
        ax.axvline(_as_date(day), color="#6b4d9a", lw=1, ls=":", label="LUTATHERA cycle" if i == 0 else None)
        ax.text(_as_date(day), 1.0, label, transform=ax.get_xaxis_transform(), fontsize=7, rotation=90, va="top",
                ha="right", color="#6b4d9a")
    ax.plot(xs, ys, color="#9aa5b1", lw=1.2, zorder=1)
    for x, y, g in pts:
        ax.scatter([x], [y], color=_GRADE_COLOURS.get(g, "#5b6878"), s=36, zorder=2)
    ax.set_title(f"{analyte} ({unit}); points and bands coloured by CTCAE v5 grade", fontsize=10)
    ax.set_ylabel(f"{analyte} ({unit})")
    if ys:
        lo = min([*ys, *(v for v in (lln, uln) if v is not None)])
        hi = max([*ys, *(v for v in (lln, uln) if v is not None)])
        pad = (hi - lo) * 0.15 or abs(hi) * 0.1 or 1.0
        ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    if lln is not None or uln is not None or markers:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)
    fig.autofmt_xdate()
    return _png(fig)


def recist_png(points: Sequence[tuple[Any, float | None, str]]) -> bytes:
    """Sum of target-lesion diameters over time, labelled with the time-point response."""
    fig, ax = _figure()
    pts = sorted((_as_date(d), s, r) for d, s, r in points if s is not None)
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=_PALETTE[0])
        for x, y, r in pts:
            ax.annotate(r, (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
        ax.set_ylim(bottom=0)
    ax.set_title("RECIST 1.1: sum of target diameters", fontsize=10)
    ax.set_ylabel("mm")
    fig.autofmt_xdate()
    return _png(fig)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def find_tables(result: Any, prefix: str = "") -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Every list of mappings inside ``result`` (depth-first), with its dotted path."""
    out: list[tuple[str, list[Mapping[str, Any]]]] = []
    if isinstance(result, Mapping):
        for k, v in result.items():
            out.extend(find_tables(v, f"{prefix}{k}."))
    elif isinstance(result, list) and result and all(isinstance(r, Mapping) for r in result):
        out.append((prefix.rstrip(".") or "result", list(result)))
    return out


def find_tacs(result: Any, prefix: str = "") -> list[tuple[str, list[float], list[float]]]:
    """Time-activity curves: mappings with a ``time_h`` list and a numeric list of equal length."""
    out: list[tuple[str, list[float], list[float]]] = []
    if isinstance(result, Mapping):
        t = result.get("time_h") or result.get("times_h")
        if isinstance(t, list) and t and all(_is_num(x) for x in t):
            for k, v in result.items():
                if k not in ("time_h", "times_h") and isinstance(v, list) and len(v) == len(t) and all(_is_num(x) for x in v):
                    label = prefix.rstrip(".").rsplit(".", 1)[-1] if k.startswith("activity") and prefix else f"{prefix}{k}"
                    out.append((label, [float(x) for x in t], [float(x) for x in v]))
        for k, v in result.items():
            if isinstance(v, (Mapping, list)):
                out.extend(find_tacs(v, f"{prefix}{k}."))
    elif isinstance(result, list):
        for i, v in enumerate(result):
            if isinstance(v, Mapping):
                label = str(v.get("region") or v.get("name") or v.get("label") or i)
                out.extend(find_tacs(v, f"{prefix}{label}."))
    return out


def table_bars_png(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> bytes | None:
    """Grouped bars: one group per row (its first text field), one bar per numeric column."""
    if not rows:
        return None
    label_key = next((k for k, v in rows[0].items() if isinstance(v, str)), None)
    numeric = [k for k in (columns or rows[0].keys()) if all(_is_num(r.get(k)) for r in rows)]
    if label_key is None or not numeric:
        return None
    numeric = _comparable(numeric)
    fig, ax = _figure(6.4, 3.6)
    n = len(numeric)
    width = 0.8 / n
    for j, col in enumerate(numeric):
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(rows))]
        ax.bar(xs, [float(r[col]) for r in rows], width=width, label=col, color=_PALETTE[j % len(_PALETTE)])
    ax.set_xticks(range(len(rows)), [str(r[label_key]) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_title(f"{title}: {', '.join(numeric)}", fontsize=10)
    if len(numeric) > 1:
        ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def _comparable(numeric: list[str]) -> list[str]:
    """Columns that share a unit, so bars side by side mean something: absorbed doses (``*_gy``),
    else SUVs (IV vs IAH), else ratios, else the first numeric column alone."""
    for test in (lambda k: k.endswith("_gy"), lambda k: "suv" in k.lower(), lambda k: "ratio" in k.lower()):
        chosen = [k for k in numeric if test(k)]
        if chosen:
            return chosen[:4]
    return numeric[:1]


def tac_png(curves: Sequence[tuple[str, list[float], list[float]]]) -> bytes:
    """Time-activity curves on one plot (time in hours)."""
    fig, ax = _figure()
    for i, (label, t, a) in enumerate(curves[:10]):
        ax.plot(t, a, marker="o", label=label, color=_PALETTE[i % len(_PALETTE)])
    ax.set_xlabel("time after injection (h)")
    ax.set_title("Time-activity curves", fontsize=10)
    ax.set_yscale("log")
    ax.legend(fontsize=7, frameon=False, ncol=2)
    return _png(fig)
