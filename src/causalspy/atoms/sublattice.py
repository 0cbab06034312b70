"""Sublattices, chemical classes, dopants and vacancies from column positions
and intensities.

The translation lattice is found from the columns themselves: a
neighbour vector ``t`` is a lattice translation when (almost) every column
has a neighbour at ``p + t`` *and* the intensities at both ends are not
anti-correlated (an A-B vector of a perovskite joins bright to dark
columns, so it is not a translation of the crystal even though it is one
of the point pattern). Columns linked by translations form connected
components; each component is one sublattice (components that are the
same sublattice cut apart by a defect are merged again). This needs no
prior knowledge of the structure: it gives A and B sites of a perovskite,
metal and chalcogen sites of a honeycomb, and a single sublattice for a
simple lattice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["LatticeResult", "analyse_lattice", "intensity_classes", "flag_dopants"]


@dataclass
class LatticeResult:
    """Output of :func:`analyse_lattice`."""

    sublattice: np.ndarray
    vectors: np.ndarray | None  # (2, 2): rows are the primitive translations (px)
    vacancies: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _neighbour_vectors(pos: np.ndarray, tree: cKDTree, separation: float, k: int = 12):
    k = min(k + 1, len(pos))
    dist, idx = tree.query(pos, k=k, distance_upper_bound=2.6 * separation)
    dist, idx = dist[:, 1:], idx[:, 1:]
    ok = np.isfinite(dist)
    src = np.repeat(np.arange(len(pos))[:, None], idx.shape[1], axis=1)[ok]
    dst = idx[ok]
    return src, dst, pos[dst] - pos[src]


def _cluster_vectors(vecs: np.ndarray, separation: float, n_columns: int) -> np.ndarray:
    """Centres of the frequent neighbour vectors (a 2D histogram, then local maxima)."""
    if len(vecs) == 0:
        return np.empty((0, 2))
    binw = 0.1 * separation
    lim = 2.7 * separation
    nb = int(np.ceil(2 * lim / binw))
    hist, xe, ye = np.histogram2d(vecs[:, 0], vecs[:, 1], bins=nb, range=[[-lim, lim], [-lim, lim]])
    from scipy.ndimage import maximum_filter, uniform_filter

    sm = uniform_filter(hist, size=3, mode="constant") * 9
    peaks = (sm == maximum_filter(sm, size=5)) & (sm >= 0.3 * n_columns)
    ii, jj = np.nonzero(peaks)
    centres = []
    tree = cKDTree(vecs)
    for i, j in zip(ii, jj, strict=True):
        c = np.array([0.5 * (xe[i] + xe[i + 1]), 0.5 * (ye[j] + ye[j + 1])])
        for _ in range(3):  # refine: mean of the vectors near the bin centre
            sel = tree.query_ball_point(c, 0.2 * separation)
            if not sel:
                break
            c = vecs[sel].mean(axis=0)
        centres.append(c)
    if not centres:
        return np.empty((0, 2))
    centres = np.array(centres)
    # merge duplicates
    keep = []
    for c in centres[np.argsort(np.hypot(*centres.T))]:
        if all(np.hypot(*(c - k)) > 0.2 * separation for k in keep):
            keep.append(c)
    return np.array(keep)


def _match(tree: cKDTree, pos: np.ndarray, t: np.ndarray, tol: float):
    d, j = tree.query(pos + t, k=1, distance_upper_bound=tol)
    ok = np.isfinite(d)
    return ok, j


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def analyse_lattice(
    x: np.ndarray,
    y: np.ndarray,
    intensity: np.ndarray,
    separation: float,
    shape: tuple[int, int],
    *,
    tol: float | None = None,
    edge_margin: float | None = None,
) -> LatticeResult:
    """Split columns into sublattices and find vacant lattice sites.

    Parameters
    ----------
    x, y : arrays
        Column positions (px).
    intensity : array
        Column intensities (any positive measure; used to tell translations
        from vectors joining different species).
    separation : float
        Smallest column separation (px).
    shape : (int, int)
        Image shape, to keep predicted vacancies inside the field of view.
    tol : float, optional
        Matching tolerance for lattice sites (px); default ``0.3 * separation``,
        which allows for displacements such as ferroelectric B-site shifts.
    edge_margin : float, optional
        Vacancies closer than this to the image border are not reported;
        default ``0.5 * separation``.

    Returns
    -------
    LatticeResult
        ``sublattice`` labels (0 = brightest on average, -1 = unassigned),
        the primitive translation vectors, and a table of vacancies
        (``x``, ``y``, ``sublattice``, ``n_predictions``).
    """
    pos = np.column_stack([x, y]).astype(float)
    n = len(pos)
    tol = 0.3 * separation if tol is None else float(tol)
    edge_margin = 0.5 * separation if edge_margin is None else float(edge_margin)
    empty_vac = pd.DataFrame({"x": [], "y": [], "sublattice": pd.Series([], dtype=int),
                              "n_predictions": pd.Series([], dtype=int)})
    if n < 6:
        return LatticeResult(np.zeros(n, dtype=int), None, empty_vac,
                             ["too few columns for a lattice: one sublattice"])
    intensity = np.asarray(intensity, dtype=float)
    tree = cKDTree(pos)
    src, dst, vecs = _neighbour_vectors(pos, tree, separation)
    cands = _cluster_vectors(vecs, separation, n)
    good = []
    for t in cands:
        ok, j = _match(tree, pos, t, tol)
        frac = ok.mean()
        c = _corr(intensity[ok], intensity[j[ok]])
        if frac >= 0.6 and c > -0.25:
            good.append(t)
    notes = []
    if len(good) < 2:
        return LatticeResult(np.zeros(n, dtype=int), None, empty_vac,
                             ["no two lattice translations found: one sublattice"])
    good = np.array(good)
    good = good[np.argsort(np.hypot(*good.T))]
    t1 = good[0]
    t2 = None
    for t in good[1:]:
        cross = abs(t1[0] * t[1] - t1[1] * t[0])
        if cross > 0.3 * np.hypot(*t1) * np.hypot(*t):
            t2 = t
            break
    if t2 is None:
        return LatticeResult(np.zeros(n, dtype=int), None, empty_vac,
                             ["translations are collinear: one sublattice"])
    if t1[0] * t2[1] - t1[1] * t2[0] < 0:  # right-handed basis
        t2 = -t2
    basis = np.array([t1, t2])

    # graph of translation links, connected components
    rows, cols = [], []
    for t in (t1, t2):
        ok, j = _match(tree, pos, t, tol)
        rows.append(np.flatnonzero(ok))
        cols.append(j[ok])
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    ncomp, comp = connected_components(graph, directed=False)

    # merge components that are the same sublattice: a neighbour pair whose
    # separation is (close to) a lattice vector
    binv = np.linalg.inv(basis.T)
    diff = comp[src] != comp[dst]
    if diff.any():
        v = vecs[diff]
        f = v @ binv.T
        resid = (f - np.rint(f)) @ basis
        same = np.hypot(resid[:, 0], resid[:, 1]) < tol
        a, b = comp[src][diff][same], comp[dst][diff][same]
        if a.size:
            g2 = coo_matrix((np.ones(a.size), (a, b)), shape=(ncomp, ncomp))
            _, merged = connected_components(g2, directed=False)
            comp = merged[comp]
    labels, comp = np.unique(comp, return_inverse=True)
    sizes = np.bincount(comp)
    big = sizes >= max(3, 0.02 * n)
    # small fragments that could not be linked stay unassigned (-1)
    mean_int = np.array([intensity[comp == c].mean() for c in range(len(labels))])
    order = [c for c in np.argsort(-mean_int) if big[c]]
    remap = np.full(len(labels), -1)
    remap[order] = np.arange(len(order))
    sub = remap[comp]
    if (sub < 0).any():
        notes.append(f"{int((sub < 0).sum())} column(s) not linked to any sublattice (label -1)")
    vac = _vacancies(pos, sub, basis, tree, tol, shape, edge_margin)
    return LatticeResult(sub.astype(int), basis, vac, notes)


def _vacancies(pos, sub, basis, tree, tol, shape, margin) -> pd.DataFrame:
    """Lattice sites predicted by at least two neighbours where no column is."""
    h, w = shape
    preds, labs = [], []
    for t in (basis[0], basis[1], -basis[0], -basis[1]):
        site = pos + t
        d, _ = tree.query(site, k=1, distance_upper_bound=tol * 1.5)
        miss = ~np.isfinite(d) & (sub >= 0)
        inside = (
            (site[:, 0] >= margin - 0.5) & (site[:, 0] <= w - 0.5 - margin)
            & (site[:, 1] >= margin - 0.5) & (site[:, 1] <= h - 0.5 - margin)
        )
        m = miss & inside
        preds.append(site[m])
        labs.append(sub[m])
    P = np.concatenate(preds) if preds else np.empty((0, 2))
    L = np.concatenate(labs) if labs else np.empty(0, dtype=int)
    cols = {"x": [], "y": [], "sublattice": [], "n_predictions": []}
    if len(P):
        pt = cKDTree(P)
        pairs = pt.query_pairs(tol, output_type="ndarray")
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(P), len(P)))
        nc, lab = connected_components(g, directed=False)
        cnt = np.bincount(lab, minlength=nc)
        cx = np.bincount(lab, P[:, 0], minlength=nc) / cnt
        cy = np.bincount(lab, P[:, 1], minlength=nc) / cnt
        # majority sublattice of the predictions
        maj = np.zeros((nc, L.max() + 1), dtype=int)
        np.add.at(maj, (lab, L), 1)
        sl = maj.argmax(axis=1)
        keep = cnt >= 2
        cols = {"x": cx[keep], "y": cy[keep], "sublattice": sl[keep], "n_predictions": cnt[keep]}
    df = pd.DataFrame(cols)
    df["sublattice"] = df["sublattice"].astype(int)
    df["n_predictions"] = df["n_predictions"].astype(int)
    return df


def intensity_classes(intensity: np.ndarray, max_components: int = 5, seed: int = 0):
    """Cluster column intensities with a Gaussian mixture, the number of components by BIC.

    Returns
    -------
    labels : (n,) int array
        Class of each column, 0 = brightest class.
    n_components : int
    means : array
        Class means, brightest first.
    """
    from sklearn.mixture import GaussianMixture

    v = np.asarray(intensity, dtype=float)
    good = np.isfinite(v)
    labels = np.full(v.shape, -1, dtype=int)
    if good.sum() < 10:
        labels[good] = 0
        return labels, 1, np.array([np.nanmean(v)]) if good.any() else np.array([])
    X = v[good][:, None]
    kmax = int(min(max_components, max(1, good.sum() // 10)))
    best, best_bic = None, np.inf
    for k in range(1, kmax + 1):
        gm = GaussianMixture(k, random_state=seed, n_init=2, reg_covar=1e-6 * np.var(X) + 1e-12)
        gm.fit(X)
        bic = gm.bic(X)
        if bic < best_bic - 1e-9:
            best, best_bic = gm, bic
    means = best.means_[:, 0]
    order = np.argsort(-means)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    labels[good] = rank[best.predict(X)]
    return labels, int(best.n_components), means[order]


def flag_dopants(intensity: np.ndarray, sublattice: np.ndarray, z_threshold: float = 5.0):
    """Robust z-score of each column's intensity within its sublattice.

    A column is a dopant candidate (substitution by a heavier or lighter
    species, or a partially occupied column) when ``|z| > z_threshold``;
    median and MAD make the score insensitive to the dopants themselves.
    """
    v = np.asarray(intensity, dtype=float)
    z = np.full(v.shape, np.nan)
    for s in np.unique(sublattice):
        m = (sublattice == s) & np.isfinite(v)
        if m.sum() < 5:
            continue
        med = np.median(v[m])
        mad = 1.4826 * np.median(np.abs(v[m] - med))
        if mad <= 0:
            mad = np.std(v[m]) or 1.0
        z[m] = (v[m] - med) / mad
    return z, np.abs(np.nan_to_num(z)) > z_threshold
