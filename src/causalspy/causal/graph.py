"""The :class:`CausalGraph` result: typed edges, weights, confidences, effects, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from causalspy._tableio import frame_from_json, frame_to_json, jsonable, read_json
from causalspy.exceptions import InvalidParameterError

__all__ = ["CausalGraph", "EDGE_TYPES"]

#: Edge types: ``directed`` (a -> b), ``undirected`` (a - b, direction not
#: identifiable), ``bidirected`` (a <-> b, a hidden common cause), ``partial``
#: (FCI circle marks: a o-> b or a o-o b).
EDGE_TYPES = ("directed", "undirected", "bidirected", "partial")
FORMAT_VERSION = 1


class CausalGraph:
    """A causal graph learned from descriptors.

    Attributes
    ----------
    nodes : list of str
        Variables.
    edges : pandas.DataFrame
        ``source``, ``target``, ``type`` (one of :data:`EDGE_TYPES`),
        ``weight`` (linear coefficient of ``source`` in ``target``'s equation,
        in standardized units; NaN when not defined), ``confidence``
        (bootstrap frequency of this exact edge, NaN without bootstrap) and
        ``stability`` (bootstrap frequency of the adjacency in any orientation).
    effects : pandas.DataFrame
        Total and direct effects of each cause on each descendant, in data
        units per unit of the cause (``total``, ``total_low``, ``total_high``
        for a 95 % interval, ``direct``) and per standard deviation
        (``total_std``).
    warnings : list of str
        Plain-language warnings (hidden confounders, unoriented edges,
        Simpson's paradox, nuisance variables).
    method, prior, params : str, dict, dict
        How the graph was learned.
    scales, means : dict
        Standard deviation and mean of each variable (for interventions in
        units of sigma).
    """

    def __init__(self, nodes, edges: pd.DataFrame, *, effects: pd.DataFrame | None = None,
                 warnings: list[str] | None = None, method: str = "", prior: dict | None = None,
                 params: dict | None = None, n_samples: int = 0, scales: dict | None = None,
                 means: dict | None = None) -> None:
        self.nodes = list(nodes)
        cols = ["source", "target", "type", "weight", "confidence", "stability"]
        e = edges.copy() if len(edges) else pd.DataFrame({c: [] for c in cols})
        for c in ("weight", "confidence", "stability"):
            if c not in e:
                e[c] = np.nan
            e[c] = e[c].astype(float)
        self.edges = e[cols].reset_index(drop=True)
        self.effects = effects if effects is not None else pd.DataFrame(
            columns=["cause", "effect", "total", "total_low", "total_high", "total_std",
                     "direct"])
        self.warnings = list(warnings or [])
        self.method = method
        self.prior = dict(prior or {})
        self.params = dict(params or {})
        self.n_samples = int(n_samples)
        self.scales = dict(scales or {})
        self.means = dict(means or {})

    # ------------------------------------------------------------------ access
    def to_dataframe(self) -> pd.DataFrame:
        """The edges as a new DataFrame."""
        return self.edges.copy()

    def directed_edges(self) -> list[tuple[str, str]]:
        d = self.edges[self.edges["type"] == "directed"]
        return list(zip(d["source"], d["target"], strict=True))

    def adjacency(self) -> np.ndarray:
        """``A[i, j] = 1`` for a directed edge ``nodes[i] -> nodes[j]``."""
        idx = {n: k for k, n in enumerate(self.nodes)}
        A = np.zeros((len(self.nodes),) * 2, dtype=int)
        for a, b in self.directed_edges():
            A[idx[a], idx[b]] = 1
        return A

    def has_edge(self, a: str, b: str, type: str = "directed") -> bool:  # noqa: A002
        e = self.edges
        m = (e["type"] == type) & (e["source"] == a) & (e["target"] == b)
        if type != "directed":
            m |= (e["type"] == type) & (e["source"] == b) & (e["target"] == a)
        return bool(m.any())

    def effect_of(self, do: dict, on: str) -> dict:
        """Expected change of ``on`` under an intervention ``do``.

        Parameters
        ----------
        do : dict
            ``{variable: change}``; the change is in data units, or a string
            in units of the variable's standard deviation such as ``"+1sigma"``
            or ``"-0.5σ"``.
        on : str
            The variable whose response is wanted.

        Returns
        -------
        dict
            ``change`` (data units), ``low``, ``high`` (95 % interval) and
            ``change_sigma`` (in standard deviations of ``on``). In a linear
            model the effects of several interventions add up.
        """
        if on not in self.nodes:
            raise InvalidParameterError(f"Unknown variable {on!r}; nodes: {self.nodes}.")
        total, lo, hi = 0.0, 0.0, 0.0
        for var, change in do.items():
            if var not in self.nodes:
                raise InvalidParameterError(f"Unknown variable {var!r}; nodes: {self.nodes}.")
            delta = self._parse_change(var, change)
            if var == on:
                total, lo, hi = total + delta, lo + delta, hi + delta
                continue
            row = self.effects[(self.effects["cause"] == var) & (self.effects["effect"] == on)]
            if len(row) == 0:
                continue  # not a descendant: no effect
            r = row.iloc[0]
            total += delta * r["total"]
            a, b = delta * r["total_low"], delta * r["total_high"]
            lo += min(a, b)
            hi += max(a, b)
        sd = self.scales.get(on, np.nan)
        return {"change": total, "low": lo, "high": hi, "change_sigma": total / sd if sd else np.nan}

    def _parse_change(self, var, change) -> float:
        if isinstance(change, str):
            s = change.replace(" ", "").replace("σ", "sigma").lower()
            if not s.endswith("sigma"):
                raise InvalidParameterError(
                    f"Give the change of {var!r} as a number (data units) or like '+1sigma'; "
                    f"got {change!r}."
                )
            num = s[: -len("sigma")] or "1"
            num = {"+": "1", "-": "-1"}.get(num, num)
            return float(num) * self.scales.get(var, np.nan)
        return float(change)

    def __repr__(self) -> str:
        counts = self.edges["type"].value_counts().to_dict()
        parts = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no edges"
        return (f"<CausalGraph ({self.method}): {len(self.nodes)} nodes, {parts}, "
                f"{len(self.warnings)} warning(s)>")

    # -------------------------------------------------------------------- plot
    def plot(self, ax=None, *, layout: str = "auto"):
        """Draw the graph: edge width grows with the absolute weight, label = bootstrap confidence.

        Directed edges are arrows, undirected plain lines, bidirected dashed
        red double arrows, partial (FCI circle marks) dotted.
        """
        import matplotlib.pyplot as plt
        import networkx as nx

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        for r in self.edges.itertuples():
            g.add_edge(r.source, r.target)
        if layout == "auto":
            try:
                pos = nx.nx_agraph.graphviz_layout(g, prog="dot")  # pragma: no cover
            except Exception:
                pos = nx.circular_layout(g) if len(self.nodes) > 3 else nx.spring_layout(g, seed=0)
        else:
            pos = getattr(nx, f"{layout}_layout")(g)
        nx.draw_networkx_nodes(g, pos, ax=ax, node_color="#dce8f5", node_size=1600,
                               edgecolors="#3b6ea5")
        nx.draw_networkx_labels(g, pos, ax=ax, font_size=8)
        styles = {"directed": dict(style="solid", edge_color="k", arrows=True, arrowstyle="-|>"),
                  "undirected": dict(style="solid", edge_color="gray", arrows=False),
                  "bidirected": dict(style="dashed", edge_color="crimson", arrows=True,
                                     arrowstyle="<|-|>"),
                  "partial": dict(style="dotted", edge_color="darkorange", arrows=True,
                                  arrowstyle="-|>")}
        labels = {}
        for r in self.edges.itertuples():
            w = r.weight if np.isfinite(r.weight) else 0.3
            st = styles.get(r.type, styles["directed"])
            nx.draw_networkx_edges(g, pos, edgelist=[(r.source, r.target)], ax=ax,
                                   width=0.8 + 3.0 * min(abs(w), 1.5), node_size=1600,
                                   arrowsize=16, **st)
            if np.isfinite(r.confidence):
                labels[(r.source, r.target)] = f"{r.confidence:.2f}"
        if labels:
            nx.draw_networkx_edge_labels(g, pos, edge_labels=labels, ax=ax, font_size=7)
        ax.set_title(f"{self.method} causal graph" + (" (label: bootstrap confidence)"
                                                      if labels else ""), fontsize="medium")
        ax.axis("off")
        return ax

    # --------------------------------------------------------------- save/load
    def to_json_dict(self) -> dict:
        """The JSON document :meth:`save` writes (``nodes``, ``edges``, ``warnings``, ...)."""
        edges = [
            {"source": r.source, "target": r.target, "type": r.type,
             "weight": None if not np.isfinite(r.weight) else float(r.weight),
             "confidence": None if not np.isfinite(r.confidence) else float(r.confidence),
             "stability": None if not np.isfinite(r.stability) else float(r.stability)}
            for r in self.edges.itertuples()
        ]
        return jsonable({
            "format": "causalspy-causal-graph", "format_version": FORMAT_VERSION,
            "method": self.method, "nodes": self.nodes, "edges": edges,
            "warnings": self.warnings, "prior": self.prior, "params": self.params,
            "n_samples": self.n_samples, "scales": self.scales, "means": self.means,
            "effects": frame_to_json(self.effects),
        })

    def save(self, path: str | Path) -> Path:
        """Save as JSON (lossless: floats are written with full precision)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json_dict(), indent=1, allow_nan=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CausalGraph:
        """Load what :meth:`save` wrote."""
        d = read_json(path, "causalspy-causal-graph", "causal graph")
        edges = pd.DataFrame(d["edges"], columns=["source", "target", "type", "weight",
                                                  "confidence", "stability"])
        for c in ("weight", "confidence", "stability"):
            edges[c] = pd.to_numeric(edges[c], errors="coerce").astype(float)
        return cls(d["nodes"], edges, effects=frame_from_json(d["effects"]),
                   warnings=d["warnings"], method=d["method"], prior=d["prior"],
                   params=d["params"], n_samples=d["n_samples"], scales=d["scales"],
                   means=d["means"])
