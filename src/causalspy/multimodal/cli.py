"""Command line of the multimodal descriptors.

``causalspy fourd SCAN --out maps.hspy [--nmf K] [--mask dead.npy] [--plot maps.png]`` and
``causalspy spectral SI --out maps.hspy [--edges Ti_L23,O_K] [--plasmon 15,45]
[--eds-lines Fe_Ka] [--nmf K] [--plot maps.png]`` and
``causalspy coregister CELLS.csv MAPS.hspy [MAPS2 ...] --reference HAADF --moving ADF
--out table.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from causalspy.exceptions import FileReadError, InvalidImageError, InvalidParameterError

__all__ = ["add_coregister_parser", "add_fourd_parser", "add_spectral_parser", "cmd_coregister",
           "cmd_fourd", "cmd_spectral"]


def _load_4d(path: str, lazy: bool):
    from causalspy._fileio import load_file

    s = load_file(path, lazy, "Is it a complete 4D-STEM file RosettaSciIO reads (mib, blo, emd, "
                  "hspy, zspy, ...)?")
    if isinstance(s, list):
        four = [x for x in s if x.data.ndim == 4]
        if not four:
            raise FileReadError(f"{path} holds {len(s)} signals but no 4D dataset.")
        s = four[0]
    from causalspy.multimodal.fourdstem import check_4d

    check_4d(s)
    s.set_signal_type("diffraction_4d")
    return s


def _plot_maps(maps, path: str, diverging=()) -> None:
    """One PNG with every map of a ``descriptor_maps`` signal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = maps.descriptor_names
    n = len(names)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axs.ravel(), names, strict=False):
        ax.imshow(maps.get_map(name).data, cmap="RdBu_r" if name in diverging else "viridis")
        ax.set_title(name)
    for ax in axs.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cmd_fourd(args: argparse.Namespace) -> int:
    """Compute the 4D-STEM descriptor maps of a scan and save them."""
    import numpy as np

    from causalspy.multimodal.fourdstem import fourd_descriptor_maps

    s = _load_4d(args.scan, lazy=not args.eager)
    mask = None
    if args.mask:
        try:
            mask = np.load(args.mask).astype(bool)
        except (OSError, ValueError) as e:
            raise FileReadError(f"Could not read the mask {args.mask} (a .npy bool array): {e}") from e
    maps = fourd_descriptor_maps(s, mask=mask, decomposition=args.nmf)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    maps.save(str(out), overwrite=True)
    md = maps.metadata.Descriptors
    print(f"rotation {np.rad2deg(md.rotation_rad):.2f} deg, flip {md.flip}; "
          f"maps: {', '.join(maps.descriptor_names)}")
    if args.plot:
        _plot_maps(maps, args.plot, diverging=("charge", "dpc_x", "dpc_y"))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_fourd_parser(sub) -> None:
    """Add the ``fourd`` sub-command to the main parser."""
    p = sub.add_parser("fourd", help="4D-STEM scan -> CoM/DPC field, charge, potential, virtual "
                       "images (descriptor maps)")
    p.add_argument("scan", help="4D-STEM file (mib, blo, emd, hspy, zspy, ...)")
    p.add_argument("--out", required=True, help="output descriptor maps (.hspy or .zspy)")
    p.add_argument("--nmf", type=int, default=0, help="also K NMF loadings of the patterns")
    p.add_argument("--mask", default=None, help=".npy bool array, True on dead/hot detector pixels")
    p.add_argument("--eager", action="store_true", help="load into memory (default: lazy, out "
                   "of core)")
    p.add_argument("--plot", default=None, help="also save a PNG of all maps")
    p.set_defaults(func=cmd_fourd)


def _spectrum_images(s) -> list:
    """The spectrum images (one energy axis, two scan axes) among what ``hs.load`` returned."""
    sigs = s if isinstance(s, list) else [s]
    return [x for x in sigs if x.axes_manager.signal_dimension == 1
            and x.axes_manager.navigation_dimension == 2]


def _load_si(path: str, lazy: bool, index: int | None):
    from causalspy._fileio import load_file
    from causalspy.multimodal.spectral import check_spectrum_image

    s = load_file(path, lazy, "Is it a complete spectrum-image file RosettaSciIO reads (dm3/dm4, "
                  "emd, bcf, hspy, zspy, ...)?")
    found = _spectrum_images(s)
    n_all = len(s) if isinstance(s, list) else 1
    if not found:
        one = s[0] if isinstance(s, list) else s
        if n_all == 1:
            check_spectrum_image(one, navigation=(2,))  # says what is wrong with it
        raise InvalidImageError(f"{path} holds {n_all} signal(s) but no spectrum image (one "
                                "energy axis and two scan axes).")
    if index is None:
        if len(found) > 1:
            raise InvalidImageError(
                f"{path} holds {len(found)} spectrum images (e.g. low loss and core loss); "
                f"choose one with --index N (0..{len(found) - 1}).")
        index = 0
    if not 0 <= index < len(found):
        raise InvalidImageError(f"--index {index} is out of range: {path} holds {len(found)} "
                                "spectrum image(s).")
    si = found[index]
    check_spectrum_image(si, navigation=(2,))
    return si


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _window(text: str | None, what: str):
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameterError(f"{what} takes two energies 'LO,HI' (axis units), got "
                                    f"{text!r}.") from None
    if not lo < hi:
        raise InvalidParameterError(f"{what} needs LO < HI, got {text!r}.")
    return (lo, hi)


