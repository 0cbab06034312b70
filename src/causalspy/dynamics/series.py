"""Atom finding on every frame of a series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalspy.dynamics.drift import _frames, check_series

__all__ = ["find_atoms_series"]


def find_atoms_series(series, drift: np.ndarray | None = None, progress=None,
                      **find_kwargs) -> pd.DataFrame:
    """Find the atoms of every frame; one table with ``frame`` and ``time``.

    Frames are read and processed one at a time (lazy series: memory bounded
    by a frame). With ``drift`` (from :func:`estimate_drift`), columns
    ``x_corr``/``y_corr`` give positions in frame 0's coordinates, which is
    what linking across frames needs.

    Parameters
    ----------
    series : AtomicSeries or (n, y, x) array
    drift : ndarray, optional
        ``(n_frames, 2)`` shifts (dx, dy) in px.
    progress : callable, optional
        Called as ``progress(done, total)`` after each frame.
    **find_kwargs
        Passed to :func:`causalspy.find_atoms` (``separation``, ``refine``, ...).
        The separation is estimated once, on frame 0, and reused.
    """
    from causalspy.atoms.find import find_atoms

    check_series(series)
    data, lazy = _frames(series)
    n = data.shape[0]
    if drift is not None:
        drift = np.asarray(drift, float)
        if drift.shape != (n, 2):
            raise ValueError(f"drift must have shape ({n}, 2), got {drift.shape}.")
    t_ax = (series.axes_manager.navigation_axes[0] if hasattr(series, "axes_manager") else None)
    tables = []
    for k in range(n):   # frame loop; everything inside is vectorized over atoms
        frame = data[k].compute() if lazy else data[k]
        img = _as_image(np.asarray(frame), series)
        atoms = find_atoms(img, **find_kwargs)
        if "separation" not in find_kwargs and k == 0:
            find_kwargs = {**find_kwargs,
                           "separation": atoms.metadata["parameters"]["separation"]}
        t = atoms.to_dataframe()
        t.insert(0, "frame", k)
        t.insert(1, "time", (t_ax.offset + k * t_ax.scale) if t_ax is not None else float(k))
        if drift is not None:
            t["x_corr"] = t["x"] - drift[k, 0]
            t["y_corr"] = t["y"] - drift[k, 1]
        tables.append(t)
        if progress is not None:
            progress(k + 1, n)
    return pd.concat(tables, ignore_index=True)


def _as_image(frame: np.ndarray, series):
    """One frame as an ``atomic_resolution`` signal with the series' image calibration."""
    from causalspy.signals.atomic_resolution import AtomicResolution

    img = AtomicResolution(frame)
    if hasattr(series, "axes_manager"):
        for a_in, a_out in zip(series.axes_manager.signal_axes, img.axes_manager.signal_axes,
                               strict=True):
            a_out.name, a_out.units, a_out.scale, a_out.offset = (a_in.name, a_in.units,
                                                                  a_in.scale, a_in.offset)
    return img
