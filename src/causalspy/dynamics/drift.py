"""Drift of an image series by sub-pixel phase correlation, and its correction."""

from __future__ import annotations

from typing import Literal

import numpy as np

from causalspy.exceptions import InvalidImageError, InvalidParameterError

__all__ = ["check_series", "correct_drift", "estimate_drift"]


def _frames(series):
    """The (n, y, x) array behind a series (numpy or dask) and whether it is lazy."""
    data = series.data if hasattr(series, "axes_manager") else series
    if isinstance(data, (list, tuple)):
        shapes = {np.shape(f) for f in data}
        if len(shapes) > 1:
            raise InvalidImageError(
                f"The frames have different shapes {sorted(shapes)}; crop or resample them to "
                "one shape first.")
        data = np.stack([np.asarray(f) for f in data])
    lazy = type(data).__module__.startswith("dask")
    return data, lazy


def check_series(series) -> None:
    """Raise a clear error unless ``series`` is a real (n >= 2, y, x) image series."""
    data, _ = _frames(series)
    if hasattr(series, "axes_manager"):
        am = series.axes_manager
        if am.signal_dimension != 2 or am.navigation_dimension != 1:
            raise InvalidImageError(
                f"An image series needs one time (navigation) axis and two image axes; this "
                f"signal has {am.navigation_dimension} navigation and {am.signal_dimension} "
                "signal axes. For a single image use find_atoms; for more navigation axes slice "
                "one series out first.")
    if np.ndim(data) != 3:
        raise InvalidImageError(f"An image series is a 3D array (time, y, x); got shape "
                                f"{tuple(np.shape(data))}.")
    if data.shape[0] < 2:
        raise InvalidImageError("The series has one frame; use find_atoms for a single image.")
    if np.dtype(data.dtype).kind == "c":
        raise InvalidImageError("The series is complex; pass intensities.")
    if min(data.shape[1:]) < 16:
        raise InvalidImageError(f"Frames of {data.shape[1]}x{data.shape[2]} px are too small.")


def _frame(data, k: int, lazy: bool) -> np.ndarray:
    f = data[k]
    if lazy:
        f = f.compute()
    f = np.asarray(f, np.float64)
    if not np.all(np.isfinite(f)):
        raise InvalidImageError(f"Frame {k} has NaN or inf pixels; fill or crop them first.")
    return f


def _window(ny: int, nx: int) -> np.ndarray:
    """A Hann window: keeps the frame edges from dominating the correlation."""
    return np.outer(np.hanning(ny), np.hanning(nx))


def _register(base: np.ndarray, cur: np.ndarray, win: np.ndarray, upsample: int,
              max_fraction: float, k: int) -> np.ndarray:
    """Shift ``(dx, dy)`` of ``cur`` relative to ``base`` (features at ``base + shift``)."""
    from skimage.registration import phase_cross_correlation

    ny, nx = base.shape
    (sy, sx), err, _ = phase_cross_correlation((base - base.mean()) * win,
                                               (cur - cur.mean()) * win,
                                               upsample_factor=upsample, normalization=None)
    # skimage returns the shift that registers cur onto base: features moved by -shift
    step = np.array([-sx, -sy])
    if abs(step[0]) > max_fraction * nx or abs(step[1]) > max_fraction * ny or err > 0.98:
        raise InvalidImageError(
            f"Frame {k} does not overlap its reference (shift {step.round(1)} px, "
            f"correlation error {err:.2f}): the drift is larger than the field of view or "
            "the frames are unrelated. Split the series there or crop to a common region.")
    return step


