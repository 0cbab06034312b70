r"""Profiles across a domain wall from a map (``descriptor_maps`` or any 2-D array).

:func:`wall_profile` samples a map along a line from ``start`` to ``end``
(calibrated coordinates, ``(x, y)``), averaging over a band ``width`` wide
perpendicular to the line, and returns the distance along the line with the
band mean, standard deviation, standard error and the number of valid pixels
per point. :func:`detect_wall` finds a wall (the sign change of a polarization
component, or the largest gradient) and returns a line across it, so
``wall_profile(maps, "dx")`` works without drawing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalspy.exceptions import InvalidParameterError

__all__ = ["WallProfile", "detect_wall", "wall_profile"]


@dataclass
class WallProfile:
    """A profile across a wall.

    Attributes
    ----------
    table : pandas.DataFrame
        ``distance`` (along the line from ``start``, calibrated: the mean
        projected position of the pixels averaged), ``mean``,
        ``sd`` (across the band), ``sem`` (sd / sqrt(n)), ``sem_pooled``
        (the sd pooled over all bins / sqrt(n): steadier than ``sem`` when bins
        hold few pixels; used by :attr:`yerr`), ``n`` (valid pixels averaged),
        ``x``, ``y`` (the point on the line).
    name, units, value_unit : str
        Descriptor, unit of distance and of the values.
    start, end : tuple of float
        The line (calibrated ``(x, y)``).
    width : float
        Band width (calibrated; 0 for a line sampled by interpolation).
    """

    table: pd.DataFrame
    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    width: float
    units: str = ""
    value_unit: str = ""

    @property
    def x(self) -> np.ndarray:
        """Distance along the line (only points with data)."""
        return self.table["distance"].to_numpy()

    @property
    def y(self) -> np.ndarray:
        return self.table["mean"].to_numpy()

    @property
    def yerr(self) -> np.ndarray | None:
        """Standard error per point from the pooled band sd (``sem_pooled``); None
        for a line one pixel wide."""
        if self.width == 0:
            return None
        s = self.table["sem_pooled"].to_numpy()
        return s if np.all(np.isfinite(s)) and np.any(s > 0) else None

    def to_dataframe(self) -> pd.DataFrame:
        return self.table.copy()

    def fit(self, model: str = "tanh", priors=None, *, use_sem: bool = True, **kwargs):
        """Fit a wall model (:func:`~causalspy.bayes.fit`) with the band's standard
        errors (:attr:`yerr`) as known per-point errors."""
        from causalspy.bayes.fit import fit

        kwargs.setdefault("x_unit", self.units)
        kwargs.setdefault("y_unit", self.value_unit)
        kwargs.setdefault("label", self.name)
        return fit(self.x, self.y, model, priors, yerr=self.yerr if use_sem else None, **kwargs)

    def save(self, path) -> None:
        """Write the table as CSV (the input ``causalspy wall`` reads)."""
        self.table.to_csv(path, index=False)


def _map_and_grid(maps, name):
    """(z, valid, sx, sy, ox, oy, units, value_unit)."""
    if hasattr(maps, "axes_manager"):
        names = list(getattr(maps, "descriptor_names", []))
        if maps.axes_manager.navigation_dimension == 1:
            if name not in names:
                raise InvalidParameterError(f"No descriptor {name!r}; available: {names}.")
            k = names.index(name)
            z = np.asarray(maps.inav[k].data, float)
            try:
                vunit = list(maps.metadata.Descriptors.units)[k]
            except (AttributeError, IndexError):
                vunit = ""
            try:
                valid = np.asarray(maps.metadata.Descriptors.valid, bool)
            except AttributeError:
                valid = np.ones(z.shape, bool)
        else:
            z = np.asarray(maps.data, float)
            valid, vunit = np.ones(z.shape, bool), ""
        ax_x, ax_y = maps.axes_manager.signal_axes
        u = str(ax_x.units) if ax_x.units and str(ax_x.units) != "<undefined>" else "px"
        return (z, valid, float(ax_x.scale), float(ax_y.scale), float(ax_x.offset),
                float(ax_y.offset), u, vunit)
    z = np.asarray(maps, float)
    return z, np.ones(z.shape, bool), 1.0, 1.0, 0.0, 0.0, "px", ""


def detect_wall(maps, name: str | None = None, *, method: str = "auto",
                length: float | None = None):
    """Find a straight wall in a map and return a line across it.

    Parameters
    ----------
    maps : DescriptorMaps, Signal2D or 2-D array
    name : str
        Descriptor (for ``descriptor_maps``).
    method : {"auto", "sign", "gradient"}
        ``"sign"``: the wall is where the value changes sign (a polarization
        component across a 180° wall); ``"gradient"``: where the smoothed
        gradient is largest (any step); ``"auto"`` uses ``"sign"`` when the map
        has clearly both signs and ``"gradient"`` otherwise.
    length : float, optional
        Length of the returned line (calibrated); default the map's shorter
        side.

    Returns
    -------
    start, end : tuple of float
        ``(x, y)`` ends of a line perpendicular to the wall through its centre.
    info : dict
        ``centre``, ``normal`` (unit vector), ``method``, ``n_points`` (wall pixels).
    """
    from scipy import ndimage

    z, valid, sx, sy, ox, oy, _, _ = _map_and_grid(maps, name)
    ok = valid & np.isfinite(z)
    if ok.sum() < 9:
        raise InvalidParameterError("Too few valid pixels to find a wall.")
    # fill holes with the local mean so smoothing does not bleed NaN
    zf = np.where(ok, z, 0.0)
    w = ndimage.gaussian_filter(ok.astype(float), 1.0)
    zs = ndimage.gaussian_filter(zf, 1.0) / np.maximum(w, 1e-9)
    q = np.abs(z[ok])
    both = (np.mean(z[ok] > 0.2 * q.max()) > 0.1) and (np.mean(z[ok] < -0.2 * q.max()) > 0.1)
    if method == "auto":
        method = "sign" if both else "gradient"
    gy, gx = np.gradient(zs, sy, sx)
    g = np.hypot(gx, gy)
    if method == "sign":
        s = np.sign(zs)
        edge = np.zeros(z.shape, bool)
        edge[:, :-1] |= s[:, :-1] != s[:, 1:]
        edge[:-1, :] |= s[:-1, :] != s[1:, :]
        edge &= ok & (w > 0.5)
        if edge.sum() < 2:
            raise InvalidParameterError(f"{name or 'The map'} does not change sign; use "
                                        "method='gradient' or give start and end.")
    elif method == "gradient":
        gv = np.where(ok & (w > 0.5), g, 0.0)
        edge = gv >= 0.7 * gv.max()
        if gv.max() <= 0:
            raise InvalidParameterError("The map has no gradient: no wall to find.")
    else:
        raise InvalidParameterError("method must be 'auto', 'sign' or 'gradient'.")
    r, c = np.nonzero(edge)
    P = np.column_stack([ox + c * sx, oy + r * sy])
    centre = P.mean(0)
    wts = g[r, c] + 1e-12
    if len(P) >= 3:
        cov = np.cov((P - centre).T, aweights=wts)
        evals, evecs = np.linalg.eigh(cov)
        tangent = evecs[:, -1]
        normal = np.array([-tangent[1], tangent[0]])
    else:
        normal = np.array([np.mean(gx[r, c]), np.mean(gy[r, c])])
    # orient the normal along the mean gradient (low -> high)
    gm = np.array([np.sum(wts * gx[r, c]), np.sum(wts * gy[r, c])])
    if normal @ gm < 0:
        normal = -normal
    normal = normal / np.linalg.norm(normal)
    if length is None:
        length = min(z.shape[0] * sy, z.shape[1] * sx)
    a = centre - normal * length / 2
    b = centre + normal * length / 2
    info = {"centre": tuple(map(float, centre)), "normal": tuple(map(float, normal)),
            "method": method, "n_points": int(len(P))}
    return (float(a[0]), float(a[1])), (float(b[0]), float(b[1])), info


def wall_profile(maps, name: str | None = None, start=None, end=None, *, width: float = 0.0,
                 step: float | None = None) -> WallProfile:
    """Profile of a map along a line, averaged over a band perpendicular to it.

    Parameters
    ----------
    maps : DescriptorMaps, Signal2D or 2-D array
        NaN (and, for ``descriptor_maps``, cells not marked valid) are ignored.
    name : str
        The descriptor (for ``descriptor_maps``).
    start, end : (x, y), optional
        Ends of the line in calibrated coordinates (the axes' scale and
        offset; pixels for an array). Default: a line across the wall found by
        :func:`detect_wall`, as long as the map's shorter side.
    width : float
        Band width (calibrated): every valid pixel whose centre lies within
        ``width / 2`` of the line is binned by its projection on the line, and
        each point is the mean of its bin at the mean projected position of its
        pixels. 0: a band one pixel wide (no sd). Pixels are never interpolated.
    step : float, optional
        Spacing of the profile points (default: one pixel, the smaller scale).

    Returns
    -------
    WallProfile
        With ``distance``, ``mean``, ``sd``, ``sem``, ``n`` per point; points
        without valid pixels are dropped.
    """
    z, valid, sx, sy, ox, oy, units, vunit = _map_and_grid(maps, name)
    if z.ndim != 2:
        raise InvalidParameterError(f"A map is 2-D; got shape {z.shape}.")
    if (start is None) != (end is None):
        raise InvalidParameterError("Give both start and end, or neither (detect the wall).")
    if start is None:
        start, end, _ = detect_wall(maps, name)
    a = np.asarray(start, float)
    b = np.asarray(end, float)
    if a.shape != (2,) or b.shape != (2,) or not np.all(np.isfinite(np.r_[a, b])):
        raise InvalidParameterError("start and end are (x, y) pairs of finite numbers.")
    L = float(np.hypot(*(b - a)))
    if L == 0:
        raise InvalidParameterError("start and end are the same point.")
    if width < 0 or not np.isfinite(width):
        raise InvalidParameterError("width must be >= 0.")
    step = float(step or min(sx, sy))
    if step <= 0:
        raise InvalidParameterError("step must be > 0.")
    t_hat = (b - a) / L
    n_hat = np.array([-t_hat[1], t_hat[0]])
    edges = np.arange(0.0, L + step / 2, step)
    ok = valid & np.isfinite(z)
    # a line is a band one pixel wide: every measured pixel is used at its own
    # projected position, never interpolated (interpolation broadens a sharp wall)
    half = width / 2 if width > 0 else min(sx, sy) / 2
    rr, cc = np.nonzero(ok)
    P = np.column_stack([ox + cc * sx, oy + rr * sy]) - a
    along = P @ t_hat
    across = P @ n_hat
    sel = (np.abs(across) <= half) & (along >= -step / 2) & (along < L + step / 2)
    k = np.clip(np.floor(along[sel] / step + 0.5).astype(int), 0, edges.size - 1)
    v = z[rr[sel], cc[sel]]
    nb = edges.size
    n = np.bincount(k, minlength=nb)
    s0 = np.bincount(k, weights=along[sel], minlength=nb)
    s1 = np.bincount(k, weights=v, minlength=nb)
    s2 = np.bincount(k, weights=v * v, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        # each point sits at the mean position of its pixels, not at the bin centre:
        # with few pixels per bin the two differ by up to half a step, an error the
        # band's sd does not contain
        d = s0 / n
        mean = s1 / n
        var = (s2 - n * mean ** 2) / (n - 1)
    sd = np.where(n > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)
    xs, ys = a[0] + d * t_hat[0], a[1] + d * t_hat[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        sem = sd / np.sqrt(n)
        # the sd of a bin of a few pixels is itself very uncertain, and weighting by it
        # makes fits overconfident: pool the variance over the bins (the pixel noise is
        # the same along the line) and scale by each bin's count
        m2 = n > 1
        pooled = (np.sqrt(np.sum((n[m2] - 1) * sd[m2] ** 2) / np.sum(n[m2] - 1))
                  if m2.any() else np.nan)
        sem_pooled = pooled / np.sqrt(n)
    t = pd.DataFrame({"distance": d, "mean": mean, "sd": sd, "sem": sem,
                      "sem_pooled": sem_pooled, "n": n, "x": xs, "y": ys})
    t = t[t["n"] > 0].reset_index(drop=True)
    if len(t) < 3:
        raise InvalidParameterError(
            "The line crosses fewer than 3 valid points of the map; check start/end (they "
            f"are in calibrated units, {units}) and the mask.")
    return WallProfile(t, name or "", tuple(map(float, a)), tuple(map(float, b)),
                       float(width), units, vunit)
