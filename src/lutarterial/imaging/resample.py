"""Resampling between grids by physical (LPS) coordinates.

Label maps use nearest neighbour only: a voxel of the target grid takes the label of the source
voxel whose centre is closest to its own centre. Activity images are never resampled by this
package for quantification (metrics are computed on the native image grid).
"""

from __future__ import annotations

import numpy as np

from lutarterial.errors import InvalidInputError
from lutarterial.imaging.types import Geometry

__all__ = ["to_sitk", "resample_nearest", "resample_mask_cropped", "grids_overlap", "nearest_index_maps"]


def to_sitk(array: np.ndarray, geometry: Geometry):  # type: ignore[no-untyped-def]
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    img.SetOrigin([float(o) for o in geometry.origin_mm])
    img.SetDirection([float(d) for d in geometry.direction])
    return img


def grids_overlap(a: Geometry, b: Geometry) -> bool:
    """Whether the physical boxes of two grids intersect (tested in a's index space)."""
    idx = a.physical_to_index(b.corners_mm())
    nz, ny, nx = a.shape
    lo = idx.min(axis=0)
    hi = idx.max(axis=0)
    upper = np.array([nx, ny, nz]) - 0.5
    return bool(np.all(hi >= -0.5) and np.all(lo <= upper))


def resample_nearest(array: np.ndarray, source: Geometry, target: Geometry) -> np.ndarray:
    """Nearest-neighbour resampling of an integer array from ``source`` to ``target`` grid."""
    if tuple(array.shape) != tuple(source.shape):
        raise InvalidInputError("label array does not match its geometry")
    if source.same_grid(target):
        return array.copy()
    if not grids_overlap(target, source):
        raise InvalidInputError(
            "the label map and the image do not overlap in patient space (check that they belong "
            "to the same patient/study and that the NIfTI orientation is right)"
        )
    maps = nearest_index_maps(source, target)
    if maps is not None:  # same axes: nearest neighbour is separable per axis (fast, exact)
        kk, jj, ii = maps
        out = np.zeros(target.shape, dtype=array.dtype)
        vk, vj, vi = ((m >= 0) & (m < n) for m, n in zip(maps, array.shape, strict=True))
        if vk.any() and vj.any() and vi.any():
            out[np.ix_(vk, vj, vi)] = array[np.ix_(kk[vk], jj[vj], ii[vi])]
        return out
    import SimpleITK as sitk

    src = to_sitk(array.astype(np.int32 if array.dtype != np.uint8 else np.uint8), source)
    ref = sitk.Image([int(target.shape[2]), int(target.shape[1]), int(target.shape[0])], src.GetPixelID())
    ref.SetSpacing([float(s) for s in target.spacing_mm])
    ref.SetOrigin([float(o) for o in target.origin_mm])
    ref.SetDirection([float(d) for d in target.direction])
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, src.GetPixelID())
    return sitk.GetArrayFromImage(out)


def nearest_index_maps(source: Geometry, target: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per-axis nearest source index of every target index (k, j, i), when both grids share axes.

    Returns None when the orientations differ (then a general resampler is needed).
    """
    if not np.allclose(source.direction, target.direction, atol=1e-6):
        return None
    d = target.direction_matrix
    off = (np.asarray(target.origin_mm) - np.asarray(source.origin_mm)) @ d  # mm along each axis
    maps = []
    for a in range(3):  # i, j, k
        n_t = target.shape[2 - a]
        pos = off[a] + np.arange(n_t) * target.spacing_mm[a]
        maps.append(np.floor(pos / source.spacing_mm[a] + 0.5 + 1e-9).astype(np.int64))
    return maps[2], maps[1], maps[0]


def resample_mask_cropped(
    mask: np.ndarray, source: Geometry, target: Geometry
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Nearest-neighbour resampling of a boolean mask, returned cropped: (bbox on target, mask)."""
    maps = nearest_index_maps(source, target)
    if maps is None:
        full = resample_nearest(mask.astype(np.uint8), source, target).astype(bool)
        idx = np.argwhere(full)
        if idx.size == 0:
            return (slice(0, 0),) * 3, np.zeros((0, 0, 0), bool)  # type: ignore[return-value]
        lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
        bb = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        return bb, full[bb]  # type: ignore[return-value]
    src_idx = [np.flatnonzero(mask.any(axis=tuple(x for x in range(3) if x != ax))) for ax in range(3)]
    if any(len(s) == 0 for s in src_idx):
        return (slice(0, 0),) * 3, np.zeros((0, 0, 0), bool)  # type: ignore[return-value]
    sel = []
    bb = []
    for m, s in zip(maps, src_idx, strict=True):
        t = np.flatnonzero((m >= s[0]) & (m <= s[-1]))
        if len(t) == 0:
            return (slice(0, 0),) * 3, np.zeros((0, 0, 0), bool)  # type: ignore[return-value]
        bb.append(slice(int(t[0]), int(t[-1]) + 1))
        sel.append(m[t[0]:t[-1] + 1])
    return tuple(bb), mask[np.ix_(*sel)]  # type: ignore[return-value]
