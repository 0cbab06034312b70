"""Atom finding on every frame of a series, and descriptors over time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from causalspy._tableio import load_table, save_table
from causalspy.dynamics.drift import _frames, _register, _window, check_series
from causalspy.exceptions import InvalidParameterError, NoColumnsFoundError

__all__ = ["SeriesDescriptors", "find_atoms_series", "series_descriptors"]

#: Per-column labels and values copied from the hexagonal descriptors into the atoms table.
_HEX_COLUMNS = ("site", "hollow", "phase", "defect", "coordination", "nn_distance", "exx",
                "eyy", "exy", "rotation", "psi3", "psi6", "dopant_z", "flag")
STRUCTURES = ("hexagonal",)


def _time_axis(series):
    if hasattr(series, "axes_manager") and series.axes_manager.navigation_dimension == 1:
        return series.axes_manager.navigation_axes[0]
    return None


def find_atoms_series(series, drift: np.ndarray | str | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      descriptors: str | None = None, upsample: int = 50,
                      **find_kwargs) -> pd.DataFrame:
    """Find the atoms of every frame; one table with ``frame`` and ``time``.

    Frames are read and processed one at a time (a lazy series stays out of
    memory: one frame, and the previous one for the drift, at a time).

    Parameters
    ----------
    series : AtomicSeries, (n, y, x) array or list of 2D frames
        Not modified.
    drift : ndarray or "estimate", optional
        ``(n_frames, 2)`` shifts (dx, dy) in px from :func:`estimate_drift`,
        or ``"estimate"`` to register each frame to the previous one in the
        same pass (each frame is read once; the shifts are then in
        ``table.attrs["drift"]``). With a drift, ``x_corr``/``y_corr`` give
        positions in frame 0's coordinates, which linking across frames needs.
    progress : callable, optional
        Called as ``progress(done, total)`` after each frame.
    descriptors : {"hexagonal"}, optional
        Also label every column with :func:`causalspy.descriptors.hexagonal_descriptors`
        (``site``, ``hollow``, ``phase``, ``defect``, local strain, ...): the
        ``phase`` labels let :class:`Tracks` report local phase flips.
    upsample : int
        Sub-pixel precision of ``drift="estimate"``.
    **find_kwargs
        Passed to :func:`causalspy.find_atoms` (``separation``, ``refine``, ...).
        The separation is estimated once, on frame 0, and reused.

    Returns
    -------
    pandas.DataFrame
        The atoms tables of all frames, with ``frame`` and ``time`` (the
        series' time axis, else the frame index) first.
    """
    from causalspy.atoms.find import find_atoms

    check_series(series)
    data, lazy = _frames(series)
    n = data.shape[0]
    estimate = isinstance(drift, str)
    if estimate and drift != "estimate":
        raise InvalidParameterError(f"drift must be an array or 'estimate', not {drift!r}.")
    if descriptors is not None and descriptors not in STRUCTURES:
        raise InvalidParameterError(f"descriptors must be one of {STRUCTURES} or None, not "
                                    f"{descriptors!r}.")
    if estimate:
        shifts = np.zeros((n, 2))
        win = _window(*data.shape[1:])
    elif drift is not None:
        shifts = np.asarray(drift, float)
        if shifts.shape != (n, 2):
            raise InvalidParameterError(f"drift must have shape ({n}, 2), got {shifts.shape}.")
    t_ax = _time_axis(series)
    tables = []
    prev = None
    for k in range(n):   # frame loop; everything inside is vectorized over atoms
        frame = np.asarray(data[k].compute() if lazy else data[k])
        if estimate and k > 0:
            cur = np.asarray(frame, np.float64)
            shifts[k] = shifts[k - 1] + _register(prev, cur, win, upsample, 0.4, k)
        if estimate:
            prev = np.asarray(frame, np.float64)
        atoms = find_atoms(_as_image(frame, series), **find_kwargs)
        if "separation" not in find_kwargs and k == 0:
            find_kwargs = {**find_kwargs,
                           "separation": atoms.metadata["parameters"]["separation"]}
        t = atoms.to_dataframe()
        if descriptors == "hexagonal":
            t = _with_hexagonal(t, atoms, k)
        t.insert(0, "frame", k)
        t.insert(1, "time", (t_ax.offset + k * t_ax.scale) if t_ax is not None else float(k))
        if drift is not None:
            t["x_corr"] = t["x"] - shifts[k, 0]
            t["y_corr"] = t["y"] - shifts[k, 1]
        tables.append(t)
        if progress is not None:
            progress(k + 1, n)
    out = pd.concat(tables, ignore_index=True)
    if estimate:
        out.attrs["drift"] = shifts
    return out


def _with_hexagonal(t: pd.DataFrame, atoms, k: int) -> pd.DataFrame:
    from causalspy.descriptors.hexagonal import hexagonal_descriptors

    try:
        d = hexagonal_descriptors(atoms).to_dataframe()
    except (InvalidParameterError, NoColumnsFoundError) as e:
        raise type(e)(f"Frame {k}: {e}") from e
    d = d[d["column_index"] >= 0].set_index("column_index")
    cols = [c for c in _HEX_COLUMNS if c in d]
    t = t.copy()
    for c in cols:
        # sublattice/edge already come from the atoms table; keep theirs
        t[c] = d[c].reindex(np.arange(len(t))).to_numpy()
    # columns the descriptors left out (none expected) count as off-lattice
    fill = {"site": "other", "phase": "undetermined", "defect": "none", "flag": True,
            "hollow": -1}
    for c, v in fill.items():
        if c in t:
            t[c] = t[c].where(t[c].notna(), v)
    for c in ("site", "phase", "defect"):
        if c in t:   # the string dtype a saved table reads back with (lossless round trip)
            t[c] = t[c].astype(str)
    if "flag" in t:
        t["flag"] = t["flag"].astype(bool)
    if "hollow" in t:
        t["hollow"] = t["hollow"].astype(np.int64)
    return t


def _as_image(frame: np.ndarray, series):
    """One frame as an ``atomic_resolution`` signal with the series' image calibration."""
    from causalspy.signals.atomic_resolution import AtomicResolution

    img = AtomicResolution(np.asarray(frame))
    if hasattr(series, "axes_manager"):
        for a_in, a_out in zip(series.axes_manager.signal_axes, img.axes_manager.signal_axes,
                               strict=True):
            a_out.name, a_out.units, a_out.scale, a_out.offset = (a_in.name, a_in.units,
                                                                  a_in.scale, a_in.offset)
    return img


# ----------------------------------------------------------------------------- over time
FORMAT = "causalspy-series-descriptors"
FORMAT_VERSION = 1
#: Numeric hexagonal descriptors carried into the time-resolved table and maps.
HEX_VALUES = ("intensity", "amplitude", "coordination", "nn_distance", "exx", "eyy", "exy",
              "rotation", "psi3", "psi6", "dopant_z")


class SeriesDescriptors:
    """Per-frame, per-site descriptors of a series on one common cell grid.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per detected column per frame: ``frame``, ``time``,
        ``track`` (from :func:`link`), ``site``, ``cell_i``, ``cell_j`` (cell
        of the frame-0 reference lattice, the same in every frame because
        positions are drift-corrected), ``x_corr``, ``y_corr``, ``phase``,
        ``defect``, ``flag`` and the numeric descriptors (:attr:`names`).
    lattice : dict
        ``t1``, ``t2`` (px) and ``origin`` (px, frame 0) of the cell grid.
    frame_time : float, time_units : str
        Time axis of the maps.
    """

    def __init__(self, table: pd.DataFrame, lattice: dict, names: list[str],
                 frame_time: float = 1.0, time_units: str = "s", calibration: dict | None = None):
        self.table = table.reset_index(drop=True)
        self.lattice = {k: [float(v) for v in np.ravel(val)] for k, val in lattice.items()}
        self.names = list(names)
        self.frame_time = float(frame_time)
        self.time_units = str(time_units)
        self.calibration = dict(calibration or {})

    def __repr__(self) -> str:
        return (f"<SeriesDescriptors: {len(self.table)} rows, "
                f"{self.table['frame'].nunique()} frames, {len(self.names)} descriptors>")

    def to_dataframe(self) -> pd.DataFrame:
        """The time-resolved table (a copy)."""
        return self.table.copy()

    def _grid(self, site: str):
        t = self.table[(self.table["site"] == site) & (self.table["cell_i"] >= 0)]
        frames = np.sort(self.table["frame"].unique())
        ci, cj = t["cell_i"].to_numpy(), t["cell_j"].to_numpy()
        return t, frames, ci, cj, (int(ci.max()) + 1 if ci.size else 0,
                                   int(cj.max()) + 1 if cj.size else 0)

    def _array(self, names: list[str], site: str) -> tuple[np.ndarray, np.ndarray]:
        t, frames, ci, cj, (ni, nj) = self._grid(site)
        fidx = np.searchsorted(frames, t["frame"].to_numpy())
        flag = t["flag"].to_numpy(bool) if "flag" in t else np.zeros(len(t), bool)
        data = np.full((len(frames), len(names), nj, ni), np.nan)
        for k, name in enumerate(names):   # one scatter per descriptor, vectorized over rows
            v = t[name].to_numpy(float).copy()
            v[flag] = np.nan
            data[fidx, k, cj, ci] = v
        return data, frames

    def to_maps(self, names: list[str] | None = None, site: str = "metal") -> list:
        """One :class:`~causalspy.signals.DescriptorMaps` per frame, all on the same grid.

        ``descriptor_maps`` has one navigation axis (the descriptor), so time
        is the list index (``hs.stack(maps)`` gives one signal with both).
        """
        from causalspy.signals.descriptor_maps import DescriptorMaps

        names = self._check_names(names)
        data, frames = self._array(names, site)
        out = []
        for k, f in enumerate(frames):
            s = DescriptorMaps(data[k])
            s.axes_manager.navigation_axes[0].name = "descriptor"
            self._calibrate(s)
            s.metadata.General.title = f"descriptor maps, frame {int(f)}"
            s.metadata.set_item("Descriptors.names", names)
            s.metadata.set_item("Descriptors.valid", np.isfinite(data[k]).all(axis=0))
            s.metadata.set_item("Descriptors.frame", int(f))
            s.metadata.set_item("Descriptors.time", float(f) * self.frame_time)
            s.metadata.set_item("Descriptors.lattice_t1_px", self.lattice["t1"])
            s.metadata.set_item("Descriptors.lattice_t2_px", self.lattice["t2"])
            out.append(s)
        return out

    def map_series(self, name: str, site: str = "metal"):
        """One descriptor over time: a ``Signal2D`` ``(time | cell_i, cell_j)``.

        The shape :func:`causalspy.laws` field discovery takes (NaN where a
        cell is not measured in a frame).
        """
        from hyperspy.signals import Signal2D

        (name,) = self._check_names([name])
        data, frames = self._array([name], site)
        s = Signal2D(data[:, 0])
        t = s.axes_manager.navigation_axes[0]
        t.name, t.units, t.scale, t.offset = "time", self.time_units, self.frame_time, float(
            frames[0]) * self.frame_time
        self._calibrate(s)
        s.metadata.General.title = f"{name} over time"
        return s

    def _calibrate(self, s) -> None:
        t1, t2 = np.asarray(self.lattice["t1"]), np.asarray(self.lattice["t2"])
        sx, sy = self.calibration.get("x_scale", 1.0), self.calibration.get("y_scale", 1.0)
        ax_x, ax_y = s.axes_manager.signal_axes
        ax_x.name, ax_y.name = "cell_i", "cell_j"
        ax_x.scale = float(np.hypot(t1[0] * sx, t1[1] * sy))
        ax_y.scale = float(np.hypot(t2[0] * sx, t2[1] * sy))
        ax_x.units = ax_y.units = self.calibration.get("x_units", "px")

    def _check_names(self, names):
        names = list(names or self.names)
        bad = [n for n in names if n not in self.table]
        if bad:
            raise InvalidParameterError(f"No descriptor {bad[0]!r}; available: "
                                        f"{', '.join(self.names)}.")
        return names

    def save(self, path: str | Path) -> Path:
        """CSV + JSON sidecar (lattice, names, time axis); lossless."""
        return save_table(path, self.table, FORMAT, FORMAT_VERSION, {
            "lattice": self.lattice, "names": self.names, "frame_time": self.frame_time,
            "time_units": self.time_units, "calibration": self.calibration})

    @classmethod
    def load(cls, path: str | Path) -> SeriesDescriptors:
        """Read what :meth:`save` wrote."""
        table, side = load_table(path, FORMAT, FORMAT_VERSION,
                                 required=("frame", "cell_i", "cell_j"))
        return cls(table, side["lattice"], side["names"], side.get("frame_time", 1.0),
                   side.get("time_units", "s"), side.get("calibration"))


def series_descriptors(source, structure: str = "hexagonal", **track_kwargs) -> SeriesDescriptors:
    """Per-frame, per-site descriptors assembled over time on one cell grid.

    Parameters
    ----------
    source : AtomicSeries, (n, y, x) array or Tracks
        A series (tracked here with ``descriptors=structure``) or
        :class:`Tracks` whose table already holds the descriptor columns
        (``track_series(..., descriptors="hexagonal")``). Not modified.
    structure : {"hexagonal"}
        Which per-frame descriptors.
    **track_kwargs
        Passed to :func:`track_series` when ``source`` is a series.

    Returns
    -------
    SeriesDescriptors
        The table (frame, time, track, cell, descriptors), per-frame
        ``descriptor_maps`` (:meth:`SeriesDescriptors.to_maps`) and one
        descriptor over time (:meth:`SeriesDescriptors.map_series`).

    Notes
    -----
    The cell grid is the metal lattice of frame 0 (least-squares
    translations ``t1, t2`` from its descriptors' cell indices); a column of
    any frame gets the cell ``round(B^-1 (p - origin))`` of its
    drift-corrected position ``p``, so a site keeps its cell while the frame
    drifts. Chalcogen columns get the cell of their metal (hollow offsets
    subtracted).
    """
    from causalspy.dynamics.track import Tracks, track_series

    if structure not in STRUCTURES:
        raise InvalidParameterError(f"structure must be one of {STRUCTURES}, not {structure!r}.")
    if isinstance(source, Tracks):
        tracks = source
        if "phase" not in tracks.table:
            raise InvalidParameterError(
                "These tracks have no descriptor columns; run track_series(series, "
                "descriptors='hexagonal') or pass the series itself.")
        frame_time, units, cal = (tracks.metadata.get("frame_time", 1.0),
                                  tracks.metadata.get("time_units", "s"),
                                  tracks.metadata.get("calibration", {}))
    else:
        check_series(source)
        tracks = track_series(source, descriptors=structure, **track_kwargs)
        t_ax = _time_axis(source)
        frame_time = t_ax.scale if t_ax is not None else 1.0
        units = (t_ax.units if t_ax is not None and isinstance(t_ax.units, str) else "frame")
        cal = {}
        if hasattr(source, "axes_manager"):
            ax = source.axes_manager.signal_axes
            cal = {"x_scale": float(ax[0].scale), "y_scale": float(ax[1].scale),
                   "x_units": str(ax[0].units)}
    t = tracks.table
    x = "x_corr" if "x_corr" in t else "x"
    y = "y_corr" if "y_corr" in t else "y"
    metal0 = t[(t["frame"] == t["frame"].min()) & (t["site"] == "metal")
               & ~t["flag"].astype(bool)]
    if len(metal0) < 4:
        raise NoColumnsFoundError("Frame 0 has fewer than 4 usable metal columns; no cell grid.")
    p0 = metal0[[x, y]].to_numpy(float)
    basis, origin = _fit_grid(p0)
    a = float(np.hypot(*basis[:, 0]))
    pos = t[[x, y]].to_numpy(float)
    frac = np.linalg.solve(basis, (pos - origin).T).T
    # a chalcogen column sits at (1/3, 1/3) or (2/3, 2/3) of its cell whatever the hollow
    # numbering of the descriptors (their basis may be ours turned by 60 degrees)
    is_metal = (t["site"] == "metal").to_numpy()
    best = frac.copy()
    res = np.full(len(t), np.inf)
    for s_off in (1 / 3, 2 / 3):
        f = frac - s_off
        r = np.abs(f - np.rint(f)).max(axis=1)
        better = ~is_metal & (r < res)
        best[better], res[better] = f[better], r[better]
    best[is_metal] = frac[is_metal]
    res[is_metal] = np.abs(frac - np.rint(frac)).max(axis=1)[is_metal]
    cell = np.rint(best).astype(np.int64)
    ok = res < 0.2
    cell[~ok] = -1
    ci, cj = cell[:, 0], cell[:, 1]
    shift_i = ci[ok].min() if ok.any() else 0
    shift_j = cj[ok].min() if ok.any() else 0
    ci = np.where(ok, ci - shift_i, -1)
    cj = np.where(ok, cj - shift_j, -1)
    origin = origin + shift_i * basis[:, 0] + shift_j * basis[:, 1]
    names = [n for n in HEX_VALUES if n in t]
    keep = ["frame", "time", "track", "site", "hollow", "phase", "defect", "flag", x, y]
    out = t[[c for c in keep if c in t] + names].copy()
    out.insert(3, "cell_i", ci)
    out.insert(4, "cell_j", cj)
    out["flag"] = out["flag"].astype(bool) | ~ok
    out["site"] = out["site"].where(out["site"].notna(), "other").astype(str)
    lattice = {"t1": basis[:, 0], "t2": basis[:, 1], "origin": origin, "a_px": [a]}
    return SeriesDescriptors(out, lattice, names, frame_time, units, cal)


def _fit_grid(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares triangular lattice of points: basis (2x2, columns t1, t2) and origin."""
    from scipy.spatial import cKDTree

    d, j = cKDTree(p).query(p, k=7)
    v = (p[j[:, 1:]] - p[:, None, :]).reshape(-1, 2)
    a = np.median(d[:, 1])
    v = v[np.abs(np.hypot(*v.T) - a) < 0.2 * a]
    ang = np.mod(np.arctan2(v[:, 1], v[:, 0]), np.pi / 3)
    # circular mean of the 6-fold orientation
    th = np.angle(np.mean(np.exp(6j * ang))) / 6
    t1 = a * np.array([np.cos(th), np.sin(th)])
    t2 = a * np.array([np.cos(th + np.pi / 3), np.sin(th + np.pi / 3)])
    basis = np.column_stack([t1, t2])
    # refine basis and origin by least squares on the rounded lattice indices
    frac = np.linalg.solve(basis, (p - p[0]).T).T
    idx = np.rint(frac)
    good = (np.abs(frac - idx) < 0.25).all(axis=1)
    design = np.column_stack([idx[good], np.ones(good.sum())])
    coef, *_ = np.linalg.lstsq(design, p[good], rcond=None)
    basis = coef[:2].T
    origin = coef[2]
    return basis, origin
