"""Dose-voxel kernels (voxel S-values) computed from first principles at any voxel size.

Why computed and not shipped: published Monte-Carlo tables (Lanconelli et al., Phys Med Biol
2012;57:517-533) exist only for fixed voxel sizes, while SPECT reconstructions come in many.
We integrate a point kernel over source and target voxels exactly (no resampling of a table):

    S(o) = 1 / (rho V^2) * integral F(r) G_o(r) dr,   G_o(r) = <prod_d max(a_d - |r n_d - o_d|, 0)>_n

where F(r) is the energy deposited per unit radius around a point source (J/m per decay),
G_o the direction average of the overlap volume of a voxel with a copy shifted by u = r n, o the
centre-to-centre offset, a_d the voxel sides, V their product and rho the medium density.

Point kernel (documented approximations, checked against published values in the tests):

* beta electrons: Loevinger's empirical beta point kernel (Loevinger, Radiology 1956;66:55;
  as reproduced in Attix, "Introduction to Radiological Physics and Radiation Dosimetry",
  Wiley 1986) for each beta branch, nu = 18.6 (E0 - 0.036)^-1.37 cm2/g, c = 2 / 1.5 / 1 for
  E0 < 0.5 / < 1.5 / < 3 MeV; branches weighted by intensity x mean energy, each numerically
  normalised so that the kernel deposits exactly the beta energy per decay (energy conservation);
* internal-conversion and Auger electrons (177Lu: 0.0146 MeV/decay): absorbed locally
  (ranges below 0.2 mm, much smaller than SPECT voxels);
* photons: attenuated point kernel with a linear energy-absorption build-up factor,
  F = sum_i y_i E_i mu_en,i (1 + b_i mu_i r) exp(-mu_i r), with b_i = mu_i/mu_en,i - 1 chosen so
  that all photon energy is absorbed in an infinite medium (energy conservation); mu and mu_en of
  water from NIST SRD 126. Truncated at the kernel radius (photon energy beyond it is not
  counted, as most of it escapes a patient).

Units: S-values in mGy/(MBq*s), the unit of the published tables.

Provenance (``source`` of :func:`dose_voxel_kernel`): with ``source="auto"`` (default) a nuclide
and cubic voxel size covered by the published Lanconelli et al. 2012 database (177Lu, 90Y; soft
tissue; within 0.5 % of a tabulated size) gets the published Monte-Carlo values for the offsets
the table lists (0..5 voxels per axis); offsets beyond come from the computed kernel (the photon
tail). Every other case uses the computed kernel. The kernel records ``source`` and ``citation``.
Note that the published 177Lu tables hold ~6 % less electron energy than ICRP 107 emits (they
carry at most a third of the conversion/Auger electrons; docs/dosimetry.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lutarterial.dosimetry.nuclides import MEV_TO_J, Nuclide, get_nuclide, water_mu_cm2_g, water_muen_cm2_g
from lutarterial.errors import InvalidInputError

__all__ = [
    "COMPUTED_SOURCE",
    "KERNEL_SOURCES",
    "SOFT_TISSUE_DENSITY_G_CM3",
    "DoseKernel",
    "loevinger_radial_fraction",
    "point_kernel_radial",
    "dose_voxel_kernel",
    "sphere_absorbed_fractions",
]

SOFT_TISSUE_DENSITY_G_CM3 = 1.04  # ICRU soft tissue, as used by Lanconelli et al. 2012
COMPUTED_SOURCE = "computed (first principles; see docs)"
KERNEL_SOURCES = ("auto", "lanconelli2012", "computed")


def _loevinger_params(endpoint_mev: float) -> tuple[float, float]:
    if endpoint_mev <= 0.036:
        raise InvalidInputError(f"beta end-point {endpoint_mev} MeV below Loevinger's formula range")
    nu = 18.6 * (endpoint_mev - 0.036) ** -1.37  # cm2/g
    c = 2.0 if endpoint_mev < 0.5 else (1.5 if endpoint_mev < 1.5 else 1.0)
    return nu, c


def loevinger_radial_fraction(x_g_cm2: np.ndarray, endpoint_mev: float) -> np.ndarray:
    """Loevinger's beta point kernel as radial energy fraction per g/cm2 (integral = 1)."""
    nu, c = _loevinger_params(endpoint_mev)
    x = np.asarray(x_g_cm2, dtype=float)
    vx = nu * x
    inner = c * (1.0 - (vx / c) * np.exp(1.0 - vx / c)) + vx * np.exp(1.0 - vx)
    outer = vx * np.exp(1.0 - vx)
    f = np.where(vx < c, inner, outer)
    return f / _loevinger_norm(endpoint_mev)


