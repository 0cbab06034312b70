"""Causal discovery on descriptors with causal-learn and pgmpy, priors honoured.

Each method returns typed edges between column indices; priors are passed
to the library where it supports them (tiers and required paths for
DirectLiNGAM, background knowledge for PC and FCI, expert knowledge for
pgmpy's hill climbing) and enforced afterwards otherwise (GES), so every
method honours them.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Literal

import numpy as np
import pandas as pd

from causalspy.causal.graph import CausalGraph
from causalspy.causal.preprocess import prepare_table
from causalspy.causal.prior import Prior
from causalspy.exceptions import InvalidParameterError

__all__ = ["discover", "METHODS"]

METHODS = ("lingam", "pc", "ges", "hc", "fci")
Edge = tuple[int, int, str, float]  # (source, target, type, weight)


# ------------------------------------------------------------------ methods
def _lingam(X, names, prior: Prior, seed: int) -> list[Edge]:
    from causallearn.search.FCMBased import lingam

    p = X.shape[1]
    pk = None
    if not prior.empty:
        idx = {n: k for k, n in enumerate(names)}
        pk = -np.ones((p, p), dtype=int)
        tier = prior.tier_of()
        for a in names:
            for b in names:
                if a != b and a in tier and b in tier and tier[a] > tier[b]:
                    pk[idx[b], idx[a]] = 0  # a (later tier) has no path to b
        for a, b in prior.required:
            pk[idx[b], idx[a]] = 1
        np.fill_diagonal(pk, -1)
    if pk is None:
        # same algorithm and result as causal-learn's, compiled (see fastlingam)
        from causalspy.causal.fastlingam import direct_lingam

        B, order = direct_lingam(X)
        return _finalize_dag(X, B, order, names, prior)
    m = lingam.DirectLiNGAM(random_state=seed, prior_knowledge=pk)
    m.fit(X)
    B = np.array(m.adjacency_matrix_, dtype=float)  # B[i, j]: effect of j on i
    order = list(m.causal_order_)
    return _finalize_dag(X, B, order, names, prior)


def _finalize_dag(X, B, order, names, prior: Prior) -> list[Edge]:
    """Apply forbidden/required edges to a DAG and refit the weights by least squares."""
    idx = {n: k for k, n in enumerate(names)}
    B = B.copy()
    B[np.abs(B) < 1e-3] = 0.0
    for a, b in prior.forbidden:
        B[idx[b], idx[a]] = 0.0
    rank = {v: r for r, v in enumerate(order)}
    for a, b in prior.required:
        ia, ib = idx[a], idx[b]
        if rank[ia] < rank[ib]:
            B[ib, ia] = B[ib, ia] or 1.0
    # edges the adaptive lasso keeps but a Wald test cannot support (Bonferroni over all
    # pairs, family-wise level 0.001) are pruned; required edges always stay
    from scipy.stats import norm

    p = B.shape[0]
    z_crit = float(norm.isf(0.0005 / max(p * (p - 1) / 2, 1)))
    required = {(idx[a], idx[b]) for a, b in prior.required}
    n = X.shape[0]
    edges = []
    for i in range(p):
        parents = list(np.flatnonzero(B[i]))
        coef = np.zeros(0)
        while parents:
            Z = X[:, parents]
            coef, *_ = np.linalg.lstsq(Z, X[:, i], rcond=None)
            r = X[:, i] - Z @ coef
            s2 = r @ r / max(n - len(parents), 1)
            se = np.sqrt(np.clip(np.diag(s2 * np.linalg.pinv(Z.T @ Z)), 1e-300, None))
            z = np.abs(coef) / se
            weak = [k for k in np.argsort(z) if z[k] < z_crit and (parents[k], i) not in required]
            if not weak:
                break
            parents.pop(weak[0])
            coef = np.zeros(0)
        for j, c in zip(parents, coef, strict=True):
            edges.append((int(j), int(i), "directed", float(c)))
    return edges


def _cl_background(names, prior: Prior):
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    nodes = {n: GraphNode(n) for n in names}
    bk = BackgroundKnowledge()
    for k, grp in enumerate(prior.tiers):
        for v in grp:
            bk.add_node_to_tier(nodes[v], k)
    for a, b in prior.forbidden:
        bk.add_forbidden_by_node(nodes[a], nodes[b])
    for a, b in prior.required:
        bk.add_required_by_node(nodes[a], nodes[b])
    return bk


def _edges_from_cl_graph(G, p) -> list[Edge]:
    """Typed edges from a causal-learn graph matrix (``graph[a, b]`` = mark at ``a``)."""
    g = np.asarray(G.graph)
    edges = []
    for i in range(p):
        for j in range(i + 1, p):
            mi, mj = g[i, j], g[j, i]  # mark at i, mark at j
            if mi == 0 and mj == 0:
                continue
            if mi == -1 and mj == 1:
                edges.append((i, j, "directed", np.nan))
            elif mi == 1 and mj == -1:
                edges.append((j, i, "directed", np.nan))
            elif mi == -1 and mj == -1:
                edges.append((i, j, "undirected", np.nan))
            elif mi == 1 and mj == 1:
                edges.append((i, j, "bidirected", np.nan))
            else:  # a circle mark (FCI): o->, o-o
                if mi == 2 and mj == 1:
                    edges.append((i, j, "partial", np.nan))
                elif mj == 2 and mi == 1:
                    edges.append((j, i, "partial", np.nan))
                else:
                    edges.append((i, j, "partial", np.nan))
    return edges


def _pc(X, names, prior, alpha) -> list[Edge]:
    from causallearn.search.ConstraintBased.PC import pc

    bk = None if prior.empty else _cl_background(names, prior)
    cg = pc(X, alpha=alpha, indep_test="fisherz", background_knowledge=bk, show_progress=False,
            node_names=list(names))
    return _enforce(_edges_from_cl_graph(cg.G, X.shape[1]), names, prior)


def _fci(X, names, prior, alpha) -> list[Edge]:
    from causallearn.search.ConstraintBased.FCI import fci

    bk = None if prior.empty else _cl_background(names, prior)
    G, _ = fci(X, independence_test_method="fisherz", alpha=alpha, background_knowledge=bk,
               show_progress=False, node_names=list(names))
    return _enforce(_edges_from_cl_graph(G, X.shape[1]), names, prior)


def _ges(X, names, prior) -> list[Edge]:
    from causallearn.search.ScoreBased.GES import ges

    rec = ges(X, score_func="local_score_BIC", node_names=list(names))
    return _enforce(_edges_from_cl_graph(rec["G"], X.shape[1]), names, prior)


def _enforce(edges: list[Edge], names, prior: Prior) -> list[Edge]:
    """Make an equivalence-class result obey the prior: drop forbidden edges,
    orient undirected/partial edges that the tiers or required edges decide,
    add required edges that are missing."""
    if prior.empty:
        return edges
    out = []
    present = set()
    for a, b, t, w in edges:
        na, nb = names[a], names[b]
        if t == "directed":
            if not prior.allows(na, nb):
                if t == "directed" and prior.allows(nb, na) and (nb, na) not in prior.forbidden:
                    continue  # the data's orientation contradicts the prior: drop, do not flip
                continue
        elif t in ("undirected", "partial"):
            fwd, back = prior.allows(na, nb), prior.allows(nb, na)
            if (na, nb) in prior.required or (fwd and not back):
                a, b, t = a, b, "directed"
            elif (nb, na) in prior.required or (back and not fwd):
                a, b, t = b, a, "directed"
            elif not fwd and not back:
                continue
        out.append((a, b, t, w))
        present.add(frozenset((a, b)))
    idx = {n: k for k, n in enumerate(names)}
    for na, nb in prior.required:
        a, b = idx[na], idx[nb]
        if frozenset((a, b)) not in present:
            out.append((a, b, "directed", np.nan))
    return out


def _hc(df: pd.DataFrame, prior: Prior, seed: int, n_restarts: int) -> list[Edge]:
    import logging

    from pgmpy.base import DAG
    from pgmpy.estimators import BICGauss, ExpertKnowledge, HillClimbSearch

    names = list(df.columns)
    # pgmpy's scores choke on names like "c/a": work on safe names, map back
    safe = [f"v{k}" for k in range(len(names))]
    d = df.copy()
    d.columns = safe
    to_safe = dict(zip(names, safe, strict=True))
    forbidden = {(to_safe[a], to_safe[b]) for a, b in prior.forbidden}
    tier = prior.tier_of()
    for a in names:
        for b in names:
            if a != b and a in tier and b in tier and tier[a] > tier[b]:
                forbidden.add((to_safe[a], to_safe[b]))
    required = {(to_safe[a], to_safe[b]) for a, b in prior.required}
    ek = ExpertKnowledge(forbidden_edges=forbidden or None, required_edges=required or None)
    rng = np.random.default_rng(seed)
    scorer = BICGauss(d)
    best, best_score = None, -np.inf
    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    for r in range(max(1, n_restarts)):
        start = DAG()
        start.add_nodes_from(safe)
        if r == 1:  # a data-driven start: the (pruned) DirectLiNGAM graph
            from causalspy.causal.fastlingam import direct_lingam

            Bl, _ = direct_lingam(d.to_numpy())
            for i, j in zip(*np.nonzero(np.abs(Bl) > 0.05), strict=True):
                if (safe[j], safe[i]) not in forbidden:
                    start.add_edge(safe[j], safe[i])
        elif r > 1:  # random sparse start consistent with a random order and the prior
            order = list(rng.permutation(safe))
            for i, u in enumerate(order):
                for v in order[i + 1:]:
                    if rng.random() < 1.5 / len(safe) and (u, v) not in forbidden:
                        start.add_edge(u, v)
        for u, v in required:
            if not start.has_edge(u, v):
                start.add_edge(u, v)
        try:
            import networkx as nx

            if not nx.is_directed_acyclic_graph(start):
                start = DAG()
                start.add_nodes_from(safe)
                start.add_edges_from(required)
        except Exception:  # pragma: no cover
            pass
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            model = HillClimbSearch(d).estimate(scoring_method=scorer, start_dag=start,
                                                expert_knowledge=ek, show_progress=False)
            score = scorer.score(model)
        if score > best_score:
            best, best_score = model, score
    back = {s: k for k, s in enumerate(safe)}
    X = d.to_numpy()
    edges = []
    parents: dict[int, list[int]] = {}
    for u, v in best.edges():
        parents.setdefault(back[v], []).append(back[u])
    for i, ps in parents.items():
        coef, *_ = np.linalg.lstsq(X[:, ps], X[:, i], rcond=None)
        for j, c in zip(ps, coef, strict=True):
            edges.append((j, i, "directed", float(c)))
    return edges


def _run(method, X, df_std, names, prior, alpha, seed, n_restarts) -> list[Edge]:
    if method == "lingam":
        return _lingam(X, names, prior, seed)
    if method == "pc":
        return _pc(X, names, prior, alpha)
    if method == "fci":
        return _fci(X, names, prior, alpha)
    if method == "ges":
        return _ges(X, names, prior)
    if method == "hc":
        return _hc(df_std, prior, seed, n_restarts)
    raise InvalidParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def _fill_weights(X, edges: list[Edge]) -> list[Edge]:
    """Standardized linear weights for directed edges into targets whose parents are all
    known (no undirected, bidirected or partial edge touches the target)."""
    unsure = {v for a, b, t, _ in edges if t != "directed" for v in (a, b)}
    parents: dict[int, list[int]] = {}
    for a, b, t, _ in edges:
        if t == "directed":
            parents.setdefault(b, []).append(a)
    fitted = {}
    for b, ps in parents.items():
        if b in unsure:
            continue
        coef, *_ = np.linalg.lstsq(X[:, ps], X[:, b], rcond=None)
        fitted.update({(a, b): float(c) for a, c in zip(ps, coef, strict=True)})
    return [(a, b, t, w if np.isfinite(w) else fitted.get((a, b), np.nan))
            for a, b, t, w in edges]


# ------------------------------------------------------------------ effects
def _ols(y, Z):
    """Coefficients and standard errors of y ~ 1 + Z."""
    A = np.column_stack([np.ones(len(y)), Z])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r = y - A @ coef
    dof = max(len(y) - A.shape[1], 1)
    s2 = r @ r / dof
    cov = s2 * np.linalg.pinv(A.T @ A)
    return coef[1:], np.sqrt(np.clip(np.diag(cov)[1:], 0, None))


def _effects(df: pd.DataFrame, edges: list[Edge]) -> pd.DataFrame:
    """Total effect (regression on the cause and its parents: a valid adjustment set in a
    DAG, so overlapping paths are not double counted) and direct effect (coefficient in
    the effect's equation) of every cause on every descendant."""
    import networkx as nx

    names = list(df.columns)
    directed = [(a, b) for a, b, t, _ in edges if t == "directed"]
    g = nx.DiGraph()
    g.add_nodes_from(range(len(names)))
    g.add_edges_from(directed)
    rows = []
    if not nx.is_directed_acyclic_graph(g):
        return pd.DataFrame(columns=["cause", "effect", "total", "total_low", "total_high",
                                     "total_std", "direct"])
    X = df.to_numpy(float)
    sd = X.std(0)
    ambiguous = {a for a, b, t, _ in edges if t != "directed"} | {
        b for a, b, t, _ in edges if t != "directed"}
    for c in range(len(names)):
        desc = nx.descendants(g, c)
        if not desc:
            continue
        pa = sorted(g.predecessors(c))
        for e in sorted(desc):
            Z = X[:, [c, *pa]]
            coef, se = _ols(X[:, e], Z)
            pe = sorted(g.predecessors(e))
            direct = np.nan
            if c in pe:
                dcoef, _ = _ols(X[:, e], X[:, pe])
                direct = float(dcoef[pe.index(c)])
            rows.append({
                "cause": names[c], "effect": names[e], "total": float(coef[0]),
                "total_low": float(coef[0] - 1.96 * se[0]),
                "total_high": float(coef[0] + 1.96 * se[0]),
                "total_std": float(coef[0] * sd[c] / sd[e]), "direct": direct,
                "adjusted_for_all_parents": c not in ambiguous,
            })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ bootstrap
def _bootstrap(method, df_std, names, prior, alpha, seed, n_restarts, n_boot, n_jobs,
               progress=None):
    rng = np.random.default_rng(seed)
    n = len(df_std)
    seeds = rng.integers(0, 2**31 - 1, size=n_boot)
    X = df_std.to_numpy()

    def one(s):
        r = np.random.default_rng(s)
        ix = r.integers(0, n, size=n)
        Xb = X[ix]
        dfb = pd.DataFrame(Xb, columns=df_std.columns)
        return [(a, b, t) for a, b, t, _ in _run(method, Xb, dfb, names, prior, alpha,
                                                 int(s % (2**31 - 1)), max(1, n_restarts // 2))]

    if n_jobs == 1:
        results = []
        for k, s in enumerate(seeds):
            results.append(one(s))
            if progress is not None:
                progress(k + 1, n_boot)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(one)(s) for s in seeds)
    exact: dict[tuple, int] = {}
    adj: dict[frozenset, int] = {}
    for res in results:
        seen_e, seen_a = set(), set()
        for a, b, t in res:
            key = (a, b, t) if t in ("directed", "partial") else (min(a, b), max(a, b), t)
            if key not in seen_e:
                exact[key] = exact.get(key, 0) + 1
                seen_e.add(key)
            k2 = frozenset((a, b))
            if k2 not in seen_a:
                adj[k2] = adj.get(k2, 0) + 1
                seen_a.add(k2)
    return exact, adj


# ------------------------------------------------------------------ warnings
def _warn(graph_edges: list[Edge], df: pd.DataFrame, effects: pd.DataFrame, method: str,
          nuisance: list[str]) -> list[str]:
    names = list(df.columns)
    out = []
    for a, b, t, _ in graph_edges:
        if t == "bidirected":
            out.append(f"Hidden confounder: {names[a]} and {names[b]} share an unobserved common "
                       f"cause ({method.upper()} found {names[a]} <-> {names[b]}); their "
                       "correlation is not a causal effect of one on the other.")
        elif t == "undirected":
            out.append(f"Direction not identifiable: {names[a]} - {names[b]} is undirected in the "
                       f"{method.upper()} equivalence class; add a prior (tiers, required edge) or "
                       "use method='lingam' on non-Gaussian data.")
        elif t == "partial":
            out.append(f"Uncertain endpoint: {names[a]} o-> {names[b]} (FCI circle mark): a "
                       f"hidden confounder of {names[a]} and {names[b]} cannot be ruled out.")
    if len(effects):
        corr = df.corr().to_numpy()
        idx = {n: k for k, n in enumerate(names)}
        for r in effects.itertuples():
            c = corr[idx[r.cause], idx[r.effect]]
            significant = r.total_low > 0 or r.total_high < 0
            if significant and abs(c) > 2 / np.sqrt(len(df)) and np.sign(c) != np.sign(r.total):
                out.append(
                    f"Simpson's paradox: {r.cause} and {r.effect} are {'positively' if c > 0 else 'negatively'} "
                    f"correlated (r = {c:+.2f}) but the causal effect of {r.cause} on {r.effect} "
                    f"is {'positive' if r.total > 0 else 'negative'} ({r.total_std:+.2f} sigma "
                    "per sigma) once its causes are adjusted for: do not read the correlation as "
                    "the effect."
                )
    for nz in nuisance:
        if nz not in names:
            continue
        k = names.index(nz)
        kids = [names[b] for a, b, t, _ in graph_edges if a == k and t == "directed"]
        adj = [names[b if a == k else a] for a, b, t, _ in graph_edges
               if k in (a, b) and t != "directed"]
        if kids or adj:
            out.append(f"Nuisance variable {nz} is linked to {sorted(set(kids + adj))}: scan "
                       "position, thickness or tuning may explain these relations; check for "
                       "drift or add it as a confounder.")
    return out


# ------------------------------------------------------------------ main entry
def discover(
    data,
    method: Literal["lingam", "pc", "ges", "hc", "fci"] = "lingam",
    *,
    columns: list[str] | None = None,
    prior: Prior | dict | None = None,
    bootstrap: int = 0,
    alpha: float = 0.01,
    seed: int = 0,
    n_restarts: int = 5,
    nuisance: list[str] | None = None,
    n_jobs: int = 1,
    progress=None,
) -> CausalGraph:
    """Learn a causal graph from descriptors.

    Parameters
    ----------
    data : Descriptors, pandas.DataFrame, DescriptorMaps or 2D array
        One row per cell. Flagged cells and rows with NaN are dropped; for a
        ``Descriptors`` table the default columns are its descriptors without
        calibrated duplicates (``*_cal``) and without descriptors that are NaN
        in every cell (e.g. ``tilt`` when no oxygen column was imaged).
    method : {"lingam", "pc", "ges", "hc", "fci"}
        ``lingam``: DirectLiNGAM (causal-learn), a unique DAG for linear
        non-Gaussian data. ``pc``, ``ges``: the Markov equivalence class
        (edges whose direction the data cannot decide stay undirected, with a
        warning). ``hc``: pgmpy hill climbing on the Gaussian BIC with random
        restarts. ``fci``: a PAG that marks hidden confounders (bidirected
        edges).
    columns : list of str, optional
        Variables to use.
    prior : Prior or dict, optional
        Tiers, forbidden and required edges (see :class:`Prior`); every method
        honours them.
    bootstrap : int
        Number of bootstrap resamples for edge confidences (0: none).
    alpha : float
        Significance level of the conditional-independence tests (PC, FCI).
    seed : int
        Random seed (LiNGAM, hill-climbing restarts, bootstrap).
    n_restarts : int
        Random restarts of hill climbing.
    nuisance : list of str, optional
        Variables that should not cause anything (scan position, thickness);
        a warning is raised when they are linked to others.
    n_jobs : int
        Parallel processes for the bootstrap (joblib).
    progress : callable, optional
        ``progress(done, total)`` after each bootstrap resample (serial bootstrap);
        an exception raised from it aborts the call.

    Returns
    -------
    CausalGraph

    Raises
    ------
    InvalidParameterError
        Unknown method or columns, non-numeric, constant, duplicate or
        collinear columns, too few rows, or a prior that contradicts itself.
    """
    if method not in METHODS:
        raise InvalidParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise InvalidParameterError(f"bootstrap must be a whole number >= 0; got {bootstrap!r}.")
    if isinstance(prior, dict):
        prior = Prior(**prior)
    prior = prior or Prior()
    df = prepare_table(data, columns)
    names = list(df.columns)
    prior.validate(names)
    means, scales = df.mean(), df.std(ddof=0)
    df_std = (df - means) / scales
    X = df_std.to_numpy()
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        edges = _run(method, X, df_std, names, prior, alpha, seed, n_restarts)
    edges = _fill_weights(X, edges)
    table = pd.DataFrame(
        [{"source": names[a], "target": names[b], "type": t, "weight": w} for a, b, t, w in edges],
        columns=["source", "target", "type", "weight"],
    )
    table["confidence"] = np.nan
    table["stability"] = np.nan
    if bootstrap:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            exact, adj = _bootstrap(method, df_std, names, prior, alpha, seed, n_restarts,
                                    int(bootstrap), n_jobs, progress)
        conf, stab = [], []
        for a, b, t, _ in edges:
            key = (a, b, t) if t in ("directed", "partial") else (min(a, b), max(a, b), t)
            conf.append(exact.get(key, 0) / bootstrap)
            stab.append(adj.get(frozenset((a, b)), 0) / bootstrap)
        table["confidence"] = conf
        table["stability"] = stab
    effects = _effects(df, edges)
    default_nuisance = [c for c in names if c in ("x", "y", "x_position", "y_position",
                                                  "thickness", "total_intensity")]
    warns = _warn(edges, df, effects, method, list(nuisance or []) + default_nuisance)
    return CausalGraph(
        names, table, effects=effects, warnings=warns, method=method, prior=prior.as_dict(),
        params={"alpha": alpha, "seed": seed, "bootstrap": int(bootstrap),
                "n_restarts": n_restarts, "columns": names},
        n_samples=len(df), scales=scales.to_dict(), means=means.to_dict(),
    )
