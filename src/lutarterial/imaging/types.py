"""Image and VOI types: what a quantitative image is, and what a label map is.

Why separate types: an activity image (Bq/mL, SUV) resamples with interpolation and carries
units and timing; a label map carries names and kinds of volumes of interest (VOIs) and may
only ever be resampled with nearest neighbour. Mixing them up is a classic source of wrong
numbers, so they are different classes.

Geometry is always DICOM patient coordinates (LPS, millimetres). Arrays are indexed
``[k, j, i]`` (slice, row, column), so ``array.shape == (nz, ny, nx)``. The physical position
of voxel centre ``(i, j, k)`` is ``origin_mm + direction @ (spacing_mm * (i, j, k))``, where the
columns of ``direction`` are the unit vectors of the i, j and k axes.

VOIs may overlap (a liver segment usually contains its lesions), so a :class:`LabelMap` keeps
one boolean mask per VOI, cropped to its bounding box to save memory and time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from lutarterial.errors import InvalidInputError

__all__ = [
    "Geometry",
    "Quantity",
    "Image",
    "VoiKind",
    "VoiSpec",
    "VoiMask",
    "LabelMap",
    "PetTiming",
    "crop_mask",
]


@dataclass(frozen=True)
class Geometry:
    """Voxel grid in LPS patient coordinates (mm). ``shape`` is (nz, ny, nx)."""

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]  # (di, dj, dk) = (x-ish, y-ish, slice)
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]  # 3x3 row-major; columns are the i, j, k axis unit vectors

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(n) <= 0 for n in self.shape):
            raise InvalidInputError(f"image shape must be three positive sizes, got {self.shape}")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing_mm):
            raise InvalidInputError(f"voxel spacing must be positive, got {self.spacing_mm}")
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(d.T @ d, np.eye(3), atol=1e-3):
            raise InvalidInputError("image orientation is not orthonormal; cannot place voxels in space")

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def voxel_volume_ml(self) -> float:
        sx, sy, sz = self.spacing_mm
        return float(sx * sy * sz) / 1000.0

    def index_to_physical(self, ijk: np.ndarray) -> np.ndarray:
        """(N,3) continuous indices (i, j, k) -> (N,3) LPS mm."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=float))
        return np.asarray(self.origin_mm) + (ijk * np.asarray(self.spacing_mm)) @ self.direction_matrix.T

    def physical_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """(N,3) LPS mm -> (N,3) continuous indices (i, j, k)."""
        xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
        return ((xyz - np.asarray(self.origin_mm)) @ self.direction_matrix) / np.asarray(self.spacing_mm)

    def same_grid(self, other: Geometry, tol_mm: float = 1e-3) -> bool:
        return (
            tuple(self.shape) == tuple(other.shape)
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=tol_mm)
            and np.allclose(self.origin_mm, other.origin_mm, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-5)
        )

    def corners_mm(self) -> np.ndarray:
        """The 8 outer corners of the grid (voxel edges, not centres), LPS mm."""
        nz, ny, nx = self.shape
        lo, hi = -0.5, np.array([nx, ny, nz]) - 0.5
        pts = np.array([[a, b, c] for a in (lo, hi[0]) for b in (lo, hi[1]) for c in (lo, hi[2])])
        return self.index_to_physical(pts)


class Quantity(str, enum.Enum):
    """What the voxel values of an :class:`Image` mean."""

    BQML = "Bq/mL"  # activity concentration
    SUVBW = "SUVbw"  # body-weight SUV (g/mL) already in the pixels (Units GML)
    SUVBSA = "SUVbsa"  # body-surface-area SUV (cm2/mL) already in the pixels (Units CM2ML)
    CNTS = "counts"  # detector counts (SPECT before calibration)
    HU = "HU"
    OTHER = "other"


@dataclass(frozen=True)
class PetTiming:
    """Header facts needed to turn activity concentration into SUV (see :mod:`.suv`)."""

    injected_activity_bq: float | None
    injection_time: datetime | None
    scan_time: datetime | None  # the time the pixel values are decay-corrected to (or frame start)
    decay_correction: str  # START, ADMIN or NONE
    half_life_s: float | None
    weight_kg: float | None
    height_m: float | None = None
    sex: str | None = None  # "M" or "F"
    nuclide: str | None = None


