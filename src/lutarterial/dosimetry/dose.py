"""Organ- and lesion-level absorbed dose (MIRD schema, self-dose only).

Organ self-dose: D = TIA x (E_e phi_e + E_ph phi_ph) x k / m, with k the MeV->Gy*g/(MBq*h)
factor, E the energies per decay (data/nuclides.yaml) and phi the self-absorbed fractions.
Organs take phi_e = 1 (177Lu electrons, range < 2 mm, are absorbed in any organ) and the photon
fraction of a sphere of the same mass; lesions take both fractions of a sphere of their mass.
Sphere fractions are GENERATED from the same point kernel as the voxel kernels
(:func:`lutarterial.dosimetry.kernels.sphere_absorbed_fractions`), tabulated on a mass grid
and interpolated log-log in mass (the approach of the OLINDA/EXM sphere model, Stabin &
Konijnenberg, J Nucl Med 2000;41:149-160). Cross-doses between organs are not included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lutarterial.dosimetry.kernels import SOFT_TISSUE_DENSITY_G_CM3, sphere_absorbed_fractions
from lutarterial.dosimetry.nuclides import get_nuclide, mev_per_decay_to_gy_g_per_mbq_h
from lutarterial.errors import InvalidInputError

__all__ = ["SelfDose", "organ_self_dose", "sphere_s_value", "sphere_s_value_table", "SPHERE_MASSES_G"]

SPHERE_MASSES_G = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 6000.0)


@dataclass(frozen=True)
class SelfDose:
    dose_gy: float
    electron_gy: float
    photon_gy: float
    s_value_gy_per_mbq_h: float
    method: str


def _radius_mm(mass_g: float, density: float) -> float:
    return (3 * mass_g / density / (4 * math.pi)) ** (1 / 3) * 10.0


@lru_cache(maxsize=8)
def sphere_s_value_table(nuclide: str = "Lu-177", density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3) -> tuple[tuple[float, float, float, float], ...]:
    """(mass_g, phi_electron, phi_photon, S in Gy/(MBq*h)) for unit-density-scaled spheres."""
    nuc = get_nuclide(nuclide)
    ke = mev_per_decay_to_gy_g_per_mbq_h(nuc.electron_mean_mev_per_decay)
    kp = mev_per_decay_to_gy_g_per_mbq_h(nuc.photon_mean_mev_per_decay)
    rows = []
    for m in SPHERE_MASSES_G:
        pe, pp = sphere_absorbed_fractions(nuc, _radius_mm(m, density_g_cm3), density_g_cm3)
        rows.append((m, pe, pp, (ke * pe + kp * pp) / m))
    return tuple(rows)


def _fractions(nuclide: str, mass_g: float, density: float) -> tuple[float, float]:
    tab = np.array(sphere_s_value_table(get_nuclide(nuclide).name, density))
    lm = np.log(tab[:, 0])
    x = math.log(mass_g)
    if not lm[0] <= x <= lm[-1]:
        raise InvalidInputError(f"mass {mass_g} g outside the sphere table ({tab[0, 0]}-{tab[-1, 0]} g)")
    pe = float(np.interp(x, lm, tab[:, 1]))
    pp = float(np.exp(np.interp(x, lm, np.log(np.maximum(tab[:, 2], 1e-12)))))
    return pe, pp


def sphere_s_value(mass_g: float, nuclide: str = "Lu-177", density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3) -> float:
    """Self S-value (Gy/(MBq*h)) of a uniform soft-tissue sphere, interpolated in log mass."""
    if not (isinstance(mass_g, (int, float)) and math.isfinite(mass_g) and mass_g > 0):
        raise InvalidInputError(f"mass must be a positive number of grams, got {mass_g!r}")
    nuc = get_nuclide(nuclide)
    pe, pp = _fractions(nuc.name, mass_g, density_g_cm3)
    ke = mev_per_decay_to_gy_g_per_mbq_h(nuc.electron_mean_mev_per_decay)
    kp = mev_per_decay_to_gy_g_per_mbq_h(nuc.photon_mean_mev_per_decay)
    return (ke * pe + kp * pp) / mass_g


def organ_self_dose(tia_mbq_h: float, mass_g: float, nuclide: str = "Lu-177", kind: str = "organ",
                    include_photons: bool = True, density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3) -> SelfDose:
    """Self-dose of an organ (``kind='organ'``) or lesion (``kind='sphere'``) from its TIA.

    Organ: electrons fully absorbed, D_e = TIA x 0.0853 / m for 177Lu; photon term from a sphere of
    the same mass. Sphere: both from the sphere table interpolated in mass.
    """
    if not (math.isfinite(tia_mbq_h) and tia_mbq_h >= 0):
        raise InvalidInputError(f"TIA must be >= 0 MBq*h, got {tia_mbq_h}")
    if not (math.isfinite(mass_g) and mass_g > 0):
        raise InvalidInputError(f"mass must be > 0 g, got {mass_g}")
    if kind not in ("organ", "sphere"):
        raise InvalidInputError("kind must be 'organ' or 'sphere'")
    nuc = get_nuclide(nuclide)
    pe, pp = _fractions(nuc.name, min(max(mass_g, SPHERE_MASSES_G[0]), SPHERE_MASSES_G[-1]), density_g_cm3)
    if kind == "organ":
        pe = 1.0
    ke = mev_per_decay_to_gy_g_per_mbq_h(nuc.electron_mean_mev_per_decay)
    kp = mev_per_decay_to_gy_g_per_mbq_h(nuc.photon_mean_mev_per_decay) if include_photons else 0.0
    de = tia_mbq_h * ke * pe / mass_g
    dp = tia_mbq_h * kp * pp / mass_g
    return SelfDose(de + dp, de, dp, (ke * pe + kp * pp) / mass_g, f"{kind} self-dose, {nuc.name}")
