"""Issue 10: metrics are consistent for every VOI kind, with and without partial-volume correction.

Properties (hypothesis, random images and overlapping VOIs):
* min <= mean <= max (Bq/mL and SUV), corrected and uncorrected;
* SUVpeak <= the maximum of the voxels its sphere samples: for lesions (IBSI: the sphere may
  extend outside the VOI) the sphere at the reported centre; for background VOIs (healthy
  liver, spleen, marrow, kidney) the VOI minus lesions, so the peak never exceeds the VOI's max;
* background VOIs are the VOI minus every lesion voxel for every metric: their voxel count, min
  and max are those of that region, and no background metric changes when the lesion voxels
  (those inside the organs included) are set to extreme values;
* the voxel dosimetry measures every VOI on the same mask (issue 10, item 4): an organ at risk's
  dose statistics are those of the VOI minus lesions and ignore the lesions' dose
  (regression cases in tests/unit/dosimetry/test_organ_at_risk_masks.py).
And the two regressions of the issue: healthy-liver SUVpeak no longer above its SUVmax when a hot
lesion sits inside the liver, and PVC no longer gives SUVmean > SUVmax.
"""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lutarterial.dosimetry.workflow import voxel_dosimetry
from lutarterial.errors import InvalidInputError
from lutarterial.imaging.metrics import HEALTHY_LIVER, quantify
from lutarterial.imaging.peak import sphere_kernel
from lutarterial.imaging.types import Geometry, Image, LabelMap, Quantity, VoiKind, VoiSpec

G = Geometry((12, 14, 14), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
REL = 1e-6


def _box(lo, size):
    m = np.zeros(G.shape, dtype=bool)
    m[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + size[2]] = True
    return m


boxes = st.tuples(st.tuples(st.integers(0, 8), st.integers(0, 10), st.integers(0, 10)),
                  st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)))


