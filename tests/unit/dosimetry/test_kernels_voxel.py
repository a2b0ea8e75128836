"""Dose-voxel kernels and the FFT voxel-dose engine: conservation, symmetry, analytic truths."""

import math

import numpy as np
import pytest

from lutarterial.dosimetry.kernels import (
    dose_voxel_kernel,
    loevinger_radial_fraction,
    sphere_absorbed_fractions,
)
from lutarterial.dosimetry.nuclides import MEV_TO_J, get_nuclide
from lutarterial.dosimetry.voxel import (
    convolve_fft,
    density_correct,
    density_from_hu,
    dose_from_tia_kernel,
    dose_local_deposition,
    tia_map_from_timepoints,
)
from lutarterial.errors import InvalidInputError


def _mass_kg(v_mm, rho=1.04):
    return rho * v_mm**3 * 1e-6


def test_loevinger_kernel_integrates_to_one():
    x = np.linspace(0, 2.0, 400001)
    for e0 in (0.1765, 0.4983, 2.28):
        assert np.trapezoid(loevinger_radial_fraction(x, e0), x) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("voxel", [3.0, 4.42])
def test_electron_energy_conserved(voxel):
    k = dose_voxel_kernel("Lu-177", voxel, include_photons=False, source="computed")
    # the voxel-pair integration itself recovers the beta energy to 1 % before renormalisation
    assert k.electron_energy_recovered == pytest.approx(1.0, abs=0.01)
    e_mev = k.values_mgy_per_mbq_s.sum() * _mass_kg(voxel) / (MEV_TO_J * 1e9)
    assert e_mev == pytest.approx(get_nuclide("Lu-177").electron_mean_mev_per_decay, rel=1e-9)


def test_photon_part_adds_energy_but_less_than_emitted():
    k = dose_voxel_kernel("Lu-177", 4.42, source="computed")
    e_mev = k.values_mgy_per_mbq_s.sum() * _mass_kg(4.42) / (MEV_TO_J * 1e9)
    lu = get_nuclide("Lu-177")
    assert lu.electron_mean_mev_per_decay < e_mev < lu.electron_mean_mev_per_decay + lu.photon_mean_mev_per_decay


def test_kernel_symmetric_and_octant_ordering():
    k = dose_voxel_kernel("Lu-177", 4.0, source="computed")
    v = k.values_mgy_per_mbq_s
    assert np.allclose(v, v[::-1, :, :]) and np.allclose(v, v[:, ::-1, :]) and np.allclose(v, v[:, :, ::-1])
    assert np.allclose(v, np.transpose(v, (1, 0, 2)), rtol=1e-2)  # cubic: axis permutation (quadrature noise)
    tab = k.octant_table()
    assert all(i >= j >= kk >= 0 for i, j, kk, _ in tab)
    assert tab[0][3] > tab[1][3] > tab[2][3] > tab[3][3]


def test_anisotropic_voxels_supported():
    k = dose_voxel_kernel("Lu-177", (2.0, 4.0, 4.0), include_photons=False)
    r = k.radius_vox
    v = k.values_mgy_per_mbq_s
    c = (r[0], r[1], r[2])
    # neighbour along the short axis gets more dose than along a long axis
    assert v[c[0] + 1, c[1], c[2]] > v[c[0], c[1] + 1, c[2]]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), 100.0])
def test_kernel_rejects_bad_voxel_size(bad):
    with pytest.raises(InvalidInputError):
        dose_voxel_kernel("Lu-177", bad)


def test_uniform_activity_gives_local_deposition_to_one_percent():
    k = dose_voxel_kernel("Lu-177", 4.0, include_photons=False, source="computed")
    tia = np.full((40, 40, 40), 25.0)
    d = dose_from_tia_kernel(tia, 4.0, kernel=k)
    local = dose_local_deposition(tia, 4.0)
    interior = (slice(10, 30),) * 3
    assert np.allclose(d[interior], local[interior], rtol=0.01)
    # and the analytic value: TIA x 3600 x 1e6 x E / m
    expected = 25.0 * 3600 * 1e6 * 0.1479 * MEV_TO_J / _mass_kg(4.0)
    assert d[20, 20, 20] == pytest.approx(expected, rel=0.01)


