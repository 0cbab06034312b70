"""Column detection: separation from the autocorrelation, then peaks of a
Laplacian-of-Gaussian filtered image above a noise-based threshold."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from causalspy.exceptions import InvalidImageError, InvalidParameterError, NoColumnsFoundError

__all__ = [
    "estimate_separation",
    "estimate_noise",
    "columns_are_dark",
    "column_filter",
    "detect_columns",
]

#: Largest central crop used for global estimates (autocorrelation, noise).
_CROP = 1024


def _central_crop(image: np.ndarray, size: int = _CROP) -> np.ndarray:
    h, w = image.shape
    y0 = max(0, (h - size) // 2)
    x0 = max(0, (w - size) // 2)
    return np.asarray(image[y0 : y0 + size, x0 : x0 + size], dtype=np.float64)


def estimate_separation(image: np.ndarray, min_separation: float = 3.0) -> float:
    """Estimate the smallest column separation (px) from the image autocorrelation.

    Parameters
    ----------
    image : (M, N) array
        The image (a central crop of at most 1024x1024 px is used).
    min_separation : float
        Peaks of the autocorrelation closer than this to the origin are
        ignored (they belong to the column's own shape or to noise).

    Returns
    -------
    float
        Distance from the origin to the nearest significant autocorrelation
        peak, refined to sub-pixel precision with a parabola fit.

    Notes
    -----
    The autocorrelation :math:`C(\\mathbf{r}) = \\sum_\\mathbf{u} f(\\mathbf{u}) f(\\mathbf{u}+\\mathbf{r})`
    of a lattice of columns has peaks at every vector joining two columns,
    weighted by the product of their intensities. It is computed with
    zero padding (no wrap-around) and normalised by the overlap area. A peak
    counts when it reaches 10 % of the strongest non-central peak, so weak
    B columns next to bright A columns still set the separation.
    """
    crop = _central_crop(image)
    crop = crop - crop.mean()
    h, w = crop.shape
    fh, fw = 2 * h, 2 * w
    f = np.fft.rfft2(crop, s=(fh, fw))
    ac = np.fft.irfft2(np.abs(f) ** 2, s=(fh, fw))
    ones = np.fft.rfft2(np.ones_like(crop), s=(fh, fw))
    overlap = np.fft.irfft2(np.abs(ones) ** 2, s=(fh, fw))
    ac = np.fft.fftshift(ac / np.maximum(overlap, 1.0))
    cy, cx = fh // 2, fw // 2
    rmax = min(h, w) // 3
    ac = ac[cy - rmax : cy + rmax + 1, cx - rmax : cx + rmax + 1]
    if ac[rmax, rmax] <= 0:
        raise InvalidImageError("The image has no contrast to estimate a column separation from.")
    ac = ac / ac[rmax, rmax]
    peaks = peak_local_max(ac, min_distance=1, exclude_border=1)
    if len(peaks) == 0:
        raise NoColumnsFoundError(
            "No periodic column contrast found in the autocorrelation; give separation= (px)."
        )
    r = np.hypot(peaks[:, 0] - rmax, peaks[:, 1] - rmax)
    vals = ac[peaks[:, 0], peaks[:, 1]]
    keep = (r >= min_separation) & (vals > 0)
    if not keep.any():
        raise NoColumnsFoundError(
            "No periodic column contrast found in the autocorrelation; give separation= (px)."
        )
    peaks, r, vals = peaks[keep], r[keep], vals[keep]
    # a peak must also stand out against the autocorrelation's own noise floor
    strong = vals >= 0.1 * vals.max()
    peaks, r = peaks[strong], r[strong]
    i = int(np.argmin(r))
    py, px = peaks[i]
    # parabolic sub-pixel refinement along each axis
    def _parabola(a, b, c):
        den = a - 2 * b + c
        return 0.0 if den == 0 else 0.5 * (a - c) / den

    sy = _parabola(ac[py - 1, px], ac[py, px], ac[py + 1, px])
    sx = _parabola(ac[py, px - 1], ac[py, px], ac[py, px + 1])
    sep = float(np.hypot(py + sy - rmax, px + sx - rmax))
    if sep * 3 > min(image.shape):
        raise NoColumnsFoundError(
            f"The estimated column separation ({sep:.1f} px) is too large for a "
            f"{image.shape[0]}x{image.shape[1]} image: at least 3 spacings are needed."
        )
    return sep


def estimate_noise(image: np.ndarray) -> float:
    """Robust per-pixel noise standard deviation (MAD of a 4-neighbour residual).

    Smooth structure (columns wider than a pixel) cancels in the residual
    ``f - mean(4 neighbours)``; for white noise its std is ``1.118 sigma``.
    """
    crop = _central_crop(image)
    r = crop[1:-1, 1:-1] - 0.25 * (crop[:-2, 1:-1] + crop[2:, 1:-1] + crop[1:-1, :-2] + crop[1:-1, 2:])
    mad = np.median(np.abs(r - np.median(r)))
    sigma = 1.4826 * mad / 1.118
    if sigma <= 0:  # quantised or noise-free data: fall back to the residual's RMS
        sigma = float(np.sqrt(np.mean(r**2))) / 1.118
    return float(sigma)


def columns_are_dark(image: np.ndarray) -> bool:
    """Guess whether columns are dark on a bright background (ABF/BF).

    Bright columns on a dark background give a right-skewed intensity
    histogram (few bright pixels), dark columns a left-skewed one.
    """
    crop = ndi.gaussian_filter(_central_crop(image), 1.0)
    v = crop.ravel() - crop.mean()
    m3 = float(np.mean(v**3))
    return m3 < 0


def column_filter(image: np.ndarray, scale: float) -> np.ndarray:
    """Negative Laplacian of Gaussian, scale-normalised: peaks at column centres.

    Smooth background and the saddles between neighbouring columns give
    small or negative responses, so shoulders of bright columns are not
    mistaken for columns.
    """
    return -(scale**2) * ndi.gaussian_laplace(np.asarray(image, dtype=np.float64), scale)


def filter_noise_gain(scale: float) -> float:
    """Standard deviation of :func:`column_filter` applied to unit white noise."""
    n = int(np.ceil(6 * scale)) * 2 + 1
    delta = np.zeros((n, n))
    delta[n // 2, n // 2] = 1.0
    k = column_filter(delta, scale)
    return float(np.sqrt(np.sum(k**2)))


def detect_columns(
    image: np.ndarray,
    separation: float,
    *,
    scale: float | None = None,
    threshold: float | None = None,
    noise: float | None = None,
    nsigma: float = 6.0,
    min_distance: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find column candidates as local maxima of the column filter.

    Parameters
    ----------
    image : (M, N) array
        Image with bright columns (invert dark-column images first).
    separation : float
        Smallest column separation (px).
    scale : float, optional
        Filter scale (px); default ``separation / 5``, close to typical column widths.
    threshold : float, optional
        Minimal filter response, as a fraction of the 90th percentile of the
        responses of all maxima. Default: decided by noise only.
    noise : float, optional
        Per-pixel noise std. Estimated when not given.
    nsigma : float
        A candidate must exceed ``nsigma`` times the filtered noise.
    min_distance : float, optional
        Peaks closer than this (px) are merged; default ``0.45 * separation``.

    Returns
    -------
    peaks : (K, 2) int array
        ``(row, col)`` of each candidate, i.e. ``(y, x)``.
    response : (K,) array
        Filter response at each candidate.
    """
    if not np.isfinite(separation) or separation <= 0:
        raise InvalidParameterError(f"separation must be a positive number of pixels; got {separation}.")
    if separation < 2:
        raise InvalidParameterError(
            f"separation={separation:g} px is below 2 px: columns cannot be resolved. "
            "Give the column spacing in pixels (not in calibrated units)."
        )
    if separation * 2 > max(image.shape):
        raise InvalidParameterError(
            f"separation={separation:g} px is impossible for a {image.shape[0]}x{image.shape[1]} "
            "image (at least two spacings must fit). Give the spacing in pixels."
        )
    scale = float(scale) if scale else max(0.8, separation / 5.0)
    resp = column_filter(image, scale)
    md = max(1, int(np.floor(min_distance if min_distance else 0.45 * separation)))
    if noise is None:
        noise = estimate_noise(image)
    floor = nsigma * noise * filter_noise_gain(scale)
    peaks = peak_local_max(resp, min_distance=md, threshold_abs=max(floor, 1e-300), exclude_border=False)
    if len(peaks) == 0:
        return np.empty((0, 2), dtype=int), np.empty(0)
    vals = resp[peaks[:, 0], peaks[:, 1]]
    if threshold is not None:
        ref = np.percentile(vals, 90)
        keep = vals >= threshold * ref
        peaks, vals = peaks[keep], vals[keep]
    return peaks.astype(np.intp), vals