def _sphere_max(arr: np.ndarray, centre: tuple[int, int, int]) -> float:
    k = sphere_kernel(G.spacing_mm)
    h = [n // 2 for n in k.shape]
    best = -np.inf
    for dz, dy, dx in np.argwhere(k):
        z, y, x = centre[0] + dz - h[0], centre[1] + dy - h[1], centre[2] + dx - h[2]
        if 0 <= z < arr.shape[0] and 0 <= y < arr.shape[1] and 0 <= x < arr.shape[2]:
            best = max(best, float(arr[z, y, x]))
    return best


BACKGROUND = (VoiKind.SPLEEN, VoiKind.KIDNEY, VoiKind.MARROW)


def _lesions(labels):
    out = np.zeros(G.shape, dtype=bool)
    for v in labels.vois:
        if v.spec.kind in (VoiKind.LESION, VoiKind.EXTRAHEPATIC):
            out |= v.full(G.shape)
    return out


def _background_region(name, labels):
    """The region a background VOI is measured on: the VOI (healthy liver: every liver VOI) minus lesions."""
    masks = {v.spec.name: v.full(G.shape) for v in labels.vois}
    region = (masks[name] if name in masks else
              np.logical_or.reduce([masks[v.spec.name] for v in labels.vois if v.spec.kind is VoiKind.LIVER]))
    return region & ~_lesions(labels)


def _check(met, arr, labels):
    for m in met.vois:
        if m.kind in BACKGROUND or m.name == HEALTHY_LIVER:  # every metric on the VOI minus lesions
            region = _background_region(m.name, labels)
            assert m.n_voxels == int(region.sum()), m.name
            assert m.suv_max == pytest.approx(float(arr[region].max()), rel=REL), m.name
            assert m.suv_min == pytest.approx(float(arr[region].min()), rel=REL), m.name
        assert m.suv_min <= m.suv_mean * (1 + REL) and m.suv_mean <= m.suv_max * (1 + REL), m
        if m.recovery_coefficient is not None:
            assert m.suv_mean_uncorrected <= m.suv_max_uncorrected * (1 + REL)
            assert m.suv_mean == pytest.approx(m.suv_mean_uncorrected / m.recovery_coefficient, rel=1e-9)
        if m.suv_peak is None:
            continue
        rc = m.recovery_coefficient or 1.0
        if m.peak_method == "ibsi":
            assert m.suv_peak <= _sphere_max(arr, m.peak_centre_ijk) / rc * (1 + REL)
        else:
            region = _background_region(m.name, labels)
            assert m.suv_peak <= float(arr[region].max()) * (1 + REL)
            assert m.suv_peak <= m.suv_max * (1 + REL)


def _case(seed, liver, lesion, spleen, kidney, marrow, other):
    """Random image and overlapping VOIs (a hot lesion and node, possibly inside the organs)."""
    rng = np.random.default_rng(seed)
    arr = rng.gamma(2.0, 1000.0, size=G.shape).astype(np.float32)
    les = _box(*lesion)
    arr[les] *= 8.0  # hot lesion, possibly overlapping the background VOIs
    liv = _box(*liver) | les  # the liver contains its lesion
    if (liv & ~les).sum() == 0:
        liv = liv | _box((0, 0, 0), (2, 2, 2))
    items = [
        (VoiSpec(1, "liver", VoiKind.LIVER), liv),
        (VoiSpec(2, "lesion 1", VoiKind.LESION), les),
        (VoiSpec(3, "spleen", VoiKind.SPLEEN), _box(*spleen)),
        (VoiSpec(4, "kidney", VoiKind.KIDNEY), _box(*kidney)),
        (VoiSpec(5, "marrow", VoiKind.MARROW), _box(*marrow)),
        (VoiSpec(6, "node", VoiKind.EXTRAHEPATIC), _box(*other)),
    ]
    return arr, LabelMap.from_full_masks(G, items)


def _quantify(arr, labels, pvc):
    """quantify(), or None when a background VOI lies entirely inside the lesions (then an error naming it)."""
    recovery = (lambda ml: 0.3 + 0.6 * ml / (ml + 5.0)) if pvc else None
    les = _lesions(labels)
    covered = [v.spec.name for v in labels.vois if v.spec.kind in BACKGROUND and not (v.full(G.shape) & ~les).any()]
    liver = np.logical_or.reduce([v.full(G.shape) for v in labels.vois if v.spec.kind is VoiKind.LIVER])
    if covered or not (liver & ~les).any():
        with pytest.raises(InvalidInputError, match="lies entirely inside lesion VOIs|cover the whole liver"):
            quantify(Image(arr, G, Quantity.SUVBW), labels, require_suv=False, recovery=recovery)
        return None
    return quantify(Image(arr, G, Quantity.SUVBW), labels, require_suv=False, recovery=recovery)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), liver=boxes, lesion=boxes, spleen=boxes, kidney=boxes, marrow=boxes,
       other=boxes, pvc=st.booleans())
def test_min_mean_max_and_peak_for_every_voi_kind(seed, liver, lesion, spleen, kidney, marrow, other, pvc):
    arr, labels = _case(seed, liver, lesion, spleen, kidney, marrow, other)
    met = _quantify(arr, labels, pvc)
    if met is not None:
        _check(met, arr.astype(np.float64), labels)


BACKGROUND_METRICS = ("n_voxels", "volume_ml", "mean_bqml", "max_bqml", "min_bqml", "peak_bqml", "sd_bqml",
                      "total_bq", "suv_mean", "suv_max", "suv_min", "suv_peak", "peak_centre_ijk", "peak_method")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), liver=boxes, lesion=boxes, spleen=boxes, kidney=boxes, marrow=boxes,
       other=boxes, pvc=st.booleans(), extreme=st.sampled_from([0.0, 1e9, -1e6, 1e-9]))
def test_no_background_metric_sees_the_lesion_voxels(seed, liver, lesion, spleen, kidney, marrow, other, pvc,
                                                     extreme):
    arr, labels = _case(seed, liver, lesion, spleen, kidney, marrow, other)
    before = _quantify(arr, labels, pvc)
    if before is None:
        return
    changed = arr.copy()
    changed[_lesions(labels)] = extreme  # lesion and node voxels, those inside spleen/kidney/marrow included
    after = _quantify(changed, labels, pvc).by_name()
    for m in before.vois:
        if m.kind in BACKGROUND or m.name == HEALTHY_LIVER:
            for k in BACKGROUND_METRICS:
                a, b = getattr(m, k), getattr(after[m.name], k)
                assert b == (pytest.approx(a, rel=1e-9) if isinstance(a, float) else a), (m.name, k)