def test_fft_convolution_equals_direct_convolution():
    rng = np.random.default_rng(1)
    vol = rng.random((13, 11, 9))
    ker = rng.random((5, 3, 7))
    out = convolve_fft(vol, ker)
    direct = np.zeros_like(vol)
    R = [s // 2 for s in ker.shape]
    pad = np.pad(vol, [(r, r) for r in R])
    for dx in range(ker.shape[0]):
        for dy in range(ker.shape[1]):
            for dz in range(ker.shape[2]):
                w = ker[ker.shape[0] - 1 - dx, ker.shape[1] - 1 - dy, ker.shape[2] - 1 - dz]
                direct += w * pad[dx:dx + 13, dy:dy + 11, dz:dz + 9]
    assert np.allclose(out, direct, atol=1e-10)


def test_point_source_reproduces_kernel():
    k = dose_voxel_kernel("Lu-177", 4.42)
    tia = np.zeros((21, 21, 21))
    tia[10, 10, 10] = 1.0 / 3600  # 1 MBq*s
    d = dose_from_tia_kernel(tia, 4.42, kernel=k) * 1e3  # mGy
    R = k.radius_vox[0]
    assert d[10, 10, 10] == pytest.approx(k.values_mgy_per_mbq_s[R, R, R], rel=1e-9)
    assert d[11, 10, 10] == pytest.approx(k.values_mgy_per_mbq_s[R + 1, R, R], rel=1e-6)


def test_negative_tia_rejected():
    with pytest.raises(InvalidInputError):
        dose_from_tia_kernel(-np.ones((4, 4, 4)), 4.0)


def test_density_from_hu_and_correction():
    rho = density_from_hu(np.array([-1000.0, 0.0, 1000.0]))
    assert rho[0] == pytest.approx(0.001) and rho[1] == pytest.approx(1.0) and rho[2] > 1.4
    d = density_correct(np.ones((2, 2, 2)), np.full((2, 2, 2), 2.08))
    assert np.allclose(d, 0.5)


def test_tia_map_mono_exponential_voxel():
    lam = math.log(2) / 60
    t = [24.0, 72.0, 120.0]
    maps = [np.full((3, 3, 3), 1e6 * math.exp(-lam * x)) for x in t]  # Bq/mL
    tia = tia_map_from_timepoints(maps, t, 2.0, physical_half_life_h=159.5)
    v_ml = 8e-3
    # trapezoid from 0 plus exact exponential tail from the last two points
    act = [0.0] + [1e6 * math.exp(-lam * x) * v_ml * 1e-6 for x in t]
    tt = [0.0] + t
    expected = sum(0.5 * (act[i] + act[i + 1]) * (tt[i + 1] - tt[i]) for i in range(3)) + act[-1] / lam
    assert tia[1, 1, 1] == pytest.approx(expected, rel=1e-9)


def test_sphere_fractions_grow_with_size():
    small = sphere_absorbed_fractions("Lu-177", 2.0)
    large = sphere_absorbed_fractions("Lu-177", 60.0)
    assert small[0] < large[0] <= 1.0
    assert small[1] < large[1] < 1.0


def test_voi_fit_tia_map_sums_to_fitted_voi_tia():
    from lutarterial.dosimetry.voxel import tia_map_from_voi_fits

    lam = math.log(2) / 60
    t = [4.0, 24.0, 72.0, 144.0]
    rng = np.random.default_rng(3)
    pattern = rng.random((6, 6, 6)) + 0.5
    maps = [pattern * 1e5 * math.exp(-lam * x) for x in t]
    mask = np.zeros((6, 6, 6), bool)
    mask[1:5, 1:5, 1:5] = True
    tia, fits = tia_map_from_voi_fits(maps, t, 4.0, {"kidney": mask}, 159.5)
    v_ml = 0.064
    a0 = (pattern[mask] * 1e5 * v_ml * 1e-6).sum()
    assert tia[mask].sum() == pytest.approx(a0 / lam, rel=0.005)
    assert fits["kidney"].model == "mono"
    # voxel shares follow the activity pattern
    assert np.allclose(tia[mask] / tia[mask].sum(), pattern[mask] / pattern[mask].sum())


@pytest.mark.parametrize("nuclide", ["Lu-177", "I-131", "Ga-68"])
def test_photon_point_kernel_conserves_photon_energy_in_infinite_medium(nuclide):
    from lutarterial.dosimetry.kernels import point_kernel_radial

    nuc = get_nuclide(nuclide)
    r = np.linspace(0, 20000, 2000001)  # mm
    f = point_kernel_radial(nuc, r) - point_kernel_radial(nuc, r, include_photons=False)
    assert np.trapezoid(f, r) == pytest.approx(nuc.photon_mean_mev_per_decay, rel=1e-3)


def test_beta_point_kernel_conserves_beta_energy():
    from lutarterial.dosimetry.kernels import point_kernel_radial

    for name in ("Lu-177", "Y-90"):
        nuc = get_nuclide(name)
        r = np.linspace(0, 30, 600001)
        f = point_kernel_radial(nuc, r, include_photons=False)
        assert np.trapezoid(f, r) == pytest.approx(nuc.beta_mean_mev_per_decay, rel=2e-3)
