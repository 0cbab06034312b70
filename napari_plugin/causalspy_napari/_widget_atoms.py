"""Dock widget *Find atoms*: image layer -> points layer of atomic columns."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton

import causalspy
from causalspy.exceptions import InvalidParameterError
from causalspy_napari._base import JobWidget, add_or_replace, notify
from causalspy_napari._convert import (
    META_KEY,
    atoms_from_layer,
    atoms_layer_data,
    check_image_layer,
    image_layer_signal,
    layer_step,
    vacancies_layer_data,
)
from causalspy_napari._jobs import dask_progress

__all__ = ["FindAtomsWidget"]

#: Images with more pixels than this are analysed lazily, in tiles that report
#: progress and can be cancelled (causalspy tiles such images anyway).
LAZY_PIXELS = 2048 * 2048

INVERT_CHOICES = [("auto", None), ("bright (HAADF)", False), ("dark (ABF, BF)", True)]


class FindAtomsWidget(JobWidget):
    """Find every atomic column of an image (``causalspy.find_atoms``).

    The result is a points layer on top of the image: point size from the
    fitted column width, face colour by sublattice, red border on dopant
    candidates, and the full Atoms table as ``features``; vacancies go to a
    second points layer.
    """

    job_title = "causalspy: find atoms"

    def __init__(self, napari_viewer) -> None:
        from napari.layers import Image

        self._viewer = napari_viewer
        self._image = ComboBox(label="image", choices=self._layer_choices(Image))
        self._separation = FloatSpinBox(
            value=0.0, min=0.0, max=10000.0, step=0.1, label="separation (px)",
            tooltip="Smallest distance between columns, in pixels. 0: estimated from the image "
                    "when you press Run.")
        self._estimate_btn = PushButton(text="Estimate",
                                        tooltip="Estimate the separation from the image now")
        sep_row = Container(widgets=[self._separation, self._estimate_btn], layout="horizontal",
                            labels=False, label="separation (px, 0 = auto)")
        self._refine = ComboBox(label="refinement", choices=["gaussian", "com", "none"],
                                value="gaussian",
                                tooltip="gaussian: 2D Gaussian fit with errors; com: centre of "
                                        "mass; none: detected peaks")
        self._invert = ComboBox(label="columns", choices=INVERT_CHOICES, value=None,
                                tooltip="Bright columns (HAADF) or dark columns (ABF, BF)")
        self._nsigma = FloatSpinBox(value=6.0, min=1.0, max=100.0, step=0.5,
                                    label="detection (noise sigmas)")
        self._save_btn = PushButton(text="Save atoms CSV…")
        super().__init__(napari_viewer, [self._image, sep_row, self._refine, self._invert,
                                         self._nsigma, self._save_btn], run_text="Find atoms")
        self._estimate_btn.changed.connect(lambda *_: self.estimate())
        self._save_btn.changed.connect(lambda *_: self.save())
        self._select_active(self._image, Image)
        self.atoms_layer = None

    # ------------------------------------------------------------------ parameters
    def _params(self) -> dict:
        sep = float(self._separation.value)
        return {"separation": sep if sep > 0 else None, "refine": self._refine.value,
                "invert": self._invert.value, "nsigma": float(self._nsigma.value)}

    def _prepare(self):
        layer = self._image.value
        check_image_layer(layer, "Find atoms")
        params = self._params()
        npx = int(np.prod(layer.data.shape))
        lazy = npx > LAZY_PIXELS or type(layer.data).__module__.startswith("dask")
        signal = image_layer_signal(layer, lazy=lazy)

        def job(ctx):
            def find():
                if lazy:
                    with dask_progress(ctx, "finding atoms (tiles)"):
                        return causalspy.find_atoms(signal, **params)
                return causalspy.find_atoms(signal, **params)

            return (yield from ctx.call("finding atoms", find))

        def apply(atoms):
            pts = add_or_replace(self._viewer, atoms_layer_data(
                atoms, layer, dict(params, image_layer=layer.name),
                name=f"atoms [{layer.name}]"))
            vac = vacancies_layer_data(atoms, layer, name=f"vacancies [{layer.name}]")
            if vac is not None:
                add_or_replace(self._viewer, vac)
            self._viewer.layers.selection.active = pts
            self.atoms_layer = pts
            p = atoms.metadata.get("parameters", {})
            sep = p.get("separation")
            return (f"{len(atoms)} columns, {atoms.n_sublattices} sublattice(s), "
                    f"{len(atoms.vacancies)} vacancies"
                    + (f" (separation {sep:.2f} px)" if sep else ""))

        return job, apply

    # ------------------------------------------------------------------ estimate
    def _prepare_estimate(self):
        layer = self._image.value
        check_image_layer(layer, "Estimating the separation")
        invert = self._invert.value
        data = layer.data

        def job(ctx):
            def estimate():
                img = np.asarray(data, dtype=float)
                dark = invert
                if dark is None:
                    try:
                        from causalspy.atoms.detect import columns_are_dark

                        dark = bool(columns_are_dark(img))
                    except ImportError:  # pragma: no cover - older causalspy
                        dark = False
                if dark:
                    img = img.max() - img
                return float(causalspy.atoms.estimate_separation(img))

            return (yield from ctx.call("estimating the separation", estimate))

        def apply(sep):
            if not np.isfinite(sep) or sep <= 0:
                raise InvalidParameterError(
                    "No periodic contrast found: enter the column separation in pixels.")
            self._separation.value = round(sep, 2)
            return f"estimated separation: {sep:.2f} px"

        return job, apply

    def estimate(self, sync: bool = False):
        """Estimate the separation (``causalspy.atoms.estimate_separation``) into the box."""
        return self.run(sync=sync, prepare=self._prepare_estimate)

    # ------------------------------------------------------------------ save
    def _current_atoms_layer(self):
        from napari.layers import Points

        active = self._viewer.layers.selection.active
        if isinstance(active, Points) and layer_step(active) == "find_atoms":
            return active
        if self.atoms_layer is not None and self.atoms_layer in self._viewer.layers:
            return self.atoms_layer
        return next((ly for ly in self._viewer.layers if layer_step(ly) == "find_atoms"), None)

    def save(self, path=None):
        """Save the atoms of the selected (or last) atoms layer as CSV (+ JSON sidecar)."""
        layer = self._current_atoms_layer()
        if layer is None:
            notify("No atoms to save: run Find atoms first.", "warning")
            return None
        try:
            atoms = atoms_from_layer(layer)
        except causalspy.CausalspyError as e:
            notify(str(e))
            return None
        src = layer.metadata.get(META_KEY, {}).get("source_layer", "atoms")
        return self._save(atoms, path, "Save atoms", f"{src}_atoms.csv", "CSV (*.csv)",
                          f"{len(atoms)} atoms")