@lru_cache(maxsize=64)
def _loevinger_norm(endpoint_mev: float) -> float:
    """Integral of the unnormalised kernel over x (numerical, fine grid, computed once per branch)."""
    nu, c = _loevinger_params(endpoint_mev)
    xs = np.linspace(0.0, 60.0 / nu, 200001)
    vs = nu * xs
    fs = np.where(vs < c, c * (1 - (vs / c) * np.exp(1 - vs / c)) + vs * np.exp(1 - vs), vs * np.exp(1 - vs))
    return float(np.trapezoid(fs, xs))


def point_kernel_radial(nuclide: Nuclide, r_mm: np.ndarray, density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3,
                        include_photons: bool = True) -> np.ndarray:
    """Continuous part of F(r): energy (MeV) deposited per mm of radius per decay.

    The locally absorbed IC/Auger part is not included (it is a delta at r = 0).
    """
    r = np.asarray(r_mm, dtype=float)
    x = r * 0.1 * density_g_cm3  # g/cm2
    out = np.zeros_like(r)
    weights = np.array([b.intensity * b.mean_mev for b in nuclide.beta_branches])
    if weights.sum() > 0 and nuclide.beta_mean_mev_per_decay > 0:
        weights = weights / weights.sum() * nuclide.beta_mean_mev_per_decay
        for w, b in zip(weights, nuclide.beta_branches, strict=True):
            out += w * loevinger_radial_fraction(x, b.endpoint_mev) * 0.1 * density_g_cm3  # per mm
    if include_photons:
        for p in nuclide.photons:
            mu_en = water_muen_cm2_g(p.energy_mev) * density_g_cm3 * 0.1  # 1/mm
            mu = water_mu_cm2_g(p.energy_mev) * density_g_cm3 * 0.1
            b = mu / mu_en - 1.0
            out += p.energy_mev * p.yield_per_decay * mu_en * (1.0 + b * mu * r) * np.exp(-mu * r)
    return out


def _electron_reach_mm(nuclide: Nuclide, density_g_cm3: float) -> float:
    """Radius (mm) within which the beta kernel deposits all but ~1e-4 of its energy."""
    nu_min = min(_loevinger_params(b.endpoint_mev)[0] for b in nuclide.beta_branches) if nuclide.beta_branches else 1e3
    return 12.0 / nu_min / density_g_cm3 * 10.0


