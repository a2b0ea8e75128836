"""Voxel-level absorbed dose: FFT convolution of a TIA map with a dose-voxel kernel.

Pure numpy/scipy on arrays plus a voxel size, so any reader (DICOM, NIfTI) can feed it.
Arrays are indexed (x, y, z) or (z, y, x) consistently with ``voxel_mm`` given in the same
axis order. TIA maps are in MBq*h per voxel; doses in Gy.

Why FFT: direct convolution costs N x K (volume x kernel voxels), FFT costs O(N log N) and is
independent of the kernel radius. The volume is zero-padded by the kernel radius (linear, not
circular, convolution) to sizes from ``scipy.fft.next_fast_len``; real transforms (rfftn) and
all cores (workers=-1) are used; the kernel transform is cached per (kernel, shape).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lutarterial.dosimetry.kernels import SOFT_TISSUE_DENSITY_G_CM3, DoseKernel, dose_voxel_kernel
from lutarterial.dosimetry.kinetics import LN2
from lutarterial.dosimetry.nuclides import MEV_TO_J, get_nuclide
from lutarterial.errors import InvalidInputError

__all__ = [
    "convolve_fft",
    "dose_from_tia_kernel",
    "dose_local_deposition",
    "density_from_hu",
    "density_correct",
    "tia_map_from_timepoints",
    "tia_map_from_voi_fits",
]

_KERNEL_FFT_CACHE: dict[tuple[object, tuple[int, ...]], np.ndarray] = {}


def _check_map(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 3:
        raise InvalidInputError(f"{name} must be a 3-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    return a


def convolve_fft(volume: np.ndarray, kernel: np.ndarray, workers: int = -1, cache_key: object | None = None) -> np.ndarray:
    """Linear 3-D convolution ``volume * kernel`` (kernel odd-sized, centred), same shape as volume.

    ``cache_key`` (hashable, must identify the kernel's values) keeps the kernel transform.
    """
    from scipy import fft

    vol = np.asarray(volume, dtype=np.float64)
    ker = np.asarray(kernel, dtype=np.float64)
    if any(s % 2 == 0 for s in ker.shape):
        raise InvalidInputError("kernel sides must be odd (centred kernel)")
    rad = [s // 2 for s in ker.shape]
    shape = tuple(fft.next_fast_len(n + r, real=True) for n, r in zip(vol.shape, rad, strict=True))
    key = (cache_key, shape) if cache_key is not None else None
    kf = _KERNEL_FFT_CACHE.get(key) if key is not None else None  # type: ignore[arg-type]
    if kf is None:
        kp = np.zeros(shape)
        kp[tuple(slice(0, s) for s in ker.shape)] = ker
        kp = np.roll(kp, [-r for r in rad], axis=(0, 1, 2))  # centre at index 0 (wraps into the padding)
        kf = fft.rfftn(kp, workers=workers)
        if key is not None:
            if len(_KERNEL_FFT_CACHE) > 4:
                _KERNEL_FFT_CACHE.clear()
            _KERNEL_FFT_CACHE[key] = kf  # type: ignore[index]
    vf = fft.rfftn(vol, s=shape, workers=workers)
    vf *= kf
    out = fft.irfftn(vf, s=shape, workers=workers)
    return out[: vol.shape[0], : vol.shape[1], : vol.shape[2]]


def dose_from_tia_kernel(tia_mbq_h: np.ndarray, voxel_mm: float | Sequence[float], nuclide: str = "Lu-177",
                         kernel: DoseKernel | None = None, radius_mm: float | None = None,
                         include_photons: bool = True, kernel_source: str = "auto") -> np.ndarray:
    """Absorbed dose (Gy) by dose-voxel-kernel convolution of a TIA map (MBq*h per voxel).

    Dose in soft tissue of density 1.04 g/cm3; apply :func:`density_correct` for CT-based mass.
    Without ``kernel``, the kernel comes from :func:`dose_voxel_kernel` with ``source=kernel_source``
    (default "auto": the published Lanconelli 2012 table where it covers the voxel size).
    """
    tia = _check_map(tia_mbq_h, "TIA map")
    if np.any(tia < 0):
        raise InvalidInputError("TIA map has negative voxels; clip or fix the activity images first")
    k = kernel or dose_voxel_kernel(nuclide, tuple(np.broadcast_to(np.asarray(voxel_mm, float), 3)),  # type: ignore[arg-type]
                                    radius_mm=radius_mm, include_photons=include_photons, source=kernel_source)
    if not np.allclose(k.voxel_mm, np.broadcast_to(np.asarray(voxel_mm, float), 3), rtol=1e-4):
        raise InvalidInputError(f"kernel voxel size {k.voxel_mm} differs from the image voxel size {voxel_mm}")
    key = (k.nuclide, k.voxel_mm, k.radius_vox, k.density_g_cm3, k.include_photons, k.source_id,
           float(k.values_mgy_per_mbq_s.sum()))
    mgy = convolve_fft(tia * 3600.0, k.values_mgy_per_mbq_s, cache_key=key)
    dose = mgy * 1e-3
    dose[dose < 0] = 0.0  # FFT round-off below ~1e-12 of the maximum
    return dose


def dose_local_deposition(tia_mbq_h: np.ndarray, voxel_mm: float | Sequence[float], nuclide: str = "Lu-177",
                          density_g_cm3: float | np.ndarray = SOFT_TISSUE_DENSITY_G_CM3,
                          include_photons: bool = False) -> np.ndarray:
    """Dose (Gy) when all electron energy (optionally also photon energy) stays in the emitting voxel."""
    tia = _check_map(tia_mbq_h, "TIA map")
    nuc = get_nuclide(nuclide)
    v_mm3 = float(np.prod(np.broadcast_to(np.asarray(voxel_mm, float), 3)))
    energy = nuc.electron_mean_mev_per_decay + (nuc.photon_mean_mev_per_decay if include_photons else 0.0)
    mass_kg = np.asarray(density_g_cm3, float) * v_mm3 * 1e-6
    return tia * 3600.0 * 1e6 * energy * MEV_TO_J / mass_kg


def density_from_hu(hu: np.ndarray, bone_slope: float = 0.000592) -> np.ndarray:
    """Mass density (g/cm3) from CT numbers by a bilinear calibration.

    rho = 1 + HU/1000 for HU <= 0 (air-water line); rho = 1 + bone_slope x HU above 0 (water-bone
    line; default slope from a cortical bone of 1.92 g/cm3 at ~1550 HU). Scanner-specific
    calibrations should replace the default. Clipped to [0.001, 3.0].
    """
    h = np.asarray(hu, dtype=float)
    rho = np.where(h <= 0, 1.0 + h / 1000.0, 1.0 + bone_slope * h)
    return np.clip(rho, 0.001, 3.0)


def density_correct(dose_gy: np.ndarray, density_g_cm3: np.ndarray, kernel_density_g_cm3: float = SOFT_TISSUE_DENSITY_G_CM3,
                    min_density_g_cm3: float = 0.05) -> np.ndarray:
    """Rescale soft-tissue kernel dose to each voxel's mass: D x rho_kernel / rho_voxel.

    The usual first-order heterogeneity correction for kernel convolution (energy absorbed is
    taken from the homogeneous kernel, the mass from CT). Densities below ``min_density`` (air)
    are clamped so that dose outside the body does not blow up.
    """
    d = _check_map(dose_gy, "dose map")
    rho = np.maximum(np.asarray(density_g_cm3, float), min_density_g_cm3)
    if rho.shape != d.shape:
        raise InvalidInputError(f"density map shape {rho.shape} differs from dose map {d.shape}")
    return d * kernel_density_g_cm3 / rho


def tia_map_from_timepoints(activity_bq_ml: Sequence[np.ndarray], time_h: Sequence[float], voxel_mm: float | Sequence[float],
                            physical_half_life_h: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Voxel TIA (MBq*h per voxel) from registered activity-concentration maps (Bq/mL).

    Per voxel: trapezoid from (0, 0) through the time points, then a mono-exponential tail
    fitted to the last two points, falling back to physical decay when the voxel does not
    clear (rate below physical) or has no activity. Vectorised; no per-voxel curve fits, which
    would be unstable on noisy SPECT voxels.
    """
    if len(activity_bq_ml) != len(time_h) or len(time_h) == 0:
        raise InvalidInputError("need one activity map per time point")
    t = np.asarray(time_h, float)
    if np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise InvalidInputError("time points must be > 0 h and strictly increasing")
    maps = [_check_map(m, f"activity map {i}") for i, m in enumerate(activity_bq_ml)]
    if any(m.shape != maps[0].shape for m in maps):
        raise InvalidInputError("activity maps of different shapes: register/resample them first")
    v_ml = float(np.prod(np.broadcast_to(np.asarray(voxel_mm, float), 3))) * 1e-3
    a = np.stack([np.clip(m, 0, None) for m in maps]).astype(np.float64) * v_ml * 1e-6  # MBq per voxel
    lam_phys = LN2 / physical_half_life_h
    tt = np.concatenate([[0.0], t])
    area = 0.5 * a[0] * t[0]
    for i in range(1, len(t)):
        area += 0.5 * (a[i] + a[i - 1]) * (tt[i + 1] - tt[i])
    last = a[-1]
    if len(t) >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.log(a[-2] / a[-1]) / (t[-1] - t[-2])
        lam = np.where(np.isfinite(lam) & (lam > lam_phys), lam, lam_phys)
    else:
        lam = np.full(last.shape, lam_phys)
    tia = area + last / lam
    if mask is not None:
        tia = np.where(mask, tia, 0.0)
    return tia


def tia_map_from_voi_fits(activity_bq_ml: Sequence[np.ndarray], time_h: Sequence[float], voxel_mm: float | Sequence[float],
                          masks: Mapping[str, np.ndarray], physical_half_life_h: float,
                          model: str = "auto") -> tuple[np.ndarray, dict[str, object]]:
    """Voxel TIA map whose VOI totals equal the TIA of the fitted VOI time-activity curves.

    Voxel noise makes per-voxel fits unstable, so the kinetics are fitted on each VOI's total
    activity (:func:`lutarterial.dosimetry.kinetics.fit_tac`) and distributed over its voxels in
    proportion to their summed activity over the time points:
    TIA_vox = TIA_VOI x sum_i A_vox(t_i) / sum_i A_VOI(t_i). Voxels outside every VOI keep the
    voxel trapezoid + tail of :func:`tia_map_from_timepoints`. Overlapping VOIs: smaller VOIs
    (lesions inside the liver) are applied last and win. Returns (map, {voi: FitResult or error}).
    """
    from lutarterial.dosimetry.kinetics import fit_tac, tia_trapezoid_physical_tail

    base = tia_map_from_timepoints(activity_bq_ml, time_h, voxel_mm, physical_half_life_h)
    v_ml = float(np.prod(np.broadcast_to(np.asarray(voxel_mm, float), 3))) * 1e-3
    stack = np.stack([np.clip(np.asarray(m, float), 0, None) for m in activity_bq_ml]) * v_ml * 1e-6  # MBq
    fits: dict[str, object] = {}
    order = sorted(masks.items(), key=lambda kv: -int(np.count_nonzero(kv[1])))
    for name, mask in order:
        m = np.asarray(mask, bool)
        if m.shape != base.shape:
            raise InvalidInputError(f"VOI {name}: mask shape {m.shape} differs from image {base.shape}")
        if not m.any():
            raise InvalidInputError(f"VOI {name} is empty")
        tac = stack[:, m].sum(axis=1)
        try:
            fit = (fit_tac(time_h, tac, model, physical_half_life_h=physical_half_life_h) if len(time_h) >= 3
                   else tia_trapezoid_physical_tail(time_h, tac, physical_half_life_h))
        except InvalidInputError as exc:
            fits[name] = str(exc)
            continue
        fits[name] = fit
        weights = stack[:, m].sum(axis=0)
        total = float(weights.sum())
        if total > 0 and fit.tia_mbq_h > 0:
            base[m] = fit.tia_mbq_h * weights / total
    return base, fits