DOSE_STATS = ("n_voxels", "volume_ml", "mean_gy", "min_gy", "max_gy", "d2_gy", "d50_gy", "d70_gy", "d90_gy",
              "geud_gy", "dvh", "tia_mbq_h")


def _voxel_dose(arr, dose, labels):
    """Per-VOI dose statistics of voxel_dosimetry on the case's VOIs, its dose engine replaced by ``dose``."""
    masks = {v.spec.name: v.full(G.shape) for v in labels.vois}
    kinds = {v.spec.name: v.spec.kind.value for v in labels.vois}
    with patch("lutarterial.dosimetry.workflow.dose_from_tia_kernel", lambda *a, **k: dose.copy()):
        _, res = voxel_dosimetry([arr, 0.5 * arr], [24.0, 72.0], G.spacing_mm, masks, kinds=kinds,
                                 voxel_tia="voxel")
    return {v["voi"]: v for v in res["vois"]}, res["notes"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), liver=boxes, lesion=boxes, spleen=boxes, kidney=boxes, marrow=boxes,
       other=boxes, extreme=st.sampled_from([0.0, 1e9, -1e6, 1e-9]))
def test_dosimetry_measures_every_voi_on_the_imaging_mask(seed, liver, lesion, spleen, kidney, marrow, other,
                                                          extreme):
    """Issue 10, item 4: the dose statistics of an organ at risk use the imaging background mask.

    Every drawn VOI has the voxel count of its imaging metrics (organs at risk minus lesions,
    lesions and the drawn liver whole); an organ at risk's statistics are those of the dose over
    that region and none changes when the lesion voxels' dose takes extreme values; the same
    background VOIs lying inside lesions are errors on both sides.
    """
    arr, labels = _case(seed, liver, lesion, spleen, kidney, marrow, other)
    dose = np.random.default_rng(seed + 1).gamma(2.0, 1.5, size=G.shape)
    les = _lesions(labels)
    if any(v.spec.kind in BACKGROUND and not (v.full(G.shape) & ~les).any() for v in labels.vois):
        with pytest.raises(InvalidInputError, match="lies entirely inside lesion VOIs"):
            _voxel_dose(arr, dose, labels)
        return
    imaging = quantify(Image(arr, G, Quantity.SUVBW), labels, require_suv=False,
                       peak=False) if (_background_region(HEALTHY_LIVER, labels)).any() else None
    before, notes = _voxel_dose(arr, dose, labels)
    changed = dose.copy()
    changed[les] = extreme
    after, _ = _voxel_dose(arr, changed, labels)
    for v in labels.vois:
        name = v.spec.name
        if imaging is not None:
            assert before[name]["n_voxels"] == imaging.by_name()[name].n_voxels, name
        if v.spec.kind in BACKGROUND:
            region = _background_region(name, labels)
            assert before[name]["n_voxels"] == int(region.sum()), name
            assert before[name]["mean_gy"] == pytest.approx(float(dose[region].mean()), rel=1e-12), name
            assert before[name]["max_gy"] == float(dose[region].max()), name
            assert any(n.startswith(f"VOI {name!r}:") for n in notes) == bool((v.full(G.shape) & les).any())
            for k in DOSE_STATS:
                assert after[name][k] == before[name][k], (name, k)
        else:
            assert before[name]["n_voxels"] == v.n_voxels, name