@lru_cache(maxsize=4)
def _fibonacci_dirs(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    rho = np.sqrt(1 - z * z)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def _exact_offset(offset_mm: np.ndarray, a_mm: np.ndarray, radial, n_r: int = 700, n_dirs: int = 1500) -> float:
    """integral F(r) G_o(r) dr in MeV*mm^3 by direction averaging (handles the r -> 0 region)."""
    rmin = float(np.linalg.norm(np.maximum(np.abs(offset_mm) - a_mm, 0.0)))
    rmax = float(np.linalg.norm(np.abs(offset_mm) + a_mm))
    # denser nodes near rmin where short-range electrons deposit most energy
    s = np.linspace(0.0, 1.0, n_r) ** 2
    r = rmin + (rmax - rmin) * s
    dirs = _fibonacci_dirs(n_dirs)
    total = np.zeros(n_r)
    chunk = 100
    for i0 in range(0, n_r, chunk):
        rr = r[i0:i0 + chunk, None, None] * dirs[None, :, :]  # (nr, nd, 3)
        ov = np.clip(a_mm - np.abs(rr - offset_mm), 0.0, None).prod(axis=2)
        total[i0:i0 + chunk] = ov.mean(axis=1)
    return float(np.trapezoid(radial(r) * total, r))


def _tri_nodes(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature for the triangular density (1 - |x|) on [-1, 1], exact per half."""
    x, w = np.polynomial.legendre.leggauss(n)
    xp = 0.5 * (x + 1)  # [0, 1]
    wp = 0.5 * w * (1 - xp)
    nodes = np.concatenate([-xp, xp])
    weights = np.concatenate([wp, wp])
    return nodes, weights / weights.sum()


@dataclass(frozen=True)
class DoseKernel:
    """A dose-voxel kernel: ``values[i+R, j+R, k+R]`` = S from source voxel to offset (i, j, k)."""

    nuclide: str
    voxel_mm: tuple[float, float, float]
    radius_vox: tuple[int, int, int]
    density_g_cm3: float
    include_photons: bool
    values_mgy_per_mbq_s: np.ndarray
    electron_energy_recovered: float  # fraction of beta energy inside the kernel before renormalisation (NaN: published)
    source: str = COMPUTED_SOURCE  # where the values come from, in words
    source_id: str = "computed"  # "computed" or "lanconelli2012"
    citation: str | None = None  # full reference of published values, when used
    table_voxel_mm: float | None = None  # the tabulated voxel size used (published kernels)
    table_radius_vox: int | None = None  # offsets 0..this per axis hold published values

    def octant_table(self) -> list[tuple[int, int, int, float]]:
        """S-values for i >= j >= k >= 0 (cubic voxels), the layout of the published tables."""
        rx, ry, rz = self.radius_vox
        r = min(rx, ry, rz)
        out = []
        for i in range(r + 1):
            for j in range(i + 1):
                for k in range(j + 1):
                    out.append((i, j, k, float(self.values_mgy_per_mbq_s[rx + i, ry + j, rz + k])))
        return out


def dose_voxel_kernel(nuclide: str | Nuclide, voxel_mm: float | tuple[float, float, float],
                      radius_mm: float | None = None, density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3,
                      include_photons: bool = True, include_ic_auger: bool = True,
                      source: str = "auto") -> DoseKernel:
    """Dose-voxel kernel of ``nuclide`` for voxels of ``voxel_mm`` (cubic or x, y, z).

    ``source``: ``"auto"`` (default) uses the published Lanconelli et al. 2012 S-values when the
    database covers the nuclide and the (cubic, within 0.5 %) voxel size, with soft tissue
    (1.04 g/cm3), photons included and the default ``include_ic_auger``; offsets beyond the
    published table (more than 5 voxels along any axis) are filled from the computed kernel.
    Otherwise, and always with ``"computed"``, the kernel is computed as described below.
    ``"lanconelli2012"`` demands the published table and raises InvalidInputError (listing the
    tabulated sizes) when it does not apply. The returned kernel records ``source``,
    ``source_id``, ``citation`` and ``table_voxel_mm``.

    Computed kernel:

    ``radius_mm`` truncates the kernel (default: electron reach plus one voxel, at least 30 mm so
    that near photon dose is kept). The electron part is renormalised so that its sum times the
    voxel mass equals the electron energy per decay exactly (energy conservation); the recovered
    fraction before renormalisation is kept in ``electron_energy_recovered`` as a check of the
    integration. ``include_ic_auger=False`` drops the locally absorbed conversion and Auger
    electrons (only to compare with Monte-Carlo tables that simulate the beta spectrum alone).
    """
    nuc = nuclide if isinstance(nuclide, Nuclide) else get_nuclide(nuclide)
    a = np.array([voxel_mm] * 3 if np.isscalar(voxel_mm) else voxel_mm, dtype=float)  # type: ignore[list-item]
    if a.shape != (3,) or np.any(~np.isfinite(a)) or np.any(a <= 0) or np.any(a > 50):
        raise InvalidInputError(f"voxel size must be 1 or 3 positive numbers up to 50 mm, got {voxel_mm!r}")
    if not 0.01 <= density_g_cm3 <= 25:
        raise InvalidInputError(f"density {density_g_cm3} g/cm3 out of range")
    if source not in KERNEL_SOURCES:
        raise InvalidInputError(f"unknown kernel source {source!r}; choose {', '.join(KERNEL_SOURCES)}")
    a_t = tuple(round(float(x), 6) for x in a)

    def computed() -> DoseKernel:
        return _kernel_cached(nuc.name, a_t, radius_mm, float(density_g_cm3), bool(include_photons),
                              bool(include_ic_auger))

    if source == "computed":
        return computed()
    from lutarterial.dosimetry.published_kernels import lanconelli2012_sizes, match_lanconelli2012

    table_mm = match_lanconelli2012(nuc.name, a_t)
    blockers = []
    if table_mm is None:
        sizes = lanconelli2012_sizes(nuc.name)
        blockers.append(f"no published table for {nuc.name} at {a_t} mm (tabulated cubic sizes: "
                        + (", ".join(f"{x:g}" for x in sizes) + " mm" if sizes else "none") + ")")
    if abs(density_g_cm3 - SOFT_TISSUE_DENSITY_G_CM3) > 1e-9:
        blockers.append(f"the tables are for soft tissue {SOFT_TISSUE_DENSITY_G_CM3} g/cm3, not {density_g_cm3}")
    if not include_photons:
        blockers.append("the tables include photons (include_photons=False asks for electrons only)")
    if not include_ic_auger:
        blockers.append("include_ic_auger=False is a variant of the computed kernel")
    if blockers:
        if source == "lanconelli2012":
            raise InvalidInputError("Lanconelli 2012 kernel not applicable: " + "; ".join(blockers))
        return computed()
    return _published_filled(nuc.name, a_t, radius_mm, float(table_mm))


def _default_radius_vox(nuc: Nuclide, a: np.ndarray, radius_mm: float | None, rho: float,
                        photons: bool) -> tuple[int, int, int]:
    if radius_mm is None:
        radius_mm = max(_electron_reach_mm(nuc, rho) + float(a.max()), 30.0 if photons else 0.0)
    if radius_mm <= 0:
        raise InvalidInputError("kernel radius must be > 0 mm")
    return tuple(int(max(1, math.ceil(radius_mm / ai))) for ai in a)  # type: ignore[return-value]


def _far_energy(nuc: Nuclide, a: np.ndarray, offs_mm: np.ndarray, rho: float,
                photons: bool) -> tuple[np.ndarray, np.ndarray]:
    """(beta, photon) energy (MeV per decay) deposited in target voxels at ``offs_mm`` from the source voxel.

    The point kernel averaged over the triangular difference density of two voxels by a 4-point
    Gauss rule per axis half: accurate where the kernel is smooth over a voxel (away from the source).
    """
    V = float(a.prod())
    e_beta = np.zeros(len(offs_mm))
    e_gam = np.zeros(len(offs_mm))
    if not len(offs_mm):
        return e_beta, e_gam
    x, w = _tri_nodes(4)
    gx, gy, gz = np.meshgrid(x, x, x, indexing="ij")
    wq = (w[:, None, None] * w[None, :, None] * w[None, None, :]).ravel()
    q = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1) * a  # (nq, 3) mm
    for s in range(0, len(offs_mm), 256):
        u = offs_mm[s:s + 256][:, None, :] + q[None, :, :]
        r = np.linalg.norm(u, axis=2)
        fb = point_kernel_radial(nuc, r, rho, include_photons=False)
        e_beta[s:s + 256] = (fb / (4 * math.pi * r**2) * wq).sum(axis=1) * V
        if photons and nuc.photons:
            fg = point_kernel_radial(nuc, r, rho, include_photons=True) - fb
            e_gam[s:s + 256] = (fg / (4 * math.pi * r**2) * wq).sum(axis=1) * V
    return e_beta, e_gam


def _mirror(octant: np.ndarray, R: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(tuple(2 * r + 1 for r in R))
    for sx in (1, -1):
        for sy in (1, -1):
            for sz in (1, -1):
                out[R[0] + sx * np.arange(octant.shape[0])[:, None, None],
                    R[1] + sy * np.arange(octant.shape[1])[None, :, None],
                    R[2] + sz * np.arange(octant.shape[2])[None, None, :]] = octant
    return out


@lru_cache(maxsize=16)
def _published_filled(name: str, a_t: tuple[float, ...], radius_mm: float | None, table_mm: float) -> DoseKernel:
    """Published values at the offsets the table lists; beyond them the computed point kernel.

    Beyond the table (more than 5 voxels along an axis, where 177Lu deposits photon energy only)
    the computed kernel's far-field quadrature is evaluated directly, without computing the
    near offsets that the table replaces (those cost minutes for 90Y at small voxels).
    """
    from lutarterial.dosimetry.published_kernels import lanconelli2012_kernel

    nuc = get_nuclide(name)
    rho = SOFT_TISSUE_DENSITY_G_CM3
    a = np.array(a_t)
    pub = lanconelli2012_kernel(name, table_mm)
    R = _default_radius_vox(nuc, a, radius_mm, rho, True)
    if radius_mm is None:  # default radius: never cut the published table (9.28 mm: 30 mm is 4 voxels)
        R = tuple(max(r, pub.radius_vox) for r in R)  # type: ignore[assignment]
    ii, jj, kk = np.meshgrid(*(np.arange(r + 1) for r in R), indexing="ij")
    idx = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3)
    outside = idx.max(axis=1) > pub.radius_vox
    e_beta, e_gam = _far_energy(nuc, a, idx[outside] * a, rho, True)
    mass_kg = rho * 1e-3 * float(a.prod()) * 1e-3
    octant = np.zeros(len(idx))
    octant[outside] = (e_beta + e_gam) * MEV_TO_J * 1e9 / mass_kg
    octant = octant.reshape(tuple(r + 1 for r in R))
    n = [min(pub.radius_vox, r) for r in R]
    octant[: n[0] + 1, : n[1] + 1, : n[2] + 1] = pub.octant[: n[0] + 1, : n[1] + 1, : n[2] + 1]
    vals = _mirror(octant, R)
    vals.setflags(write=False)
    table_r = min(pub.radius_vox, min(R))
    desc = (f"Lanconelli et al. 2012 published voxel S-values ({name}, soft tissue, {table_mm:g} mm table) for "
            f"offsets up to {table_r} voxels"
            + ("; beyond them the computed kernel (first principles; see docs)" if bool(outside.any()) else ""))
    return DoseKernel(name, (float(a[0]), float(a[1]), float(a[2])), R, rho, True, vals, math.nan, source=desc,
                      source_id="lanconelli2012", citation=pub.citation, table_voxel_mm=table_mm,
                      table_radius_vox=table_r)


@lru_cache(maxsize=16)
def _kernel_cached(name: str, a_t: tuple[float, ...], radius_mm: float | None, rho: float,
                   photons: bool, ic_auger: bool = True) -> DoseKernel:
    nuc = get_nuclide(name)
    a = np.array(a_t)
    reach = _electron_reach_mm(nuc, rho)
    R = _default_radius_vox(nuc, a, radius_mm, rho, photons)
    V = float(a.prod())  # mm3
    mass_kg = rho * 1e-3 * V * 1e-3  # g/cm3 * mm3 -> g -> kg
    to_mgy = MEV_TO_J * 1e6 * 1e3  # MeV per decay -> mGy per MBq*s (numerator)

    def beta(r: np.ndarray) -> np.ndarray:
        return point_kernel_radial(nuc, r, rho, include_photons=False)

    def gamma(r: np.ndarray) -> np.ndarray:
        return point_kernel_radial(nuc, r, rho, include_photons=True) - beta(r)

    ii, jj, kk = np.meshgrid(*(np.arange(r + 1) for r in R), indexing="ij")
    offs = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3) * a  # mm
    dist_min = np.linalg.norm(np.maximum(offs - a, 0.0), axis=1)
    near = (dist_min < reach) | (np.abs(offs / a).max(axis=1) <= 1)
    e_beta = np.zeros(len(offs))
    e_gam = np.zeros(len(offs))
    # near offsets: exact direction-averaged integral (MeV*mm3), divided by V^2 -> MeV per mm3... per voxel
    for idx in np.nonzero(near)[0]:
        e_beta[idx] = _exact_offset(offs[idx], a, beta) / V
        if photons and nuc.photons:
            e_gam[idx] = _exact_offset(offs[idx], a, gamma, n_r=300, n_dirs=600) / V
    # far offsets: point kernel averaged over the triangular difference density (smooth there)
    far = np.nonzero(~near)[0]
    e_beta[far], e_gam[far] = _far_energy(nuc, a, offs[far], rho, photons)
    # e_* is now MeV deposited in the target voxel per decay in the source voxel
    full_shape = tuple(2 * r + 1 for r in R)

    def mirror(vals: np.ndarray) -> np.ndarray:
        octant = vals.reshape(tuple(r + 1 for r in R))
        out = np.zeros(full_shape)
        for sx in (1, -1):
            for sy in (1, -1):
                for sz in (1, -1):
                    out[R[0] + sx * np.arange(R[0] + 1)[:, None, None],
                        R[1] + sy * np.arange(R[1] + 1)[None, :, None],
                        R[2] + sz * np.arange(R[2] + 1)[None, None, :]] = octant
        return out

    beta_full = mirror(e_beta)
    recovered = float(beta_full.sum()) / nuc.beta_mean_mev_per_decay if nuc.beta_mean_mev_per_decay else 1.0
    if recovered > 0:
        beta_full *= nuc.beta_mean_mev_per_decay / beta_full.sum()
    if ic_auger:
        beta_full[R] += nuc.other_electron_mev_per_decay
    total = beta_full + (mirror(e_gam) if photons else 0.0)
    values = total * to_mgy / mass_kg
    return DoseKernel(name, (float(a[0]), float(a[1]), float(a[2])), R, rho, photons, values, recovered)


def sphere_absorbed_fractions(nuclide: str | Nuclide, radius_mm: float,
                              density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3) -> tuple[float, float]:
    """Self-absorbed fractions (electrons, photons) of a uniform sphere, from the same point kernel.

    phi = integral F(r) psi(r) dr / E with the sphere's geometric reduction factor
    psi(r) = 1 - 3x/4 + x^3/16, x = r/R, for r <= 2R (Berger, MIRD Pamphlet 7, 1971).
    IC/Auger electrons are absorbed locally.
    """
    nuc = nuclide if isinstance(nuclide, Nuclide) else get_nuclide(nuclide)
    if not radius_mm > 0:
        raise InvalidInputError("sphere radius must be > 0 mm")
    r = np.concatenate([np.linspace(0, min(2 * radius_mm, 20.0), 20001)[:-1],
                        np.linspace(min(2 * radius_mm, 20.0), 2 * radius_mm, 20001)])
    x = r / radius_mm
    psi = np.clip(1 - 0.75 * x + x**3 / 16, 0.0, 1.0)
    fb = point_kernel_radial(nuc, r, density_g_cm3, include_photons=False)
    ft = point_kernel_radial(nuc, r, density_g_cm3, include_photons=True)
    e_beta = nuc.beta_mean_mev_per_decay
    phi_e = 1.0
    if nuc.electron_mean_mev_per_decay > 0:
        absorbed_beta = float(np.trapezoid(fb * psi, r))
        phi_e = (absorbed_beta + nuc.other_electron_mev_per_decay) / nuc.electron_mean_mev_per_decay
        phi_e = min(phi_e, 1.0) if e_beta > 0 else 1.0
    e_g = nuc.photon_mean_mev_per_decay
    phi_g = float(np.trapezoid((ft - fb) * psi, r)) / e_g if e_g > 0 else 0.0
    return phi_e, phi_g
