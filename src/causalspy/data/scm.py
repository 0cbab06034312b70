"""Structural causal models (SCMs) that mimic per unit cell microscopy descriptors.

Every model returns an :class:`SCMSample`: a :class:`pandas.DataFrame` with
one row per unit cell (a sample) and one column per descriptor, together
with the *true* causal graph (directed edges and their linear coefficients,
hidden variables, confounded pairs), so causal-discovery methods can be
scored against it.

All models are linear structural equation models,

.. math:: x_j = c_j + \\sum_{i \\in \\mathrm{pa}(j)} w_{ij} x_i + s_j \\varepsilon_j ,

with intercept ``c_j``, edge coefficients ``w_ij`` in the units of the data
(a change of +1 unit of ``x_i`` changes ``x_j`` by ``w_ij`` units, other
parents fixed), noise scale ``s_j`` and independent, standardized noise
``eps_j`` (zero mean, unit variance) whose distribution is chosen with
``noise``: ``"laplace"`` (excess kurtosis 3), ``"uniform"`` (-1.2),
``"exponential"`` (skewed; excess kurtosis 6) or ``"gaussian"`` (0; then
LiNGAM cannot orient the edges). Sampling is vectorized over the rows and
deterministic given ``seed`` (``numpy.random.default_rng(seed)``).

The models:

- :func:`linear_sem`: a random DAG in a random causal order, for benchmarks.
- :func:`doped_ferroelectric`: dopant intensity -> cell volume ->
  polarization -> tetragonality, a crosstalk channel and a nuisance column.
- :func:`hidden_confounder`: specimen thickness (hidden) drives both the
  A-column intensity and the apparent strain.
- :func:`simpsons_paradox`: two ferroelectric domains; strain raises the
  polarization in each domain but the pooled correlation is negative.

:func:`render_perovskite` renders a sample into a synthetic perovskite image
(with per-cell ground truth), so the chain image -> descriptors -> graph can
be tested end to end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from causalspy.data._common import (
    SeedLike,
    apply_noise,
    check_number,
    check_pair,
    edge_mask,
    finish,
    make_rng,
    make_table,
    seed_param,
)
from causalspy.data._elements import atomic_number
from causalspy.data._render import render_columns
from causalspy.data._truth import GroundTruth
from causalspy.exceptions import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from hyperspy.signals import Signal2D

__all__ = [
    "NOISE_KINDS",
    "SCMGroundTruth",
    "SCMSample",
    "doped_ferroelectric",
    "hidden_confounder",
    "linear_sem",
    "render_perovskite",
    "simpsons_paradox",
]

#: Distributions of the standardized noise terms (zero mean, unit variance).
NOISE_KINDS = ("laplace", "uniform", "exponential", "gaussian")

Edge = tuple[str, str]


# --------------------------------------------------------------------------- result


@dataclass
class SCMSample:
    """A sample of a structural causal model with its true causal graph.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per unit cell (sample), one column per *observed* descriptor,
        e.g. ``"intensity_A"``, ``"volume"``, ``"p_mag"``, ``"tetragonality"``.
    edges : list of tuple of str
        Every true directed edge ``(cause, effect)`` of the model, including
        the edges out of hidden variables (see :attr:`observed_edges` for the
        edges between columns of ``data`` only).
    weights : dict
        Linear coefficient of each edge, ``weights[(cause, effect)]``, in the
        units of the data: +1 unit of ``cause`` changes ``effect`` by this
        many units when the other parents of ``effect`` are held fixed.
    hidden : list of str
        Latent variables of the model that are *not* columns of ``data``.
    bidirected : list of tuple of str
        Pairs of observed columns confounded by a hidden common cause (what
        FCI should mark ``<->``).
    description : str
        Plain-language description of the model.
    intercepts : dict
        Intercept ``c_j`` of every variable (observed and hidden).
    noise_scale : dict
        Standard deviation ``s_j`` of the noise term of every variable.
    noise_kind : dict
        Distribution of every variable's noise term (one of
        :data:`NOISE_KINDS`, or ``"bernoulli"`` for a 0/1 switch).
    noise : pandas.DataFrame
        The realized noise terms ``s_j * eps_j`` of every variable (observed
        and hidden), row-aligned with ``data``:
        ``x_j = c_j + sum_i w_ij x_i + noise_j`` holds exactly.
    hidden_data : pandas.DataFrame
        The realized values of the hidden variables, row-aligned with
        ``data`` (never give these to a discovery method).
    units : dict
        Unit of every variable (``""`` when dimensionless).
    params : dict
        The arguments of the model call (``model``, ``n``, ``seed``, ...).

    Examples
    --------
    >>> s = doped_ferroelectric(n=1000, seed=1)
    >>> s.observed_edges[:2]
    [('intensity_A', 'intensity_B'), ('intensity_A', 'volume')]
    >>> round(s.total_effect("volume", "tetragonality"), 6)
    2.0
    """

    data: pd.DataFrame
    edges: list[Edge]
    weights: dict[Edge, float]
    hidden: list[str] = field(default_factory=list)
    bidirected: list[Edge] = field(default_factory=list)
    description: str = ""
    intercepts: dict[str, float] = field(default_factory=dict)
    noise_scale: dict[str, float] = field(default_factory=dict)
    noise_kind: dict[str, str] = field(default_factory=dict)
    noise: pd.DataFrame | None = None
    hidden_data: pd.DataFrame | None = None
    units: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ views

    @property
    def columns(self) -> list[str]:
        """Names of the observed variables (the columns of :attr:`data`)."""
        return [str(c) for c in self.data.columns]

    @property
    def nodes(self) -> list[str]:
        """All variables of the model: the observed columns, then the hidden ones."""
        return self.columns + [h for h in self.hidden if h not in self.data.columns]

    @property
    def observed_edges(self) -> list[Edge]:
        """The true directed edges whose cause and effect are both columns of :attr:`data`."""
        cols = set(self.columns)
        return [(a, b) for a, b in self.edges if a in cols and b in cols]

    def parents(self, name: str) -> list[str]:
        """Return the true direct causes of ``name`` (observed or hidden).

        Parameters
        ----------
        name : str
            A variable of the model.

        Returns
        -------
        list of str
            Its parents, in the order of :attr:`edges`.
        """
        self._check_names([name])
        return [a for a, b in self.edges if b == name]

    def _check_names(self, names: Iterable[str]) -> None:
        known = set(self.nodes)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidParameterError(
                f"Unknown variable(s) {unknown}; the model's variables are {self.nodes}."
            )

    def adjacency(self, order: Sequence[str] | None = None) -> np.ndarray:
        """Weighted adjacency matrix of the true graph.

        Parameters
        ----------
        order : sequence of str, optional
            Variables (rows and columns) in the wanted order. Default: the
            columns of :attr:`data`, so hidden variables and their edges are
            left out; pass :attr:`nodes` to include them.

        Returns
        -------
        numpy.ndarray
            ``B`` of shape ``(k, k)`` with ``B[i, j] = weights[(order[i],
            order[j])]`` when ``order[i] -> order[j]`` and 0 otherwise, so
            ``B[i, j] != 0`` iff ``i -> j`` (cause in the row). Note that
            causal-learn's LiNGAM ``adjacency_matrix_`` is the *transpose*
            (effect in the row).

        Raises
        ------
        InvalidParameterError
            If ``order`` names an unknown variable or repeats one.
        """
        names = self.columns if order is None else [str(o) for o in order]
        self._check_names(names)
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"order repeats a variable: {names}.")
        index = {name: i for i, name in enumerate(names)}
        b = np.zeros((len(names), len(names)))
        for (cause, effect), w in self.weights.items():
            if cause in index and effect in index:
                b[index[cause], index[effect]] = w
        return b

    def total_effect(self, cause: str, effect: str) -> float:
        """True total causal effect of +1 unit of ``cause`` on ``effect``.

        The sum over all directed paths ``cause -> ... -> effect`` (through
        observed and hidden variables) of the product of the edge weights,
        i.e. ``d E[effect | do(cause = x)] / dx``, in units of ``effect`` per
        unit of ``cause``. Computed as ``[(I - B)^-1]`` of the full weighted
        adjacency ``B``.

        Parameters
        ----------
        cause, effect : str
            Variables of the model (observed or hidden).

        Returns
        -------
        float
            The total effect; 0 when there is no directed path, 1 when
            ``cause == effect``.

        Raises
        ------
        InvalidParameterError
            If either name is not a variable of the model.
        """
        self._check_names([cause, effect])
        nodes = self.nodes
        b = self.adjacency(nodes)
        total = np.linalg.inv(np.eye(len(nodes)) - b)
        return float(total[nodes.index(cause), nodes.index(effect)])

    def to_networkx(self, include_hidden: bool = True) -> nx.DiGraph:
        """The true graph as a :class:`networkx.DiGraph`.

        Parameters
        ----------
        include_hidden : bool
            Keep the hidden variables and their edges.

        Returns
        -------
        networkx.DiGraph
            Nodes carry ``hidden`` (bool) and ``unit``; edges carry
            ``weight``. ``graph.graph["bidirected"]`` lists the confounded
            observed pairs and ``graph.graph["description"]`` the model.
        """
        import networkx as nx

        g = nx.DiGraph()
        g.graph["description"] = self.description
        g.graph["bidirected"] = list(self.bidirected)
        nodes = self.nodes if include_hidden else self.columns
        for name in nodes:
            g.add_node(name, hidden=name in self.hidden, unit=self.units.get(name, ""))
        for cause, effect in self.edges:
            if cause in g and effect in g:
                g.add_edge(cause, effect, weight=float(self.weights[(cause, effect)]))
        return g

    def shd(
        self,
        estimated: Iterable[Edge] | np.ndarray,
        *,
        order: Sequence[str] | None = None,
        undirected: Iterable[Edge] = (),
        ignore: Iterable[str] = (),
    ) -> int:
        """Structural Hamming distance of an estimated graph to the true observed graph.

        Every pair of observed columns (not in ``ignore``) whose relation
        differs counts once: a missing edge, an extra edge, a reversed edge,
        or an undirected estimate (``undirected``) of a true directed edge.

        Parameters
        ----------
        estimated : iterable of (cause, effect) or numpy.ndarray
            Estimated directed edges, or an adjacency matrix with
            ``estimated[i, j] != 0`` iff ``order[i] -> order[j]`` (the
            convention of :meth:`adjacency`; transpose causal-learn's LiNGAM
            matrix first).
        order : sequence of str, optional
            Variable order of a matrix ``estimated``; default the columns of
            :attr:`data`.
        undirected : iterable of (a, b)
            Estimated undirected edges (e.g. from PC/GES).
        ignore : iterable of str
            Variables left out of the comparison (e.g. a nuisance column).

        Returns
        -------
        int
            The number of differing pairs; 0 for a perfect recovery.
        """
        if isinstance(estimated, np.ndarray):
            names = self.columns if order is None else [str(o) for o in order]
            if estimated.shape != (len(names), len(names)):
                raise InvalidParameterError(
                    f"The estimated adjacency matrix has shape {estimated.shape}; expected "
                    f"({len(names)}, {len(names)}) for the variables {names}."
                )
            rows, cols = np.nonzero(estimated)
            est = {(names[i], names[j]) for i, j in zip(rows, cols, strict=True) if i != j}
        else:
            est = {(str(a), str(b)) for a, b in estimated}
        und = {frozenset((str(a), str(b))) for a, b in undirected}
        skip = set(ignore)
        cols = [c for c in self.columns if c not in skip]
        true = set(self.observed_edges)

        def state(truth: set[Edge], a: str, b: str) -> str:
            ab, ba = (a, b) in truth, (b, a) in truth
            return "<>" if ab and ba else ">" if ab else "<" if ba else ""

        distance = 0
        for k, a in enumerate(cols):
            for b in cols[k + 1 :]:
                s_true = state(true, a, b)
                s_est = "-" if frozenset((a, b)) in und else state(est, a, b)
                distance += s_true != s_est
        return distance

    def __len__(self) -> int:
        return len(self.data)


# --------------------------------------------------------------------------- checks


def _check_n(n: Any, minimum: int = 2) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) or n < minimum:
        raise InvalidParameterError(
            f"n (number of samples / unit cells) must be an integer >= {minimum}, got {n!r}."
        )
    return int(n)


def _check_noise(noise: Any) -> str:
    key = noise.lower() if isinstance(noise, str) else None
    if key == "normal":
        key = "gaussian"
    if key not in NOISE_KINDS:
        raise InvalidParameterError(
            f"noise must be one of {', '.join(repr(k) for k in NOISE_KINDS)}, got {noise!r}. "
            "Use a non-Gaussian noise for LiNGAM; 'gaussian' makes edge directions unidentifiable."
        )
    return key


# --------------------------------------------------------------------------- simulation


@dataclass
class _Node:
    """One structural equation: ``name = intercept + sum(w * parents) + scale * eps``."""

    name: str
    intercept: float
    scale: float
    noise: str
    unit: str = ""
    hidden: bool = False


def _draw(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """``n`` standardized noise values (zero mean, unit variance; 0/1 for bernoulli)."""
    if kind == "laplace":
        return rng.laplace(0.0, 1.0 / math.sqrt(2.0), n)
    if kind == "uniform":
        return rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), n)
    if kind == "exponential":
        return rng.exponential(1.0, n) - 1.0
    if kind == "gaussian":
        return rng.standard_normal(n)
    if kind == "bernoulli":
        return rng.integers(0, 2, n).astype(np.float64)
    raise InvalidParameterError(f"Unknown noise kind {kind!r}.")  # pragma: no cover


def _simulate(
    n: int,
    rng: np.random.Generator,
    nodes: list[_Node],
    weights: dict[Edge, float],
    *,
    columns: Sequence[str] | None = None,
    bidirected: Sequence[Edge] = (),
    description: str = "",
    params: dict[str, Any] | None = None,
    dtypes: dict[str, Any] | None = None,
) -> SCMSample:
    """Sample a linear SEM whose ``nodes`` are listed in a causal (topological) order."""
    index = {node.name: k for k, node in enumerate(nodes)}
    for cause, effect in weights:
        if index[cause] >= index[effect]:  # pragma: no cover - a bug in a model definition
            raise RuntimeError(f"Edge {cause} -> {effect} violates the causal order.")
    values: dict[str, np.ndarray] = {}
    noise: dict[str, np.ndarray] = {}
    for node in nodes:
        e = node.scale * _draw(rng, node.noise, n)
        x = node.intercept + e
        for (cause, effect), w in weights.items():
            if effect == node.name:
                x = x + w * values[cause]
        values[node.name] = x
        noise[node.name] = e
    observed = [node.name for node in nodes if not node.hidden]
    cols = list(columns) if columns is not None else observed
    data = pd.DataFrame({c: values[c] for c in cols})
    if dtypes:
        data = data.astype(dtypes)
    hidden = [node.name for node in nodes if node.hidden]
    edges = list(weights)
    return SCMSample(
        data=data,
        edges=edges,
        weights={k: float(v) for k, v in weights.items()},
        hidden=hidden,
        bidirected=list(bidirected),
        description=description,
        intercepts={node.name: float(node.intercept) for node in nodes},
        noise_scale={node.name: float(node.scale) for node in nodes},
        noise_kind={node.name: node.noise for node in nodes},
        noise=pd.DataFrame({c: noise[c] for c in cols + hidden}),
        hidden_data=pd.DataFrame({h: values[h] for h in hidden}),
        units={node.name: node.unit for node in nodes},
        params=dict(params or {}),
    )


# --------------------------------------------------------------------------- models


def linear_sem(
    n: int,
    n_vars: int = 8,
    density: float = 0.3,
    noise: str = "uniform",
    seed: SeedLike = 0,
    weight_range: tuple[float, float] = (0.5, 1.5),
    *,
    signed: bool = True,
    noise_range: tuple[float, float] = (0.5, 1.0),
) -> SCMSample:
    """Random linear non-Gaussian acyclic model (LiNGAM benchmark).

    A random causal order is drawn (a permutation of ``x0 .. x{n_vars-1}``),
    then each of the ``n_vars * (n_vars - 1) / 2`` pairs that respect it gets
    an edge ``earlier -> later`` with probability ``density``. Edge weights
    have magnitudes uniform in ``weight_range`` (and a random sign when
    ``signed``); noise scales are uniform in ``noise_range``; intercepts
    are 0. The columns of ``data`` are ``x0, x1, ...`` in index order, which
    is *not* the causal order.

    Parameters
    ----------
    n : int
        Number of samples (>= 2).
    n_vars : int
        Number of variables (>= 2); 6-12 for the issue's benchmarks.
    density : float
        Edge probability per ordered pair, in [0, 1] (0: no edges, 1: a
        complete DAG).
    noise : {"uniform", "laplace", "exponential", "gaussian"}
        Distribution of the standardized noise terms.
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng` (graph, weights and data).
    weight_range : tuple of float
        ``(low, high)`` magnitudes of the edge weights, ``0 < low <= high``.
    signed : bool
        Give every weight a random sign (``False``: all positive).
    noise_range : tuple of float
        ``(low, high)`` noise standard deviations, ``0 < low <= high``.

    Returns
    -------
    SCMSample
        ``data`` with columns ``x0 .. x{n_vars-1}``; ``params["causal_order"]``
        holds the causal order.

    Raises
    ------
    InvalidParameterError
        If ``n < 2``, ``n_vars < 2``, ``density`` is outside [0, 1], the noise
        is unknown or a range is invalid.

    Examples
    --------
    >>> s = linear_sem(500, n_vars=6, density=0.5, seed=3)
    >>> s.data.shape
    (500, 6)
    >>> bool((s.adjacency() != 0).sum() == len(s.edges))
    True
    """
    n = _check_n(n)
    if (
        not isinstance(n_vars, (int, np.integer))
        or isinstance(n_vars, (bool, np.bool_))
        or n_vars < 2
    ):
        raise InvalidParameterError(
            f"n_vars (number of variables) must be an integer >= 2, got {n_vars!r}."
        )
    n_vars = int(n_vars)
    density = check_number("density (edge probability)", density, minimum=0.0, maximum=1.0)
    noise = _check_noise(noise)
    lo, hi = _check_range("weight_range", weight_range)
    nlo, nhi = _check_range("noise_range", noise_range)
    rng = make_rng(seed)

    names = [f"x{k}" for k in range(n_vars)]
    order = [names[k] for k in rng.permutation(n_vars)]
    weights: dict[Edge, float] = {}
    iu, ju = np.triu_indices(n_vars, k=1)
    present = rng.random(iu.size) < density
    magnitude = rng.uniform(lo, hi, iu.size)
    sign = np.where(rng.random(iu.size) < 0.5, -1.0, 1.0) if signed else np.ones(iu.size)
    for a, b, keep, m, s in zip(iu, ju, present, magnitude, sign, strict=True):
        if keep:
            weights[(order[a], order[b])] = float(m * s)
    scales = rng.uniform(nlo, nhi, n_vars)
    nodes = [_Node(name, 0.0, float(scales[k]), noise) for k, name in enumerate(order)]
    return _simulate(
        n,
        rng,
        nodes,
        weights,
        columns=names,
        description=(
            f"Random linear SEM: {n_vars} variables, {len(weights)} edges "
            f"(density {density:g}), {noise} noise, causal order {' < '.join(order)}."
        ),
        params={
            "model": "linear_sem",
            "n": n,
            "n_vars": n_vars,
            "density": density,
            "noise": noise,
            "seed": seed_param(seed),
            "weight_range": [lo, hi],
            "signed": bool(signed),
            "noise_range": [nlo, nhi],
            "causal_order": order,
        },
    )


def _check_range(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be a pair (low, high) of numbers with 0 < low <= high, got {value!r}."
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise InvalidParameterError(
            f"{name} must be a pair (low, high) of numbers with 0 < low <= high, got {value!r}."
        )
    return lo, hi


def doped_ferroelectric(n: int = 5000, seed: SeedLike = 0, noise: str = "laplace") -> SCMSample:
    """Doped ferroelectric: composition -> cell volume -> polarization -> tetragonality.

    Per unit cell of a perovskite with an A-site dopant (e.g. Sr in PbTiO3):

    ============== ========= ============================================ ===============
    column         unit      equation (``e_*``: independent noise)        typical value
    ============== ========= ============================================ ===============
    intensity_A    counts    ``1e4 + e_A`` (dopant content proxy)         1e4 +/- 600
    intensity_B    counts    ``200 + 0.08 intensity_A + e_B`` (tails of   1000 +/- 62
                             the A columns spill into the B column)
    volume         nm^2      ``0.14 + 2e-6 intensity_A + e_V``            0.160 +/- 0.0016
    p_mag          pm        ``-300 + 2000 volume + e_P``                 20 +/- 3.7
    tetragonality  (c/a)     ``1 + 1e-3 p_mag + e_T``                     1.020 +/- 0.005
    x_position     nm        uniform on [0, 50] (scan position; no edges) 25 +/- 14
    ============== ========= ============================================ ===============

    The true edges are ``intensity_A -> intensity_B``, ``intensity_A ->
    volume``, ``volume -> p_mag`` and ``p_mag -> tetragonality``; every edge
    explains about half the variance of its effect, and with non-Gaussian
    noise LiNGAM can orient all of them. ``x_position`` is independent of
    everything: a method should give it no edge.

    Parameters
    ----------
    n : int
        Number of unit cells (>= 2).
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.
    noise : {"laplace", "uniform", "exponential", "gaussian"}
        Distribution of the noise terms (``x_position`` is always uniform).

    Returns
    -------
    SCMSample
        Columns ``intensity_A, intensity_B, volume, p_mag, tetragonality,
        x_position``; no hidden variables.

    Raises
    ------
    InvalidParameterError
        If ``n < 2`` or the noise is unknown.

    Examples
    --------
    >>> s = doped_ferroelectric(n=2000, seed=0)
    >>> round(s.total_effect("intensity_A", "p_mag"), 6)
    0.004
    """
    n = _check_n(n)
    noise = _check_noise(noise)
    rng = make_rng(seed)
    nodes = [
        _Node("intensity_A", 1e4, 600.0, noise, "counts"),
        _Node("intensity_B", 200.0, 40.0, noise, "counts"),
        _Node("volume", 0.14, 1e-3, noise, "nm^2"),
        _Node("p_mag", -300.0, 2.0, noise, "pm"),
        _Node("tetragonality", 1.0, 3e-3, noise, ""),
        _Node("x_position", 25.0, 50.0 / math.sqrt(12.0), "uniform", "nm"),
    ]
    weights = {
        ("intensity_A", "intensity_B"): 0.08,
        ("intensity_A", "volume"): 2e-6,
        ("volume", "p_mag"): 2000.0,
        ("p_mag", "tetragonality"): 1e-3,
    }
    return _simulate(
        n,
        rng,
        nodes,
        weights,
        description=(
            "Doped ferroelectric: dopant intensity (intensity_A) -> cell volume -> polarization "
            "(p_mag) -> tetragonality; intensity_B is a crosstalk child of intensity_A; "
            f"x_position (scan position) is an independent nuisance. {noise} noise."
        ),
        params={"model": "doped_ferroelectric", "n": n, "seed": seed_param(seed), "noise": noise},
    )


def hidden_confounder(n: int = 5000, seed: SeedLike = 0, noise: str = "laplace") -> SCMSample:
    """Hidden specimen thickness confounds intensity and apparent strain.

    ``thickness`` (nm, hidden) raises both the A-column intensity (more atoms
    per column) and the apparent strain ``exx`` (projection and tilt
    artefacts). Genuine edges: ``intensity_A -> volume`` (composition
    changes the cell) and ``exx -> p_mag`` (strain couples to polarization).

    ============== ====== ========================================================
    variable       unit   equation (``e_*``: independent noise)
    ============== ====== ========================================================
    thickness      nm     ``20 + e_t`` (std 2 nm; hidden)
    intensity_A    counts ``500 thickness + e_A`` (1e4 +/- 1300)
    exx            (1)    ``-0.01 + 5e-4 thickness + e_x`` (0 +/- 0.0014)
    volume         nm^2   ``0.14 + 2e-6 intensity_A + e_V`` (0.16 +/- 0.0033)
    p_mag          pm     ``20 + 1500 exx + e_P`` (20 +/- 2.6)
    ============== ====== ========================================================

    ``intensity_A`` and ``exx`` are correlated (about 0.55) without a causal
    link between them: ``bidirected`` holds ``("intensity_A", "exx")``, and
    ``total_effect("intensity_A", "exx")`` is 0.

    Parameters
    ----------
    n : int
        Number of unit cells (>= 2).
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.
    noise : {"laplace", "uniform", "exponential", "gaussian"}
        Distribution of the noise terms.

    Returns
    -------
    SCMSample
        Columns ``intensity_A, exx, volume, p_mag``; ``hidden ==
        ["thickness"]`` (its values are in ``hidden_data``).

    Raises
    ------
    InvalidParameterError
        If ``n < 2`` or the noise is unknown.
    """
    n = _check_n(n)
    noise = _check_noise(noise)
    rng = make_rng(seed)
    nodes = [
        _Node("thickness", 20.0, 2.0, noise, "nm", hidden=True),
        _Node("intensity_A", 0.0, 800.0, noise, "counts"),
        _Node("exx", -0.01, 1e-3, noise, ""),
        _Node("volume", 0.14, 2e-3, noise, "nm^2"),
        _Node("p_mag", 20.0, 1.5, noise, "pm"),
    ]
    weights = {
        ("thickness", "intensity_A"): 500.0,
        ("thickness", "exx"): 5e-4,
        ("intensity_A", "volume"): 2e-6,
        ("exx", "p_mag"): 1500.0,
    }
    return _simulate(
        n,
        rng,
        nodes,
        weights,
        bidirected=[("intensity_A", "exx")],
        description=(
            "Hidden confounder: specimen thickness (not observed) drives both intensity_A and "
            "the apparent strain exx; genuine edges intensity_A -> volume and exx -> p_mag. "
            f"{noise} noise."
        ),
        params={"model": "hidden_confounder", "n": n, "seed": seed_param(seed), "noise": noise},
    )


def simpsons_paradox(n: int = 4000, seed: SeedLike = 0, noise: str = "laplace") -> SCMSample:
    """Two ferroelectric domains: Simpson's paradox between strain and polarization.

    ``domain`` (0 or 1, probability 1/2 each) shifts the strain up by 0.01
    and the polarization down by 15 pm; within each domain tensile strain
    *raises* the polarization by 5 pm per 1 % strain:

    ========= ====== ===============================================
    column    unit   equation (``e_*``: independent noise)
    ========= ====== ===============================================
    domain    (0/1)  Bernoulli(1/2)
    strain    (1)    ``0.01 domain + e_s`` (std 0.002)
    p_mag     pm     ``25 + 500 strain - 15 domain + e_P`` (std 1 pm)
    ========= ====== ===============================================

    The true (total and direct) effect of strain on ``p_mag`` is +500 pm per
    unit strain and the within-domain correlation is about +0.7, but the
    pooled correlation is about -0.8: a correlative analysis that ignores
    ``domain`` gets the sign wrong; adjusting for ``domain`` gets it right.

    Parameters
    ----------
    n : int
        Number of unit cells (>= 2).
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.
    noise : {"laplace", "uniform", "exponential", "gaussian"}
        Distribution of the noise of ``strain`` and ``p_mag``.

    Returns
    -------
    SCMSample
        Columns ``domain`` (int64), ``strain``, ``p_mag``; edges ``domain ->
        strain``, ``domain -> p_mag``, ``strain -> p_mag``.

    Raises
    ------
    InvalidParameterError
        If ``n < 2`` or the noise is unknown.

    Examples
    --------
    >>> s = simpsons_paradox(seed=0)
    >>> s.total_effect("strain", "p_mag")
    500.0
    >>> bool(s.data["strain"].corr(s.data["p_mag"]) < 0)
    True
    """
    n = _check_n(n)
    noise = _check_noise(noise)
    rng = make_rng(seed)
    nodes = [
        _Node("domain", 0.0, 1.0, "bernoulli", ""),
        _Node("strain", 0.0, 2e-3, noise, ""),
        _Node("p_mag", 25.0, 1.0, noise, "pm"),
    ]
    weights = {
        ("domain", "strain"): 0.01,
        ("domain", "p_mag"): -15.0,
        ("strain", "p_mag"): 500.0,
    }
    return _simulate(
        n,
        rng,
        nodes,
        weights,
        dtypes={"domain": np.int64},
        description=(
            "Simpson's paradox: two ferroelectric domains; within each domain strain -> p_mag "
            "is positive (+500 pm per unit strain), but the domain shifts strain up and p_mag "
            f"down, so the pooled correlation is negative. {noise} noise."
        ),
        params={"model": "simpsons_paradox", "n": n, "seed": seed_param(seed), "noise": noise},
    )


# --------------------------------------------------------------------------- rendering


@dataclass
class SCMGroundTruth(GroundTruth):
    """Ground truth of an image rendered from an SCM by :func:`render_perovskite`.

    Attributes
    ----------
    columns : pandas.DataFrame
        One row per column site, as for :func:`causalspy.data.perovskite`
        (``x, y, sublattice, species, counts, present, sigma, edge, dx, dy,
        domain, cell_i, cell_j``; sublattice 0 = A, 1 = B).
    params : dict
        The rendering parameters (``pixel_size_nm``, ``cell_px``, ...).
    cells : pandas.DataFrame
        One row per unit cell (B column): ``cell_i, cell_j``, ``x, y`` (true
        B-column centre, px), ``unit`` (True for the cells that carry an SCM
        sample), ``row`` (its row in ``sample.data``, -1 otherwise), the
        realized geometry ``a_nm, c_nm, area_nm2, tetragonality_true,
        p_mag_pm, dx_pm, dy_pm`` and counts ``intensity_A_true`` (mean of
        the 4 A corners) and ``intensity_B_true``; then the sample's columns
        (NaN for cells that are not units).
    sample : SCMSample or None
        The rendered sample (with ``x_position`` replaced by the true
        position when the model has that column).
    """

    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    sample: SCMSample | None = None


def render_perovskite(
    sample_or_model: SCMSample | Callable[..., SCMSample],
    cells: tuple[int, int] = (16, 16),
    seed: SeedLike = 0,
    *,
    cell_px: float = 24.0,
    a_nm: float | None = None,
    counts: float = 1e4,
    dose: float = 1.0,
    background: float = 1.0,
    sigma_px: float | None = None,
    species: tuple[str, str] = ("Pb", "Ti"),
    noise: bool = True,
) -> tuple[Signal2D, SCMGroundTruth]:
    """Render an SCM sample into a synthetic HAADF perovskite image.

    Unit cells ``(cell_i, cell_j)`` with both indices even are the *units*:
    each owns its four A corners exclusively (no other unit shares them),
    so its descriptors can be set exactly. Unit ``k`` (in row-major order)
    takes row ``k`` of the sample's data:

    - ``intensity_A``: total counts of each of its four A columns (default
      ``counts``);
    - ``intensity_B``: counts of its B column (default
      ``counts * (Z_B / Z_A) ** 1.7``);
    - cell lengths along x and y: ``a = a_nm * (1 + exx)`` when the model has
      ``exx``, else ``a = sqrt(volume / tetragonality)`` (missing ones at
      their defaults ``a_nm ** 2`` and 1); ``c = volume / a`` when it has
      ``volume``, else ``tetragonality * a``. The four A corners sit at the
      cell centre ``+/- (a / 2, c / 2)``, so the measured projected cell
      area (``volume``) and ``c / a`` are exact;
    - ``p_mag`` (pm): the B column is displaced from the centroid of its A
      corners by ``p_mag`` along +y (along -y when the model has a
      ``domain`` column equal to 1);
    - ``x_position`` (when present) is replaced by the true x of the cell
      centre in nm, an independent nuisance as in the model.

    The other cells are fillers whose shape follows from their neighbours;
    their B columns sit at the centroid of their corners displaced by the
    mean ``p_mag``. Unit centres form a regular lattice of pitch twice the
    mean cell size. Pixel convention as in :mod:`causalspy.data`.

    Parameters
    ----------
    sample_or_model : SCMSample or callable
        A sample with at least as many rows as units, or a model function
        such as :func:`doped_ferroelectric`, called as ``model(n=n_units,
        seed=seed)``.
    cells : tuple of int
        Number of unit cells ``(rows along y, columns along x)``, each >= 2;
        there are ``ceil(rows / 2) * ceil(columns / 2)`` units.
    seed : int, numpy.random.Generator or None
        Seed for the model (when a callable is given) and the Poisson noise.
    cell_px : float
        Mean cell size along x in pixels (>= 4).
    a_nm : float, optional
        Reference lattice parameter in nm; default ``sqrt(mean volume)`` when
        the model has ``volume``, else 0.4.
    counts : float
        A-column counts when the model has no ``intensity_A`` (> 0).
    dose : float
        Multiplies all column counts (> 0): a higher dose gives more precise
        positions and intensities without changing the causal structure
        (``intensity_A_true``/``intensity_B_true`` in ``cells`` are the
        rendered counts; the sample's columns are left unscaled).
    background : float
        Constant expected counts per pixel (>= 0).
    sigma_px : float, optional
        Gaussian width of every column in pixels; default ``0.15 * cell_px``.
    species : tuple of str
        Elements of the A and B sites, for the labels and the default B counts.
    noise : bool
        Draw Poisson counts; ``False`` returns the expected image.

    Returns
    -------
    signal : causalspy.signals.AtomicResolution
        The image with axes ``x``/``y`` in nm.
    truth : SCMGroundTruth
        Site table (``columns``), per-cell table (``cells``) and the sample.

    Raises
    ------
    InvalidParameterError
        On bad parameters, a sample with too few rows, or values that cannot
        be rendered (negative counts, non-positive cell size).

    Examples
    --------
    >>> s, truth = render_perovskite(doped_ferroelectric, cells=(4, 4), noise=False)
    >>> int(truth.cells["unit"].sum()), len(truth.sample)
    (4, 4)
    """
    ny, nx = check_pair("cells", cells, minimum=2)
    cell_px = check_number("cell_px", cell_px, minimum=4.0)
    counts = check_number("counts", counts, minimum=0.0, strict_min=True)
    dose = check_number("dose", dose, minimum=0.0, strict_min=True)
    background = check_number("background", background, minimum=0.0)
    sigma = (
        0.15 * cell_px
        if sigma_px is None
        else check_number("sigma_px", sigma_px, minimum=0.0, strict_min=True)
    )
    if isinstance(species, str) or len(tuple(species)) != 2:
        raise InvalidParameterError(
            f"species must be a pair of element symbols (A, B), got {species!r}."
        )
    sp_a, sp_b = species
    z_a = atomic_number(sp_a, "species[0] (A site)")
    z_b = atomic_number(sp_b, "species[1] (B site)")
    rng = make_rng(seed)
    uy_n, ux_n = (ny + 1) // 2, (nx + 1) // 2
    n_units = uy_n * ux_n
    if isinstance(sample_or_model, SCMSample):
        sample = sample_or_model
    elif callable(sample_or_model):
        sample = sample_or_model(n=max(n_units, 2), seed=rng)
        if not isinstance(sample, SCMSample):
            raise InvalidParameterError(
                "sample_or_model must be an SCMSample or a function returning one (such as "
                f"doped_ferroelectric), got a function returning {type(sample).__name__}."
            )
    else:
        raise InvalidParameterError(
            "sample_or_model must be an SCMSample or a model function such as "
            f"doped_ferroelectric, got {type(sample_or_model).__name__}."
        )
    if len(sample) < n_units:
        raise InvalidParameterError(
            f"The sample has {len(sample)} rows but cells={cells!r} has {n_units} units "
            "(cells with both indices even); draw more samples or use fewer cells."
        )
    data = sample.data.iloc[:n_units].reset_index(drop=True).copy()

    def col(name: str, default: float) -> np.ndarray:
        if name in data:
            return data[name].to_numpy(dtype=np.float64)
        return np.full(n_units, float(default))

    for name, shift in (("volume", 0.0), ("tetragonality", 0.0), ("exx", 1.0)):
        if name in data:
            v = data[name].to_numpy(dtype=np.float64) + shift
            if not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise InvalidParameterError(
                    f"The sample gives non-positive or non-finite cell lengths: {name} "
                    f"must be finite and {'> -1' if shift else '> 0'} in every rendered row."
                )
    if a_nm is None:
        a_nm = math.sqrt(float(data["volume"].mean())) if "volume" in data else 0.4
    a_nm = check_number("a_nm", a_nm, minimum=0.0, strict_min=True)
    vol = col("volume", a_nm**2)
    tet = col("tetragonality", 1.0)
    a_len = a_nm * (1.0 + col("exx", 0.0)) if "exx" in data else np.sqrt(vol / tet)
    c_len = vol / a_len if "volume" in data else tet * a_len
    int_a = col("intensity_A", counts)
    int_b = col("intensity_B", float(np.mean(int_a)) * (z_b / z_a) ** 1.7)
    for name, v in (("intensity_A", int_a), ("intensity_B", int_b)):
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise InvalidParameterError(
                f"{name} must be finite and >= 0 (column counts) to be rendered."
            )
    int_a = int_a * dose
    int_b = int_b * dose
    p_pm = col("p_mag", 0.0)
    if "domain" in data:
        p_sign = np.where(col("domain", 0.0) > 0.5, -1.0, 1.0)
    else:
        p_sign = np.ones(n_units)

    # geometry in pixels: the mean cell is cell_px wide
    pitch_x_nm = float(np.mean(a_len))
    pitch_y_nm = float(np.mean(c_len))
    px_nm = pitch_x_nm / cell_px
    pitch_x, pitch_y = cell_px, pitch_y_nm / px_nm
    width = int(math.ceil((nx + 1) * pitch_x))
    height = int(math.ceil((ny + 1) * pitch_y))
    ox = (width - nx * pitch_x) / 2 - 0.5  # A corner (0, 0)
    oy = (height - ny * pitch_y) / 2 - 0.5

    # A corners: regular (ny + 1) x (nx + 1) grid, then the unit corners moved
    ai, aj = np.meshgrid(np.arange(ny + 1), np.arange(nx + 1), indexing="ij")
    ax_pos = ox + aj * pitch_x
    ay_pos = oy + ai * pitch_y
    a_cnt = np.full(ax_pos.shape, float(np.mean(int_a)))
    ui, uj = np.meshgrid(2 * np.arange(uy_n), 2 * np.arange(ux_n), indexing="ij")
    ui, uj = ui.ravel(), uj.ravel()
    ucx = ox + (uj + 0.5) * pitch_x  # unit centres
    ucy = oy + (ui + 0.5) * pitch_y
    half_a = 0.5 * a_len / px_nm
    half_c = 0.5 * c_len / px_nm
    for di in (0, 1):
        for dj in (0, 1):
            ax_pos[ui + di, uj + dj] = ucx + (dj - 0.5) * 2 * half_a
            ay_pos[ui + di, uj + dj] = ucy + (di - 0.5) * 2 * half_c
            a_cnt[ui + di, uj + dj] = int_a

    # B columns of all cells
    ci, cj = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    ci, cj = ci.ravel(), cj.ravel()
    corners_x = np.stack([ax_pos[ci + di, cj + dj] for di in (0, 1) for dj in (0, 1)], axis=1)
    corners_y = np.stack([ay_pos[ci + di, cj + dj] for di in (0, 1) for dj in (0, 1)], axis=1)
    unit_index = np.full((ny, nx), -1, dtype=np.int64)
    unit_index[ui, uj] = np.arange(n_units)
    row = unit_index[ci, cj]
    is_unit = row >= 0
    disp_pm = np.full(ci.size, float(np.mean(p_pm)))
    disp_pm[is_unit] = p_pm[row[is_unit]] * p_sign[row[is_unit]]
    dy_px = disp_pm * 1e-3 / px_nm
    dx_px = np.zeros_like(dy_px)
    bx = corners_x.mean(axis=1) + dx_px
    by = corners_y.mean(axis=1) + dy_px
    b_cnt = np.full(ci.size, float(np.mean(int_b)))
    b_cnt[is_unit] = int_b[row[is_unit]]

    # realized per-cell geometry, measured as causalspy.descriptors does
    avec_x = 0.5 * ((corners_x[:, 1] - corners_x[:, 0]) + (corners_x[:, 3] - corners_x[:, 2]))
    avec_y = 0.5 * ((corners_y[:, 1] - corners_y[:, 0]) + (corners_y[:, 3] - corners_y[:, 2]))
    cvec_x = 0.5 * ((corners_x[:, 2] - corners_x[:, 0]) + (corners_x[:, 3] - corners_x[:, 1]))
    cvec_y = 0.5 * ((corners_y[:, 2] - corners_y[:, 0]) + (corners_y[:, 3] - corners_y[:, 1]))
    a_real = np.hypot(avec_x, avec_y) * px_nm
    c_real = np.hypot(cvec_x, cvec_y) * px_nm
    area = np.abs(avec_x * cvec_y - avec_y * cvec_x) * px_nm**2
    a_corner_cnt = np.stack([a_cnt[ci + di, cj + dj] for di in (0, 1) for dj in (0, 1)], axis=1)

    if "x_position" in data:
        data["x_position"] = ucx * px_nm
    rendered = SCMSample(
        data=data,
        edges=list(sample.edges),
        weights=dict(sample.weights),
        hidden=list(sample.hidden),
        bidirected=list(sample.bidirected),
        description=sample.description,
        intercepts=dict(sample.intercepts),
        noise_scale=dict(sample.noise_scale),
        noise_kind=dict(sample.noise_kind),
        noise=None if sample.noise is None else sample.noise.iloc[:n_units].reset_index(drop=True),
        hidden_data=(
            None
            if sample.hidden_data is None
            else sample.hidden_data.iloc[:n_units].reset_index(drop=True)
        ),
        units=dict(sample.units),
        params={**sample.params, "rendered_units": n_units},
    )

    cells_table = pd.DataFrame(
        {
            "cell_i": ci,
            "cell_j": cj,
            "x": bx,
            "y": by,
            "unit": is_unit,
            "row": row,
            "a_nm": a_real,
            "c_nm": c_real,
            "area_nm2": area,
            "tetragonality_true": c_real / a_real,
            "p_mag_pm": np.abs(disp_pm),
            "dx_pm": dx_px * px_nm * 1e3,
            "dy_pm": dy_px * px_nm * 1e3,
            "intensity_A_true": a_corner_cnt.mean(axis=1),
            "intensity_B_true": b_cnt,
        }
    )
    for name in data.columns:
        values = np.full(ci.size, np.nan)
        values[is_unit] = data[name].to_numpy(dtype=np.float64)[row[is_unit]]
        cells_table[name] = values

    # site table (A then B), as perovskite() builds it
    n_a = ax_pos.size
    sites = {
        "x": np.concatenate([ax_pos.ravel(), bx]),
        "y": np.concatenate([ay_pos.ravel(), by]),
        "sublattice": np.concatenate([np.zeros(n_a, np.int64), np.ones(ci.size, np.int64)]),
        "species": np.array([sp_a] * n_a + [sp_b] * ci.size, dtype=object),
        "counts": np.concatenate([a_cnt.ravel(), b_cnt]),
        "dx": np.concatenate([np.zeros(n_a), dx_px]),
        "dy": np.concatenate([np.zeros(n_a), dy_px]),
        "domain": np.concatenate([np.full(n_a, -1), np.where(disp_pm < 0, 1, 0)]).astype(np.int64),
        "cell_i": np.concatenate([ai.ravel(), ci]).astype(np.int64),
        "cell_j": np.concatenate([aj.ravel(), cj]).astype(np.int64),
    }
    total = sites["x"].size
    sites["present"] = np.ones(total, dtype=bool)
    sites["sigma"] = np.full(total, sigma)
    shape = (height, width)
    sites["edge"] = edge_mask(sites["x"], sites["y"], sigma, shape)
    table = make_table(sites, ["dx", "dy", "domain", "cell_i", "cell_j"])

    expected = render_columns(shape, table["x"], table["y"], table["counts"], sigma, background)
    image = apply_noise(expected, rng, noise)
    params = {
        "generator": "render_perovskite",
        "model": sample.params.get("model", "custom"),
        "cells": [ny, nx],
        "units": [uy_n, ux_n],
        "n_units": n_units,
        "cell_px": cell_px,
        "a_nm": a_nm,
        "pitch_nm": [pitch_x_nm, pitch_y_nm],
        "counts": counts,
        "dose": dose,
        "background": background,
        "sigma_px": sigma,
        "species": [sp_a, sp_b],
        "origin_px": [ox, oy],
        "seed": seed_param(seed),
        "noise": bool(noise),
    }
    title = f"Synthetic {sp_a}{sp_b}O3 rendered from SCM '{params['model']}' ({n_units} units)"
    signal, base = finish(image, table, params, pixel_size_nm=px_nm, title=title)
    truth = SCMGroundTruth(
        columns=base.columns, params=base.params, cells=cells_table, sample=rendered
    )
    return signal, truth
