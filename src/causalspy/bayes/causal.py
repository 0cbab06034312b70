r"""Priors from the causal module: a causal graph fixes which variables enter a
model and the signs of their effects.

For a target :math:`y` with parents :math:`\mathrm{pa}(y)` in a
:class:`~causalspy.causal.CausalGraph`, :func:`causal_model` builds the
linear structural equation

.. math:: y = b_0 + \sum_{j \in \mathrm{pa}(y)} s_j\, k_j\, (x_j - \bar x_j) + \varepsilon

where :math:`s_j = \pm 1` is the sign of the edge :math:`x_j \to y` in the
graph and :math:`k_j \ge 0` has a ``HalfNormal`` prior (the graph says the
effect raises, or lowers, :math:`y`; the data say by how much). Parents whose
sign the graph does not fix get an unconstrained ``Normal`` coefficient.
Non-parents do not enter the model at all (the graph says they have no direct
effect). :math:`\bar x_j` is the mean of each parent (from the graph, or from the
data given), so :math:`b_0` is the target at the parents' means.
"""

from __future__ import annotations

import math

import numpy as np

from causalspy.bayes.models import Model, Param
from causalspy.bayes.priors import PriorSpec
from causalspy.exceptions import InvalidParameterError

__all__ = ["causal_model", "fit_causal", "parent_signs"]


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def parent_signs(graph, target: str) -> dict[str, int]:
    """The directed parents of ``target`` and the sign of each one's effect.

    The sign comes from the edge weight (the standardized coefficient of the
    parent in the target's equation), or else from the graph's direct effect;
    ``0`` when neither is known.

    Returns
    -------
    dict of str to int
        ``{parent: +1, -1 or 0}`` in the order of the graph's nodes.
    """
    if target not in graph.nodes:
        raise InvalidParameterError(
            f"{target!r} is not a variable of the graph; its variables are {graph.nodes}.")
    e = graph.edges
    d = e[(e["type"] == "directed") & (e["target"] == target)]
    out: dict[str, int] = {}
    eff = graph.effects
    for node in graph.nodes:
        rows = d[d["source"] == node]
        if rows.empty:
            continue
        w = _num(rows["weight"].iloc[0])
        if not math.isfinite(w) and len(eff) and {"cause", "effect", "direct"} <= set(eff):
            m = eff[(eff["cause"] == node) & (eff["effect"] == target)]
            w = _num(m["direct"].iloc[0]) if len(m) else math.nan
        out[node] = 0 if not math.isfinite(w) or w == 0 else int(np.sign(w))
    return out


def _coef(parent: str) -> str:
    name = f"k_{parent}"
    return name if name.isidentifier() else "k_" + "".join(
        c if c.isalnum() else "_" for c in parent)


def _build(spec: dict) -> Model:
    target = spec["target"]
    parents = list(spec["parents"])
    signs = [int(s) for s in spec["signs"]]
    centre = [float(c) for c in spec["centre"]]
    coefs = [_coef(p) for p in parents]
    if len(set(coefs)) != len(coefs):
        raise InvalidParameterError(f"Parent names {parents} collide as parameter names.")

    def mean(xp, x, b0, **k):
        out = b0 + 0.0 * x[..., 0]
        for j, (c, s) in enumerate(zip(coefs, signs, strict=True)):
            out = out + (s if s else 1) * k[c] * (x[..., j] - centre[j])
        return out

    def default_priors(x, y):
        sy = float(np.std(y)) or 1.0
        pri = {"b0": PriorSpec("Normal", (float(np.mean(y)), 2 * sy))}
        for j, (c, s) in enumerate(zip(coefs, signs, strict=True)):
            sx = float(np.std(x[:, j])) or 1.0
            # |effect| up to ~2 sd of y per sd of the parent: weakly informative
            pri[c] = (PriorSpec("HalfNormal", (2 * sy / sx,)) if s else
                      PriorSpec("Normal", (0.0, 2 * sy / sx)))
        return pri

    terms = []
    params = [Param("b0", "y", "real", f"{target} at the parents' means")]
    for p, c, s in zip(parents, coefs, signs, strict=True):
        op = {1: "+", -1: "-", 0: "+"}[s]
        terms.append(f" {op} {c}*({p} - mean)")
        what = {1: f"size of the positive effect of {p} on {target} (>= 0)",
                -1: f"size of the negative effect of {p} on {target} (>= 0, enters with -)",
                0: f"effect of {p} on {target} (sign not fixed by the graph)"}[s]
        params.append(Param(c, "y/x", "positive" if s else "real", what))
    sign_txt = "".join({1: "+", -1: "-", 0: "?"}[s] for s in signs)
    name = f"causal:{target}<-" + ",".join(parents) + f"[{sign_txt}]"
    return Model(name, f"{target} = b0" + "".join(terms), tuple(params), mean, default_priors,
                 "law", inputs=tuple(parents), spec=dict(spec))


