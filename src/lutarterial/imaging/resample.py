"""Resampling between grids by physical (LPS) coordinates.

Label maps use nearest neighbour only: a voxel of the target grid takes the label of the source
voxel whose centre is closest to its own centre. Activity images are never resampled by this
package for quantification (metrics are computed on the native image grid).
"""

from __future__ import annotations

import numpy as np

from lutarterial.errors import InvalidInputError
from lutarterial.imaging.types import Geometry

__all__ = ["to_sitk", "resample_nearest", "grids_overlap"]


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
    import SimpleITK as sitk

    src = to_sitk(array.astype(np.int32 if array.dtype != np.uint8 else np.uint8), source)
    ref = sitk.Image([int(target.shape[2]), int(target.shape[1]), int(target.shape[0])], src.GetPixelID())
    ref.SetSpacing([float(s) for s in target.spacing_mm])
    ref.SetOrigin([float(o) for o in target.origin_mm])
    ref.SetDirection([float(d) for d in target.direction])
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, src.GetPixelID())
    return sitk.GetArrayFromImage(out)