def estimate_drift(series, reference: Literal["previous", "first"] | int = "previous",
                   upsample: int = 50, max_fraction: float = 0.4) -> np.ndarray:
    """Shift of every frame relative to frame 0, by sub-pixel phase correlation.

    Uses :func:`skimage.registration.phase_cross_correlation` (upsampled
    DFT, ``1/upsample`` px). ``reference="previous"`` registers each frame
    to the one before and accumulates (robust when the sample changes
    slowly); ``"first"`` or an index registers every frame to that frame.
    Frames are read one at a time (lazy series stay out of memory).

    Parameters
    ----------
    series : AtomicSeries, (n, y, x) array or list of 2D frames
        At least two frames of one shape. Not modified.
    reference : {"previous", "first"} or int
        What each frame is registered to (see above).
    upsample : int
        Sub-pixel precision ``1 / upsample`` px.
    max_fraction : float
        Largest step accepted, as a fraction of the frame size.

    Returns
    -------
    ndarray
        ``(n_frames, 2)`` shifts ``(dx, dy)`` in px: a feature at ``(x, y)`` in
        frame 0 is at ``(x + dx, y + dy)`` in frame k.

    Raises
    ------
    InvalidImageError
        If a step is larger than ``max_fraction`` of the field of view or the
        frames do not correlate (drift larger than the field of view, or
        unrelated frames).
    """
    check_series(series)
    data, lazy = _frames(series)
    n = data.shape[0]
    ny, nx = data.shape[1:]
    if isinstance(reference, str) and reference not in ("previous", "first"):
        raise InvalidParameterError(f"reference must be 'previous', 'first' or a frame index, "
                                    f"not {reference!r}.")
    ref_idx = 0 if reference in ("previous", "first") else int(reference)
    if not 0 <= ref_idx < n:
        raise InvalidParameterError(f"reference frame {ref_idx} is outside 0..{n - 1}.")
    win = _window(ny, nx)
    shifts = np.zeros((n, 2))
    ref = _frame(data, ref_idx, lazy)
    prev = ref
    for k in range(n):   # one registration per frame: the loop is over frames, not atoms
        if k == ref_idx and reference != "previous":
            continue
        if reference == "previous" and k == 0:
            continue
        cur = _frame(data, k, lazy)
        step = _register(prev if reference == "previous" else ref, cur, win, upsample,
                         max_fraction, k)
        if reference == "previous":
            shifts[k] = shifts[k - 1] + step
            prev = cur
        else:
            shifts[k] = step
    if reference not in ("previous", "first"):
        shifts -= shifts[0]
    return shifts


def _shift_frame(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    from scipy.ndimage import fourier_shift

    f = np.fft.fft2(np.asarray(frame, np.float64))
    return np.real(np.fft.ifft2(fourier_shift(f, (-dy, -dx)))).astype(np.float32)


def correct_drift(series, shifts: np.ndarray):
    """A new series with every frame moved back onto frame 0 (input untouched).

    Sub-pixel Fourier shifts (periodic: what leaves one border re-enters at
    the other, so crop by the largest shift before analysing the borders);
    lazy series stay lazy (one Dask task per frame, memory bounded by a few
    frames).

    Parameters
    ----------
    series : AtomicSeries or (n, y, x) array
    shifts : ndarray
        ``(n_frames, 2)`` shifts ``(dx, dy)`` in px, as :func:`estimate_drift`
        returns them (frame ``k`` is moved by ``-shifts[k]``).

    Returns
    -------
    AtomicSeries (lazy if the input is) or ndarray
        With ``metadata.Processing.drift_px`` set.
    """
    check_series(series)
    data, lazy = _frames(series)
    shifts = np.asarray(shifts, float)
    if shifts.shape != (data.shape[0], 2):
        raise InvalidParameterError(f"shifts must have shape ({data.shape[0]}, 2), got "
                                    f"{shifts.shape}.")
    if not np.isfinite(shifts).all():
        raise InvalidParameterError("shifts must be finite numbers (px).")
    too_far = (np.abs(shifts[:, 0]) >= data.shape[2]) | (np.abs(shifts[:, 1]) >= data.shape[1])
    if too_far.any():
        raise InvalidImageError(
            f"Frame {int(np.argmax(too_far))} is shifted by more than the field of view "
            f"({data.shape[2]}x{data.shape[1]} px): nothing of frame 0 is left to align. Split "
            "the series where the drift jumps.")
    if lazy:
        import dask.array as da

        d = data.rechunk((1,) + data.shape[1:])

        def block(b, block_info=None):
            k = block_info[0]["chunk-location"][0]
            return _shift_frame(b[0], *shifts[k])[None]

        out = da.map_blocks(block, d, dtype=np.float32)
    else:
        out = np.stack([_shift_frame(data[k], *shifts[k]) for k in range(data.shape[0])])
    if hasattr(series, "_deepcopy_with_new_data"):
        s = series._deepcopy_with_new_data(out)
        s.metadata.set_item("Processing.drift_corrected", True)
        s.metadata.set_item("Processing.drift_px", shifts.tolist())
        return s
    return out