@dataclass(frozen=True, eq=False)
class Image:
    """A scalar image (activity concentration, SUV, counts or HU) on a :class:`Geometry`."""

    array: np.ndarray
    geometry: Geometry
    quantity: Quantity
    modality: str = ""
    frame_of_reference_uid: str | None = None
    series_uid: str | None = None
    acquisition_time: datetime | None = None
    timing: PetTiming | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.array.ndim != 3 or tuple(self.array.shape) != tuple(self.geometry.shape):
            raise InvalidInputError(
                f"image array shape {self.array.shape} does not match its geometry {self.geometry.shape}"
            )
        if not isinstance(self.meta, MappingProxyType):
            object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


class VoiKind(str, enum.Enum):
    """What a VOI represents; drives healthy-liver and ratio computations."""

    LESION = "lesion"  # hepatic lesion (liver metastasis)
    EXTRAHEPATIC = "extrahepatic"
    LIVER = "liver"
    SPLEEN = "spleen"
    KIDNEY = "kidney"
    MARROW = "marrow"
    OTHER = "other"

    @classmethod
    def parse(cls, text: str) -> VoiKind:
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            allowed = ", ".join(k.value for k in cls)
            raise InvalidInputError(f"unknown VOI kind {text!r}; use one of: {allowed}") from None


@dataclass(frozen=True)
class VoiSpec:
    """Name, kind and (for lobar designs) liver lobe of one VOI; ``label`` is its source value."""

    label: int
    name: str
    kind: VoiKind
    lobe: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidInputError(f"VOI with label {self.label} has an empty name")


@dataclass(frozen=True, eq=False)
class VoiMask:
    """One VOI: its spec and a boolean mask cropped to ``bbox`` (slices into the full grid)."""

    spec: VoiSpec
    bbox: tuple[slice, slice, slice]
    mask: np.ndarray

    @property
    def n_voxels(self) -> int:
        return int(np.count_nonzero(self.mask))

    def full(self, shape: tuple[int, int, int]) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        out[self.bbox] = self.mask
        return out


@dataclass(frozen=True, eq=False)
class LabelMap:
    """VOIs on a grid. Resample only with nearest neighbour (see :func:`.io.resample_labels`)."""

    geometry: Geometry
    vois: tuple[VoiMask, ...]
    frame_of_reference_uid: str | None = None

    def __post_init__(self) -> None:
        names = [v.spec.name for v in self.vois]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise InvalidInputError(
                f"VOI names must be unique (they match lesions across studies); duplicated: {sorted(dup)}; "
                "give distinct names in the names file"
            )

    def by_name(self, name: str) -> VoiMask:
        for v in self.vois:
            if v.spec.name == name:
                return v
        raise InvalidInputError(f"no VOI named {name!r}; have {[v.spec.name for v in self.vois]}")

    @staticmethod
    def from_full_masks(
        geometry: Geometry, items: list[tuple[VoiSpec, np.ndarray]], frame_of_reference_uid: str | None = None
    ) -> LabelMap:
        """Build from full-size boolean masks, cropping each to its bounding box."""
        vois = []
        for spec, m in items:
            vois.append(crop_mask(spec, m))
        return LabelMap(geometry, tuple(vois), frame_of_reference_uid)


def crop_mask(spec: VoiSpec, full_mask: np.ndarray) -> VoiMask:
    """Crop a full-grid boolean mask to its bounding box (an empty mask keeps a 0-size box)."""
    m = np.asarray(full_mask, dtype=bool)
    idx = [np.flatnonzero(m.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(len(x) == 0 for x in idx):
        bbox = (slice(0, 0), slice(0, 0), slice(0, 0))
    else:
        bbox = tuple(slice(int(x[0]), int(x[-1]) + 1) for x in idx)  # type: ignore[assignment]
    return VoiMask(spec, bbox, m[bbox].copy())  # type: ignore[arg-type]

