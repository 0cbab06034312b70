"""``causalspy fourd SCAN --out maps.hspy [--nmf K] [--mask dead.npy] [--plot maps.png]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from causalspy.exceptions import FileReadError

__all__ = ["add_fourd_parser", "cmd_fourd"]


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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = maps.descriptor_names
        n = len(names)
        cols = min(4, n)
        rows = (n + cols - 1) // cols
        fig, axs = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
        for ax, name in zip(axs.ravel(), names, strict=False):
            ax.imshow(maps.get_map(name).data, cmap="RdBu_r" if name in ("charge", "dpc_x",
                                                                         "dpc_y") else "viridis")
            ax.set_title(name)
        for ax in axs.ravel():
            ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
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
