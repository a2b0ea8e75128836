"""Radionuclide decay data, read from ``data/nuclides.yaml`` (ICRP 107 / NuDat 3).

Every physical constant of a nuclide used anywhere in :mod:`lutarterial.dosimetry` comes from
here, so the source of each number is in one reviewed data file and not scattered in code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from lutarterial.errors import InvalidInputError, ProtocolDefinitionError

__all__ = [
    "MEV_TO_J",
    "SECONDS_PER_HOUR",
    "BetaBranch",
    "PhotonLine",
    "Nuclide",
    "get_nuclide",
    "nuclide_names",
    "mev_per_decay_to_gy_g_per_mbq_h",
    "water_muen_cm2_g",
    "water_mu_cm2_g",
]

MEV_TO_J: float = 1.602176634e-13  # CODATA 2018 (exact, from the SI definition of e)
SECONDS_PER_HOUR: float = 3600.0


def mev_per_decay_to_gy_g_per_mbq_h(energy_mev: float) -> float:
    """Absorbed-dose factor of an energy per decay: Gy*g per (MBq*h) when fully absorbed.

    E [MeV] x 1.602e-13 J/MeV x 3600 s/h x 1e6 Bq/MBq / 1e-3 kg/g.
    For 177Lu electrons (0.1479 MeV) this is 0.0853 Gy*g/(MBq*h).
    """
    return energy_mev * MEV_TO_J * SECONDS_PER_HOUR * 1e6 / 1e-3


@dataclass(frozen=True)
class BetaBranch:
    endpoint_mev: float
    mean_mev: float
    intensity: float


@dataclass(frozen=True)
class PhotonLine:
    energy_mev: float
    yield_per_decay: float


@dataclass(frozen=True)
class Nuclide:
    """Decay data of one nuclide; ``source`` names where each number comes from."""

    name: str
    half_life_h: float
    electron_mean_mev_per_decay: float
    beta_mean_mev_per_decay: float
    beta_branches: tuple[BetaBranch, ...]
    photons: tuple[PhotonLine, ...]
    source: str

    @property
    def decay_constant_per_h(self) -> float:
        return math.log(2.0) / self.half_life_h

    @property
    def photon_mean_mev_per_decay(self) -> float:
        return float(sum(p.energy_mev * p.yield_per_decay for p in self.photons))

    @property
    def other_electron_mev_per_decay(self) -> float:
        """Internal-conversion and Auger electrons (treated as locally absorbed)."""
        return max(self.electron_mean_mev_per_decay - self.beta_mean_mev_per_decay, 0.0)

    @property
    def electron_gy_g_per_mbq_h(self) -> float:
        """Electron self-dose factor (Gy*g/(MBq*h)) when all electron energy is absorbed locally."""
        return mev_per_decay_to_gy_g_per_mbq_h(self.electron_mean_mev_per_decay)


@lru_cache(maxsize=1)
def _load() -> dict[str, Nuclide]:
    text = resources.files("lutarterial.dosimetry").joinpath("data/nuclides.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    out: dict[str, Nuclide] = {}
    try:
        for name, d in raw["nuclides"].items():
            out[name] = Nuclide(
                name=name,
                half_life_h=float(d["half_life_h"]),
                electron_mean_mev_per_decay=float(d["electron_mean_mev_per_decay"]),
                beta_mean_mev_per_decay=float(d["beta_mean_mev_per_decay"]),
                beta_branches=tuple(BetaBranch(float(a), float(b), float(c)) for a, b, c in d["beta_branches"]),
                photons=tuple(PhotonLine(float(e), float(y)) for e, y in d["photons"]),
                source=str(d["source"]),
            )
    except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - data file is reviewed
        raise ProtocolDefinitionError(f"nuclides.yaml is malformed: {exc}") from exc
    return out


def nuclide_names() -> list[str]:
    return sorted(_load())


def get_nuclide(name: str) -> Nuclide:
    """Look a nuclide up by name; accepts 'Lu-177', 'Lu177', '177Lu', 'lu-177'."""
    table = _load()
    key = name.strip().replace("_", "-")
    norm = {n.lower().replace("-", ""): n for n in table}
    compact = key.lower().replace("-", "")
    if compact in norm:
        return table[norm[compact]]
    digits = "".join(ch for ch in compact if ch.isdigit())
    letters = "".join(ch for ch in compact if ch.isalpha())
    swapped = letters + digits
    if swapped in norm:
        return table[norm[swapped]]
    raise InvalidInputError(f"unknown nuclide {name!r}; known: {', '.join(sorted(table))}")


@lru_cache(maxsize=1)
def _photon_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text = resources.files("lutarterial.dosimetry").joinpath("data/water_muen.csv").read_text("utf-8")
    rows = [ln.split(",") for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    e = np.array([float(r[0]) for r in rows])
    mu = np.array([float(r[1]) for r in rows])
    muen = np.array([float(r[2]) for r in rows])
    return e, mu, muen


def _interp(energy_mev: float, col: int) -> float:
    tab = _photon_table()
    e = tab[0]
    if not e[0] <= energy_mev <= e[-1]:
        raise InvalidInputError(f"photon energy {energy_mev} MeV outside the photon table ({e[0]}-{e[-1]} MeV)")
    return float(np.exp(np.interp(np.log(energy_mev), np.log(e), np.log(tab[col]))))


def water_muen_cm2_g(energy_mev: float) -> float:
    """mu_en/rho of water (cm2/g), log-log interpolation of NIST SRD 126."""
    return _interp(energy_mev, 2)


def water_mu_cm2_g(energy_mev: float) -> float:
    """mu/rho of water (cm2/g, with coherent scattering), log-log interpolation of NIST SRD 126."""
    return _interp(energy_mev, 1)
