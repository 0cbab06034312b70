"""Helpers shared by the synthetic-image generators: checks, noise, signal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from causalspy._version import __version__
from causalspy.data._truth import GroundTruth
from causalspy.exceptions import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from hyperspy.signals import Signal2D

SeedLike = int | np.random.Generator | None

#: Columns every ``GroundTruth.columns`` table starts with, in this order.
BASE_COLUMNS = ["x", "y", "sublattice", "species", "counts", "present", "sigma", "edge"]


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the given bounds, or raise."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    v = float(value) if ok else math.nan
    if ok and math.isfinite(v):
        lo_ok = minimum is None or (v > minimum if strict_min else v >= minimum)
        hi_ok = maximum is None or (v < maximum if strict_max else v <= maximum)
        if lo_ok and hi_ok:
            return v
    if minimum is not None and maximum is not None:
        lo = "(" if strict_min else "["
        hi = ")" if strict_max else "]"
        valid = f"a finite number in {lo}{minimum:g}, {maximum:g}{hi}"
    elif minimum is not None:
        valid = f"a finite number {'>' if strict_min else '>='} {minimum:g}"
    elif maximum is not None:
        valid = f"a finite number {'<' if strict_max else '<='} {maximum:g}"
    else:
        valid = "a finite number"
    raise InvalidParameterError(f"{name} must be {valid}, got {value!r}.")


def check_pair(name: str, value: Any, *, minimum: int) -> tuple[int, int]:
    """Return ``value`` as a pair of integers ``>= minimum``, or raise."""
    try:
        a, b = value
        ok = all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in (a, b)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok or a < minimum or b < minimum:
        raise InvalidParameterError(
            f"{name} must be a pair of integers >= {minimum} (rows/y, columns/x), got {value!r}."
        )
    return int(a), int(b)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``str(value).lower()`` if it is one of ``choices``, or raise."""
    key = str(value).lower() if isinstance(value, (str, int)) else None
    if key not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise InvalidParameterError(f"{name} must be one of {valid}, got {value!r}.")
    return key


def make_rng(seed: SeedLike) -> np.random.Generator:
    """``numpy.random.default_rng(seed)`` with a clear error for bad seeds."""
    if isinstance(seed, (bool, np.bool_)):
        raise InvalidParameterError(
            f"seed must be an int, None or a numpy Generator, got {seed!r}."
        )
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"seed must be a non-negative int, None or a numpy Generator, got {seed!r}."
        ) from None


def seed_param(seed: SeedLike) -> int | None:
    """The seed as stored in the parameters (``None`` unless it is an int)."""
    return int(seed) if isinstance(seed, (int, np.integer)) else None


def edge_mask(x: np.ndarray, y: np.ndarray, sigma: np.ndarray | float, shape: tuple[int, int]):
    """True where a centre is closer than ``1.5 * sigma`` to the image border or outside.

    The border is the outer edge of the outer pixels: ``x = -0.5`` and
    ``x = width - 0.5`` (likewise for ``y``).
    """
    height, width = shape
    dist = np.minimum.reduce([x + 0.5, width - 0.5 - x, y + 0.5, height - 0.5 - y])
    return dist < 1.5 * np.asarray(sigma, dtype=np.float64)


def apply_noise(expected: np.ndarray, rng: np.random.Generator, noise: bool) -> np.ndarray:
    """Poisson counts drawn from ``expected`` (overwriting it), or ``expected`` itself."""
    expected = np.asarray(expected, dtype=np.float64)
    if noise:
        expected[...] = rng.poisson(expected)  # in place: the generators own it
    return expected


def _plain(value: Any) -> Any:
    """Convert a parameter value to plain Python types HyperSpy can save."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def make_table(data: Mapping[str, Any], extra: list[str]) -> pd.DataFrame:
    """Build the truth table with the base columns first and fixed dtypes."""
    df = pd.DataFrame({k: data[k] for k in BASE_COLUMNS + extra})
    df = df.astype(
        {
            "x": np.float64,
            "y": np.float64,
            "sublattice": np.int64,
            "species": object,
            "counts": np.float64,
            "present": bool,
            "sigma": np.float64,
            "edge": bool,
        }
    )
    return df


def finish(
    image: np.ndarray,
    table: pd.DataFrame,
    params: dict[str, Any],
    *,
    pixel_size_nm: float,
    title: str,
) -> tuple[Signal2D, GroundTruth]:
    """Wrap an image and its truth table into ``(signal, truth)``."""
    from hyperspy.signals import Signal2D

    params = _plain(params)
    params["causalspy_version"] = __version__
    params["n_sites"] = len(table)
    params["n_columns"] = int(table["present"].sum())
    params["shape"] = [int(s) for s in image.shape]
    params["pixel_size_nm"] = float(pixel_size_nm)

    signal = Signal2D(np.ascontiguousarray(image, dtype=np.float64))
    for axis, name in zip(signal.axes_manager.signal_axes, ("x", "y"), strict=True):
        axis.name = name
        axis.scale = float(pixel_size_nm)
        axis.offset = 0.0
        axis.units = "nm"
    signal.metadata.General.title = title
    signal.metadata.set_item("Signal.quantity", "Intensity (counts)")
    signal.metadata.set_item("Sample.causalspy_truth_parameters", params)
    signal.set_signal_type("atomic_resolution")
    return signal, GroundTruth(columns=table, params=params)
