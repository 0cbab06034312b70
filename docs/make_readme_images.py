"""Render the README's pictures of real output from the gallery examples.

Each example runs on built-in sample data (non-interactive backend); the figure
named below is saved to ``docs/images/``. Run from the project root::

    .venv/bin/python docs/make_readme_images.py [name ...]
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent
#: picture name -> (gallery example, which of its figures: 1-based number)
PICTURES = {
    "hexagonal_phase": ("plot_hexagonal_descriptors.py", 1),
    "laws_landau": ("plot_laws.py", 1),
    "bayes_wall": ("plot_bayes_wall.py", 2),
    "nucleation_map": ("plot_nucleation.py", 1),
}


def main(names: list[str]) -> int:
    out = ROOT / "images"
    out.mkdir(exist_ok=True)
    plt.show = lambda *a, **k: None  # examples call plt.show(); keep their figures open
    for name in names or list(PICTURES):
        script, number = PICTURES[name]
        plt.close("all")
        runpy.run_path(str(ROOT / "examples" / script), run_name="__main__")
        fig = plt.figure(plt.get_fignums()[number - 1])
        fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
        print(f"{name}: {script} figure {number} -> {out / (name + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