def test_lesion_inside_the_spleen_and_a_node_in_the_kidney_are_left_out_with_a_note():
    arr = np.full(G.shape, 10.0, dtype=np.float32)
    spleen, les = _box((1, 1, 1), (10, 8, 8)), _box((5, 5, 5), (3, 3, 3))
    kidney, node = _box((1, 9, 9), (6, 4, 4)), _box((5, 11, 11), (2, 2, 2))
    arr[les], arr[node] = 100.0, 1000.0
    labels = LabelMap.from_full_masks(G, [(VoiSpec(1, "spleen", VoiKind.SPLEEN), spleen),
                                          (VoiSpec(2, "lesion 1", VoiKind.LESION), les),
                                          (VoiSpec(3, "kidney", VoiKind.KIDNEY), kidney),
                                          (VoiSpec(4, "node", VoiKind.EXTRAHEPATIC), node)])
    met = quantify(Image(arr, G, Quantity.SUVBW), labels, require_suv=False)
    by = met.by_name()
    for name, n in (("spleen", 640 - 27), ("kidney", 96 - 8)):  # before: spleen mean 13.8, kidney max 1000
        v = by[name]
        assert (v.n_voxels, v.suv_mean, v.suv_min, v.suv_max, v.suv_peak) == (n, 10.0, 10.0, 10.0, 10.0)
        assert v.volume_ml == pytest.approx(n * 0.064)
    assert by["lesion 1"].n_voxels == 27 and by["node"].suv_mean == pytest.approx(1000.0)
    assert any("'spleen': 27 of 640 voxels (1.728 mL)" in n and "(lesion 1)" in n for n in met.notes)
    assert any("'kidney': 8 of 96 voxels" in n and "(node)" in n for n in met.notes)


def test_a_background_voi_inside_a_lesion_is_an_error_naming_both():
    spleen, les = _box((4, 4, 4), (2, 2, 2)), _box((3, 3, 3), (4, 4, 4))
    labels = LabelMap.from_full_masks(G, [(VoiSpec(1, "spleen", VoiKind.SPLEEN), spleen),
                                          (VoiSpec(2, "lesion 1", VoiKind.LESION), les)])
    with pytest.raises(InvalidInputError, match=r"'spleen' lies entirely inside lesion VOIs \(lesion 1\)"):
        quantify(Image(np.ones(G.shape, np.float32), G, Quantity.SUVBW), labels, require_suv=False)


def test_healthy_liver_peak_no_longer_samples_the_lesion():
    arr = np.full(G.shape, 5.0, dtype=np.float32)
    arr[4:8, 5:9, 5:9] = 40.0  # hot lesion inside the liver
    liver = _box((1, 1, 1), (10, 12, 12))
    les = _box((4, 5, 5), (4, 4, 4))
    labels = LabelMap.from_full_masks(G, [(VoiSpec(1, "liver", VoiKind.LIVER), liver),
                                          (VoiSpec(2, "lesion 1", VoiKind.LESION), les)])
    met = quantify(Image(arr, G, Quantity.SUVBW), labels, require_suv=False).by_name()
    hl = met[HEALTHY_LIVER]
    assert hl.suv_max == pytest.approx(5.0) and hl.suv_peak == pytest.approx(5.0)
    assert hl.peak_method == "within"
    assert met["lesion 1"].peak_method == "ibsi"
    # the drawn liver VOI is the whole organ, its lesion included, for every metric (peak too)
    assert met["liver"].suv_max == pytest.approx(40.0) and met["liver"].peak_method == "ibsi"
    assert met["liver"].n_voxels == int(liver.sum())


def test_pvc_never_gives_mean_above_max():
    arr = np.full(G.shape, 1.0, dtype=np.float32)
    les = _box((5, 6, 6), (2, 2, 2))
    arr[les] = np.linspace(40, 46, 8, dtype=np.float32)
    labels = LabelMap.from_full_masks(G, [(VoiSpec(2, "lesion 1", VoiKind.LESION), les)])
    m = quantify(Image(arr, G, Quantity.SUVBW), labels, require_suv=False, recovery=lambda ml: 0.75).vois[0]
    assert m.suv_mean <= m.suv_max and m.suv_peak <= m.suv_max
    assert m.suv_max == pytest.approx(46.0 / 0.75, rel=1e-6) and m.suv_max_uncorrected == pytest.approx(46.0)
    assert m.suv_mean_uncorrected == pytest.approx(43.0, rel=1e-6)
