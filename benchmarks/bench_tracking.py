"""Tracking numbers for the image-series issue.

On ``drifting_series`` (MoS2-like, 1e4 counts/column, linear drift + random walk,
vacancy hops) prints: the fraction of links joining detections of the same true
column, the drift error, hops found as appear/disappear events, and the cost per
frame of the whole chain (drift + atoms + linking) as a ratio to single-image
``find_atoms`` on the same frames, in the same run.

Run: ``.venv/bin/python benchmarks/bench_tracking.py``
"""

from __future__ import annotations

import time

import numpy as np
from scipy.spatial import cKDTree

from causalspy import find_atoms
from causalspy.data import drifting_series
from causalspy.dynamics import track_series
from causalspy.signals import AtomicResolution


def link_accuracy(tk, tr, n_frames):
    t = tk.table
    site = np.full(len(t), -1)
    for f in range(n_frames):
        c = tr.columns[(tr.columns.frame == f) & tr.columns.present]
        m = t.frame.to_numpy() == f
        d, j = cKDTree(c[["x", "y"]].to_numpy()).query(t.loc[m, ["x", "y"]].to_numpy())
        site[m] = np.where(d < 2, c.site.to_numpy()[j], -1)
    t = t.assign(site=site).sort_values(["track", "frame"])
    same = t.track.to_numpy()[1:] == t.track.to_numpy()[:-1]
    a, b = t.site.to_numpy()[:-1], t.site.to_numpy()[1:]
    good = (a == b) & (a >= 0)
    # edge-flagged detections (columns cut by the border) can sit > 2 px from the truth
    interior = same & ~(t.edge.to_numpy()[:-1] | t.edge.to_numpy()[1:])
    return int(same.sum()), float(np.mean(good[same])), float(np.mean(good[interior]))


def main(seeds=(0, 1, 2), n_frames=20):
    for seed in seeds:
        s, tr = drifting_series(n_frames=n_frames, cells=(14, 14), hops=4, seed=seed)
        t0 = time.perf_counter()
        tk = track_series(s)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        for k in range(3):
            find_atoms(AtomicResolution(np.asarray(s.data[k])))
        single = (time.perf_counter() - t1) / 3
        n, ok, ok_in = link_accuracy(tk, tr, n_frames)
        ev = tk.events
        real = ev[ev.event.isin(["appear", "disappear"])]
        print(f"seed {seed}: {s.data.shape}, links {n}, correct {100 * ok:.2f} % (between interior columns {100 * ok_in:.2f} %), drift error max "
              f"{np.abs(tk.drift - tr.drift).max():.3f} px, hops {len(tr.events)} -> "
              f"appear/disappear events {len(real)}, cost per frame {dt / n_frames:.2f} s = "
              f"{dt / n_frames / single:.2f}x single-image find_atoms")


if __name__ == "__main__":
    main()