def _reference(path: str | None):
    """A reference spectrum for the chemical shift: a .npy array or a 1D spectrum file."""
    if path is None:
        return None
    import numpy as np

    if path.lower().endswith(".npy"):
        try:
            ref = np.load(path)
        except (OSError, ValueError) as e:
            raise FileReadError(f"Could not read the reference {path} (a .npy array): {e}") from e
    else:
        from causalspy._fileio import load_file

        r = load_file(path, False, "Is it a spectrum file RosettaSciIO reads?")
        r = r[0] if isinstance(r, list) else r
        if r.axes_manager.navigation_dimension:
            raise InvalidImageError(f"The reference {path} holds {r.axes_manager.navigation_size} "
                                    "spectra; give one spectrum (e.g. the standard's sum).")
        ref = np.asarray(r.data)
    ref = np.asarray(ref, float)
    if ref.ndim != 1:
        raise InvalidImageError(f"The reference must be one spectrum (1D); got shape {ref.shape}.")
    return ref


def cmd_spectral(args: argparse.Namespace) -> int:
    """Compute the spectral descriptor maps of a spectrum image and save them."""
    import numpy as np

    from causalspy.multimodal.spectral import eds_line, spectral_descriptor_maps

    edges = _names(args.edges)
    lines = [eds_line(x, fwhm=args.eds_fwhm) for x in _names(args.eds_lines)]
    plasmon = _window(args.plasmon, "--plasmon")
    if args.nmf < 0:
        raise InvalidParameterError(f"--nmf takes a number of components >= 0, got {args.nmf}.")
    if not (edges or lines or plasmon or args.nmf):
        raise InvalidParameterError("Nothing to measure: give --edges, --eds-lines, --plasmon "
                                    "and/or --nmf.")
    reference = _reference(args.reference)
    s = _load_si(args.si, lazy=not args.eager, index=args.index)
    maps = spectral_descriptor_maps(s, edges=edges, integrals=lines, plasmon=plasmon,
                                    decomposition=args.nmf, reference=reference,
                                    max_shift=args.max_shift)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    maps.save(str(out), overwrite=True)
    parts = []
    for name in maps.descriptor_names:
        if name.endswith("_err"):
            continue
        v = np.asarray(maps.get_map(name).data, float)
        ok = np.isfinite(v)
        txt = f"{name} {np.nanmedian(v) if ok.any() else float('nan'):.4g}"
        if f"{name}_err" in maps.descriptor_names:
            txt += f" +/- {np.nanmedian(maps.get_map(name + '_err').data):.2g}"
        if not ok.all():
            txt += f" ({int((~ok).sum())} px failed)"
        parts.append(txt)
    print(f"{s.axes_manager.navigation_shape[0]}x{s.axes_manager.navigation_shape[1]} spectra; "
          f"median per pixel: {'; '.join(parts)}")
    if args.plot:
        _plot_maps(maps, args.plot, diverging=tuple(n for n in maps.descriptor_names
                                                    if n.endswith("_shift")))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_spectral_parser(sub) -> None:
    """Add the ``spectral`` sub-command to the main parser."""
    p = sub.add_parser("spectral", help="EELS/EDS spectrum image -> edge onset and chemical "
                       "shift, L3/L2 ratio, plasmon, elemental signals, NMF loadings (descriptor "
                       "maps)")
    p.add_argument("si", help="spectrum image file (dm3/dm4, emd, bcf, hspy, zspy, ...) with a "
                   "calibrated energy axis (eV or keV)")
    p.add_argument("--out", required=True, help="output descriptor maps (.hspy or .zspy)")
    p.add_argument("--edges", default=None, help="comma-separated EELS edges, e.g. Ti_L23,O_K "
                   "(windows from exspy's database): onset, shift (+ error), L3/L2 for L2,3/M4,5")
    p.add_argument("--plasmon", default=None, metavar="LO,HI",
                   help="window of the plasmon peak (low loss), e.g. 15,45")
    p.add_argument("--eds-lines", default=None, help="comma-separated EDS lines, e.g. Fe_Ka,Sr_La "
                   "(background-subtracted integrals; energy axis in keV)")
    p.add_argument("--eds-fwhm", type=float, default=0.13, help="EDS line width, keV "
                   "(default 0.13)")
    p.add_argument("--nmf", type=int, default=0, help="also K NMF loadings of the spectra")
    p.add_argument("--reference", default=None, help="reference spectrum for the shift (.npy or "
                   "a 1D spectrum file, same energy axis); default: the mean spectrum")
    p.add_argument("--max-shift", type=float, default=5.0, help="largest shift searched "
                   "(axis units, default 5)")
    p.add_argument("--index", type=int, default=None, help="which spectrum image, when the file "
                   "holds several (e.g. dual EELS)")
    p.add_argument("--eager", action="store_true", help="load into memory (default: lazy, out "
                   "of core)")
    p.add_argument("--plot", default=None, help="also save a PNG of all maps")
    p.set_defaults(func=cmd_spectral)


