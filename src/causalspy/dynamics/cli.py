"""``causalspy track SERIES --out tracks.csv [--events events.csv] [--plot tracks.png] [--descriptors hexagonal]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_track_parser", "cmd_track"]


def _load_series(path: str, lazy: bool):
    from causalspy._fileio import load_file

    s = load_file(path, lazy, "Is it a complete image-series file RosettaSciIO reads (dm3/dm4, "
                  "emd, tif stack, hspy, zspy, ...)?")
    if isinstance(s, list):
        s = next((x for x in s if x.data.ndim == 3), s[0])
    from causalspy.dynamics.drift import check_series

    check_series(s)
    s.set_signal_type("atomic_series")
    return s


def cmd_track(args: argparse.Namespace) -> int:
    """Drift-correct, find atoms per frame, link tracks; write tables (and a plot)."""
    from causalspy.dynamics.track import track_series

    s = _load_series(args.series, lazy=not args.eager)
    kw = {} if args.separation is None else {"separation": args.separation}
    if args.descriptors:
        kw["descriptors"] = args.descriptors
    tracks = track_series(s, max_disp=args.max_disp, memory=args.memory,
                          progress=lambda k, n: print(f"frame {k}/{n}", file=sys.stderr)
                          if args.verbose else None, **kw)
    out = tracks.save(args.out)
    ev = Path(args.events) if args.events else out.with_name(out.stem + "_events.csv")
    tracks.events.to_csv(ev, index=False)
    counts = tracks.events["event"].value_counts().to_dict() if len(tracks.events) else {}
    print(f"{len(tracks)} tracks over {tracks.table['frame'].nunique()} frames; events: {counts}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        frame0 = np.asarray(s.data[0].compute() if s._lazy else s.data[0])
        ax = tracks.plot(frame0)
        ax.figure.savefig(args.plot, dpi=100)
        plt.close(ax.figure)
    print(f"wrote {out} and {ev}", file=sys.stderr)
    return 0


def add_track_parser(sub) -> None:
    """Add the ``track`` sub-command to the main parser."""
    p = sub.add_parser("track", help="image series -> drift, atoms per frame, tracks and events")
    p.add_argument("series", help="image series file (time | y, x): dm4, emd, tif stack, hspy, ...")
    p.add_argument("--out", required=True, help="output tracks table (.csv + .csv.json sidecar)")
    p.add_argument("--events", default=None, help="events table (default: OUT_events.csv)")
    p.add_argument("--separation", type=float, default=None, help="column separation (px)")
    p.add_argument("--max-disp", type=float, default=None,
                   help="largest displacement between frames after drift correction (px; "
                   "default 0.35 x separation)")
    p.add_argument("--memory", type=int, default=1, help="frames a column may be missed")
    p.add_argument("--descriptors", choices=["hexagonal"], default=None,
                   help="label columns per frame (site, local phase, ...): adds phase_flip "
                   "events and the labels to the table")
    p.add_argument("--eager", action="store_true", help="load into memory (default: lazy)")
    p.add_argument("--plot", default=None, help="also save a PNG of the tracks over frame 0")
    p.add_argument("--verbose", action="store_true", help="print progress per frame")
    p.set_defaults(func=cmd_track)
