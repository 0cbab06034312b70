"""Local (sliding-window) causal maps: where in the image one variable drives another."""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from causalspy.exceptions import InvalidParameterError

__all__ = ["local_causal_maps"]


def local_causal_maps(descriptors, edges: list[tuple[str, str]], *, window: int = 8,
                      stride: int = 2, method: str = "lingam", min_samples: int | None = None,
                      prior=None, progress=None):
    """Strength and direction of chosen edges in sliding windows over the cell grid.

    Parameters
    ----------
    descriptors : Descriptors
        Per-cell descriptors with a cell grid (``cell_i``, ``cell_j``).
    edges : list of (cause, effect)
        Relations to map, e.g. ``[("intensity_A", "p_mag"), ("exx", "p_mag")]``.
    window, stride : int
        Window size and step, in cells.
    method : str
        Discovery method run in each window (see :func:`discover`); the
        graph is learned on the variables named in ``edges``.
    min_samples : int, optional
        Windows with fewer valid cells are left NaN; default ``10 x variables``.
    prior : Prior, optional
        Prior knowledge applied in every window.
    progress : callable, optional
        ``progress(done, total)`` after each window; an exception raised from it
        aborts the call.

    Returns
    -------
    DescriptorMaps
        For each edge ``a->b``: ``"a->b"`` = the standardized weight of
        ``a -> b`` in the window's graph (0 where the window's graph has no
        such edge, NaN where the window has too few cells), and
        ``"a->b:direction"`` = +1 (a -> b), -1 (b -> a), 0 (not adjacent or
        unoriented). The map grid is the window grid (calibrated in cells of
        the source lattice times the stride).
    """
    from causalspy.causal.discover import discover
    from causalspy.signals.descriptor_maps import DescriptorMaps

    t = descriptors.to_dataframe(flagged=False)
    if "cell_i" not in t:
        raise InvalidParameterError("Local maps need descriptors on a cell grid (cell_i, cell_j).")
    names = sorted({v for e in edges for v in e})
    missing = [v for v in names if v not in t]
    if missing:
        raise InvalidParameterError(f"Unknown descriptor(s) {missing}; available: "
                                    f"{descriptors.names}.")
    if window < 2 or stride < 1:
        raise InvalidParameterError("window must be >= 2 cells and stride >= 1 cell.")
    min_samples = min_samples or 10 * len(names)
    if window * window < min_samples:
        raise InvalidParameterError(
            f"A {window}x{window} window holds at most {window * window} cells but "
            f"{min_samples} are needed for {len(names)} variables; use a larger window."
        )
    ci, cj = t["cell_i"].to_numpy(), t["cell_j"].to_numpy()
    ni, nj = ci.max() + 1, cj.max() + 1
    starts_i = np.arange(0, max(ni - window, 0) + 1, stride)
    starts_j = np.arange(0, max(nj - window, 0) + 1, stride)
    out = np.full((2 * len(edges), len(starts_j), len(starts_i)), np.nan)
    X = t[names]
    total = len(starts_j) * len(starts_i)
    for wj, j0 in enumerate(starts_j):
        for wi, i0 in enumerate(starts_i):
            if progress is not None:
                progress(wj * len(starts_i) + wi, total)
            sel = (ci >= i0) & (ci < i0 + window) & (cj >= j0) & (cj < j0 + window)
            sub = X[sel].dropna()
            if len(sub) < min_samples:
                continue
            try:
                with _warnings.catch_warnings():
                    _warnings.simplefilter("ignore")
                    g = discover(sub, method=method, prior=prior)
            except InvalidParameterError:
                continue
            e = g.edges
            for k, (a, b) in enumerate(edges):
                fw = e[(e["type"] == "directed") & (e["source"] == a) & (e["target"] == b)]
                bw = e[(e["type"] == "directed") & (e["source"] == b) & (e["target"] == a)]
                w = float(fw["weight"].iloc[0]) if len(fw) else 0.0
                out[2 * k, wj, wi] = w if np.isfinite(w) else 0.0
                out[2 * k + 1, wj, wi] = 1.0 if len(fw) else (-1.0 if len(bw) else 0.0)
    labels = []
    for a, b in edges:
        labels += [f"{a}->{b}", f"{a}->{b}:direction"]
    s = DescriptorMaps(out)
    lat = descriptors.lattice or {}
    cal = descriptors.calibration
    sx, sy = cal.get("x_scale", 1.0), cal.get("y_scale", 1.0)
    t1 = np.asarray(lat.get("t1", [1.0, 0.0]), float)
    t2 = np.asarray(lat.get("t2", [0.0, 1.0]), float)
    ax_x, ax_y = s.axes_manager.signal_axes
    ax_x.name, ax_y.name = "window_i", "window_j"
    ax_x.scale = float(np.hypot(t1[0] * sx, t1[1] * sy) * stride)
    ax_y.scale = float(np.hypot(t2[0] * sx, t2[1] * sy) * stride)
    ax_x.offset = float(np.hypot(t1[0] * sx, t1[1] * sy) * (window - 1) / 2)
    ax_y.offset = float(np.hypot(t2[0] * sx, t2[1] * sy) * (window - 1) / 2)
    ax_x.units = ax_y.units = cal.get("x_units", "px")
    s.axes_manager.navigation_axes[0].name = "edge"
    s.metadata.General.title = "local causal maps"
    s.metadata.set_item("Descriptors.names", labels)
    s.metadata.set_item("Descriptors.units", ["sigma/sigma", ""] * len(edges))
    s.metadata.set_item("Descriptors.valid", np.isfinite(out[0]))
    s.metadata.set_item("Descriptors.local_causal", {"window": window, "stride": stride,
                                                     "method": method})
    return s



