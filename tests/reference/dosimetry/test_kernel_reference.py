"""177Lu dose-voxel kernel against published Monte-Carlo voxel S-values (soft tissue, 2.21 mm).

Our kernel is computed (Loevinger beta point kernel + straight-ahead mu_en photons, integrated
over voxel pairs); the reference is Monte Carlo. Tolerances, stated per region:

* self voxel: 10 % (ours includes IC/Auger electrons, 0.0146 MeV/decay, absorbed locally; the
  reference self value is 8.7 % lower, consistent with beta + photons only);
* face, edge and corner neighbours (electron-dominated): 5 %;
* photon-dominated offsets up to 2 voxels (distance 4.4-7.7 mm): 15 % (ours -0.5 ... +14 %);
* farther offsets: 40 % (ours +10 ... +37 %). Our photon kernel is for an infinite medium
  (energy-conserving linear build-up); the reference was simulated in a small soft-tissue cube,
  which lacks scatter from beyond its edges, so its far tail falls faster. Absolute values there
  are below 4e-5 mGy/(MBq s), < 0.003 % of the self value.

The electron energy summed over the reference's 27 central voxels is 0.1387 MeV/decay (at
1.04 g/cm3), between the beta energy alone (0.1333) and all electrons (0.1479): the reference
appears to omit most conversion/Auger electrons. With them dropped (``include_ic_auger=False``)
our kernel agrees within 5 % for the self voxel and all 26 neighbours, which checks the beta
point kernel and the voxel integration on their own.
"""

from pathlib import Path

import pytest

from lutarterial.dosimetry.kernels import dose_voxel_kernel

REF = Path(__file__).with_name("lu177_soft_tissue_2p21mm.csv")


def _reference():
    rows = []
    for line in REF.read_text().splitlines():
        if line.startswith("#") or line.startswith("i,"):
            continue
        i, j, k, v = line.split(",")
        rows.append(((int(i), int(j), int(k)), float(v)))
    return rows


@pytest.fixture(scope="module")
def kernel_table():
    k = dose_voxel_kernel("Lu-177", 2.21)
    return {(i, j, kk): v for i, j, kk, v in k.octant_table()}


@pytest.mark.parametrize("offset,ref", _reference())
def test_lu177_2p21mm_against_published(kernel_table, offset, ref):
    if offset == (0, 0, 0):
        tol = 0.10
    elif max(offset) <= 1:
        tol = 0.05
    elif max(offset) <= 2:
        tol = 0.15
    else:
        tol = 0.40
    assert kernel_table[offset] == pytest.approx(ref, rel=tol)


def test_self_voxel_fraction_matches_local_deposition_trend():
    # self-voxel dose / full local deposition grows with voxel size (more electron energy kept)
    fr = []
    for v in (2.21, 3.0, 4.42):
        k = dose_voxel_kernel("Lu-177", v, include_photons=False)
        local = 0.1479 * 1.602176634e-13 * 1e9 / (1.04 * v**3 * 1e-6)  # mGy/(MBq s)
        fr.append(k.octant_table()[0][3] / local)
    assert fr[0] < fr[1] < fr[2] < 1.0
    assert fr[0] > 0.8


@pytest.fixture(scope="module")
def beta_only_table():
    k = dose_voxel_kernel("Lu-177", 2.21, include_ic_auger=False)
    return {(i, j, kk): v for i, j, kk, v in k.octant_table()}


@pytest.mark.parametrize("offset,ref", [r for r in _reference() if max(r[0]) <= 1])
def test_beta_only_kernel_within_5_percent_of_published_near_field(beta_only_table, offset, ref):
    assert beta_only_table[offset] == pytest.approx(ref, rel=0.05)
