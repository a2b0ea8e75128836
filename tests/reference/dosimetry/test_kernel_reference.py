"""The computed 177Lu dose-voxel kernel against the published Monte-Carlo voxel S-values of Lanconelli et al.

(These tests call ``dose_voxel_kernel(..., source="computed")``: at tabulated sizes the default
kernel *is* the published table, tested in ``test_published_kernels.py``.)

Reference: Lanconelli N et al., Phys Med Biol 2012;57:517-533 (DOSXYZnrc, soft tissue), 8 voxel
sizes 2.21-9.28 mm, transcribed in ``lanconelli2012_lu177_soft_tissue.csv`` (source in its header).

What the comparison shows (docs/dosimetry.md, "Check against published voxel S-values"):

* Lanconelli's 177Lu soft-tissue tables carry ~0.137-0.139 MeV/decay of electron energy (sum of
  the central 3x3x3 voxels at 1.04 g/cm3), i.e. the beta spectrum (0.1333 MeV) and at most a small
  part of the 0.0146 MeV/decay of conversion and Auger electrons that ICRP 107 lists. Our default
  kernel includes all ICRP 107 electrons (0.1479 MeV, consistent with the organ-level factor
  0.0853 Gy g/(MBq h)), so its self-voxel value is higher by the locally absorbed IC/Auger share:
  +7.6 % ... +8.7 % at every voxel size (tolerance: 4 % ... 12 %).
* With the conversion/Auger electrons left out (``include_ic_auger=False``) the kernel reproduces
  the Monte-Carlo self voxel and the six face neighbours within 5 % at all eight sizes (ours:
  self -3.4 ... -3.8 %, face -0.9 ... -3.5 %). This checks the beta point kernel (Loevinger) and the
  voxel-pair integration independently of the emission data. Tolerance 5 %: the Loevinger kernel
  is an empirical fit quoted to a few per cent, and the MC values are given to 3 digits.
* Edge neighbours up to 4.42 mm (electron-dominated): 5 %; corner neighbours at <= 3 mm, where
  40-70 % of the value is photon dose: 10 % (ours +6.1 % and +8.2 %).
* Beyond the electron range (photon-dominated, values < 0.02 % of the self voxel): our
  infinite-medium linear build-up model is higher by up to +40 % (bound: -5 % ... +45 %).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest

from lutarterial.dosimetry.kernels import SOFT_TISSUE_DENSITY_G_CM3, dose_voxel_kernel
from lutarterial.dosimetry.nuclides import MEV_TO_J, get_nuclide

REF = Path(__file__).with_name("lanconelli2012_lu177_soft_tissue.csv")


def _reference() -> dict[float, dict[tuple[int, int, int], float]]:
    out: dict[float, dict[tuple[int, int, int], float]] = defaultdict(dict)
    for line in REF.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or line.startswith("voxel_mm"):
            continue
        v, i, j, k, s = line.split(",")
        out[float(v)][(int(i), int(j), int(k))] = float(s)
    return dict(out)


LANCONELLI = _reference()
SIZES = sorted(LANCONELLI)


def _table(voxel_mm: float, ic_auger: bool, radius_vox: float = 2.5) -> dict[tuple[int, int, int], float]:
    k = dose_voxel_kernel("Lu-177", voxel_mm, radius_mm=radius_vox * voxel_mm, include_ic_auger=ic_auger,
                          source="computed")
    return {(i, j, kk): v for i, j, kk, v in k.octant_table()}


def test_reference_file_has_the_published_sizes():
    assert SIZES == [2.21, 3.0, 4.0, 4.42, 4.8, 5.0, 6.0, 9.28]
    # published self-voxel values quoted in the issue discussion (mGy/(MBq s))
    assert LANCONELLI[4.42][(0, 0, 0)] == 0.226
    assert LANCONELLI[3.0][(0, 0, 0)] == 0.693
    assert LANCONELLI[2.21][(0, 0, 0)] == 1.66


@pytest.mark.parametrize("voxel_mm", SIZES)
def test_beta_only_kernel_matches_monte_carlo_self_and_face(voxel_mm):
    ours = _table(voxel_mm, ic_auger=False)
    ref = LANCONELLI[voxel_mm]
    assert ours[(0, 0, 0)] == pytest.approx(ref[(0, 0, 0)], rel=0.05)
    assert ours[(1, 0, 0)] == pytest.approx(ref[(1, 0, 0)], rel=0.05)


@pytest.mark.parametrize("voxel_mm", [2.21, 3.0, 4.42])
def test_beta_only_kernel_matches_edges_and_corners(voxel_mm):
    ours = _table(voxel_mm, ic_auger=False)
    ref = LANCONELLI[voxel_mm]
    # edge neighbour, electron-dominated up to 4.42 mm (ours -0.3 / +0.4 / +3.7 %)
    assert ours[(1, 1, 0)] == pytest.approx(ref[(1, 1, 0)], rel=0.05)
    if voxel_mm <= 3.0:
        # corner neighbour: about 40 % photons at 2.21 mm, 70 % at 3 mm; our photon model runs
        # high near the source (ours +6.1 / +8.2 %), hence 10 %
        assert ours[(1, 1, 1)] == pytest.approx(ref[(1, 1, 1)], rel=0.10)


@pytest.mark.parametrize("voxel_mm", SIZES)
def test_default_kernel_self_voxel_exceeds_monte_carlo_by_the_ic_auger_share(voxel_mm):
    full = _table(voxel_mm, ic_auger=True)
    beta = _table(voxel_mm, ic_auger=False)
    ref = LANCONELLI[voxel_mm][(0, 0, 0)]
    ratio = full[(0, 0, 0)] / ref
    assert 1.04 < ratio < 1.12, ratio
    # the difference is exactly the locally absorbed conversion + Auger energy
    ic_mev = get_nuclide("Lu-177").other_electron_mev_per_decay
    mass_kg = SOFT_TISSUE_DENSITY_G_CM3 * voxel_mm**3 * 1e-6
    expected = ic_mev * MEV_TO_J * 1e6 * 1e3 / mass_kg
    assert full[(0, 0, 0)] - beta[(0, 0, 0)] == pytest.approx(expected, rel=1e-9)
    # every other offset is unchanged
    assert all(full[o] == beta[o] for o in full if o != (0, 0, 0))


@pytest.mark.slow
def test_photon_tail_within_stated_bounds_at_4p42mm():
    ours = _table(4.42, ic_auger=True, radius_vox=5.5)
    ref = LANCONELLI[4.42]
    reach_vox = 2.2 / 4.42  # beta reach in voxels
    for off, val in ref.items():
        dmin = math.dist((0, 0, 0), tuple(max(c - 1, 0) for c in off))
        if dmin <= reach_vox + 1:
            continue  # electron region, covered above
        assert -0.05 < ours[off] / val - 1 < 0.45, off


# 90Y soft tissue, same database and copy (MIRD/VoxelSValues/90Y4.42mmsoft.txt, 90Y9.28mmsoft.txt):
# self and face neighbour. 90Y has no conversion electrons, so this checks the Loevinger kernel for
# a high-energy beta emitter on its own: ours -5.4 / -3.9 % at 4.42 mm and -4.2 / +1.6 % at
# 9.28 mm. Tolerance 6 %. Farther 90Y offsets are too high in ours (Loevinger's tail is too long
# for 90Y: +41 % at (2,0,0), 4.42 mm) - documented in docs/dosimetry.md, not tested.
Y90_LANCONELLI = {4.42: {(0, 0, 0): 6.89e-1, (1, 0, 0): 9.73e-2}, 9.28: {(0, 0, 0): 1.17e-1, (1, 0, 0): 8.53e-3}}


@pytest.mark.slow
@pytest.mark.parametrize("voxel_mm", sorted(Y90_LANCONELLI))
def test_y90_self_and_face_against_lanconelli(voxel_mm):
    k = dose_voxel_kernel("Y-90", voxel_mm, radius_mm=2.5 * voxel_mm, source="computed")
    ours = {(i, j, kk): v for i, j, kk, v in k.octant_table()}
    for off, ref in Y90_LANCONELLI[voxel_mm].items():
        assert ours[off] == pytest.approx(ref, rel=0.06), off
