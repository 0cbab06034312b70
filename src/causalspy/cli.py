"""Command line: ``causalspy atoms IMAGE --out atoms.csv`` and ``causalspy demo --out DIR``.

Bad input ends with exit status 2 and one line on stderr (no traceback;
``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from causalspy._version import __version__
from causalspy.exceptions import CausalspyError, InvalidImageError

__all__ = ["main"]

EXIT_BAD_INPUT = 2


def _load_image(path: str, frame: int | None, lazy: bool):
    """Read one 2D image with RosettaSciIO (``hs.load``), keeping the calibration."""
    from causalspy._fileio import load_file

    s = load_file(path, lazy, "Is it a complete file in a format RosettaSciIO reads (dm3/dm4, "
                  "emd, tif, mrc, hspy, zspy, ...)?")
    if isinstance(s, list):
        images = [x for x in s if x.axes_manager.signal_dimension == 2]
        if not images:
            raise InvalidImageError(f"{path} holds {len(s)} signals but no 2D image.")
        s = images[0]
    nav = s.axes_manager.navigation_dimension
    if s.axes_manager.signal_dimension != 2:
        if s.data.ndim == 2:
            s = s.as_signal2D((0, 1))
            nav = 0
        else:
            raise InvalidImageError(
                f"{path} holds a {s.data.ndim}D dataset with signal dimension "
                f"{s.axes_manager.signal_dimension}; an image (2D) is needed."
            )
    if nav > 0:
        n = int(s.axes_manager.navigation_size)
        if frame is None:
            raise InvalidImageError(
                f"{path} is a stack of {n} images (navigation shape "
                f"{s.axes_manager.navigation_shape}); choose one with --frame N (0..{n - 1})."
            )
        if not 0 <= frame < n:
            raise InvalidImageError(f"--frame {frame} is out of range: the stack has {n} images.")
        if nav > 1:
            raise InvalidImageError("Stacks with more than one navigation axis are not supported "
                                    "yet; slice one image out in HyperSpy first.")
        s = s.inav[frame]
    elif frame not in (None, 0):
        raise InvalidImageError(f"{path} holds a single image; --frame {frame} does not apply.")
    s.set_signal_type("atomic_resolution")
    return s


def _cmd_atoms(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from causalspy.atoms.find import find_atoms

    s = _load_image(args.image, args.frame, args.lazy)
    atoms = find_atoms(
        s,
        separation=args.separation,
        refine=args.refine,
        invert=args.invert,
        nsigma=args.nsigma,
        edge=args.edge,
    )
    out = Path(args.out)
    atoms.save(out)
    if args.plot:
        import matplotlib.pyplot as plt

        ax = atoms.plot(image=s.data if not args.lazy else None)
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
    print(f"{len(atoms)} columns, {atoms.n_sublattices} sublattice(s), "
          f"{len(atoms.vacancies)} vacancies -> {out}")
    return 0


def _cmd_descriptors(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from causalspy.atoms.find import find_atoms
    from causalspy.descriptors import compute_descriptors

    s = _load_image(args.image, args.frame, args.lazy)
    atoms = find_atoms(s, separation=args.separation, refine=args.refine, invert=args.invert,
                       nsigma=args.nsigma, edge=args.edge)
    desc = compute_descriptors(atoms, structure=args.structure)
    out = Path(args.out)
    desc.save(out)
    if args.atoms_out:
        atoms.save(args.atoms_out)
    if args.maps:
        desc.to_maps().save(args.maps, overwrite=True)
    n_flag = int(desc.to_dataframe()["flag"].sum())
    print(f"{len(desc)} {'cells' if args.structure == 'perovskite' else 'sites'} "
          f"({n_flag} flagged), {len(desc.names)} descriptors -> {out}")
    return 0


def _cmd_causal(args) -> int:
    import pandas as pd

    from causalspy._fileio import read_table
    from causalspy.causal import Prior, discover

    df = read_table(args.table)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    if columns is None:
        from causalspy.causal.preprocess import _default_variables
        from causalspy.descriptors.result import INDEX_COLUMNS

        skip = set(INDEX_COLUMNS) | {"p_angle"}
        columns = [c for c in _default_variables(df) if c not in skip and not c.endswith("_cal")
                   and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    prior = Prior.parse(args.tiers, args.forbid, args.require)
    g = discover(df, method=args.method, columns=columns, prior=prior, bootstrap=args.bootstrap,
                 seed=args.seed, alpha=args.alpha)
    out = g.save(args.out)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = g.plot()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
    print(f"{g} -> {out}")
    for w in g.warnings:
        print(f"warning: {w}")
    return 0


DEFAULT_CAUSAL_COLUMNS = ["intensity_A", "intensity_B", "area", "p_mag", "tetragonality"]


def _cmd_analyze(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from causalspy.atoms.find import find_atoms
    from causalspy.causal import Prior, discover
    from causalspy.descriptors import compute_descriptors
    from causalspy.report import write_report

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = _load_image(args.image, args.frame, args.lazy)
    atoms = find_atoms(s, separation=args.separation, refine=args.refine, invert=args.invert,
                       nsigma=args.nsigma, edge=args.edge)
    atoms.save(out / "atoms.csv")
    desc = compute_descriptors(atoms, structure=args.structure)
    desc.save(out / "cells.csv")
    desc.to_maps().save(out / "descriptor_maps.hspy", overwrite=True)
    columns = ([c.strip() for c in args.columns.split(",")] if args.columns
               else [c for c in DEFAULT_CAUSAL_COLUMNS if c in desc.names])
    prior = Prior.parse(args.tiers, args.forbid, args.require)
    g = discover(desc, method=args.method, columns=columns, prior=prior,
                 bootstrap=args.bootstrap, seed=args.seed)
    g.save(out / "graph.json")
    rep = write_report(out / "report.html", atoms=atoms, descriptors=desc, graph=g,
                       title=f"causalspy analysis of {Path(args.image).name}")
    print(f"{len(atoms)} columns, {len(desc)} cells, {g} -> {rep}")
    for w in g.warnings:
        print(f"warning: {w}")
    return 0


def _add_causal_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--columns", default=None, help="comma-separated variables")
    c.add_argument("--method", choices=["lingam", "pc", "ges", "hc", "fci"], default="lingam")
    c.add_argument("--bootstrap", type=int, default=0, help="bootstrap resamples for confidences")
    c.add_argument("--tiers", default=None, help='causal order of groups, e.g. "a,b;c;d"')
    c.add_argument("--forbid", action="append", default=[], metavar="A:B",
                   help="forbidden edge A -> B (repeatable)")
    c.add_argument("--require", action="append", default=[], metavar="A:B",
                   help="required edge A -> B (repeatable)")
    c.add_argument("--seed", type=int, default=0)


def _add_atoms_options(a: argparse.ArgumentParser) -> None:
    a.add_argument("--separation", type=float, default=None,
                   help="smallest column separation in pixels (estimated if omitted)")
    a.add_argument("--refine", choices=["gaussian", "com", "none"], default="gaussian",
                   help="sub-pixel refinement (default: gaussian)")
    inv = a.add_mutually_exclusive_group()
    inv.add_argument("--invert", dest="invert", action="store_true", default=None,
                     help="dark columns on a bright background (ABF, BF)")
    inv.add_argument("--no-invert", dest="invert", action="store_false",
                     help="bright columns (HAADF); default: decided from the image")
    a.add_argument("--nsigma", type=float, default=6.0, help="detection threshold (noise sigmas)")
    a.add_argument("--edge", choices=["keep", "drop"], default="keep",
                   help="keep (flagged) or drop columns cut by the image border")
    a.add_argument("--frame", type=int, default=None, help="image index in a stack")
    a.add_argument("--lazy", action="store_true", help="read lazily and process in Dask tiles")


def _cmd_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from causalspy.data import match_columns, perovskite

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s, truth = perovskite(cells=(16, 16), counts=5e3, displacement_pm=25.0, domains="180",
                          a_site_disorder=0.05, seed=0)
    image_path = out / "sample_perovskite.hspy"
    s.save(image_path, overwrite=True)
    truth.columns.to_csv(out / "truth.csv", index=False)
    # read it back through RosettaSciIO, as a user's file would be
    s2 = _load_image(str(image_path), None, False)
    atoms = s2.find_atoms()
    atoms.save(out / "atoms.csv")
    ax = atoms.plot()
    ax.figure.savefig(out / "atoms_overlay.png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    desc = atoms.descriptors(structure="perovskite")
    desc.save(out / "cells.csv")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, name in zip(axes, ["dy_cal", "tetragonality", "exx"], strict=True):
        desc.plot(name, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "descriptor_maps.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    desc.to_maps().save(out / "descriptor_maps.hspy", overwrite=True)
    tp = truth.present()
    m = match_columns(atoms.positions, tp[["x", "y"]].to_numpy(),
                      0.3 * atoms.metadata["parameters"]["separation"])
    t = atoms.to_dataframe().iloc[m.found_index]
    err = np.hypot(t["x"].to_numpy() - tp["x"].to_numpy()[m.true_index],
                   t["y"].to_numpy() - tp["y"].to_numpy()[m.true_index])
    rep = np.sqrt(np.nanmean(t["x_err"] ** 2 + t["y_err"] ** 2))
    lines = [
        "causalspy demo: synthetic PbTiO3 [001] HAADF, 16x16 cells, 180-degree domains",
        f"image: {image_path.name} {s.data.shape[1]}x{s.data.shape[0]} px, "
        f"{s.axes_manager[0].scale:.4g} {s.axes_manager[0].units}/px",
        f"columns found: {len(atoms)} (truth {len(tp)}), recall {m.recall:.4f}, "
        f"precision {m.precision:.4f}",
        f"sublattices: {atoms.n_sublattices}, vacancies: {len(atoms.vacancies)}",
        f"position error RMS {np.sqrt(np.mean(err**2)):.4f} px "
        f"(reported 1-sigma radial {rep:.4f} px)",
        f"unit cells: {len(desc)} ({int(desc.to_dataframe()['flag'].sum())} flagged at edges), "
        f"B-site displacement dy: {np.nanmean(np.abs(desc['dy_cal'])) * 1e3:.1f} pm mean |dy| "
        f"(truth {truth.params['displacement_pm']:.0f} pm)",
        f"outputs: {out}/atoms.csv (+ .json), atoms_overlay.png, cells.csv (+ .json), "
        "descriptor_maps.png, descriptor_maps.hspy, truth.csv",
    ]
    lines += _demo_causal(out)
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _demo_causal(out: Path) -> list[str]:
    """Second part of the demo: an image rendered from a known causal model -> report."""
    from causalspy.causal import Prior, discover
    from causalspy.data import doped_ferroelectric, match_columns, render_perovskite
    from causalspy.report import write_report

    cells = (40, 40)
    sample = doped_ferroelectric(n=(cells[0] // 2) * (cells[1] // 2), seed=1)
    s, truth = render_perovskite(sample, cells=cells, seed=1, cell_px=16)
    image_path = out / "sample_doped_ferroelectric.hspy"
    s.save(image_path, overwrite=True)
    atoms = _load_image(str(image_path), None, False).find_atoms()
    desc = atoms.descriptors(structure="perovskite")
    d = desc.to_dataframe(flagged=False)
    units = truth.cells[truth.cells["unit"].astype(bool)]
    m = match_columns(d[["x", "y"]].to_numpy(), units[["x", "y"]].to_numpy(), 3.0)
    table = d.iloc[m.found_index][["intensity_A", "intensity_B", "area", "p_mag",
                                   "tetragonality"]].rename(columns={"area": "volume"})
    prior = Prior(tiers=[["intensity_A"], ["intensity_B", "volume", "p_mag", "tetragonality"]])
    g = discover(table, method="lingam", prior=prior, bootstrap=50, seed=0)
    g.save(out / "graph.json")
    write_report(out / "report.html", atoms=atoms, descriptors=desc, graph=g,
                 title="causalspy demo: doped ferroelectric rendered from a known causal model",
                 extra={"truth_edges": sorted(sample.observed_edges)})
    shd = sample.shd(g.directed_edges(), ignore=["x_position"])
    return [
        "causal demo: PbTiO3-like image rendered from a known model "
        "(dopant intensity -> cell volume -> polarization -> tetragonality)",
        f"  true edges:  {sorted(sample.observed_edges)}",
        f"  found edges: {sorted(g.directed_edges())}  (structural Hamming distance {shd})",
        f"  outputs: {out}/sample_doped_ferroelectric.hspy, graph.json, report.html",
    ]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="causalspy",
        description="Causal analysis of atomically resolved electron-microscopy data.",
    )
    p.add_argument("--version", action="version", version=f"causalspy {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("atoms", help="find atomic columns in an image and write a table")
    a.add_argument("image", help="image file (dm3/dm4, emd, tif, mrc, hspy, zspy, ...)")
    a.add_argument("--out", required=True, help="output table (.csv; a .csv.json sidecar is added)")
    _add_atoms_options(a)
    a.add_argument("--plot", default=None, help="also save an overlay PNG to this path")
    a.set_defaults(func=_cmd_atoms)

    ds = sub.add_parser("descriptors", help="per unit cell / per column descriptors of an image")
    ds.add_argument("image", help="image file (dm3/dm4, emd, tif, mrc, hspy, zspy, ...)")
    ds.add_argument("--structure", choices=["perovskite", "hexagonal"], required=True,
                    help="structure family")
    ds.add_argument("--out", required=True, help="output table (.csv; a .csv.json sidecar is added)")
    ds.add_argument("--maps", default=None, help="also save the descriptor maps (.hspy/.zspy)")
    ds.add_argument("--atoms-out", default=None, help="also save the atoms table (.csv)")
    _add_atoms_options(ds)
    ds.set_defaults(func=_cmd_descriptors)

    c = sub.add_parser("causal", help="learn a causal graph from a descriptor table (CSV)")
    c.add_argument("table", help="CSV table, one row per cell (e.g. from 'causalspy descriptors')")
    c.add_argument("--out", required=True, help="output graph (.json)")
    _add_causal_options(c)
    c.add_argument("--alpha", type=float, default=0.01, help="CI-test level (pc, fci)")
    c.add_argument("--plot", default=None, help="also save a PNG of the graph")
    c.set_defaults(func=_cmd_causal)

    an = sub.add_parser("analyze", help="image -> atoms -> descriptors -> causal graph, with an "
                        "HTML report")
    an.add_argument("image", help="image file (dm3/dm4, emd, tif, mrc, hspy, zspy, ...)")
    an.add_argument("--structure", choices=["perovskite"], required=True)
    an.add_argument("--out", required=True, help="output directory")
    _add_causal_options(an)
    _add_atoms_options(an)
    an.set_defaults(func=_cmd_analyze)

    from causalspy.laws.cli import add_laws_parser

    add_laws_parser(sub)

    from causalspy.bayes.cli import add_wall_parser

    add_wall_parser(sub)

    from causalspy.multimodal.cli import (
        add_coregister_parser,
        add_fourd_parser,
        add_spectral_parser,
    )

    add_fourd_parser(sub)
    add_spectral_parser(sub)
    add_coregister_parser(sub)

    from causalspy.dynamics.cli import add_track_parser

    add_track_parser(sub)

    from causalspy.dynamics.nucleation_cli import add_nucleation_parser

    add_nucleation_parser(sub)

    d = sub.add_parser("demo", help="run the main job on built-in sample data")
    d.add_argument("--out", required=True, help="output directory")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``causalspy`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CausalspyError, OSError) as e:
        if args.debug:
            raise
        print(f"causalspy: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # noqa: BLE001 - one line for the user, traceback with --debug
        if args.debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"causalspy: error: {type(e).__name__}: {msg} (rerun with --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
