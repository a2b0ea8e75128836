"""Published Lanconelli et al. 2012 voxel S-values shipped as package data, and their selection.

Reference: Lanconelli N et al., Phys Med Biol 2012;57:517-533 (DOSXYZnrc, soft tissue
1.04 g/cm3), transcribed in ``lutarterial/dosimetry/data/lanconelli2012_soft_tissue.csv`` from
the copy in MGHPhysicsResearch/MIRDCalculation (VoxelSValues/, MIRD/VoxelSValues/). The
independent transcription ``lanconelli2012_lu177_soft_tissue.csv`` (this folder) checks the 177Lu
values; tolerance 0 (the same printed 3-digit numbers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lutarterial.cli.main import run as _run
from lutarterial.dosimetry.kernels import COMPUTED_SOURCE, SOFT_TISSUE_DENSITY_G_CM3, dose_voxel_kernel
from lutarterial.dosimetry.nuclides import MEV_TO_J, get_nuclide
from lutarterial.dosimetry.published_kernels import (
    lanconelli2012_kernel,
    lanconelli2012_sizes,
    match_lanconelli2012,
)
from lutarterial.errors import InvalidInputError

INDEPENDENT = Path(__file__).with_name("lanconelli2012_lu177_soft_tissue.csv")
SIZES = (2.21, 2.33, 2.4, 3.0, 3.59, 3.9, 4.0, 4.42, 4.8, 5.0, 6.0, 6.8, 9.28)
OCTANT = [(i, j, k) for i in range(6) for j in range(i + 1) for k in range(j + 1)]


def run(args):
    """Call the CLI in-process; Typer ends with SystemExit(0) on success."""
    try:
        _run(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def _independent() -> dict[tuple[float, tuple[int, int, int]], float]:
    out = {}
    for line in INDEPENDENT.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or line.startswith("voxel_mm"):
            continue
        v, i, j, k, s = line.split(",")
        out[(float(v), (int(i), int(j), int(k)))] = float(s)
    return out


def _mev_per_decay(s_sum_mgy_per_mbq_s: float, voxel_mm: float) -> float:
    mass_kg = SOFT_TISSUE_DENSITY_G_CM3 * voxel_mm**3 * 1e-6
    return s_sum_mgy_per_mbq_s * mass_kg / (MEV_TO_J * 1e9)


def test_package_data_covers_both_nuclides_at_all_thirteen_sizes():
    assert lanconelli2012_sizes("Lu-177") == SIZES
    assert lanconelli2012_sizes("Y-90") == SIZES
    assert lanconelli2012_sizes("I-131") == ()


def test_package_data_equals_independent_transcription():
    ref = _independent()
    assert len(ref) == 184  # 8 sizes x 23 offsets
    for (size, off), s in ref.items():
        assert lanconelli2012_kernel("Lu-177", size).value(*off) == s, (size, off)


def test_published_self_values_quoted_in_the_paper_discussion():
    # self-voxel S, mGy/(MBq s): 177Lu 4.42 mm 0.226, 3 mm 0.693; 90Y 4.42 mm 0.689, 9.28 mm 0.117
    assert lanconelli2012_kernel("Lu-177", 4.42).value(0, 0, 0) == 0.226
    assert lanconelli2012_kernel("Lu-177", 3.0).value(0, 0, 0) == 0.693
    assert lanconelli2012_kernel("Y-90", 4.42).value(0, 0, 0) == 0.689
    assert lanconelli2012_kernel("Y-90", 9.28).value(1, 0, 0) == 8.53e-3


@pytest.mark.parametrize("nuclide", ["Lu-177", "Y-90"])
@pytest.mark.parametrize("size", SIZES)
def test_tables_monotonic_and_symmetric(nuclide, size):
    t = lanconelli2012_kernel(nuclide, size)
    o = t.octant
    assert np.array_equal(o, np.transpose(o, (1, 0, 2))) and np.array_equal(o, np.transpose(o, (2, 1, 0)))
    # moving one voxel further out along any axis never increases S (a transcription check)
    assert np.all(np.diff(o, axis=0) <= 0) and np.all(np.diff(o, axis=1) <= 0) and np.all(np.diff(o, axis=2) <= 0)


@pytest.mark.parametrize("nuclide", ["Lu-177", "Y-90"])
@pytest.mark.parametrize("size", SIZES)
def test_auto_kernel_returns_published_values_exactly_at_tabulated_sizes(nuclide, size):
    k = dose_voxel_kernel(nuclide, size, radius_mm=6.5 * size)  # 6 voxels: one ring beyond the table
    assert k.source_id == "lanconelli2012" and k.table_voxel_mm == size and k.table_radius_vox == 5
    assert "Lanconelli" in k.source and "Phys Med Biol 2012" in (k.citation or "")
    pub = lanconelli2012_kernel(nuclide, size)
    tab = {(i, j, kk): v for i, j, kk, v in k.octant_table()}
    for off in OCTANT:
        assert tab[off] == pub.value(*off), off
    assert tab[(6, 0, 0)] > 0 and tab[(6, 6, 6)] > 0  # beyond the table: the computed tail
    # every sign and axis order of an offset carries the published value
    R = k.radius_vox
    v = k.values_mgy_per_mbq_s
    assert v[R[0] - 2, R[1] + 1, R[2] - 3] == pub.value(3, 2, 1)


def test_tail_beyond_the_table_equals_the_computed_kernel():
    # 177Lu 4.42 mm: beyond 5 voxels only photons; the published kernel's tail is the computed
    # kernel's far-field value (same point kernel and quadrature; the computed kernel's beta
    # renormalisation changes it by < 1e-3 there, tolerance 1 %)
    k = dose_voxel_kernel("Lu-177", 4.42)
    c = dose_voxel_kernel("Lu-177", 4.42, source="computed")
    assert k.radius_vox == c.radius_vox == (7, 7, 7)
    tk = {(i, j, kk): v for i, j, kk, v in k.octant_table()}
    tc = {(i, j, kk): v for i, j, kk, v in c.octant_table()}
    beyond = [o for o in tc if max(o) > 5]
    assert len(beyond) == 120 - 56
    for o in beyond:
        assert tk[o] == pytest.approx(tc[o], rel=0.01), o
    # documented seam: the computed photon tail runs high (linear build-up), so (6,0,0) computed
    # exceeds (5,0,0) published by ~1 % while MC falls by ~35 % per voxel there
    assert tk[(6, 0, 0)] / tk[(5, 0, 0)] < 1.1


def test_published_177lu_kernel_holds_less_than_the_icrp107_electron_energy():
    """How much energy the published 177Lu offsets hold (docs/dosimetry.md, reviewer's analysis).

    Central 3x3x3 voxels at 2.21 mm (beyond which 177Lu electrons do not reach): 0.1389 MeV/decay
    (tolerance 0.5 %), i.e. 93.9 % of the ICRP 107 electron energy 0.1479 MeV (beta 0.1333 +
    IC/Auger 0.0146): ~6 % (~0.009 MeV) of it, the locally absorbed conversion/Auger electrons, is
    not in the table. All 11x11x11 tabulated offsets hold 0.140-0.146 MeV/decay at every size
    (more at large voxels, which catch more photon energy), below the 0.1479 MeV of electrons alone.
    """
    lu = get_nuclide("Lu-177")
    t = lanconelli2012_kernel("Lu-177", 2.21)
    central = t.octant[:2, :2, :2]
    weights = np.array([1, 2])  # offset 0 once, offset 1 twice (+-) per axis
    s27 = float(np.einsum("ijk,i,j,k->", central, weights, weights, weights))
    e27 = _mev_per_decay(s27, 2.21)
    assert e27 == pytest.approx(0.1389, rel=0.005)
    assert e27 / lu.electron_mean_mev_per_decay == pytest.approx(0.939, abs=0.005)
    assert lu.beta_mean_mev_per_decay < e27 < lu.electron_mean_mev_per_decay
    w = np.array([1, 2, 2, 2, 2, 2])
    for size in SIZES:
        tab = lanconelli2012_kernel("Lu-177", size).octant
        e = _mev_per_decay(float(np.einsum("ijk,i,j,k->", tab, w, w, w)), size)
        assert 0.139 < e < 0.147, (size, e)
        assert e < lu.electron_mean_mev_per_decay


def test_published_90y_kernel_holds_the_beta_energy():
    # 90Y: no conversion electrons; the 11^3 tabulated voxels hold 0.933-0.936 MeV/decay against the
    # 0.9267 MeV beta mean (+0.7 ... +1.0 %, soft tissue 1.04 g/cm3 in both); tolerance 2 %.
    w = np.array([1, 2, 2, 2, 2, 2])
    beta = get_nuclide("Y-90").beta_mean_mev_per_decay
    for size in SIZES:
        tab = lanconelli2012_kernel("Y-90", size).octant
        e = _mev_per_decay(float(np.einsum("ijk,i,j,k->", tab, w, w, w)), size)
        assert e == pytest.approx(beta, rel=0.02), size


def test_size_matching_boundaries():
    assert match_lanconelli2012("Lu-177", 4.42 * 1.0049) == 4.42
    assert match_lanconelli2012("Lu-177", 4.42 * 0.9951) == 4.42
    assert match_lanconelli2012("Lu-177", 4.42 * 1.0051) is None
    assert match_lanconelli2012("Lu-177", (4.42, 4.42, 4.42 * 1.004)) == 4.42
    assert match_lanconelli2012("Lu-177", (4.42, 4.42, 3.0)) is None  # not cubic
    assert match_lanconelli2012("I-131", 4.42) is None


def test_auto_falls_back_to_computed_where_the_table_does_not_apply():
    for kwargs in ({"voxel_mm": 4.1}, {"voxel_mm": (4.42, 4.42, 3.0)}, {"voxel_mm": 4.42, "include_photons": False},
                   {"voxel_mm": 4.42, "density_g_cm3": 1.0}, {"voxel_mm": 4.42, "include_ic_auger": False}):
        k = dose_voxel_kernel("Lu-177", **kwargs)
        assert k.source == COMPUTED_SOURCE and k.source_id == "computed" and k.citation is None, kwargs


def test_lanconelli_source_demanded_but_not_applicable_says_what_exists():
    with pytest.raises(InvalidInputError, match=r"tabulated cubic sizes: 2\.21, 2\.33.*9\.28 mm"):
        dose_voxel_kernel("Lu-177", 4.1, source="lanconelli2012")
    with pytest.raises(InvalidInputError, match="tabulated cubic sizes: none"):
        dose_voxel_kernel("I-131", 4.42, source="lanconelli2012")
    with pytest.raises(InvalidInputError, match="photons"):
        dose_voxel_kernel("Lu-177", 4.42, include_photons=False, source="lanconelli2012")
    with pytest.raises(InvalidInputError, match="unknown kernel source"):
        dose_voxel_kernel("Lu-177", 4.42, source="mc")


def test_default_radius_keeps_the_whole_published_table():
    # 30 mm default radius is only 4 voxels at 9.28 mm; the published table (5 voxels) is kept whole
    k = dose_voxel_kernel("Lu-177", 9.28)
    assert k.radius_vox == (5, 5, 5) and k.table_radius_vox == 5
    assert k.values_mgy_per_mbq_s[10, 10, 10] == 2.62e-07  # offset (5,5,5)
    # an explicit radius is honoured (the table is then cut)
    assert dose_voxel_kernel("Lu-177", 9.28, radius_mm=20.0).table_radius_vox == 3


def test_near_tabulated_size_uses_the_table_values_unchanged():
    k = dose_voxel_kernel("Lu-177", 4.4181)  # a SPECT reconstruction pixel within 0.05 % of 4.42 mm
    assert k.source_id == "lanconelli2012" and k.table_voxel_mm == 4.42 and k.voxel_mm[0] == 4.4181
    R = k.radius_vox
    assert k.values_mgy_per_mbq_s[R] == 0.226


def test_cli_kernel_returns_published_values_and_computed_on_request(capsys):
    run(["kernel", "--nuclide", "Lu-177", "--voxel-mm", "4.42", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["voxel_mm"] == 4.42 and out["unit"] == "mGy/(MBq*s)"
    assert out["source_id"] == "lanconelli2012" and "Lanconelli et al. 2012" in out["source"]
    assert "517-533" in out["citation"]
    pub = lanconelli2012_kernel("Lu-177", 4.42)
    s = {tuple(r[:3]): r[3] for r in out["s_values"]}
    assert set(s) == set(OCTANT)
    assert all(s[o] == pub.value(*o) for o in OCTANT)
    run(["kernel", "--nuclide", "Lu-177", "--voxel-mm", "4.42", "--json", "--source", "computed"])
    comp = json.loads(capsys.readouterr().out)
    assert comp["source"] == COMPUTED_SOURCE and comp["citation"] is None
    sc = {tuple(r[:3]): r[3] for r in comp["s_values"]}
    # the computed default kernel is +7.6 ... +8.7 % above the table in the self voxel (IC/Auger)
    assert 1.04 < sc[(0, 0, 0)] / s[(0, 0, 0)] < 1.12


def test_cli_kernel_lanconelli_source_not_tabulated_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        run(["kernel", "--nuclide", "Lu-177", "--voxel-mm", "4.1", "--source", "lanconelli2012"])
    assert exc.value.code == 2
