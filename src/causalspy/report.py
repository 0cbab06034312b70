"""A self-contained HTML report: image -> atoms -> descriptors -> causal graph."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from pathlib import Path

__all__ = ["write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:3px 6px}
th{background:#f2f5f9}.warn{background:#fff6e0;border-left:4px solid #e6a700;padding:.4em .8em;
margin:.4em 0}img{max-width:100%}code,pre{background:#f6f6f6}
"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return '<img src="data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode() + '">'


def write_report(path: str | Path, *, atoms, descriptors, graph, title: str = "causalspy report",
                 extra: dict | None = None, maps_names: list[str] | None = None) -> Path:
    """Write ``path`` (HTML, figures embedded): atoms overlay, descriptor maps, the causal
    graph with its edges, effects and warnings, and every parameter used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from causalspy._version import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>causalspy {__version__}, {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} "
             "UTC</p>"]
    # atoms
    ax = atoms.plot()
    parts.append("<h2>Atomic columns</h2>")
    parts.append(f"<p>{len(atoms)} columns, {atoms.n_sublattices} sublattice(s), "
                 f"{len(atoms.vacancies)} vacancies.</p>")
    parts.append(_png(ax.figure))
    # descriptors
    names = maps_names or [n for n in ("dy_cal", "p_mag_cal", "tetragonality", "exx",
                                       "intensity_A") if n in descriptors.names]
    if names:
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.3))
        for a, n in zip(list(getattr(axes, "flat", [axes])), names, strict=True):
            descriptors.plot(n, ax=a, markersize=14)
        fig.tight_layout()
        parts.append("<h2>Descriptors</h2>")
        flagged = int(descriptors.to_dataframe()["flag"].sum())
        parts.append(f"<p>{len(descriptors)} cells ({flagged} flagged at edges: not measured). "
                     "Summary of the measured cells:</p>")
        parts.append(descriptors.to_dataframe(flagged=False)[descriptors.names].describe()
                     .T.to_html(float_format=lambda v: f"{v:.4g}"))
        parts.append(_png(fig))
    # causal graph
    parts.append("<h2>Causal graph</h2>")
    parts.append(f"<p>Method <b>{html.escape(graph.method)}</b> on {graph.n_samples} cells.</p>")
    for w in graph.warnings:
        parts.append(f"<div class='warn'>{html.escape(w)}</div>")
    if not graph.warnings:
        parts.append("<p>No warnings.</p>")
    parts.append(_png(graph.plot().figure))
    parts.append("<h3>Edges</h3>" + graph.to_dataframe().to_html(
        index=False, float_format=lambda v: f"{v:.3g}"))
    if len(graph.effects):
        parts.append("<h3>Effects (data units per unit of the cause; total_std per sigma)</h3>")
        parts.append(graph.effects.to_html(index=False, float_format=lambda v: f"{v:.3g}"))
    params = {"atoms": atoms.metadata.get("parameters", {}),
              "descriptors": descriptors.metadata.get("parameters", {}),
              "causal": {"method": graph.method, "prior": graph.prior, **graph.params}}
    params.update(extra or {})
    parts.append("<h2>Parameters</h2><pre>" + html.escape(json.dumps(params, indent=1,
                                                                      default=str)) + "</pre>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    return path
