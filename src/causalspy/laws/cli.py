"""``causalspy laws TABLE.csv --time t [--columns a,b] [--library poly2] [--out law.json]``.

:func:`add_laws_parser` adds the sub-command to the main parser of
:mod:`causalspy.cli`; bad input raises :class:`~causalspy.exceptions.CausalspyError`
(shown there as one line, exit status 2).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_laws_parser", "cmd_laws"]


def cmd_laws(args: argparse.Namespace) -> int:
    """Discover a law from a CSV table, print its equations and write the JSON."""

    from causalspy._fileio import read_table
    from causalspy.laws.discover import discover

    table = read_table(args.table)
    law = discover(table, time=args.time, columns=args.columns, library=args.library,
                   threshold=args.threshold, criterion=args.criterion,
                   ensemble=not args.no_ensemble, n_models=args.n_models, seed=args.seed,
                   smoothing=None if args.smoothing == 0 else
                   ("auto" if args.smoothing is None else args.smoothing))
    for eq in law.equations():
        print(eq)
    out = law.save(args.out)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_laws_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``laws`` to ``subparsers`` (from ``ArgumentParser.add_subparsers()``); returns it."""
    p = subparsers.add_parser(
        "laws", help="discover a parsimonious ODE (SINDy) from a time-series table (CSV)",
        description="Sparse identification of nonlinear dynamics on descriptor time series. "
                    "Writes JSON with 'equations' and 'coefficients' ({target: {term: value}}, "
                    "terms named as pysindy names them), intervals and inclusion probabilities.")
    p.add_argument("table", help="CSV file, one row per time")
    p.add_argument("--time", default="t", help="time column (default: t)")
    p.add_argument("--columns", default=None,
                   help="comma-separated variables (default: all other numeric columns)")
    p.add_argument("--library", default="poly2", help="poly1..poly6 (default: poly2)")
    p.add_argument("--criterion", default="aicc", choices=("aicc", "bic", "cv"),
                   help="how the sparsity threshold is chosen (default: aicc)")
    p.add_argument("--threshold", type=float, default=None,
                   help="fixed relative threshold in (0, 1) instead of a criterion")
    p.add_argument("--smoothing", type=int, default=None,
                   help="Savitzky-Golay window (odd; 0 = no smoothing; default 11)")
    p.add_argument("--no-ensemble", action="store_true", help="skip the bagging ensemble")
    p.add_argument("--n-models", type=int, default=100, help="ensemble size (default: 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="law.json", help="output JSON (default: law.json)")
    p.set_defaults(func=cmd_laws)
    return p
