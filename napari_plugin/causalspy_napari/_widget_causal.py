"""Dock widget *Causal graph*: a features table -> causal graph, edge table, warnings."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from magicgui.widgets import (
    ComboBox,
    Container,
    Label,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
    Table,
)

from causalspy.exceptions import InvalidParameterError
from causalspy_napari._base import JobWidget, _wrap, notify
from causalspy_napari._convert import (
    META_KEY,
    check_points_layer,
    descriptors_from_layer,
    layer_step,
    numeric_feature_columns,
)

__all__ = ["CausalGraphWidget", "parse_prior", "edge_table"]

METHODS = ("lingam", "pc", "ges", "hc", "fci")
EDGE_COLUMNS = ["source", "target", "type", "weight", "confidence", "stability",
                "effect (σ/σ)", "effect 95 % CI"]


def _pairs(text: str, what: str) -> list[str]:
    items = [t for t in re.split(r"[,;\s]+", text or "") if t]
    for it in items:
        parts = it.split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise InvalidParameterError(
                f"{what} edges are written cause:effect, separated by commas "
                f"(e.g. 'p_mag:intensity_A, area:exx'); got {it!r}.")
    return items


def parse_prior(tiers: str, forbidden: str, required: str):
    """A :class:`causalspy.causal.Prior` from the widget's text boxes (None when all are empty).

    ``tiers``: groups separated by ';', names in a group by ','
    (``"intensity_A; a, c; p_mag"``); ``forbidden``/``required``:
    ``cause:effect`` pairs separated by commas.
    """
    from causalspy.causal import Prior

    if not (tiers or "").strip() and not (forbidden or "").strip() and not (required or "").strip():
        return None
    return Prior.parse(tiers=(tiers or "").strip() or None,
                       forbid=_pairs(forbidden, "Forbidden"), require=_pairs(required, "Required"))


def _fmt(v, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if not np.isfinite(v) else f"{v:.{digits}g}"


def edge_table(graph) -> pd.DataFrame:
    """Edges with their weight, bootstrap confidence and stability, and total effects."""
    e = graph.to_dataframe()
    eff = graph.effects
    rows = []
    for r in e.itertuples():
        tot_std, ci = "", ""
        if r.type == "directed" and len(eff):
            m = eff[(eff["cause"] == r.source) & (eff["effect"] == r.target)]
            if len(m):
                x = m.iloc[0]
                tot_std = _fmt(x["total_std"])
                ci = f"{_fmt(x['total'])} [{_fmt(x['total_low'])}, {_fmt(x['total_high'])}]"
        rows.append([r.source, r.target, r.type, _fmt(r.weight), _fmt(r.confidence, 2),
                     _fmt(r.stability, 2), tot_std, ci])
    return pd.DataFrame(rows, columns=EDGE_COLUMNS)


class CausalGraphWidget(JobWidget):
    """Learn a causal graph from a layer's features (``causalspy.causal.discover``).

    Shows the graph (matplotlib, in the dock), a table of edges with
    bootstrap confidences and total effects, and the warnings in words.
    Priors (tiers, forbidden and required edges) are typed in the widget.
    """

    job_title = "causalspy: causal graph"

    def __init__(self, napari_viewer) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from napari.layers import Points

        self._viewer = napari_viewer
        self._layer = ComboBox(label="layer", choices=self._layer_choices(Points,
                                                                                "descriptors"))
        self._columns = Select(label="variables", choices=self._column_choices,
                               tooltip="None selected: all descriptors (positions, indices and "
                                       "calibrated duplicates left out)")
        self._columns.native.setMinimumHeight(100)
        self._columns.native.setMaximumHeight(160)
        self._method = ComboBox(label="method", choices=list(METHODS), value="lingam",
                                tooltip="lingam: a unique DAG (non-Gaussian data); pc, ges: "
                                        "equivalence class; hc: hill climbing; fci: hidden "
                                        "confounders")
        self._bootstrap = SpinBox(label="bootstrap", value=20, min=0, max=2000,
                                  tooltip="Resamples for edge confidences (0: none)")
        self._seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self._tiers = LineEdit(label="tiers", tooltip="Causal order: groups separated by ';', "
                                                      "e.g. 'intensity_A; a, c; p_mag'")
        self._forbid = LineEdit(label="forbidden", tooltip="cause:effect pairs, e.g. "
                                                           "'p_mag:intensity_A, exx:a'")
        self._require = LineEdit(label="required", tooltip="cause:effect pairs")
        self._figure = Figure(figsize=(4.5, 4.0), tight_layout=True)
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._canvas.setMinimumSize(380, 340)
        graph_box = Container(labels=False)
        graph_box.native.layout().addWidget(self._canvas)
        self._table = Table(value={"data": [], "index": [], "columns": EDGE_COLUMNS})
        self._table.read_only = True
        self._table.native.setMinimumHeight(140)
        self._warnings = Label(value="")
        _wrap(self._warnings)
        self._save_btn = PushButton(text="Save graph JSON…")
        super().__init__(napari_viewer, [self._layer, self._columns, self._method,
                                         self._bootstrap, self._seed, self._tiers, self._forbid,
                                         self._require], run_text="Learn graph")
        for w in (graph_box, self._table, Container(widgets=[self._warnings], labels=False),
                  self._save_btn):
            self.append(w)
        self._layer.changed.connect(lambda *_: self._columns.reset_choices())
        self._save_btn.changed.connect(lambda *_: self.save())
        self._select_active(self._layer, Points, "descriptors")
        self._columns.reset_choices()
        self.graph = None

    def _column_choices(self, widget=None) -> list[str]:
        layer = self._layer.value if hasattr(self, "_layer") else None
        return numeric_feature_columns(layer) if layer is not None else []

    # ------------------------------------------------------------------ run
    def _prepare(self):
        from causalspy.causal import discover

        layer = self._layer.value
        if layer is None:
            raise InvalidParameterError(
                "Causal graph needs a points layer with a features table: run Find atoms and "
                "Descriptors first, then choose the 'descriptors' layer.")
        check_points_layer(layer, "Causal graph", need="features")
        cols = list(self._columns.value)
        if layer_step(layer) == "descriptors" and not cols:
            data = descriptors_from_layer(layer, "Causal graph")
        else:
            feats = pd.DataFrame(layer.features)
            if len(feats.columns) == 0:
                raise InvalidParameterError(
                    f"The layer {layer.name!r} has no features table: run Descriptors on an "
                    "atoms layer and choose the 'descriptors' layer.")
            cols = cols or numeric_feature_columns(layer)
            keep = cols + (["flag"] if "flag" in feats else [])
            data = feats[keep]
        prior = parse_prior(self._tiers.value, self._forbid.value, self._require.value)
        kw = {"method": self._method.value, "columns": cols or None, "prior": prior,
              "bootstrap": int(self._bootstrap.value), "seed": int(self._seed.value)}
        msg = f"{kw['method']} graph" + (f" with {kw['bootstrap']} bootstraps"
                                         if kw["bootstrap"] else "")

        def job(ctx):
            return (yield from ctx.call(msg, discover, data, **kw))

        def apply(graph):
            self.graph = graph
            self._show(graph)
            meta = layer.metadata.setdefault(META_KEY, {})
            if isinstance(meta, dict):  # let the Local causal map widget offer its edges
                meta["causal_graph"] = graph.to_json_dict()
            counts = graph.edges["type"].value_counts().to_dict()
            parts = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no edges"
            return (f"{graph.method}: {len(graph.nodes)} variables, {parts}, "
                    f"{graph.n_samples} cells")

        return job, apply

    def _show(self, graph) -> None:
        self._figure.clear()
        ax = self._figure.add_subplot(111)
        graph.plot(ax=ax)
        ax.title.set_fontsize(9)
        self._canvas.draw_idle()
        tab = edge_table(graph)
        self._table.value = {"data": tab.values.tolist(), "index": list(range(len(tab))),
                             "columns": list(tab.columns)}
        self._table.native.resizeColumnsToContents()
        if graph.warnings:
            self._warnings.value = "\n".join(f"• {w}" for w in graph.warnings)
        elif len(graph.edges) == 0:
            self._warnings.value = ("No edges: the variables look independent at this sample "
                                    "size (or the prior forbids every edge).")
        else:
            self._warnings.value = "No warnings."

    # ------------------------------------------------------------------ save
    def save(self, path=None):
        """Save the last graph as JSON."""
        if self.graph is None:
            notify("No graph to save: press Learn graph first.", "warning")
            return None
        return self._save(self.graph, path, "Save causal graph", "causal_graph.json",
                          "JSON (*.json)", "the causal graph")
