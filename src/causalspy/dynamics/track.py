"""Linking atomic columns across frames into tracks, with events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from causalspy._tableio import load_table, save_table
from causalspy.exceptions import InvalidParameterError

__all__ = ["Tracks", "link", "track_series"]

FORMAT = "causalspy-tracks"
FORMAT_VERSION = 1


def _assign(a: np.ndarray, b: np.ndarray, max_disp: float):
    """One-to-one links between ``a`` and ``b``: most links, then least squared displacement.

    The candidate pairs within ``max_disp`` come from one KD-tree
    ``sparse_distance_matrix``. A pair whose two ends have no other
    candidate is linked directly (almost every column when ``max_disp`` is
    below half the spacing); the rest (competing candidates) go to
    :func:`scipy.optimize.linear_sum_assignment` on a dense matrix over those
    points only, which maximizes the number of links and then minimizes the
    summed squared displacement (as trackpy's subnetwork linking does).
    """
    from scipy.optimize import linear_sum_assignment

    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), max_disp, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    pi, pj, pv = (pairs["i"].astype(np.int64), pairs["j"].astype(np.int64),
                  pairs["v"].astype(float))
    deg_a = np.bincount(pi, minlength=len(a))
    deg_b = np.bincount(pj, minlength=len(b))
    simple = (deg_a[pi] == 1) & (deg_b[pj] == 1)
    i, j = pi[simple], pj[simple]
    hard = ~simple
    if hard.any():
        rows, ri = np.unique(pi[hard], return_inverse=True)
        cols, cj = np.unique(pj[hard], return_inverse=True)
        # larger than any sum of real costs: a real link always beats no link
        big = max_disp ** 2 * (min(len(rows), len(cols)) + 1)
        cost = np.full((len(rows), len(cols)), big)
        cost[ri, cj] = pv[hard] ** 2
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < big
        i = np.concatenate([i, rows[r[ok]]])
        j = np.concatenate([j, cols[c[ok]]])
    return i, j


def link(table: pd.DataFrame, max_disp: float, memory: int = 1, x: str | None = None,
         y: str | None = None) -> pd.DataFrame:
    """Give every detection a ``track`` id by linking frame to frame.

    Each frame's detections are assigned one-to-one to the active tracks
    (last positions) by KD-tree candidate search and an assignment that
    links as many as possible with the least summed squared displacement
    (unambiguous pairs directly, competing ones by
    :func:`scipy.optimize.linear_sum_assignment` on those only); no Python
    loop over atoms.

    Parameters
    ----------
    table : DataFrame
        Detections with ``frame`` and positions; drift-corrected positions
        (``x_corr``, ``y_corr``) are used when present.
    max_disp : float
        Largest displacement (px) between linked detections; keep it below
        half the column spacing.
    memory : int
        A column missing for up to ``memory`` frames keeps its track (a missed
        detection is not a disappearance).

    Returns
    -------
    DataFrame
        A copy of ``table`` with a ``track`` column (int), sorted by frame.
    """
    if max_disp <= 0:
        raise InvalidParameterError("max_disp must be > 0 (px).")
    if "frame" not in table:
        raise InvalidParameterError("The table needs a 'frame' column.")
    x = x or ("x_corr" if "x_corr" in table else "x")
    y = y or ("y_corr" if "y_corr" in table else "y")
    t = table.sort_values("frame", kind="stable").reset_index(drop=True).copy()
    frames = np.unique(t["frame"].to_numpy())
    xy = t[[x, y]].to_numpy(float)
    track = np.full(len(t), -1, np.int64)
    fr = t["frame"].to_numpy()
    # active tracks: last position, last frame seen, id
    first = np.nonzero(fr == frames[0])[0]
    track[first] = np.arange(len(first))
    act_pos, act_last, act_id = xy[first], np.full(len(first), frames[0]), track[first].copy()
    next_id = len(first)
    for f in frames[1:]:   # one vectorized assignment per frame
        cur = np.nonzero(fr == f)[0]
        alive = f - act_last <= memory + 1
        ai = np.nonzero(alive)[0]
        i, j = _assign(act_pos[ai], xy[cur], max_disp)
        track[cur[j]] = act_id[ai[i]]
        act_pos[ai[i]] = xy[cur[j]]
        act_last[ai[i]] = f
        new = np.setdiff1d(np.arange(len(cur)), j)
        ids = np.arange(next_id, next_id + len(new))
        next_id += len(new)
        track[cur[new]] = ids
        keep = f - act_last <= memory + 1
        act_pos = np.vstack([act_pos[keep], xy[cur[new]]])
        act_last = np.concatenate([act_last[keep], np.full(len(new), f)])
        act_id = np.concatenate([act_id[keep], ids])
    t["track"] = track
    return t


def _events(t: pd.DataFrame, n_frames_first: int, n_frames_last: int, shape=None,
            margin: float = 0.0) -> pd.DataFrame:
    """Appear / disappear / unassigned / label-change events from a linked table.

    With the frame ``shape`` known, a track that starts or ends within
    ``margin`` px of the border is ``enter``/``exit`` (drifted in or out of the
    field of view), not a real appearance or disappearance.
    """
    rows = []
    g = t.groupby("track")["frame"]
    start, end = g.min(), g.max()
    # a track find_atoms never put on a sublattice (label -1 in every frame) is a noise peak
    # or an off-lattice object, not a lattice column coming or going: one "unassigned" event
    if "sublattice" in t:
        assigned = (t["sublattice"] >= 0).groupby(t["track"]).any()
    else:
        assigned = pd.Series(True, index=start.index)
    for kind, sel, fr in (("appear", start > n_frames_first, start),
                          ("disappear", end < n_frames_last, end),
                          ("unassigned", ~assigned, start)):
        if kind != "unassigned":
            sel = sel & assigned
        ids = sel[sel].index.to_numpy()
        sub = t.set_index(["track", "frame"])
        pos = sub.loc[list(zip(ids, fr[ids], strict=True)), ["x", "y"]].to_numpy() if len(ids) \
            else np.zeros((0, 2))
        ev_kind = np.full(len(ids), kind, dtype=object)
        if shape is not None and len(ids) and kind != "unassigned":
            near = ((pos[:, 0] < margin) | (pos[:, 1] < margin)
                    | (pos[:, 0] > shape[1] - 1 - margin) | (pos[:, 1] > shape[0] - 1 - margin))
            ev_kind[near] = "enter" if kind == "appear" else "exit"
        rows.append(pd.DataFrame({"event": ev_kind, "track": ids,
                                  "frame": fr[ids].to_numpy() + (1 if kind == "disappear" else 0),
                                  "x": pos[:, 0], "y": pos[:, 1]}))
    # per-frame labels that mean the same thing in every frame (intensity classes
    # are refitted per frame, so their numbers are not compared)
    # the descriptors' site (metal / chalcogen) when labelled, else the atoms' sublattice
    sub = "site" if "site" in t else "sublattice"
    for col, kind in ((sub, "sublattice_change"), ("species", "species_change"),
                      ("phase", "phase_flip")):
        if col not in t:
            continue
        s = t.sort_values(["track", "frame"])
        # labels of border-cut (flagged) or unassigned columns are not evidence of a change
        if "flag" in s:
            s = s[~s["flag"].astype(bool)]
        if col == "sublattice":
            s = s[s["sublattice"] >= 0]
        if col == "site":
            s = s[s["site"].isin(["metal", "chalcogen"])]
        if col == "phase":
            # a boundary column is "undetermined" for a while: a flip is 2H <-> 1T between
            # determined labels, reported at the first frame of the new one
            s = s[s["phase"].isin(["2H", "1T"])]
        same = s["track"].to_numpy()[1:] == s["track"].to_numpy()[:-1]
        v = s[col].to_numpy()
        changed = np.nonzero(same & (v[1:] != v[:-1]))[0] + 1
        rows.append(pd.DataFrame({"event": kind, "track": s["track"].to_numpy()[changed],
                                  "frame": s["frame"].to_numpy()[changed],
                                  "x": s["x"].to_numpy()[changed],
                                  "y": s["y"].to_numpy()[changed]}))
    ev = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["event", "track", "frame", "x", "y"])
    return ev.sort_values(["frame", "event", "track"], kind="stable").reset_index(drop=True)


class Tracks:
    """Columns linked across the frames of a series.

    Attributes
    ----------
    table : DataFrame
        One row per detection: ``frame``, ``time``, ``track`` and the atoms
        table's columns (``x``, ``y`` in each frame's pixels; ``x_corr``,
        ``y_corr`` drift-corrected into frame 0's coordinates).
    drift : ndarray
        ``(n_frames, 2)`` shifts (dx, dy), px.
    events : DataFrame
        ``event`` (appear, disappear, enter / exit (at the border: drifted into
        or out of the field of view), unassigned (a track whose detections were
        never put on a sublattice: a noise peak or an off-lattice object), sublattice_change, species_change
        (when the table has a ``species`` column), phase_flip (``phase`` column)), ``track``, ``frame`` (first frame of the new state),
        ``x``, ``y``.
    """

    def __init__(self, table: pd.DataFrame, drift: np.ndarray, metadata: dict | None = None):
        self.table = table.reset_index(drop=True)
        self.drift = np.asarray(drift, float)
        self.metadata = dict(metadata or {})
        f = self.table["frame"]
        shape = self.metadata.get("shape")
        self.events = _events(self.table, int(f.min()), int(f.max()), shape,
                              float(self.metadata.get("edge_margin", 0.0)))

    def __len__(self) -> int:
        return int(self.table["track"].nunique())

    def __repr__(self) -> str:
        return (f"<Tracks: {len(self)} tracks over {self.table['frame'].nunique()} frames, "
                f"{len(self.events)} events>")

    def to_dataframe(self) -> pd.DataFrame:
        """The detections table (a copy)."""
        return self.table.copy()

    def trajectory(self, track: int) -> pd.DataFrame:
        """All detections of one track, by frame."""
        return self.table[self.table["track"] == track].sort_values("frame")

    def plot(self, image=None, ax=None, min_length: int = 2, frame: int | None = None):
        """Tracks over an image, events marked.

        Parameters
        ----------
        image : array or signal, optional
            Drawn underneath (e.g. a frame, or the drift-corrected mean).
        ax : matplotlib Axes, optional
        min_length : int
            Shortest track drawn (detections).
        frame : int, optional
            Draw in that frame's pixel coordinates (drift added back; pass
            that frame as ``image``) and mark the events of that frame only;
            default: frame-0 coordinates, all events.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        if image is not None:
            ax.imshow(np.asarray(getattr(image, "data", image)), cmap="gray")
        x = "x_corr" if "x_corr" in self.table else "x"
        y = "y_corr" if "y_corr" in self.table else "y"
        n = len(self.drift)
        if frame is not None and not 0 <= int(frame) < max(n, 1):
            raise InvalidParameterError(f"frame must be in 0..{n - 1}, got {frame}.")
        dx, dy = (self.drift[int(frame)] if frame is not None and n else (0.0, 0.0))
        t = self.table
        long = t.groupby("track")["frame"].transform("size") >= min_length
        # one line per track, drawn as one NaN-separated polyline (no loop over tracks)
        s = t[long].sort_values(["track", "frame"])
        brk = np.r_[s["track"].to_numpy()[1:] != s["track"].to_numpy()[:-1], True]
        xs = np.insert(s[x].to_numpy(float) + dx, np.flatnonzero(brk) + 1, np.nan)
        ys = np.insert(s[y].to_numpy(float) + dy, np.flatnonzero(brk) + 1, np.nan)
        ax.plot(xs, ys, lw=0.8, color="tab:cyan")
        ev = self.events if frame is None else self.events[self.events["frame"] == int(frame)]
        colors = {"appear": "lime", "disappear": "red", "phase_flip": "orange"}
        for kind, g in ev.groupby("event"):
            f = g["frame"].clip(upper=n - 1).to_numpy()
            ax.scatter(g["x"] - self.drift[f, 0] + dx, g["y"] - self.drift[f, 1] + dy,
                       s=40, facecolors="none", edgecolors=colors.get(kind, "yellow"),
                       label=kind)
        if len(ev):
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title(repr(self) if frame is None else f"{self!r}, frame {int(frame)}")
        return ax

    def save(self, path: str | Path) -> Path:
        """Save as CSV + JSON sidecar (drift, metadata); lossless."""
        return save_table(path, self.table, FORMAT, FORMAT_VERSION,
                          {"drift": self.drift.tolist(), "metadata": self.metadata})

    @classmethod
    def load(cls, path: str | Path) -> Tracks:
        """Read what :meth:`save` wrote."""
        table, side = load_table(path, FORMAT, FORMAT_VERSION,
                                 required=("x", "y", "frame", "track"))
        return cls(table, np.asarray(side.get("drift", np.zeros((0, 2))), float),
                   side.get("metadata", {}))


