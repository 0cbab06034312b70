"""Vectorized rendering of atomic columns as pixel-integrated 2D Gaussians.

Pixel convention used throughout :mod:`causalspy.data`: ``x`` is the column
index, ``y`` the row index, and the origin is the *centre* of pixel
``[0, 0]``. Pixel ``data[r, c]`` therefore covers ``c - 0.5 <= x < c + 0.5``
and ``r - 0.5 <= y < r + 0.5``, and the image spans
``[-0.5, width - 0.5] x [-0.5, height - 0.5]``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfc

from causalspy.exceptions import InvalidParameterError

__all__ = ["render_columns"]

#: Upper bound on the number of window pixels held in memory per batch.
_MAX_BATCH_ELEMENTS = 4_000_000


def _pixel_integrals(centre: np.ndarray, sigma: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Fraction of a 1D Gaussian that falls on each pixel.

    Parameters
    ----------
    centre : numpy.ndarray
        Gaussian centres, shape ``(n, 1)``.
    sigma : numpy.ndarray
        Gaussian widths, shape ``(n, 1)``.
    pixels : numpy.ndarray
        Integer pixel indices, shape ``(n, w)``.

    Returns
    -------
    numpy.ndarray
        ``Phi((k + 0.5 - c) / s) - Phi((k - 0.5 - c) / s)``, shape ``(n, w)``.
        Written with ``erfc`` on the side of the tail the pixel lies on so that
        tail pixels keep full relative precision.
    """
    scale = 1.0 / (math.sqrt(2.0) * sigma)
    lo = (pixels - 0.5 - centre) * scale
    hi = (pixels + 0.5 - centre) * scale
    right = (pixels - centre) >= 0
    a = np.where(right, lo, -hi)
    b = np.where(right, hi, -lo)
    return 0.5 * (erfc(a) - erfc(b))


def render_columns(
    shape: tuple[int, int],
    x: ArrayLike,
    y: ArrayLike,
    counts: ArrayLike,
    sigma: ArrayLike,
    background: float = 0.0,
    *,
    truncate: float = 6.0,
    batch_size: int = 20000,
) -> np.ndarray:
    """Render the noise-free expected image of a set of atomic columns.

    Each column is a circular 2D Gaussian integrated exactly over every pixel
    (product of error-function differences in x and y), so its total expected
    counts on an infinite detector equal ``counts``. All columns are rendered
    at once: each into a small square window with NumPy broadcasting, then
    accumulated into the image with :func:`numpy.bincount`, in batches that
    bound memory.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(height, width)`` in pixels.
    x, y : array_like
        Column centres in pixels (``x`` = column index, ``y`` = row index,
        origin at the centre of pixel ``[0, 0]``). Same length.
    counts : array_like
        Total expected counts of each column (scalar or one per column).
        Must be finite and non-negative; columns with zero counts are skipped.
    sigma : array_like
        Gaussian standard deviation in pixels (scalar or one per column).
    background : float
        Constant expected counts added to every pixel.
    truncate : float
        Window half-width in units of ``sigma``. The window always extends at
        least ``truncate * sigma`` from the centre on every side; the default
        ``6`` loses less than ``1e-8`` of each column's flux (``5`` loses
        about ``1e-6``).
    batch_size : int
        Largest number of columns rendered per batch (at most 20000; smaller
        batches are used automatically for wide windows).

    Returns
    -------
    numpy.ndarray
        Expected counts per pixel, ``float64``, of the given ``shape``.

    Raises
    ------
    InvalidParameterError
        On a bad shape, mismatched lengths, non-finite positions, negative
        counts or non-positive widths.

    Examples
    --------
    >>> img = render_columns((32, 32), [10.0], [20.0], [1000.0], 2.0)
    >>> tuple(int(i) for i in np.unravel_index(img.argmax(), img.shape))
    (20, 10)
    """
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"shape must be a pair of positive integers (height, width), got {shape!r}."
        ) from None
    if height < 1 or width < 1:
        raise InvalidParameterError(
            f"shape must be a pair of positive integers (height, width), got {shape!r}."
        )
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidParameterError(
            f"x and y must have the same length, got {x.size} and {y.size}."
        )
    n = x.size
    try:
        counts = np.broadcast_to(np.asarray(counts, dtype=np.float64).ravel(), (n,))
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64).ravel(), (n,))
    except ValueError:
        raise InvalidParameterError(
            f"counts and sigma must be scalars or have one value per column ({n} columns)."
        ) from None
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidParameterError("Column positions x and y must be finite numbers.")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InvalidParameterError("counts must be finite and >= 0 for every column.")
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise InvalidParameterError("sigma must be finite and > 0 (pixels) for every column.")
    if not math.isfinite(float(background)) or background < 0:
        raise InvalidParameterError(
            f"background must be a finite number >= 0 (counts/pixel), got {background!r}."
        )
    if not math.isfinite(float(truncate)) or truncate <= 0:
        raise InvalidParameterError(f"truncate must be > 0 (in sigmas), got {truncate!r}.")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise InvalidParameterError(f"batch_size must be >= 1, got {batch_size}.")
    batch_size = min(batch_size, 20000)

    image = np.zeros(height * width, dtype=np.float64)
    if n:
        # Nearest pixel of every centre and the window half-width it needs.
        cx = np.floor(x + 0.5).astype(np.int64)
        cy = np.floor(y + 0.5).astype(np.int64)
        half = np.ceil(truncate * sigma).astype(np.int64)
        keep = (
            (counts > 0)
            & (cx + half >= 0)
            & (cx - half <= width - 1)
            & (cy + half >= 0)
            & (cy - half <= height - 1)
        )
        # Sort by window size, then by position (row-major), so a batch holds
        # columns of similar sigma lying in a band of rows and only that band
        # of the image is touched.
        idx = np.flatnonzero(keep)
        idx = idx[np.lexsort((cx[idx], cy[idx], half[idx]))]
        start = 0
        while start < idx.size:
            r = int(half[idx[min(start + batch_size, idx.size) - 1]])
            w = 2 * r + 1
            step = max(1, min(batch_size, _MAX_BATCH_ELEMENTS // (w * w)))
            sel = idx[start : start + step]
            r = int(half[sel].max())
            offsets = np.arange(-r, r + 1, dtype=np.int64)
            px = cx[sel, None] + offsets  # (n, w)
            py = cy[sel, None] + offsets
            s = sigma[sel, None]
            ex = _pixel_integrals(x[sel, None], s, px)
            ey = _pixel_integrals(y[sel, None], s, py)
            # Each column keeps its own window (independent of batching).
            outside = np.abs(offsets) > half[sel, None]
            ex[outside | (px < 0) | (px >= width)] = 0.0
            ey[outside | (py < 0) | (py >= height)] = 0.0
            np.clip(px, 0, width - 1, out=px)
            np.clip(py, 0, height - 1, out=py)
            weights = (counts[sel, None, None] * ey[:, :, None]) * ex[:, None, :]
            flat = (py[:, :, None] * width + px[:, None, :]).ravel()
            lo = int(flat.min())
            hi = int(flat.max()) + 1
            image[lo:hi] += np.bincount(flat - lo, weights=weights.ravel(), minlength=hi - lo)
            start += sel.size
    image = image.reshape(height, width)
    if background:
        image += float(background)
    return image
