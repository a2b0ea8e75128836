"""SUVpeak: the highest mean in a 1 cm^3 sphere whose centre lies in the VOI.

Definition (IBSI reference manual, "global intensity peak", 3.2.1; PERCIST 1.0, Wahl et al.,
J Nucl Med 2009;50:122S-150S): a sphere of 1 cm^3 (radius (3/(4 pi))^(1/3) cm = 6.2035 mm)
is centred on each voxel of the VOI; the mean of the image voxels whose centres fall inside
the sphere (voxels outside the VOI included, outside the image excluded) is computed; the
peak is the largest of these means.

Implementation: the sphere-sum is a correlation of the VOI bounding box (expanded by the
kernel radius) with the spherical kernel, done by real FFT (``scipy.fft`` with ``next_fast_len``),
so the cost is that of a few FFTs of the box, independent of the kernel size.

Background VOIs (issue 10): the IBSI definition lets the sphere take in voxels outside the VOI.
For a reference region such as healthy liver (liver minus lesions) that would let the peak
sample the very lesions the region excludes (healthy-liver SUVpeak 13.4 > its SUVmax 7.0).
:func:`peak_mean_within` therefore only accepts sphere centres whose whole sphere lies inside
the region (the PERCIST way of placing a liver reference sphere), falling back, when no such
centre exists (a region thinner than the sphere), to the mean over sphere ∩ region. Either
way no excluded voxel is sampled, so the peak never exceeds the region's maximum.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PEAK_SPHERE_RADIUS_MM", "sphere_kernel", "peak_mean", "peak_mean_within"]

PEAK_SPHERE_RADIUS_MM = (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0) * 10.0  # 6.2035 mm -> 1 cm^3


def sphere_kernel(spacing_mm: tuple[float, float, float], radius_mm: float = PEAK_SPHERE_RADIUS_MM) -> np.ndarray:
    """Boolean kernel [k, j, i] of voxels whose centres are within ``radius_mm`` of the centre."""
    sx, sy, sz = spacing_mm
    hx, hy, hz = (int(math.floor(radius_mm / s + 1e-9)) for s in (sx, sy, sz))
    z, y, x = np.meshgrid(np.arange(-hz, hz + 1) * sz, np.arange(-hy, hy + 1) * sy, np.arange(-hx, hx + 1) * sx,
                          indexing="ij")
    return (x**2 + y**2 + z**2) <= radius_mm**2 * (1 + 1e-9)


def _correlate_fft(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same'-size correlation of ``a`` with a symmetric kernel via real FFT."""
    from scipy import fft

    shape = [n + k - 1 for n, k in zip(a.shape, kernel.shape, strict=True)]
    fshape = [fft.next_fast_len(s, real=True) for s in shape]
    fa = fft.rfftn(a, fshape, workers=-1)
    fk = fft.rfftn(kernel.astype(a.dtype), fshape, workers=-1)
    full = fft.irfftn(fa * fk, fshape, workers=-1)
    start = [(k - 1) // 2 for k in kernel.shape]
    sl = tuple(slice(s, s + n) for s, n in zip(start, a.shape, strict=True))
    return full[sl]


def peak_mean(
    image: np.ndarray, bbox: tuple[slice, slice, slice], mask: np.ndarray, kernel: np.ndarray
) -> tuple[float, tuple[int, int, int]]:
    """Peak value and the (k, j, i) index of the sphere centre, for the VOI ``mask`` at ``bbox``."""
    if not mask.any():
        raise ValueError("empty mask")
    h = [k // 2 for k in kernel.shape]
    lo = [max(0, s.start - hh) for s, hh in zip(bbox, h, strict=True)]
    hi = [min(n, s.stop + hh) for s, hh, n in zip(bbox, h, image.shape, strict=True)]
    box = image[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float64)
    clipped = any(s.start - hh < 0 or s.stop + hh > n for s, hh, n in zip(bbox, h, image.shape, strict=True))
    # Cheap exact path for small kernels (few voxels): sum of shifted views.
    ksum = _correlate_fft(box, kernel) if kernel.sum() > 27 and box.size > 4096 else _shift_sum(box, kernel)
    if clipped:
        ones = np.ones_like(box)
        count = _correlate_fft(ones, kernel) if kernel.sum() > 27 and box.size > 4096 else _shift_sum(ones, kernel)
    else:
        count = np.full(box.shape, float(kernel.sum()))
    off = [s.start - l for s, l in zip(bbox, lo, strict=True)]
    inner = tuple(slice(o, o + m) for o, m in zip(off, mask.shape, strict=True))
    means = ksum[inner] / np.maximum(count[inner], 1.0)
    means = np.where(mask, means, -np.inf)
    flat = int(np.argmax(means))
    idx = np.unravel_index(flat, mask.shape)
    centre = tuple(int(i + s.start) for i, s in zip(idx, bbox, strict=True))
    return float(means.flat[flat]), centre  # type: ignore[return-value]


def _shift_sum(box: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = np.zeros_like(box)
    h = [k // 2 for k in kernel.shape]
    for dz, dy, dx in np.argwhere(kernel):
        oz, oy, ox = dz - h[0], dy - h[1], dx - h[2]
        src = tuple(slice(max(0, o), n + min(0, o)) for o, n in zip((oz, oy, ox), box.shape, strict=True))
        dst = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip((oz, oy, ox), box.shape, strict=True))
        out[dst] += box[src]
    return out


def peak_mean_within(
    image: np.ndarray, bbox: tuple[slice, slice, slice], mask: np.ndarray, kernel: np.ndarray
) -> tuple[float, tuple[int, int, int], bool]:
    """Peak of a background region that never samples voxels outside ``mask``.

    Returns (peak, (k, j, i) centre, whole_sphere): ``whole_sphere`` is True when the peak comes
    from a sphere lying entirely inside the region, False for the fallback (mean over the part of
    the sphere inside the region, used only when no whole sphere fits).
    """
    if not mask.any():
        raise ValueError("empty mask")
    h = [k // 2 for k in kernel.shape]
    box = image[bbox].astype(np.float64)
    m = mask.astype(np.float64)
    pad = [(hh, hh) for hh in h]
    vals = np.pad(np.where(mask, box, 0.0), pad)
    inside = np.pad(m, pad)
    big = kernel.sum() > 27 and vals.size > 4096
    corr = _correlate_fft if big else _shift_sum
    ssum = corr(vals, kernel)
    cnt = np.rint(corr(inside, kernel))
    inner = tuple(slice(hh, hh + n) for hh, n in zip(h, mask.shape, strict=True))
    ssum, cnt = ssum[inner], cnt[inner]
    full = mask & (cnt >= kernel.sum())
    use = full if full.any() else mask
    means = np.where(use, ssum / np.maximum(cnt, 1.0), -np.inf)
    flat = int(np.argmax(means))
    idx = np.unravel_index(flat, mask.shape)
    centre = tuple(int(i + s.start) for i, s in zip(idx, bbox, strict=True))
    # never above the region's own maximum (guards FFT round-off)
    peak = min(float(means.flat[flat]), float(box[mask].max()))
    return peak, centre, bool(full.any())  # type: ignore[return-value]
