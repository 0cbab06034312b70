"""``causalspy nucleation SERIES --before N --out DIR``: probability map, table, validation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_nucleation_parser", "cmd_nucleation"]


def cmd_nucleation(args: argparse.Namespace) -> int:
    """Predict nucleation sites from the frames before ``--before``; write the results."""
    from causalspy._tableio import jsonable
    from causalspy.dynamics.cli import _load_series
    from causalspy.dynamics.nucleation import predict_nucleation
    from causalspy.dynamics.nucleation_result import NucleationPrediction

    s = _load_series(args.series, lazy=not args.eager)
    train = NucleationPrediction.load(args.train) if args.train else None
    kw = {} if args.separation is None else {"find_kwargs": {"separation": args.separation}}
    res = predict_nucleation(
        s, before=args.before, after=args.after, model=args.model, train=train,
        radius=args.radius, window=args.window, n_boot=args.bootstrap, n_shuffle=args.shuffle,
        causal=not args.no_causal, seed=args.seed,
        progress=(lambda k, n: print(f"label window {k}/{n}", file=sys.stderr))
        if args.verbose else None, **kw)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = res.save(out / "nucleation_sites.csv")
    (out / "validation.json").write_text(json.dumps(jsonable(res.summary()), indent=1,
                                                    allow_nan=True))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = res.plot()
    ax.figure.savefig(out / "probability_map.png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    print(res.verdict)
    print(f"wrote {table}, {out / 'validation.json'} and {out / 'probability_map.png'}",
          file=sys.stderr)
    return 0


def add_nucleation_parser(sub) -> None:
    """Add the ``nucleation`` sub-command to the main parser."""
    p = sub.add_parser("nucleation", help="image series -> where the new phase will nucleate "
                       "(probability map, table, validation)")
    p.add_argument("series", help="image series file (time | y, x): dm4, emd, tif stack, hspy, ...")
    p.add_argument("--before", type=int, required=True,
                   help="first frame NOT used for the prediction (frames 0..N-1 must be "
                   "untransformed)")
    p.add_argument("--after", type=int, default=None,
                   help="labels from frames before..AFTER-1 (default: to the end)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--model", choices=["hazard", "logistic"], default="hazard")
    p.add_argument("--train", default=None,
                   help="reuse a saved prediction's model (its nucleation_sites.csv)")
    p.add_argument("--radius", type=float, default=2.0,
                   help="neighbourhood radius (lattice parameters)")
    p.add_argument("--window", type=int, default=None, help="frames averaged per label window")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples")
    p.add_argument("--shuffle", type=int, default=20, help="shuffled-descriptor refits")
    p.add_argument("--no-causal", action="store_true", help="skip the causal graph")
    p.add_argument("--separation", type=float, default=None, help="column separation (px)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eager", action="store_true", help="load into memory (default: lazy)")
    p.add_argument("--verbose", action="store_true", help="print progress per label window")
    p.set_defaults(func=cmd_nucleation)
