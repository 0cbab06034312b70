"""Column detection: separation from the autocorrelation and nearest
neighbours, then maxima of the smoothed image that stand out from their
local floor by more than the noise allows."""

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


def autocorrelation_period(image: np.ndarray, min_separation: float = 3.0) -> float:
    """Shortest strong period of the image (px), from its autocorrelation.

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
        Distance from the origin to the nearest strong autocorrelation
        peak, refined to sub-pixel precision with a parabola fit. This is the
        shortest lattice period; it can exceed the nearest-column distance
        (A-B in a perovskite, metal-chalcogen in a honeycomb), see
        :func:`estimate_separation`.

    Notes
    -----
    The autocorrelation :math:`C(\\mathbf{r}) = \\sum_\\mathbf{u} f(\\mathbf{u}) f(\\mathbf{u}+\\mathbf{r})`
    of a lattice of columns has peaks at every vector joining two columns,
    weighted by the product of their intensities. It is computed with
    zero padding (no wrap-around) and normalised by the overlap area. A peak
    counts when it reaches 10 % of the strongest non-central peak.
    """
    crop = _central_crop(image)
    # subtract the background level, not the mean: with the mean removed, a
    # weak column next to a bright one is a negative deviation and the vector
    # joining them gives a negative, invisible autocorrelation peak
    crop = crop - np.percentile(crop, 2)
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
    ac = ac - np.median(ac)  # remove the pedestal of the constant background
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


def _suppress_close(peaks: np.ndarray, strength: np.ndarray, distance: float) -> np.ndarray:
    """Greedy non-maximum suppression: keep a peak unless a stronger kept peak
    lies within ``distance`` (Euclidean). Vectorized over pairs; iterated to
    the greedy fixed point."""
    from scipy.spatial import cKDTree

    n = len(peaks)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    pairs = cKDTree(peaks.astype(float)).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0:
        return keep
    i, j = pairs[:, 0], pairs[:, 1]
    # orient each pair strong -> weak (ties broken by index)
    swap = (strength[j] > strength[i]) | ((strength[j] == strength[i]) & (j < i))
    strong = np.where(swap, j, i)
    weak = np.where(swap, i, j)
    for _ in range(100):
        suppressed = np.zeros(n, dtype=bool)
        suppressed[weak[keep[strong]]] = True
        new = ~suppressed
        if np.array_equal(new, keep):
            break
        keep = new
    return keep


