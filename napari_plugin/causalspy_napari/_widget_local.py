"""Dock widget *Local causal map*: one edge -> image layer of its local strength."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, SpinBox

from causalspy.exceptions import InvalidParameterError
from causalspy_napari._base import JobWidget, add_or_replace
from causalspy_napari._convert import (
    META_KEY,
    check_points_layer,
    descriptors_from_layer,
    image_name,
    local_map_layer_data,
    numeric_feature_columns,
)

__all__ = ["LocalCausalMapWidget"]

METHODS = ("lingam", "pc", "ges", "hc", "fci")


def _graph_edge(layer):
    """The strongest directed edge of the graph last learned on ``layer`` (or None)."""
    g = ((layer.metadata or {}).get(META_KEY) or {}).get("causal_graph") if layer else None
    if not g:
        return None
    edges = [e for e in g.get("edges", []) if e.get("type") == "directed"]
    if not edges:
        return None
    best = max(edges, key=lambda e: abs(e.get("weight") or 0.0))
    return best["source"], best["target"]


class LocalCausalMapWidget(JobWidget):
    """Where in the image one descriptor drives another (``causalspy.causal.local_causal_maps``).

    A causal graph is learned in sliding windows of cells; the standardized
    weight of the chosen edge in each window becomes an image layer placed
    on the image (diverging colormap: red where the cause raises the effect,
    blue where it lowers it, 0 where the window's graph has no such edge).
    """

    job_title = "causalspy: local causal map"

    def __init__(self, napari_viewer) -> None:
        from napari.layers import Points

        self._viewer = napari_viewer
        self._layer = ComboBox(label="descriptors",
                               choices=self._layer_choices(Points, "descriptors"))
        self._cause = ComboBox(label="cause", choices=self._variables)
        self._effect = ComboBox(label="effect", choices=self._variables)
        self._window = SpinBox(label="window (cells)", value=8, min=2, max=1000)
        self._stride = SpinBox(label="stride (cells)", value=2, min=1, max=1000)
        self._method = ComboBox(label="method", choices=list(METHODS), value="lingam")
        self._direction = CheckBox(label="also the direction map", value=False)
        super().__init__(napari_viewer, [self._layer, self._cause, self._effect, self._window,
                                         self._stride, self._method, self._direction],
                         run_text="Map edge")
        self._layer.changed.connect(self._layer_changed)
        self._select_active(self._layer, Points, "descriptors")
        self._layer_changed()

    def _variables(self, widget=None) -> list[str]:
        layer = self._layer.value if hasattr(self, "_layer") else None
        return numeric_feature_columns(layer) if layer is not None else []

    def _layer_changed(self, *_) -> None:
        self._cause.reset_choices()
        self._effect.reset_choices()
        self.use_graph_edge()

    def use_graph_edge(self) -> None:
        """Pre-select the strongest directed edge of the graph learned on this layer."""
        edge = _graph_edge(self._layer.value)
        names = self._variables()
        if edge and edge[0] in names and edge[1] in names:
            self._cause.value, self._effect.value = edge
        elif len(names) >= 2 and self._cause.value == self._effect.value:
            self._effect.value = names[1]

    def reset_choices(self, *_):
        super().reset_choices()
        if self._cause.value is not None and self._cause.value == self._effect.value:
            self.use_graph_edge()

    # ------------------------------------------------------------------ run
    def _prepare(self):
        from causalspy.causal import local_causal_maps

        layer = self._layer.value
        check_points_layer(layer, "Local causal map", need="descriptors")
        desc = descriptors_from_layer(layer, "Local causal map")
        a, b = self._cause.value, self._effect.value
        if a is None or b is None or a == b:
            raise InvalidParameterError(
                "Choose two different descriptors: the cause and the effect of the edge to map.")
        window, stride = int(self._window.value), int(self._stride.value)
        method, with_dir = self._method.value, bool(self._direction.value)
        source = image_name(layer)
        params = {"edge": [a, b], "window": window, "stride": stride, "method": method,
                  "descriptors_layer": layer.name}

        def job(ctx):
            return (yield from ctx.call(f"local map of {a} -> {b}", local_causal_maps, desc,
                                        [(a, b)], window=window, stride=stride, method=method))

        def apply(maps):
            label = f"{a}->{b}"
            # under the atoms layer the descriptors came from (else under the descriptors)
            src = (layer.metadata.get(META_KEY) or {}).get("source_layer")
            below = next((ly for ly in self._viewer.layers if ly.name == src), layer)
            data = np.asarray(maps.get_map(label).data, float)
            if not np.isfinite(data).any():
                raise InvalidParameterError(
                    f"Every {window}x{window}-cell window had too few valid cells: use a larger "
                    "window or a larger image.")
            new = add_or_replace(self._viewer, local_map_layer_data(
                maps, label, desc, layer, window, stride, params, suffix=source), below=below)
            if with_dir:
                add_or_replace(self._viewer, local_map_layer_data(
                    maps, f"{label}:direction", desc, layer, window, stride, params,
                    suffix=source), below=below)
            self._viewer.layers.selection.active = new
            ok = data[np.isfinite(data)]
            return (f"{label}: {ok.size} windows, weight {ok.min():+.2f} … {ok.max():+.2f} "
                    f"(edge present in {np.mean(ok != 0):.0%} of windows)")

        return job, apply
