"""Published Monte-Carlo voxel S-values (Lanconelli et al. 2012), shipped as package data.

Why: the issue asks for kernels checked against the Lanconelli tables, and physicists expect the
standard published kernel wherever one exists (it is what other software built on this database
reports, so doses can be compared one to one). Where the database has no table (other voxel
sizes, other nuclides) :mod:`lutarterial.dosimetry.kernels` computes the kernel from first
principles.

Source: Lanconelli N et al., "A free database of radionuclide voxel S values for the dosimetry
of nonuniform activity distributions", Phys Med Biol 2012;57:517-533 (DOSXYZnrc, ICRU soft
tissue 1.04 g/cm3). Transcribed in ``data/lanconelli2012_soft_tissue.csv`` (177Lu and 90Y,
13 voxel sizes 2.21-9.28 mm each, offsets 0..5 voxels per axis); the file header says from where.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from lutarterial.dosimetry.nuclides import get_nuclide

__all__ = [
    "LANCONELLI2012_CITATION",
    "LANCONELLI2012_DENSITY_G_CM3",
    "SIZE_TOLERANCE",
    "PublishedKernel",
    "lanconelli2012_sizes",
    "lanconelli2012_kernel",
    "match_lanconelli2012",
]

LANCONELLI2012_CITATION = (
    "Lanconelli N, Pacilio M, Lo Meo S, et al. A free database of radionuclide voxel S values for the "
    "dosimetry of nonuniform activity distributions. Phys Med Biol 2012;57(2):517-533 "
    "(soft tissue, DOSXYZnrc; transcribed from the copy in github.com/MGHPhysicsResearch/MIRDCalculation)"
)
LANCONELLI2012_DENSITY_G_CM3 = 1.04
SIZE_TOLERANCE = 0.005  # a voxel side within 0.5 % of a tabulated size uses that table
_DATA = "lanconelli2012_soft_tissue.csv"


@dataclass(frozen=True)
class PublishedKernel:
    """One published table: S-values (mGy/(MBq*s)) for offsets 0..``radius_vox`` per axis.

    ``octant[i, j, k]`` holds every offset with 0 <= i, j, k <= radius (filled by symmetry
    from the i >= j >= k rows of the file).
    """

    nuclide: str
    voxel_mm: float
    radius_vox: int
    octant: np.ndarray
    citation: str = LANCONELLI2012_CITATION

    def value(self, i: int, j: int, k: int) -> float:
        """S-value at offset (i, j, k) in voxels (any signs, any order)."""
        a, b, c = (abs(int(x)) for x in (i, j, k))
        return float(self.octant[a, b, c])


@lru_cache(maxsize=1)
def _load() -> dict[tuple[str, float], dict[tuple[int, int, int], float]]:
    text = resources.files("lutarterial.dosimetry.data").joinpath(_DATA).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    out: dict[tuple[str, float], dict[tuple[int, int, int], float]] = {}
    for row in csv.DictReader(lines):
        key = (row["nuclide"], float(row["voxel_mm"]))
        out.setdefault(key, {})[(int(row["i"]), int(row["j"]), int(row["k"]))] = float(row["s_mgy_per_mbq_s"])
    return out


def lanconelli2012_sizes(nuclide: str) -> tuple[float, ...]:
    """Voxel sizes (mm) tabulated for ``nuclide`` (empty when the database has none shipped)."""
    name = get_nuclide(nuclide).name
    return tuple(sorted(v for n, v in _load() if n == name))


@lru_cache(maxsize=64)
def lanconelli2012_kernel(nuclide: str, voxel_mm: float) -> PublishedKernel:
    """The published table for ``nuclide`` at exactly the tabulated ``voxel_mm`` (KeyError if none)."""
    name = get_nuclide(nuclide).name
    rows = _load()[(name, float(voxel_mm))]
    r = max(max(o) for o in rows)
    octant = np.full((r + 1,) * 3, np.nan)
    for (i, j, k), s in rows.items():
        for p in {(i, j, k), (i, k, j), (j, i, k), (j, k, i), (k, i, j), (k, j, i)}:
            octant[p] = s
    if np.isnan(octant).any():
        raise ValueError(f"incomplete published table for {name} {voxel_mm} mm")  # a packaging defect
    octant.setflags(write=False)
    return PublishedKernel(name, float(voxel_mm), r, octant)


def match_lanconelli2012(nuclide: str, voxel_mm: float | Sequence[float],
                         tolerance: float = SIZE_TOLERANCE) -> float | None:
    """Tabulated size that every side of ``voxel_mm`` is within ``tolerance`` (relative) of, else None.

    Non-cubic voxels (sides differing by more than the tolerance) never match.
    """
    name = get_nuclide(nuclide).name
    sides = np.broadcast_to(np.asarray(voxel_mm, dtype=float), 3)
    if not np.all(np.isfinite(sides)) or np.any(sides <= 0):
        return None
    for size in lanconelli2012_sizes(name):
        if np.all(np.abs(sides / size - 1.0) <= tolerance):
            return size
    return None