def track_series(series, max_disp: float | None = None, memory: int = 1, drift=None,
                 progress=None, descriptors: str | None = None, **find_kwargs) -> Tracks:
    """Drift, atoms of every frame, and tracks: the whole chain on a series.

    One pass over the frames (each is read once: registered to the previous
    one, then its atoms found), then one linking pass over the table.

    Parameters
    ----------
    series : AtomicSeries, (n, y, x) array or list of 2D frames
        Not modified; a lazy series is read frame by frame.
    max_disp : float, optional
        Largest displacement (px) between frames after drift correction;
        default 0.35 x the column separation found on frame 0.
    memory : int
        Frames a column may be missed and keep its track.
    drift : ndarray, optional
        Known ``(n_frames, 2)`` shifts; default: estimated in the same pass.
    progress : callable, optional
        ``progress(done, total)`` after each frame.
    descriptors : {"hexagonal"}, optional
        Label each frame's columns (site, phase, ...), which gives
        ``phase_flip`` events and feeds :func:`series_descriptors`.
    **find_kwargs
        Passed to :func:`causalspy.find_atoms`.

    Returns
    -------
    Tracks
    """
    from causalspy.dynamics.drift import _frames
    from causalspy.dynamics.series import _time_axis, find_atoms_series

    table = find_atoms_series(series, drift="estimate" if drift is None else drift,
                              progress=progress, descriptors=descriptors, **find_kwargs)
    if drift is None:
        drift = table.attrs.pop("drift")
    table.attrs.clear()
    if max_disp is None:
        sep = find_kwargs.get("separation")
        if sep is None:
            p0 = table.loc[table["frame"] == table["frame"].min(), ["x", "y"]].to_numpy()
            d, _ = cKDTree(p0).query(p0, k=2)
            sep = float(np.median(d[:, 1]))
        max_disp = 0.35 * sep
    linked = link(table, max_disp=max_disp, memory=memory)
    data, _ = _frames(series)
    t_ax = _time_axis(series)
    meta = {"max_disp": max_disp, "memory": memory,
            "shape": [int(v) for v in np.shape(data)[1:]], "edge_margin": 2.0 * max_disp,
            "frame_time": float(t_ax.scale) if t_ax is not None else 1.0,
            "time_units": str(t_ax.units) if t_ax is not None else "frame"}
    if hasattr(series, "axes_manager"):
        ax = series.axes_manager.signal_axes
        meta["calibration"] = {"x_scale": float(ax[0].scale), "y_scale": float(ax[1].scale),
                               "x_units": str(ax[0].units)}
    return Tracks(linked, drift, meta)
