"""SUVpeak (1 cm^3 sphere, IBSI global intensity peak): kernel, FFT path and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutarterial.imaging.peak import PEAK_SPHERE_RADIUS_MM, _correlate_fft, _shift_sum, peak_mean, sphere_kernel
from lutarterial.imaging.types import VoiKind, VoiSpec, crop_mask


def test_sphere_radius_is_one_millilitre():
    assert 4 / 3 * np.pi * PEAK_SPHERE_RADIUS_MM**3 == pytest.approx(1000.0)


def test_kernel_volume_converges_to_one_ml_at_fine_spacing():
    k = sphere_kernel((0.5, 0.5, 0.5))
    assert k.sum() * 0.125 / 1000 == pytest.approx(1.0, rel=0.02)


def test_kernel_includes_neighbour_only_when_within_radius():
    assert sphere_kernel((6.0, 6.0, 6.0)).sum() == 7  # 6 mm < 6.2035 mm
    assert sphere_kernel((6.3, 6.3, 6.3)).sum() == 1  # 6.3 mm > radius


def brute_peak(img, mask, kernel):
    h = [k // 2 for k in kernel.shape]
    offs = np.argwhere(kernel) - h
    best = -np.inf
    for c in np.argwhere(mask):
        vals = []
        for o in offs:
            p = c + o
            if np.all(p >= 0) and np.all(p < img.shape):
                vals.append(img[tuple(p)])
        best = max(best, float(np.mean(vals)))
    return best


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([(2.0, 2.0, 2.0), (4.0, 4.0, 3.0), (3.0, 3.0, 5.0)]))
def test_peak_matches_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    img = rng.random((14, 15, 16))
    mask = np.zeros(img.shape, bool)
    z, y, x = rng.integers(0, 14), rng.integers(0, 15), rng.integers(0, 16)
    mask[max(0, z - 3):z + 3, max(0, y - 2):y + 4, max(0, x - 4):x + 2] = True  # may touch the border
    v = crop_mask(VoiSpec(1, "a", VoiKind.LESION), mask)
    k = sphere_kernel(spacing)
    got, centre = peak_mean(img, v.bbox, v.mask, k)
    assert got == pytest.approx(brute_peak(img, mask, k), rel=1e-9)
    assert mask[centre]


def test_fft_and_shift_paths_agree():
    rng = np.random.default_rng(1)
    a = rng.random((20, 21, 22))
    k = sphere_kernel((2.0, 2.0, 2.0))
    np.testing.assert_allclose(_correlate_fft(a, k), _shift_sum(a, k), atol=1e-10)


def test_peak_of_uniform_region_is_the_value_and_hot_voxel_is_diluted():
    img = np.zeros((20, 20, 20))
    img[5:15, 5:15, 5:15] = 3.0
    m = crop_mask(VoiSpec(1, "a", VoiKind.LESION), img > 0)
    k = sphere_kernel((2.0, 2.0, 2.0))
    assert peak_mean(img, m.bbox, m.mask, k)[0] == pytest.approx(3.0)
    hot = np.zeros((20, 20, 20))
    hot[10, 10, 10] = 123.0
    m2 = crop_mask(VoiSpec(1, "b", VoiKind.LESION), hot > 0)
    assert peak_mean(hot, m2.bbox, m2.mask, k)[0] == pytest.approx(1.0)  # 123 voxels in the sphere