def causal_model(graph, target: str, *, data=None, signs: dict | None = None) -> Model:
    """A linear model of ``target`` on its parents in ``graph`` with sign-constrained priors.

    Parameters
    ----------
    graph : causalspy.causal.CausalGraph
        The graph (e.g. from :func:`causalspy.causal.discover`).
    target : str
        The variable to model.
    data : pandas.DataFrame, optional
        Used only for the parents' means (centring); otherwise the graph's
        ``means`` (or 0).
    signs : dict, optional
        Override the graph's sign of a parent's effect: ``{parent: +1, -1 or 0}``.

    Returns
    -------
    Model
        Inputs are the parents (``x`` has one column per parent, in
        ``model.inputs`` order); parameters ``b0`` and ``k_<parent>``. Use with
        :func:`~causalspy.bayes.fit` or :func:`fit_causal`.

    Examples
    --------
    >>> m = causal_model(graph, "P")  # doctest: +SKIP
    >>> m.equation  # doctest: +SKIP
    'P = b0 + k_strain*(strain - mean) - k_vacancy*(vacancy - mean)'
    """
    sg = parent_signs(graph, target)
    if not sg:
        raise InvalidParameterError(
            f"{target!r} has no directed parents in the graph, so the graph gives no model "
            "for it; pick a variable with incoming directed edges (undirected edges do not "
            "say which way the effect goes).")
    for p, v in (signs or {}).items():
        if p not in sg:
            raise InvalidParameterError(f"{p!r} is not a parent of {target!r}; parents: "
                                        f"{list(sg)}.")
        if v not in (-1, 0, 1):
            raise InvalidParameterError(f"Sign of {p!r} must be +1, -1 or 0; got {v!r}.")
        sg[p] = int(v)
    parents = list(sg)
    if data is not None:
        missing = [p for p in parents if p not in data]
        if missing:
            raise InvalidParameterError(f"The data lack the parent column(s) {missing}.")
        centre = [float(np.nanmean(np.asarray(data[p], float))) for p in parents]
    else:
        centre = [float(graph.means.get(p, 0.0)) for p in parents]
    return _build({"type": "causal", "target": target, "parents": parents,
                   "signs": [sg[p] for p in parents], "centre": centre})


def fit_causal(graph, data, target: str, priors=None, *, signs: dict | None = None, **kwargs):
    """Fit ``target`` on its graph parents in ``data`` (a DataFrame or a
    :class:`~causalspy.descriptors.Descriptors`-like object with ``to_dataframe``).

    Rows with a NaN in the target or a parent are dropped. ``priors`` replaces
    defaults as in :func:`~causalspy.bayes.fit` (e.g. ``{"k_strain":
    "HalfNormal(0.5)"}``); ``kwargs`` go to :func:`~causalspy.bayes.fit`.

    Returns
    -------
    Posterior
    """
    from causalspy.bayes.fit import fit

    if hasattr(data, "to_dataframe") and not hasattr(data, "columns"):
        data = data.to_dataframe()
    if target not in data:
        raise InvalidParameterError(f"The data have no column {target!r}.")
    m = causal_model(graph, target, data=data, signs=signs)
    cols = list(m.inputs)
    X = np.column_stack([np.asarray(data[c], float) for c in cols])
    y = np.asarray(data[target], float)
    ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    kwargs.setdefault("label", f"{target} on {', '.join(cols)}")
    return fit(X[ok], y[ok], m, priors, **kwargs)
