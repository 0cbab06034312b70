"""Dock widget *Descriptors*: atoms points layer -> descriptor features and map layers."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, PushButton, Select

from causalspy.exceptions import CausalspyError
from causalspy_napari._base import JobWidget, add_or_replace, notify
from causalspy_napari._convert import (
    atoms_from_layer,
    check_points_layer,
    descriptor_map_layer_data,
    descriptors_from_layer,
    descriptors_layer_data,
    image_name,
    layer_step,
)

__all__ = ["DescriptorsWidget", "STRUCTURE_MAPS"]

#: Numeric descriptors offered as maps for each structure, and those selected by default.
STRUCTURE_MAPS = {
    "perovskite": (
        ["dy", "dx", "p_mag", "p_angle", "tetragonality", "a", "c", "area", "exx", "eyy", "exy",
         "rotation", "intensity_A", "intensity_B"],
        ["dy", "dx", "p_mag", "tetragonality"],
    ),
    "hexagonal": (
        ["intensity", "amplitude", "coordination", "nn_distance", "exx", "eyy", "exy",
         "rotation", "psi3", "psi6", "dopant_z"],
        ["exx", "psi3"],
    ),
}


class DescriptorsWidget(JobWidget):
    """Per-cell (perovskite) or per-column (hexagonal) descriptors of an atoms layer.

    Adds a points layer (one point per cell or column) whose ``features`` are
    the descriptors, and one image layer per chosen descriptor map, placed on
    the cells of the image, with a colormap that suits it (diverging and
    centred on zero for signed quantities).
    """

    job_title = "causalspy: descriptors"

    def __init__(self, napari_viewer) -> None:
        from napari.layers import Points

        self._viewer = napari_viewer
        self._atoms = ComboBox(label="atoms", choices=self._layer_choices(Points, "find_atoms"))
        self._structure = ComboBox(label="structure", choices=list(STRUCTURE_MAPS),
                                   value="perovskite")
        self._maps = Select(label="maps", choices=self._map_choices,
                            value=STRUCTURE_MAPS["perovskite"][1],
                            tooltip="Descriptors to show as image layers (Ctrl-click for several)")
        self._maps.native.setMinimumHeight(110)
        self._maps.native.setMaximumHeight(200)
        self._save_btn = PushButton(text="Save descriptors CSV…")
        super().__init__(napari_viewer, [self._atoms, self._structure, self._maps,
                                         self._save_btn], run_text="Compute descriptors")
        self._structure.changed.connect(self._structure_changed)
        self._save_btn.changed.connect(lambda *_: self.save())
        self._select_active(self._atoms, Points, "find_atoms")
        self.descriptors_layer = None

    def _map_choices(self, widget=None) -> list[str]:
        structure = self._structure.value if hasattr(self, "_structure") else "perovskite"
        return list(STRUCTURE_MAPS.get(structure, ([], []))[0])

    def _structure_changed(self, structure: str) -> None:
        self._maps.reset_choices()
        self._maps.value = STRUCTURE_MAPS.get(structure, ([], []))[1]

    # ------------------------------------------------------------------ run
    def _prepare(self):
        layer = self._atoms.value
        check_points_layer(layer, "Descriptors", need="atoms")
        atoms = atoms_from_layer(layer)
        structure = self._structure.value
        wanted = list(self._maps.value)
        source = image_name(layer)
        params = {"structure": structure, "maps": wanted, "atoms_layer": layer.name}

        def job(ctx):
            desc = yield from ctx.call(f"{structure} descriptors", atoms.descriptors,
                                       structure=structure)
            names = [n for n in wanted if n in desc.names]
            maps = None
            if names:
                maps = yield from ctx.call("descriptor maps", desc.to_maps, names)
            return desc, maps, names

        def apply(result):
            desc, maps, names = result
            pts = add_or_replace(self._viewer, descriptors_layer_data(
                desc, layer, params, name=f"descriptors [{source}]"))
            for k, n in enumerate(names):  # the first map shown, the others ready to toggle
                ml = add_or_replace(self._viewer, descriptor_map_layer_data(
                    maps, n, desc, layer, dict(params, descriptor=n), suffix=source), below=layer)
                ml.visible = k == 0
            missing = [n for n in wanted if n not in names]
            if missing:
                notify(f"No descriptor(s) {missing} for this structure; available: "
                       f"{', '.join(desc.names)}.", "warning")
            self._viewer.layers.selection.active = pts
            self.descriptors_layer = pts
            nflag = int(np.sum(desc["flag"])) if "flag" in desc.to_dataframe() else 0
            return (f"{len(desc)} rows ({nflag} flagged: not measured), "
                    f"{len(desc.names)} descriptors, {len(names)} map layer(s)")

        return job, apply

    # ------------------------------------------------------------------ save
    def save(self, path=None):
        """Save the descriptors of the selected (or last) descriptors layer as CSV."""
        from napari.layers import Points

        layer = self._viewer.layers.selection.active
        if not (isinstance(layer, Points) and layer_step(layer) == "descriptors"):
            layer = self.descriptors_layer if self.descriptors_layer in self._viewer.layers \
                else next((ly for ly in self._viewer.layers if layer_step(ly) == "descriptors"),
                          None)
        if layer is None:
            notify("No descriptors to save: run Compute descriptors first.", "warning")
            return None
        try:
            desc = descriptors_from_layer(layer)
        except CausalspyError as e:
            notify(str(e))
            return None
        return self._save(desc, path, "Save descriptors", "descriptors.csv", "CSV (*.csv)",
                          f"{len(desc)} descriptor rows")
