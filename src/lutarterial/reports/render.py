"""HTML from Jinja2 templates (packaged next to this module) and PDF from that HTML (WeasyPrint).

Reports are views: templates format numbers and lay out tables; every number is computed
before (statistics, workflows). No template computes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["render_html", "write_pdf", "fmt", "fmt_ci", "fmt_p"]

_TEMPLATES = Path(__file__).with_name("templates")


def fmt(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; '—' for a missing value (never 0)."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(f):
        return "—"
    if abs(f) >= 1e5:
        return f"{f:.3e}"
    out = f"{f:#.{digits}g}"  # significant trailing zeros kept: 2.50, 1.00 (a CI of 2-3.13 misreads)
    if "e" not in out:
        out = out.rstrip(".")
    return out


def fmt_ci(ci: Any, digits: int = 3) -> str:
    if not ci:
        return "—"
    return f"{fmt(ci[0], digits)}–{fmt(ci[1], digits)}"


def fmt_p(p: Any) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_p_eq(p: Any) -> str:
    """``p = 0.002`` / ``p < 0.001`` / ``p —`` (the relation written once)."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") or text == "—" else f"p = {text}"


def fmt_pct(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.0f}%"


def fmt_pct_ci(ci: Any) -> str:
    """A proportion's interval as percentages with one decimal: ``63.1–100.0%``."""
    if not ci:
        return "—"
    return f"{100 * float(ci[0]):.1f}–{100 * float(ci[1]):.1f}%"


_METRIC_LABELS = {"suv_mean": "SUVmean", "suv_max": "SUVmax", "suv_peak": "SUVpeak",
                  "tnr": "tumour-to-normal-liver ratio (TNR)", "percent_ia": "%IA", "gy_per_gbq": "Gy/GBq"}


def metric_label(m: Any) -> str:
    return _METRIC_LABELS.get(str(m), str(m))


def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, ci=fmt_ci, p=fmt_p, pct=fmt_pct, pctci=fmt_pct_ci, peq=fmt_p_eq, metric=metric_label)
    return env


def render_html(template: str, context: dict[str, Any]) -> str:
    return str(_env().get_template(template).render(**context))


def write_pdf(html: str, path: Path) -> Path:
    """Render ``html`` to ``path`` with WeasyPrint (images are data URIs: no network, no files)."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    HTML(string=html, base_url=str(_TEMPLATES)).write_pdf(str(path))
    return path
