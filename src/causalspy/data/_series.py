"""Synthetic atomic-resolution image series: drift, noise and single-atom hops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalspy.data._hexagonal import hexagonal
from causalspy.data._render import render_columns
from causalspy.exceptions import InvalidParameterError

__all__ = ["SeriesTruth", "drifting_series"]


@dataclass
class SeriesTruth:
    """Ground truth of :func:`drifting_series`.

    Attributes
    ----------
    columns : pandas.DataFrame
        One row per (frame, site): ``frame``, ``site`` (stable id), ``x``,
        ``y`` (true centre in that frame's pixels, drift included),
        ``present``, ``sublattice``, ``species``.
    drift : ndarray
        ``(n_frames, 2)`` true shift (x, y) of frame k relative to frame 0, px.
    events : pandas.DataFrame
        Vacancy hops: ``frame`` (first frame of the new state), ``site_from``
        (column that disappears), ``site_to`` (vacant site that fills).
    frame_time : float
        Seconds between frames.
    """

    columns: pd.DataFrame
    drift: np.ndarray
    events: pd.DataFrame
    frame_time: float


def drifting_series(n_frames: int = 20, cells: tuple[int, int] = (10, 10), a_px: float = 20.0,
                    counts: float = 1e4, drift_per_frame: tuple[float, float] = (0.6, -0.35),
                    drift_jitter: float = 0.4, hops: int = 3, frame_time: float = 0.5,
                    vacancy_fraction: float = 0.03, noise: bool = True, seed: int = 0):
    """A drifting HAADF series of a MoS2-like monolayer with vacancy hops.

    Frame 0 is :func:`causalspy.data.hexagonal` (2H, with dopants and
    chalcogen vacancies). Each later frame moves the whole lattice by a
    linear drift plus a random walk (``drift_jitter`` px per frame), and
    ``hops`` times a chalcogen column next to a vacancy jumps into it (the
    column disappears from its site and appears on the vacant neighbour).
    Frames are rendered with the same column model and Poisson noise.

    Returns
    -------
    signal : AtomicSeries
        ``(time | y, x)`` counts; time axis in s, image axes in nm.
    truth : SeriesTruth
    """
    if n_frames < 2:
        raise InvalidParameterError("A series needs at least 2 frames.")
    rng = np.random.default_rng(seed)
    img0, t0 = hexagonal(cells=cells, a_px=a_px, counts=counts, vacancy_fraction=vacancy_fraction,
                         seed=int(rng.integers(2 ** 31)), noise=False)
    cols = t0.columns.reset_index(drop=True)
    shape = img0.data.shape
    steps = np.asarray(drift_per_frame, float) + rng.normal(0, drift_jitter, (n_frames - 1, 2))
    drift = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
    present = cols["present"].to_numpy(bool).copy()
    counts_col = cols["counts"].to_numpy(float).copy()
    chal = cols["sublattice"].to_numpy() == 1
    xy = cols[["x", "y"]].to_numpy()
    # hops: a present chalcogen next to a vacant chalcogen site moves into it
    hop_frames = np.sort(rng.choice(np.arange(1, n_frames), size=min(hops, n_frames - 1),
                                    replace=False)) if hops else np.array([], int)
    bg = float(t0.params.get("background", 1.0))
    sigma = cols["sigma"].to_numpy(float)
    frames = np.empty((n_frames,) + shape, np.float32)
    rows, events = [], []
    for k in range(n_frames):   # one render per frame (vectorized over columns)
        if k in hop_frames:
            vac = np.nonzero(chal & ~present)[0]
            full = np.nonzero(chal & present)[0]
            if vac.size and full.size:
                d = np.hypot(*(xy[vac][:, None, :] - xy[full][None, :, :]).transpose(2, 0, 1))
                near = d < 1.1 * a_px   # chalcogen columns are one lattice constant apart
                cand = np.argwhere(near)
                if cand.size:
                    i, j = cand[rng.integers(len(cand))]
                    src, dst = full[j], vac[i]
                    present[src], present[dst] = False, True
                    counts_col[dst], counts_col[src] = counts_col[src], 0.0
                    events.append((k, int(src), int(dst)))
        x = xy[:, 0] + drift[k, 0]
        y = xy[:, 1] + drift[k, 1]
        on = present & (counts_col > 0)
        lam = render_columns(shape, x[on], y[on], counts_col[on], sigma[on], bg)
        frames[k] = rng.poisson(lam) if noise else lam
        rows.append(pd.DataFrame({"frame": k, "site": np.arange(len(cols)), "x": x, "y": y,
                                  "present": present.copy(), "sublattice": cols["sublattice"],
                                  "species": cols["species"]}))
    from causalspy.signals.atomic_series import AtomicSeries

    s = AtomicSeries(frames)
    t_ax = s.axes_manager.navigation_axes[0]
    t_ax.name, t_ax.units, t_ax.scale = "time", "s", frame_time
    for a_in, a_out in zip(img0.axes_manager.signal_axes, s.axes_manager.signal_axes, strict=True):
        a_out.name, a_out.units, a_out.scale, a_out.offset = (a_in.name, a_in.units, a_in.scale,
                                                              a_in.offset)
    s.metadata.General.title = "synthetic drifting series"
    truth = SeriesTruth(columns=pd.concat(rows, ignore_index=True), drift=drift,
                        events=pd.DataFrame(events, columns=["frame", "site_from", "site_to"]),
                        frame_time=frame_time)
    return s, truth
