"""``causalspy wall PROFILE.csv --x x --y p --out DIR``: fit a domain-wall profile.

Hook into the main parser with :func:`add_wall_parser`; the handler returns 0
and raises :class:`~causalspy.exceptions.CausalspyError` on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from causalspy.exceptions import FileReadError, InvalidParameterError

__all__ = ["add_wall_parser", "cmd_wall"]


def cmd_wall(args) -> int:
    """Handler of ``causalspy wall``: writes ``posterior.json``, ``posterior.nc``,
    ``fit.png`` (and ``comparison.json`` with ``--compare``) to ``--out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from causalspy.bayes import compare, fit, get_model

    path = Path(args.profile)
    if not path.exists():
        raise FileReadError(f"No such file: {path}")
    try:
        df = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - any parser failure is a bad file
        raise FileReadError(f"Could not read {path} as a CSV table: {e}") from e
    for col in (args.x, args.y) + ((args.yerr,) if args.yerr else ()):
        if col not in df.columns:
            raise InvalidParameterError(
                f"Column {col!r} is not in {path.name}; its columns are {list(df.columns)}.")
    get_model(args.model)
    x = pd.to_numeric(df[args.x], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[args.y], errors="coerce").to_numpy(float)
    yerr = pd.to_numeric(df[args.yerr], errors="coerce").to_numpy(float) if args.yerr else None
    kw = dict(yerr=yerr, x_unit=args.x_unit, y_unit=args.y_unit, chains=args.chains,
              warmup=args.warmup, draws=args.draws, seed=args.seed, label=path.stem)
    post = fit(x, y, args.model, args.prior, **kw)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    post.save(out / "posterior.nc")
    result = post.to_dict()
    ax = post.plot()
    ax.figure.savefig(out / "fit.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    if args.compare:
        others = [m.strip() for m in args.compare.split(",") if m.strip() and m.strip() !=
                  args.model]
        fits = {args.model: post}
        for m in others:
            fits[m] = fit(x, y, m, None, **kw)
        c = compare(fits)
        result["comparison"] = {"verdict": c.verdict, "best": c.best, "weights": c.weights,
                                "warnings": c.warnings}
    (out / "posterior.json").write_text(json.dumps(result, indent=1, allow_nan=True))
    s = post.summary()
    print(f"{post.model.name} fit of {x.size} points -> {out}")
    for n in s.index:
        r = s.loc[n]
        print(f"  {n} = {r['mean']:.4g} ± {r['sd']:.2g} {r['unit']}  "
              f"(90 % HDI {r['hdi_low']:.4g} .. {r['hdi_high']:.4g})")
    if "comparison" in result:
        print(f"comparison: {result['comparison']['verdict']}")
    for w in post.warnings:
        print(f"warning: {w}")
    return 0


def add_wall_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``wall`` sub-command to an ``argparse`` sub-parser collection."""
    from causalspy.bayes.models import MODELS

    w = subparsers.add_parser(
        "wall", help="Bayesian fit of a domain-wall profile (NumPyro NUTS)",
        description="Fit P(x) = P_s tanh((x - x0)/w) + b (or another model) to a profile "
                    "table; writes posterior.json, posterior.nc (ArviZ netCDF) and fit.png.")
    w.add_argument("profile", help="CSV table with one row per point of the profile")
    w.add_argument("--x", required=True, help="column of positions across the wall")
    w.add_argument("--y", required=True, help="column of values (e.g. polarization)")
    w.add_argument("--yerr", default=None, help="column of known per-point standard errors")
    w.add_argument("--model", choices=sorted(MODELS), default="tanh")
    w.add_argument("--prior", action="append", default=[], metavar="NAME=FAMILY(ARGS)",
                   help='prior in data units, e.g. "w=LogNormal(0,1)" (repeatable)')
    w.add_argument("--compare", default=None, metavar="M1,M2",
                   help="also fit these models and compare by PSIS-LOO, e.g. linear,tanh_slope")
    w.add_argument("--x-unit", default="", help="unit of x (for reports)")
    w.add_argument("--y-unit", default="", help="unit of y (for reports)")
    w.add_argument("--chains", type=int, default=4)
    w.add_argument("--warmup", type=int, default=500)
    w.add_argument("--draws", type=int, default=1000)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--out", required=True, help="output directory")
    w.set_defaults(func=cmd_wall)
    return w
