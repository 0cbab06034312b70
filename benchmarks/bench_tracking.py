"""Tracking numbers for the image-series issue.

1. Link accuracy against truth on the issue's sample, ``insitu_series``
   (a drifting, Poisson-noisy 2H -> 1T MoS2-like series: linear drift +
   random walk, 1e4 counts per metal column, nucleation and growth of 1T,
   vacancy hops) and on ``drifting_series`` (2H with vacancy hops): the
   fraction of links joining detections of the same true column (all
   links, and links between columns not cut by the border), the drift
   error, and the true switch frames recovered as ``phase_flip`` events.
2. Cost: a long, large series (default 200 frames of 1024^2, generated
   lazily: frames are rendered when read, so memory stays bounded) written
   to a .zspy file and tracked from it lazily (drift + atoms + linking),
   cost per frame as a ratio to single-image ``find_atoms`` on frames of the
   same series, in the same run; peak memory of the tracking step.

Run: ``.venv/bin/python benchmarks/bench_tracking.py`` (about 40 min on 2
busy cores; ``--quick``: 3 seeds of 12 frames and a 30-frame 512^2 series).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import src_state  # noqa: E402
from causalspy import find_atoms  # noqa: E402
from causalspy.data import drifting_series, insitu_series  # noqa: E402
from causalspy.dynamics import track_series  # noqa: E402
from causalspy.dynamics.series import _as_image  # noqa: E402


def truth_columns(tk, positions_of_frame, n_frames, tol=1.5):
    """True column id of every detection (-1: none within ``tol`` px)."""
    t = tk.table
    col = np.full(len(t), -1)
    for f in range(n_frames):
        xy, ids = positions_of_frame(f)
        m = t["frame"].to_numpy() == f
        d, j = cKDTree(xy).query(t.loc[m, ["x", "y"]].to_numpy())
        col[m] = np.where(d < tol, ids[j], -1)
    return col


def link_scores(tk, col):
    t = tk.table.assign(col=col).sort_values(["track", "frame"])
    same = t["track"].to_numpy()[1:] == t["track"].to_numpy()[:-1]
    a, b = t["col"].to_numpy()[:-1], t["col"].to_numpy()[1:]
    good = (a == b) & (a >= 0)
    edge = t["edge"].to_numpy()
    interior = same & ~(edge[:-1] | edge[1:])
    swaps = same & (a >= 0) & (b >= 0) & (a != b)
    return int(same.sum()), float(good[same].mean()), int(interior.sum()), float(
        good[interior].mean()), int(swaps.sum())


def accuracy(seeds, n_frames):
    print(f"1. Links against truth ({n_frames} frames per series)")
    for seed in seeds:
        s, tr = insitu_series(n_frames=n_frames, shape=(256, 256),
                              hazard={"vacancy_density": 1.5}, transition_start=n_frames // 4,
                              hops=3, vacancy_fraction=0.05, seed=seed)
        t0 = time.perf_counter()
        tk = track_series(s, descriptors="hexagonal")
        dt = time.perf_counter() - t0

        def pos(f, tr=tr):
            c = tr.columns_at(f)
            c = c[c["present"]]
            return c[["x", "y"]].to_numpy(), c["column"].to_numpy()

        n, ok, n_in, ok_in, swaps = link_scores(tk, truth_columns(tk, pos, n_frames))
        # identity: the nearest true column within the linking radius (0.35 x the
        # metal-chalcogen distance a / sqrt(3)), however far off a border-cut fit is
        tol = 0.35 * tr.params["a_px"] / np.sqrt(3)
        _, ok_id, _, _, swaps_id = link_scores(tk, truth_columns(tk, pos, n_frames, tol))
        # metal phase flips vs the true switch frame of their site
        ev = tk.events
        metal = tk.table.loc[tk.table["site"] == "metal", "track"].unique()
        fl = ev[(ev["event"] == "phase_flip") & ev["track"].isin(metal)]
        xy0 = fl[["x", "y"]].to_numpy() - tr.drift[fl["frame"].to_numpy()]
        _, j = cKDTree(tr.sites[["x", "y"]].to_numpy()).query(xy0)
        # a measured label calls a metal 1T once all six chalcogen neighbours are: compare
        # with that frame (the truth's octahedral_frame)
        lag = fl["frame"].to_numpy() - tr.sites["octahedral_frame"].to_numpy()[j]
        n_true = int(((tr.sites["octahedral_frame"] > 0) & tr.sites["candidate"]).sum())
        print(f"   insitu seed {seed}: {s.data.shape}, links {n}: same true column "
              f"{100 * ok_id:.2f} % (swaps {swaps_id}); both ends within 1.5 px of it "
              f"{100 * ok:.2f} % (interior {n_in}: {100 * ok_in:.2f} %); drift error max "
              f"{np.abs(tk.drift - tr.drift).max():.3f} px; metal phase flips {len(fl)} (true "
              f"switches of always-visible metals {n_true}), at the true frame "
              f"{np.mean(lag == 0) * 100:.0f} %, within 1 frame "
              f"{np.mean(np.abs(lag) <= 1) * 100:.0f} %; {dt / n_frames:.2f} s/frame")
    s, tr = drifting_series(n_frames=n_frames, cells=(14, 14), hops=4, seed=seeds[0])

    def pos2(f):
        c = tr.columns[(tr.columns["frame"] == f) & tr.columns["present"]]
        return c[["x", "y"]].to_numpy(), c["site"].to_numpy()

    tk = track_series(s)
    n, ok, n_in, ok_in, swaps = link_scores(tk, truth_columns(tk, pos2, n_frames))
    _, ok_id, _, _, swaps_id = link_scores(
        tk, truth_columns(tk, pos2, n_frames, 0.35 * 20.0 / np.sqrt(3)))
    real = tk.events[tk.events["event"].isin(["appear", "disappear"])]
    print(f"   drifting_series seed {seeds[0]}: {s.data.shape}, links {n}: same true column "
          f"{100 * ok_id:.2f} % (swaps {swaps_id}); both ends within 1.5 px of it "
          f"{100 * ok:.2f} % (interior {n_in}: {100 * ok_in:.2f} %); drift "
          f"error max {np.abs(tk.drift - tr.drift).max():.3f} px, hops {len(tr.events)} -> "
          f"appear/disappear {len(real)}")


def cost(n_frames, size, n_single=6, n_track=None):
    n_track = min(n_track or n_frames, n_frames)
    print(f"2. Cost per frame, {n_frames} frames of {size}^2 (lazy, from a .zspy file)"
          + (f"; the first {n_track} frames tracked" if n_track < n_frames else ""))
    r = insitu_series(n_frames=n_frames, shape=(size, size), hazard={"strain": 1.0},
                      lazy=True, seed=7)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "series.zspy"
        t0 = time.perf_counter()
        r.signal.save(path, show_progressbar=False)   # rendered and written frame by frame
        t_write = time.perf_counter() - t0
        import hyperspy.api as hs

        s = hs.load(path, lazy=True)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # single-image reference on frames spread over the series, half before and half after
        # the chain (the machine's load drifts); wall and CPU (process) time both reported
        ks = np.linspace(0, n_frames - 1, n_single).astype(int)

        def reference(kk):
            frames = [np.asarray(s.data[k].compute()) for k in kk]
            w, c = time.perf_counter(), time.process_time()
            for f in frames:
                find_atoms(_as_image(f, s))
            return time.perf_counter() - w, time.process_time() - c

        w1, c1 = reference(ks[::2])
        w0, c0 = time.perf_counter(), time.process_time()
        tk = track_series(s if n_track == n_frames else s.inav[:n_track])
        chain_w = (time.perf_counter() - w0) / n_track
        chain_c = (time.process_time() - c0) / n_track
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        w2, c2 = reference(ks[1::2])
        single_w, single_c = (w1 + w2) / n_single, (c1 + c2) / n_single
        err = np.abs(tk.drift - r.truth.drift[:n_track]).max()
    size_mb = n_frames * size * size * 4 / 2 ** 20
    print(f"   written in {t_write:.0f} s; series {size_mb:.0f} MB as float32; tracks {len(tk)}, "
          f"detections {len(tk.table)}, drift error max {err:.3f} px")
    print(f"   single-image find_atoms {single_w:.2f} s/frame wall ({single_c:.2f} s CPU); whole "
          f"chain (read + drift + atoms + linking) {chain_w:.2f} s/frame wall ({chain_c:.2f} s "
          f"CPU) = {chain_w / single_w:.2f}x wall, {chain_c / single_c:.2f}x CPU; peak RSS "
          f"{rss0:.0f} MB before tracking, {rss1:.0f} MB after")


def main(argv=None):
    # RosettaSciIO's zspy writer warns about a zarr store deprecation on every save
    warnings.filterwarnings("ignore", category=FutureWarning)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only-cost", action="store_true", help="skip the accuracy section")
    p.add_argument("--skip-cost", action="store_true", help="skip the cost section")
    p.add_argument("--frames", type=int, default=None, help="frames of the cost series")
    p.add_argument("--size", type=int, default=None, help="frame size of the cost series")
    p.add_argument("--track-frames", type=int, default=None,
                   help="track only the first N frames of the cost series (time-boxed runs)")
    a = p.parse_args(argv)
    commit, h = src_state()
    print(f"source {commit} (atoms+data {h})")
    if not a.only_cost:
        accuracy((0, 1, 2), 12 if a.quick else 20)
    if not a.skip_cost:
        cost(a.frames or (30 if a.quick else 200), a.size or (512 if a.quick else 1024),
             n_track=a.track_frames)


if __name__ == "__main__":
    main()
