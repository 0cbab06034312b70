"""Turn what the user gave (HyperSpy signal, array) into a checked 2D float image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causalspy.exceptions import InvalidImageError

__all__ = ["ImageInput", "as_image_input", "check_image"]

#: Smallest usable image side, in pixels.
MIN_SIDE = 8


@dataclass
class ImageInput:
    """A 2D image plus what we need to know about where it came from.

    ``data`` is either a NumPy array (a float64 *copy*, never the caller's
    buffer) or a Dask array (lazy signals); calibration maps pixel
    coordinates to physical ones: ``x_cal = x_offset + x_scale * x``.
    """

    data: Any
    x_scale: float = 1.0
    y_scale: float = 1.0
    x_offset: float = 0.0
    y_offset: float = 0.0
    x_units: str = "px"
    y_units: str = "px"
    lazy: bool = False
    source: dict = field(default_factory=dict)

    @property
    def calibration(self) -> dict:
        return {
            "x_scale": float(self.x_scale),
            "y_scale": float(self.y_scale),
            "x_offset": float(self.x_offset),
            "y_offset": float(self.y_offset),
            "x_units": str(self.x_units),
            "y_units": str(self.y_units),
        }


def _units(axis) -> str:
    u = getattr(axis, "units", None)
    if u is None or str(u) in ("", "<undefined>", "undefined"):
        return "px"
    return str(u)


def as_image_input(image) -> ImageInput:
    """Read a HyperSpy signal or an array into an :class:`ImageInput`.

    Raises
    ------
    InvalidImageError
        Wrong dimensionality, complex or non-numeric data.
    """
    try:  # HyperSpy signal?
        from hyperspy.signal import BaseSignal
    except Exception:  # pragma: no cover - hyperspy is a hard dependency
        BaseSignal = ()  # noqa: N806
    if isinstance(image, BaseSignal):
        s = image
        nav = s.axes_manager.navigation_dimension
        sig = s.axes_manager.signal_dimension
        if sig != 2 or nav != 0:
            shape = s.axes_manager.shape
            hint = ""
            if sig == 2 and nav > 0:
                hint = (
                    f" It has {nav} navigation dimension(s) (shape {shape}): pick one frame, "
                    "e.g. s.inav[0].find_atoms(), or loop over frames."
                )
            elif sig != 2 and s.data.ndim == 2:
                hint = " Convert it with s.as_signal2D((0, 1)) or s.transpose(signal_axes=2)."
            raise InvalidImageError(
                f"find_atoms needs a single 2D image; got a signal with signal dimension {sig} "
                f"and navigation dimension {nav}.{hint}"
            )
        ax_x, ax_y = s.axes_manager.signal_axes
        meta = {}
        try:
            meta["title"] = str(s.metadata.General.title)
            fn = s.metadata.get_item("General.original_filename")
            if fn:
                meta["original_filename"] = str(fn)
        except Exception:  # pragma: no cover - metadata is optional
            pass
        lazy = bool(getattr(s, "_lazy", False))
        data = s.data
        _check_dtype(data.dtype)
        if not lazy:
            data = np.array(data, dtype=np.float64, copy=True)
        return ImageInput(
            data=data,
            x_scale=float(ax_x.scale),
            y_scale=float(ax_y.scale),
            x_offset=float(ax_x.offset),
            y_offset=float(ax_y.offset),
            x_units=_units(ax_x),
            y_units=_units(ax_y),
            lazy=lazy,
            source=meta,
        )
    # dask array?
    if type(image).__module__.startswith("dask"):
        if image.ndim != 2:
            raise InvalidImageError(_ndim_message(image.ndim, image.shape))
        _check_dtype(image.dtype)
        return ImageInput(data=image, lazy=True)
    arr = np.asarray(image)
    if arr.dtype == object:
        raise InvalidImageError("The image must be a numeric array; got an object array.")
    if arr.ndim != 2:
        raise InvalidImageError(_ndim_message(arr.ndim, arr.shape))
    _check_dtype(arr.dtype)
    return ImageInput(data=np.array(arr, dtype=np.float64, copy=True))


def _ndim_message(ndim: int, shape) -> str:
    if ndim > 2:
        return (
            f"find_atoms needs a 2D image; got a {ndim}D array of shape {tuple(shape)}. "
            "Pick one frame (e.g. data[0]) or loop over frames."
        )
    return (
        f"find_atoms needs a 2D image; got a {ndim}D array of shape {tuple(shape)}. "
        "A line profile or a single value cannot hold atomic columns."
    )


def _check_dtype(dtype) -> None:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise InvalidImageError(
            "The image is complex. Take its amplitude (abs), phase (angle) or real part first, "
            "e.g. s.amplitude or np.abs(data)."
        )
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise InvalidImageError(f"The image must hold numbers; got dtype {dtype}.")


def check_image(data: np.ndarray) -> None:
    """Check a 2D float array's values: finite, not constant, big enough."""
    if data.ndim != 2:
        raise InvalidImageError(_ndim_message(data.ndim, data.shape))
    h, w = data.shape
    if min(h, w) < MIN_SIDE:
        raise InvalidImageError(
            f"The image is {h}x{w} pixels; at least {MIN_SIDE}x{MIN_SIDE} (and several column "
            "spacings) are needed. Use a larger field of view."
        )
    finite = np.isfinite(data)
    if not finite.all():
        bad = int((~finite).sum())
        raise InvalidImageError(
            f"The image has {bad} NaN or infinite pixel(s). Crop them away, or replace them "
            "(e.g. s.data = np.nan_to_num(s.data, nan=np.nanmedian(s.data))) before finding atoms."
        )
    lo, hi = float(data.min()), float(data.max())
    span = hi - lo
    if span <= 0 or span <= 1e-9 * max(abs(lo), abs(hi)):
        raise InvalidImageError(
            f"The image is constant (all pixels = {lo:g}); there is no column contrast. "
            "Check that the right channel/frame was loaded."
        )
