"""Clopper-Pearson intervals (closed forms at the boundaries), Kaplan-Meier, canonical JSON."""

from __future__ import annotations

import math

import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.statistics import canonical_json, clopper_pearson, kaplan_meier


@pytest.mark.parametrize("n", [1, 5, 10, 27])
def test_clopper_pearson_closed_forms_at_0_and_n(n):
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n) (exact)
    zero, full = clopper_pearson(0, n), clopper_pearson(n, n)
    assert zero.ci95[0] == 0.0 and zero.ci95[1] == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    assert full.ci95[1] == 1.0 and full.ci95[0] == pytest.approx(0.025 ** (1 / n), rel=1e-9)


@pytest.mark.parametrize("k,n", [(117, 122), (1, 2), (13, 27)])
def test_clopper_pearson_is_the_beta_quantile_definition(k, n):
    # Clopper & Pearson 1934: lower = Beta(k, n-k+1).ppf(0.025), upper = Beta(k+1, n-k).ppf(0.975)
    # (117/122: Kratochwil 2010's lesions higher after IA)
    from scipy.stats import beta

    ci = clopper_pearson(k, n)
    assert ci.proportion == pytest.approx(k / n)
    assert ci.ci95 == pytest.approx((beta.ppf(0.025, k, n - k + 1), beta.ppf(0.975, k + 1, n - k)), rel=1e-9)


def test_clopper_pearson_bounds():
    assert clopper_pearson(0, 0).ci95 is None
    for k, n in ((-1, 3), (4, 3), (1.5, 3)):
        with pytest.raises(InvalidInputError):
            clopper_pearson(k, n)


def test_kaplan_meier_median_and_at_risk():
    km = kaplan_meier([1, 2, 3, 4, 5], [True] * 5, at_risk_times=[0, 2, 4, 6])
    assert km.median == 3.0 and km.median_reached and km.events == 5
    assert km.at_risk == ((0.0, 5), (2.0, 4), (4.0, 2), (6.0, 0))
    # survival just after t=1 is 4/5 (product-limit)
    assert [s for t, s, _, _ in km.curve if t == 1.0][0] == pytest.approx(0.8)


def test_kaplan_meier_no_event_median_not_reached():
    km = kaplan_meier([10, 20], [False, False])
    assert km.median is None and not km.median_reached and "not reached" in km.reason
    with pytest.raises(InvalidInputError):
        kaplan_meier([-1], [True])


def test_canonical_json_stable_and_nan_null():
    text = canonical_json({"b": 1 / 3, "a": [float("nan"), -0.0, math.inf], "c": (1, 2)})
    assert text == canonical_json({"c": [1, 2], "a": [float("nan"), 0.0, -math.inf], "b": 1 / 3})
    assert '"a": [\n    null,\n    0.0,\n    null\n  ]' in text and "0.333333333333" in text
