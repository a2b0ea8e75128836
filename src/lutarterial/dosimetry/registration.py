"""Rigid registration of SPECT/CT time points on their CTs (SimpleITK; kept at the edge).

Each later CT is registered to the first CT with a 3-D Euler (rigid) transform maximising
Mattes mutual information; the same transform then resamples that time point's activity map
onto the first activity grid (linear interpolation, zero outside). Works on plain arrays plus
:class:`lutarterial.imaging.types.Geometry`-like objects (shape, spacing_mm, origin_mm, direction).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_sitk", "register_rigid_ct", "resample_to"]


def to_sitk(array: np.ndarray, geometry: Any) -> Any:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))  # array [k, j, i] -> index (i, j, k)
    img.SetSpacing(tuple(float(x) for x in geometry.spacing_mm))
    img.SetOrigin(tuple(float(x) for x in geometry.origin_mm))
    img.SetDirection(tuple(float(x) for x in geometry.direction))
    return img


def register_rigid_ct(fixed_ct: np.ndarray, fixed_geom: Any, moving_ct: np.ndarray, moving_geom: Any,
                      iterations: int = 200, seed: int = 1) -> Any:
    """Euler3D transform mapping fixed physical points to moving ones (Mattes MI, multi-resolution)."""
    import SimpleITK as sitk

    f = to_sitk(fixed_ct, fixed_geom)
    m = to_sitk(moving_ct, moving_geom)
    init = sitk.CenteredTransformInitializer(f, m, sitk.Euler3DTransform(),
                                             sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=iterations,
                                                 relaxationFactor=0.5)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    return reg.Execute(f, m)


def resample_to(array: np.ndarray, geometry: Any, reference_geometry: Any, transform: Any | None = None,
                nearest: bool = False, default: float = 0.0) -> np.ndarray:
    """Resample ``array`` onto ``reference_geometry`` (optionally through a rigid transform)."""
    import SimpleITK as sitk

    src = to_sitk(array, geometry)
    ref = sitk.Image([int(x) for x in reversed(reference_geometry.shape)], sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(x) for x in reference_geometry.spacing_mm))
    ref.SetOrigin(tuple(float(x) for x in reference_geometry.origin_mm))
    ref.SetDirection(tuple(float(x) for x in reference_geometry.direction))
    tx = transform if transform is not None else sitk.Transform()
    out = sitk.Resample(src, ref, tx, sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear, default)
    return sitk.GetArrayFromImage(out).astype(np.float64)
