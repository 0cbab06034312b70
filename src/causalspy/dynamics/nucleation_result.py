"""The :class:`NucleationPrediction` result: probability per site, validation, drivers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from causalspy._tableio import frame_from_json, frame_to_json, load_table, save_table
from causalspy.dynamics._hazard import SiteModel

__all__ = ["NucleationPrediction"]

FORMAT = "causalspy-nucleation"
FORMAT_VERSION = 1


def _fmt_ci(v, lo, hi) -> str:
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


class NucleationPrediction:
    """Where the new phase will nucleate: a probability per lattice site, validated.

    Attributes
    ----------
    sites : pandas.DataFrame
        One row per metal (cell) site: ``site``, ``x``, ``y`` (px, frame-0
        coordinates), ``phase`` and ``defect`` before the transition, ``flag``
        (not used: not measurable, or within ``radius`` of the edge of the
        analysed region, where the view cuts the neighbourhood), the
        descriptors, ``probability`` (out-of-block when validated on this
        series; NaN for flagged sites), ``fold`` (spatial
        block), and from the later frames ``label`` (1 nucleation site, 0 not,
        -1 not used), ``nucleus`` (id), ``flip_window``, ``event_window``,
        ``last_window`` (-1 where not applicable).
    validation : dict
        ``auc`` (the incident/dynamic AUC: each nucleation site against the
        sites still at risk when its nucleus formed) with a tile-bootstrap
        95 % interval (``auc_low``, ``auc_high``), ``auc_cumulative``
        (nucleation sites against sites still 2H at the end, for reference),
        the shuffled-descriptor baseline (``shuffled_auc_*``,
        ``p_value``), ``top_k_hit_rate`` (fraction of the ``top_k`` most
        probable sites within one lattice parameter of a true nucleus) and
        its ``top_k_chance``, counts, and ``predictable`` (the AUC interval
        lies above 0.5).
    drivers : pandas.DataFrame
        Per descriptor: standardized coefficient (log-odds per standard
        deviation) with a simultaneous 95 % bootstrap interval (Bonferroni
        over the descriptors: ``coef_low``, ``coef_high``), ``odds_ratio``, ``p_sign``,
        ``effect`` ("raises", "lowers", "no evidence"), and from the causal
        graph ``graph_edge`` (a directed edge descriptor → nucleation) with its
        bootstrap ``graph_confidence``.
    graph : CausalGraph or None
        Causal graph over the descriptors and the label.
    model : SiteModel
        The fitted model (reusable: ``predict_nucleation(other, train=self)``).
    metadata : dict
        Frames, windows, parameters, drift.
    image : ndarray or None
        Drift-corrected mean of the frames used for the prediction.
    """

    def __init__(self, sites: pd.DataFrame, *, validation: dict, drivers: pd.DataFrame,
                 graph=None, model: SiteModel, metadata: dict, image=None) -> None:
        self.sites = sites.reset_index(drop=True).copy()
        self.validation = dict(validation)
        self.drivers = drivers.reset_index(drop=True).copy()
        self.graph = graph
        self.model = model
        self.metadata = dict(metadata)
        self.image = None if image is None else np.asarray(image)

    # ------------------------------------------------------------------ access
    @property
    def probability(self) -> np.ndarray:
        """Probability of nucleation per site (NaN: site not used)."""
        return self.sites["probability"].to_numpy(float).copy()

    @property
    def predictable(self) -> bool:
        """True only when validated and the AUC interval lies above 0.5."""
        return bool(self.validation.get("predictable", False))

    @property
    def verdict(self) -> str:
        """One paragraph: is nucleation predictable here, and what drives it."""
        v = self.validation
        if not v.get("validated"):
            head = ("Not validated: no transition after the prediction frame to compare with; "
                    f"the probabilities come from {v.get('training', 'a fitted model')}.")
        else:
            auc_txt = _fmt_ci(v["auc"], v["auc_low"], v["auc_high"])
            sh = _fmt_ci(v["shuffled_auc_mean"], v["shuffled_auc_low"], v["shuffled_auc_high"])
            topk = (f"the {v['top_k']} most probable sites hit a true nucleus "
                    f"{v['top_k_hit_rate']:.0%} of the time (chance {v['top_k_chance']:.0%})")
            if v["predictable"]:
                head = (f"Predictable: ROC AUC {auc_txt} against the {v['n_nuclei']} nuclei "
                        f"that formed (shuffled descriptors: {sh}, p = {v['p_value']:.2g}); "
                        f"{topk}.")
            else:
                where = ("lies below 0.5: what the model learns in some regions does not "
                         "hold in others" if v["auc_high"] < 0.5 else "includes 0.5")
                head = (f"Not predictable from these descriptors: ROC AUC {auc_txt} — the "
                        f"interval {where} (shuffled descriptors: {sh}); {topk}. Where the "
                        "new phase nucleates looks random given what was seen before.")
        d = self.drivers
        if "effect" in d and v.get("validated") and v.get("predictable"):
            sig = d[d["effect"].isin(["raises", "lowers"])]
            if len(sig):
                parts = []
                for r in sig.itertuples():
                    g = ""
                    if "graph_edge" in d and bool(r.graph_edge):
                        g = f", direct cause in the graph ({r.graph_confidence:.0%} of bootstraps)"
                    parts.append(f"{r.descriptor} {r.effect} the hazard (x{r.odds_ratio:.2f} per "
                                 f"SD [{np.exp(r.coef_low):.2f}, {np.exp(r.coef_high):.2f}]{g})")
                head += " Drivers: " + "; ".join(parts) + "."
        return head

    def __repr__(self) -> str:
        v = self.validation
        s = (f"<NucleationPrediction: {int(np.isfinite(self.probability).sum())} sites, "
             f"model {self.metadata.get('model')}")
        if v.get("validated"):
            s += (f", AUC {_fmt_ci(v['auc'], v['auc_low'], v['auc_high'])}, "
                  f"{'predictable' if v['predictable'] else 'not predictable'}")
        return s + ">"

    def to_dataframe(self) -> pd.DataFrame:
        """The per-site table (a copy)."""
        return self.sites.copy()

    def summary(self) -> dict:
        """Validation figures, drivers and verdict as JSON-ready data."""
        return {"validation": self.validation, "verdict": self.verdict,
                "drivers": self.drivers.to_dict(orient="records"),
                "metadata": {k: v for k, v in self.metadata.items() if k != "drift"}}

    # ------------------------------------------------------------------ maps
    def to_map(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Probability as an image: each pixel takes its nearest site's value.

        Pixels farther than one lattice parameter from a used site are NaN.
        ``shape`` defaults to the analysed frames' shape.
        """
        from scipy.spatial import cKDTree

        shape = tuple(shape or self.metadata.get("shape") or ())
        if len(shape) != 2:
            raise ValueError("Give shape=(rows, columns): this result has no image shape.")
        ok = np.isfinite(self.probability)
        out = np.full(shape, np.nan)
        if not ok.any():
            return out
        xy = self.sites[["x", "y"]].to_numpy(float)[ok]
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
        d, j = cKDTree(xy).query(np.column_stack([xx.ravel(), yy.ravel()]),
                                 distance_upper_bound=float(self.metadata.get("a_px", np.inf)))
        hit = np.isfinite(d)
        vals = np.full(d.shape, np.nan)
        vals[hit] = self.probability[ok][j[hit]]
        return vals.reshape(shape)

    def plot(self, ax=None, *, image=None, show_nuclei: bool = True, cmap: str = "magma",
             alpha: float = 0.6):
        """Probability map over the pre-transition image, true nuclei circled."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 6))
        img = self.image if image is None else np.asarray(getattr(image, "data", image))
        if img is not None:
            ax.imshow(img, cmap="gray", interpolation="nearest")
        m = self.to_map(None if img is None else img.shape)
        im = ax.imshow(m, cmap=cmap, alpha=alpha, interpolation="nearest")
        plt.colorbar(im, ax=ax, label="P(nucleation)")
        if show_nuclei and "label" in self.sites:
            nuc = self.sites[self.sites["label"] == 1]
            if len(nuc):
                c = nuc.groupby("nucleus")[["x", "y"]].mean()
                ax.scatter(c["x"], c["y"], s=260, facecolors="none", edgecolors="cyan", lw=1.5,
                           label="actual nuclei")
                ax.legend(loc="upper right", fontsize="small")
        v = self.validation
        title = "nucleation probability"
        if v.get("validated"):
            title += f"  (AUC {_fmt_ci(v['auc'], v['auc_low'], v['auc_high'])})"
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        return ax

    # ------------------------------------------------------------------ IO
    def save(self, path: str | Path) -> Path:
        """Save the site table (``.csv``), everything else in the ``.csv.json`` sidecar
        and the image in ``.image.npy``; :meth:`load` restores it bit for bit."""
        path = Path(path)
        graph = None if self.graph is None else self.graph.to_json_dict()
        out = save_table(path, self.sites, FORMAT, FORMAT_VERSION, {
            "validation": self.validation, "drivers": frame_to_json(self.drivers),
            "graph": graph, "model": self.model.to_dict(), "metadata": self.metadata,
            "attrs": {k: v for k, v in self.sites.attrs.items()},
        })
        img = Path(str(path) + ".image.npy")
        if self.image is not None:
            np.save(img, self.image)
        elif img.exists():
            img.unlink()
        return out

    @classmethod
    def load(cls, path: str | Path) -> NucleationPrediction:
        """Read what :meth:`save` wrote."""
        table, side = load_table(path, FORMAT, FORMAT_VERSION,
                                 required=("x", "y", "probability"))
        table.attrs.update(side.get("attrs", {}))
        graph = None
        if side.get("graph"):
            from causalspy.causal.graph import CausalGraph

            g = side["graph"]
            edges = pd.DataFrame(g["edges"], columns=["source", "target", "type", "weight",
                                                      "confidence", "stability"])
            for c in ("weight", "confidence", "stability"):
                edges[c] = pd.to_numeric(edges[c], errors="coerce").astype(float)
            graph = CausalGraph(g["nodes"], edges, effects=frame_from_json(g["effects"]),
                                warnings=g["warnings"], method=g["method"], prior=g["prior"],
                                params=g["params"], n_samples=g["n_samples"],
                                scales=g["scales"], means=g["means"])
        img = Path(str(path) + ".image.npy")
        validation = {k: (np.nan if v is None else v) for k, v in side["validation"].items()}
        return cls(table, validation=validation, drivers=frame_from_json(side["drivers"]),
                   graph=graph, model=SiteModel.from_dict(side["model"]),
                   metadata=side["metadata"], image=np.load(img) if img.exists() else None)
