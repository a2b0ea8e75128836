"""Nearest-neighbour label resampling: separable fast path agrees with SimpleITK; rotated grids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lutarterial.imaging.resample import (
    grids_overlap,
    nearest_index_maps,
    resample_mask_cropped,
    resample_nearest,
    to_sitk,
)
from lutarterial.imaging.types import Geometry

EYE = (1, 0, 0, 0, 1, 0, 0, 0, 1)


def sitk_nearest(arr, src, dst):
    import SimpleITK as sitk

    s = to_sitk(arr.astype(np.int32), src)
    ref = sitk.Image([dst.shape[2], dst.shape[1], dst.shape[0]], s.GetPixelID())
    ref.SetSpacing(dst.spacing_mm)
    ref.SetOrigin(dst.origin_mm)
    ref.SetDirection(dst.direction)
    return sitk.GetArrayFromImage(sitk.Resample(s, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.7, 3.3), st.floats(0.7, 3.3), st.floats(-7.3, 7.3), st.floats(-7.3, 7.3))
def test_separable_path_matches_simpleitk(seed, sx, sz, ox, oz):
    rng = np.random.default_rng(seed)
    src = Geometry((7, 8, 9), (1.3, 1.7, 2.1), (0.0, 0.0, 0.0), EYE)
    dst = Geometry((9, 6, 11), (sx, 1.5, sz), (ox + 0.0123, -1.01, oz + 0.0077), EYE)
    arr = rng.integers(0, 4, src.shape).astype(np.int32)
    assume(grids_overlap(dst, src))  # disjoint grids are refused (tested elsewhere), not resampled
    ours = resample_nearest(arr, src, dst)
    np.testing.assert_array_equal(ours, sitk_nearest(arr, src, dst))
    bb, m = resample_mask_cropped(arr == 2, src, dst)
    full = np.zeros(dst.shape, bool)
    full[bb] = m
    np.testing.assert_array_equal(full, ours == 2)


def test_rotated_target_uses_physical_coordinates():
    src = Geometry((4, 5, 6), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), EYE)
    # target axes: i along +y, j along -x, k along +z (90 degree rotation about z)
    d = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    dst = Geometry((4, 6, 5), (1.0, 1.0, 1.0), (5.0, 0.0, 0.0), tuple(d.ravel()))
    assert nearest_index_maps(src, dst) is None
    arr = np.arange(np.prod(src.shape)).reshape(src.shape).astype(np.int32)
    out = resample_nearest(arr, src, dst)
    for k, j, i in [(0, 0, 0), (1, 2, 3), (3, 5, 4)]:
        xyz = dst.index_to_physical(np.array([[i, j, k]]))[0]
        si, sj, sk = np.rint(src.physical_to_index(xyz)[0]).astype(int)
        assert out[k, j, i] == arr[sk, sj, si]


def test_same_grid_is_a_copy():
    g = Geometry((2, 3, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), EYE)
    a = np.ones(g.shape, np.int16)
    out = resample_nearest(a, g, g)
    assert out is not a and np.array_equal(out, a)
    with pytest.raises(Exception, match="does not match"):
        resample_nearest(np.ones((1, 1, 1), np.int16), g, g)