def _load_maps(path: str):
    """A descriptor_maps file (or a single 2D image) for map_to_cells."""
    from causalspy._fileio import load_file

    m = load_file(path, False, "Is it a complete descriptor-maps file (from 'causalspy spectral' "
                  "or 'causalspy fourd') or a 2D image?")
    if isinstance(m, list):
        if len(m) != 1:
            raise InvalidImageError(f"{path} holds {len(m)} signals; give one maps file each.")
        m = m[0]
    am = m.axes_manager
    if not (am.signal_dimension == 2 and am.navigation_dimension <= 1):
        raise InvalidImageError(
            f"{path} is not a set of 2D maps (navigation {am.navigation_dimension}, signal "
            f"{am.signal_dimension} axes); give the output of 'causalspy spectral' or "
            "'causalspy fourd', or a 2D image.")
    return m


def cmd_coregister(args: argparse.Namespace) -> int:
    """Register another scan onto the structural image and add its maps to the cell table."""
    import numpy as np

    from causalspy._fileio import read_table
    from causalspy.cli import _load_image
    from causalspy.descriptors import Descriptors
    from causalspy.multimodal.coregister import map_to_cells, register

    table = read_table(args.cells, "a descriptor table (the .csv from 'causalspy descriptors', "
                       "with its .csv.json)", reader=Descriptors.load)
    if (args.reference is None) != (args.moving is None):
        raise InvalidParameterError("Registration needs both --reference (the structural image) "
                                    "and --moving (e.g. the ADF acquired with the spectra); give "
                                    "neither to place the maps through their calibrations.")
    maps = [_load_maps(p) for p in args.maps]
    reg = None
    if args.reference is not None:
        ref = _load_image(args.reference, None, False)
        mov = _load_image(args.moving, None, False)
        reg = register(ref, mov, scale=args.scale, rotation=args.rotation, model=args.model)
        print(f"registration: scale {reg.scale:.4f}, rotation {reg.rotation_deg:.3f} deg, shift "
              f"({reg.shift[0]:.2f}, {reg.shift[1]:.2f}) px, NCC {reg.ncc:.3f}, uncertainty "
              f"{reg.uncertainty_px:.4f} px")
    for m, path in zip(maps, args.maps, strict=True):
        table = map_to_cells(m, table, reg, mode=args.mode, radius=args.radius,
                             prefix=args.prefix, min_coverage=args.min_coverage,
                             errors=args.errors)
        prov = table.metadata["multimodal"][-1]
        print(f"{path}: {len(prov['names'])} maps onto {prov['cells_with_data']} of "
              f"{prov['cells']} cells ({prov.get('cells_dropped_at_field_edge', 0)} cut by the "
              "field edge left out)")
    out = table.save(args.out)
    n = len(table)
    ok = int(np.sum(np.isfinite(table.to_dataframe()[prov["names"][0]].to_numpy(float))))
    print(f"{n} cells, {len(table.names)} descriptors ({ok} cells with the new maps) -> {out}")
    return 0


def add_coregister_parser(sub) -> None:
    """Add the ``coregister`` sub-command to the main parser."""
    p = sub.add_parser("coregister", help="add per-pixel maps of another scan (spectral, "
                       "4D-STEM, an image) to a cell table: register, then average per cell")
    p.add_argument("cells", help="cell table (.csv from 'causalspy descriptors')")
    p.add_argument("maps", nargs="+", help="descriptor maps (.hspy/.zspy from 'causalspy "
                   "spectral' or 'causalspy fourd') or a 2D image, all of the same scan")
    p.add_argument("--out", required=True, help="output table (.csv; a .csv.json sidecar is added)")
    p.add_argument("--reference", default=None, help="the structural image the cells were found "
                   "in")
    p.add_argument("--moving", default=None, help="an image of the other scan with similar "
                   "contrast (e.g. the ADF acquired with the spectra)")
    p.add_argument("--scale", type=float, default=None, help="moving / reference pixel size "
                   "(default: from the calibrations, else estimated)")
    p.add_argument("--rotation", type=float, default=None, help="scan rotation in degrees, if "
                   "known (default: estimated)")
    p.add_argument("--model", choices=["affine", "similarity"], default="affine")
    p.add_argument("--mode", choices=["voronoi", "window"], default="voronoi",
                   help="average over each cell's Voronoi region or a window (--radius)")
    p.add_argument("--radius", type=float, default=None, help="window radius, structural px")
    p.add_argument("--prefix", default="", help="prepended to the new column names")
    p.add_argument("--min-coverage", type=float, default=0.5, help="cells cut by the maps' field "
                   "edge need this fraction of a full cell's pixels (default 0.5)")
    p.add_argument("--errors", action="store_true", help="also the standard error of each cell "
                   "mean (<name>_sem)")
    p.set_defaults(func=cmd_coregister)
