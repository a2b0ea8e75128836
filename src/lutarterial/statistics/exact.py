"""Exact (Clopper–Pearson) binomial confidence intervals.

Clopper C.J., Pearson E.S. (1934) Biometrika 26:404-413; computed by
``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lutarterial.errors import InvalidInputError

__all__ = ["BinomialCI", "clopper_pearson"]


@dataclass(frozen=True)
class BinomialCI:
    """``k`` of ``n`` with its proportion and exact two-sided interval (``None`` when ``n == 0``)."""

    k: int
    n: int
    proportion: float | None
    ci95: tuple[float, float] | None
    confidence: float = 0.95
    method: str = "Clopper-Pearson exact"

    def to_dict(self) -> dict[str, object]:
        return {"k": self.k, "n": self.n, "proportion": self.proportion,
                "ci95": list(self.ci95) if self.ci95 else None, "method": self.method,
                **({"reason": "no participants in the denominator"} if self.n == 0 else {})}


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> BinomialCI:
    """Exact interval for ``k`` successes in ``n`` trials (``n == 0``: proportion and CI ``None``)."""
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise InvalidInputError("k and n must be whole numbers")
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise InvalidInputError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise InvalidInputError("confidence must lie between 0 and 1")
    if n == 0:
        return BinomialCI(0, 0, None, None, confidence)
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return BinomialCI(k, n, k / n, (float(ci.low), float(ci.high)), confidence)