def estimate_separation(image: np.ndarray) -> float:
    """Estimate the smallest column separation (px).

    Two steps: the autocorrelation gives the shortest lattice period ``d``;
    columns are then detected with a permissive minimum distance
    (``0.25 d``) and the median nearest-neighbour distance of the
    detected columns is the separation. The second step finds weak columns
    between bright ones (B sites of a perovskite, chalcogen sites of a
    honeycomb), whose autocorrelation peak is too weak to rely on.

    Parameters
    ----------
    image : (M, N) array
        Image with bright columns.

    Returns
    -------
    float
        Smallest column separation (px).
    """
    from scipy.spatial import cKDTree

    period = autocorrelation_period(image)
    crop = _central_crop(image)
    try:
        peaks, _ = detect_columns(crop, period, scale=max(0.8, period / 10.0),
                                  min_distance=0.25 * period)
    except InvalidParameterError:
        return period
    if len(peaks) < 8:
        return period
    d, _ = cKDTree(peaks.astype(float)).query(peaks.astype(float), k=2)
    nn = float(np.median(d[:, 1]))
    # accept only separations a lattice can have relative to its period
    if 0.5 * period <= nn <= 1.05 * period:
        return min(nn, period)
    return period


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

    Columns are sharp extrema and the space between them is a shallow valley
    (or ridge): compare the curvature of the smoothed image at its local
    maxima with that at its local minima. The sharper kind are the columns.
    This holds for dense lattices too, where the intensity histogram is
    nearly symmetric and its skewness says nothing.
    """
    crop = ndi.gaussian_filter(_central_crop(image), 1.5)
    lap = ndi.laplace(crop)
    maxima = peak_local_max(crop, min_distance=3, num_peaks=2000, exclude_border=2)
    minima = peak_local_max(-crop, min_distance=3, num_peaks=2000, exclude_border=2)
    if len(maxima) < 3 or len(minima) < 3:
        v = crop.ravel() - crop.mean()
        return float(np.mean(v**3)) < 0
    sharp_max = float(np.median(-lap[maxima[:, 0], maxima[:, 1]]))
    sharp_min = float(np.median(lap[minima[:, 0], minima[:, 1]]))
    return sharp_min > sharp_max


def column_filter(image: np.ndarray, scale: float) -> np.ndarray:
    """Gaussian smoothing at ``scale``: a matched filter for columns (maximum SNR)."""
    return ndi.gaussian_filter(np.asarray(image, dtype=np.float64), scale, mode="nearest")


def local_floor(smoothed: np.ndarray, separation: float) -> np.ndarray:
    """Local background of a smoothed image: a grey opening with a window about
    one separation wide (columns are narrower, so it follows the valleys
    between them), lightly smoothed. Square windows keep it O(pixels)."""
    size = max(3, int(round(separation)) | 1)
    opened = ndi.maximum_filter(ndi.minimum_filter(smoothed, size=size, mode="nearest"),
                                size=size, mode="nearest")
    return ndi.uniform_filter(opened, size=max(3, size // 2 | 1), mode="nearest")


def filter_noise_gain(scale: float) -> float:
    """Standard deviation of :func:`column_filter` applied to unit white noise."""
    return float(1.0 / (2.0 * np.sqrt(np.pi) * scale))


def check_separation(separation: float, shape: tuple[int, ...]) -> None:
    """Raise a clear error for a separation no column lattice in this image can have."""
    if not np.isfinite(separation) or separation <= 0:
        raise InvalidParameterError(f"separation must be a positive number of pixels; got {separation}.")
    if separation < 2:
        raise InvalidParameterError(
            f"separation={separation:g} px is below 2 px: columns cannot be resolved. "
            "Give the column spacing in pixels (not in calibrated units)."
        )
    if separation * 2 > max(shape):
        raise InvalidParameterError(
            f"separation={separation:g} px is impossible for a {shape[0]}x{shape[1]} "
            "image (at least two spacings must fit). Give the spacing in pixels."
        )


def detect_columns(
    image: np.ndarray,
    separation: float,
    *,
    scale: float | None = None,
    threshold: float | None = None,
    noise: float | None = None,
    nsigma: float = 6.0,
    min_distance: float | None = None,
    floor_size: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find column candidates as local maxima of the column filter.

    Parameters
    ----------
    image : (M, N) array
        Image with bright columns (invert dark-column images first).
    separation : float
        Smallest column separation (px).
    scale : float, optional
        Smoothing scale (px); default ``separation / 6``, close to typical
        column widths (a matched filter).
    threshold : float, optional
        Minimal prominence, as a fraction of the 90th percentile of the
        prominences of all maxima. Default: decided by noise only.
    noise : float or (M, N) array, optional
        Per-pixel noise std (a map where it varies, e.g. Poisson noise on
        bright columns). Estimated (one robust value) when not given.
    nsigma : float
        A candidate must exceed ``nsigma`` times the filtered noise.
    min_distance : float, optional
        Peaks closer than this (px) are merged; default ``0.45 * separation``.
    floor_size : float, optional
        Width (px) of the grey opening that gives the local floor; default
        ``separation``. A residual image (columns already fitted and
        subtracted) takes a wider one: see Notes.

    Returns
    -------
    peaks : (K, 2) int array
        ``(row, col)`` of each candidate, i.e. ``(y, x)``.
    prominence : (K,) array
        Height of each candidate above its local floor (smoothed image).

    Notes
    -----
    Candidates are local maxima of the Gaussian-smoothed image; each must
    stand ``nsigma`` filtered-noise standard deviations above the local
    floor (a grey opening one separation wide). Unlike a Laplacian of
    Gaussian, this has no negative side lobes, so a weak column next to
    bright ones (B sites, chalcogen sites) keeps its full contrast.

    Where columns are close-packed (a 1T dichalcogenide seen along [001]:
    metal and two single-atom chalcogen sites on one triangular lattice, a
    separation of 3.4 column widths) the floor one separation wide sits on
    the overlapping tails, almost at a weak column's peak. In a residual
    image most columns are gone and a floor several separations wide follows
    the true background, so missed weak columns stand out at full contrast.
    """
    check_separation(separation, image.shape)
    scale = float(scale) if scale else max(0.8, separation / 6.0)
    sm = column_filter(image, scale)
    prom = sm - local_floor(sm, float(floor_size) if floor_size else separation)
    md = max(1, int(np.floor(min_distance if min_distance else 0.45 * separation)))
    if noise is None:
        noise = estimate_noise(image)
    # noise may be a per-pixel map (e.g. Poisson noise is larger on bright columns)
    floor = nsigma * np.asarray(noise, dtype=np.float64) * filter_noise_gain(scale)
    # all local maxima (3x3), then the noise test, then a Euclidean minimum
    # distance: a square max-filter window of the full distance would let the
    # tails of bright neighbours hide a weak column
    peaks = peak_local_max(sm, min_distance=1, exclude_border=False)
    if len(peaks) == 0:
        return np.empty((0, 2), dtype=np.intp), np.empty(0)
    vals = prom[peaks[:, 0], peaks[:, 1]]
    fl = floor[peaks[:, 0], peaks[:, 1]] if floor.ndim == 2 else floor
    keep = vals > np.maximum(fl, 1e-300)
    peaks, vals = peaks[keep], vals[keep]
    keep = _suppress_close(peaks, sm[peaks[:, 0], peaks[:, 1]], md)
    peaks, vals = peaks[keep], vals[keep]
    if threshold is not None and len(vals):
        ref = np.percentile(vals, 90)
        keep = vals >= threshold * ref
        peaks, vals = peaks[keep], vals[keep]
    return peaks.astype(np.intp), vals
