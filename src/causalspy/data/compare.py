"""Score found columns against a generator's ground truth (tests, benchmarks, docs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

__all__ = ["Match", "match_columns"]


@dataclass
class Match:
    """One-to-one matching of found columns to true columns.

    ``found_index[k]`` and ``true_index[k]`` are matched pairs (indices into
    the two input arrays); unmatched found columns are false positives,
    unmatched true columns are misses.
    """

    found_index: np.ndarray
    true_index: np.ndarray
    n_found: int
    n_true: int

    @property
    def recall(self) -> float:
        """Fraction of true columns that were found."""
        return len(self.true_index) / self.n_true if self.n_true else 1.0

    @property
    def precision(self) -> float:
        """Fraction of found columns that are true columns."""
        return len(self.found_index) / self.n_found if self.n_found else 1.0

    def false_positives(self) -> np.ndarray:
        """Indices of found columns matched to no true column."""
        return np.setdiff1d(np.arange(self.n_found), self.found_index)

    def misses(self) -> np.ndarray:
        """Indices of true columns matched to no found column."""
        return np.setdiff1d(np.arange(self.n_true), self.true_index)


def match_columns(found_xy: np.ndarray, true_xy: np.ndarray, tol: float) -> Match:
    """Match found to true positions one-to-one within ``tol`` px (minimum total distance).

    Parameters
    ----------
    found_xy, true_xy : (n, 2) arrays
        Positions ``(x, y)`` in pixels.
    tol : float
        Largest distance for a match.

    Returns
    -------
    Match
    """
    found_xy = np.asarray(found_xy, float).reshape(-1, 2)
    true_xy = np.asarray(true_xy, float).reshape(-1, 2)
    nf, nt = len(found_xy), len(true_xy)
    if nf == 0 or nt == 0:
        return Match(np.zeros(0, int), np.zeros(0, int), nf, nt)
    pairs = cKDTree(found_xy).sparse_distance_matrix(cKDTree(true_xy), tol, output_type="coo_matrix")
    if pairs.nnz == 0:
        return Match(np.zeros(0, int), np.zeros(0, int), nf, nt)
    # small constant so that zero distances are stored as edges
    w = csr_matrix((pairs.data + 1e-9, (pairs.row, pairs.col)), shape=(nf, nt))
    try:
        r, c = min_weight_full_bipartite_matching(w)
    except ValueError:  # no full matching exists (misses, false positives)
        r, c = _greedy(pairs)
    return Match(np.asarray(r), np.asarray(c), nf, nt)


def _greedy(pairs):
    """Closest pairs first; exact enough when tol is well below the separation."""
    order = np.argsort(pairs.data)
    used_r, used_c, rr, cc = set(), set(), [], []
    for k in order:
        r, c = int(pairs.row[k]), int(pairs.col[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        rr.append(r)
        cc.append(c)
    return np.array(rr, dtype=int), np.array(cc, dtype=int)
