"""Nucleation models over lattice sites and their honest validation.

Two penalized (L2) logistic models from scikit-learn on standardized
descriptors:

* ``"hazard"`` — a discrete-time proportional-odds hazard model. Every site
  contributes one row per observation window in which it is still *at
  risk* (2H, not yet reached by a growing 1T region); the event is
  "a new nucleus forms here in this window". Sites swallowed by a growing
  region are censored when they are swallowed instead of counted as
  negatives, and a per-window baseline absorbs a rate that changes with
  time (dose). This is the survival model of a nucleation process; the
  probability map is ``1 - prod_w (1 - h_iw)`` over the observed windows.
* ``"logistic"`` — one row per site, label "the site is part of a nucleus".
  Simpler and fast, but it counts sites that were swallowed before they
  could nucleate as negatives.

Validation is spatial: the image is cut into blocks, each block is predicted
by a model fitted on the other blocks minus a buffer band around it (so no
neighbouring sites, whose descriptors and labels are correlated, leak into
the fit). Intervals come from a bootstrap over spatial tiles, again because
neighbouring sites are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["SiteModel", "fit_model", "spatial_blocks", "cross_validate", "auc",
           "tile_bootstrap_auc", "bootstrap_cv_auc", "bootstrap_coefficients", "shuffled_baseline", "top_k"]


@dataclass
class SiteModel:
    """A fitted nucleation model (standardization + logistic coefficients)."""

    kind: str
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    baseline: np.ndarray = field(default_factory=lambda: np.zeros(0))
    C: float = 1.0

    def linear(self, X: np.ndarray) -> np.ndarray:
        """Site part of the log-odds, ``z . beta`` (standardized descriptors)."""
        Z = (np.asarray(X, float) - self.mean) / self.scale
        return Z @ self.coef

    def predict(self, X: np.ndarray, n_windows: int | None = None) -> np.ndarray:
        """Probability that each site nucleates (within the observed windows for ``hazard``)."""
        eta = self.linear(X) + self.intercept
        if self.kind == "logistic":
            return _sigmoid(eta)
        base = self.baseline if n_windows is None else _extend(self.baseline, n_windows)
        # log P(no event in any window) = sum_w log(1 - h_w); summed in log space for accuracy
        log_surv = -np.logaddexp(0.0, eta[:, None] + base[None, :]).sum(axis=1)
        return -np.expm1(log_surv)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "features": list(self.features), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": float(self.intercept), "baseline": self.baseline.tolist(),
                "C": float(self.C)}

    @classmethod
    def from_dict(cls, d: dict) -> SiteModel:
        return cls(d["kind"], list(d["features"]), np.asarray(d["mean"], float),
                   np.asarray(d["scale"], float), np.asarray(d["coef"], float),
                   float(d["intercept"]), np.asarray(d.get("baseline", []), float),
                   float(d.get("C", 1.0)))


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _extend(base: np.ndarray, n: int) -> np.ndarray:
    """Baseline over ``n`` windows: the fitted ones, then their mean (a different series)."""
    if len(base) == 0:
        return np.zeros(n)
    if len(base) >= n:
        return base[:n]
    return np.r_[base, np.full(n - len(base), base.mean())]


def _standardize(X):
    mean = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return mean, scale


def fit_model(kind: str, X: np.ndarray, label: np.ndarray, event_window: np.ndarray,
              last_window: np.ndarray, n_windows: int, features: list[str],
              C: float = 1.0, weight: np.ndarray | None = None) -> SiteModel:
    """Fit one model.

    Parameters
    ----------
    X : (n, p) descriptors (finite).
    label : (n,) 1 where a nucleus formed.
    event_window : (n,) window of the nucleation (-1: none).
    last_window : (n,) last window the site is at risk (its nucleation window,
        the window before a growing region swallowed it, or the last window).
    weight : (n,) optional integer multiplicities (bootstrap).
    """
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, float)
    y = np.asarray(label, int)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
    keep = w > 0
    mean, scale = _standardize(X[keep])
    Z = (X - mean) / scale
    p = Z.shape[1]
    if y[keep].min(initial=1) == y[keep].max(initial=0):
        # one class only: nothing to learn; the rate alone
        rate = np.clip(np.average(y[keep], weights=w[keep]) if keep.any() else 0.0, 1e-6,
                       1 - 1e-6)
        return SiteModel(kind, features, mean, scale, np.zeros(p),
                         float(np.log(rate / (1 - rate))),
                         np.zeros(n_windows) if kind == "hazard" else np.zeros(0), C)
    m = LogisticRegression(C=C, max_iter=500)
    if kind == "logistic":
        m.fit(Z[keep], y[keep], sample_weight=w[keep])
        return SiteModel(kind, features, mean, scale, m.coef_[0].copy(),
                         float(m.intercept_[0]), np.zeros(0), C)
    # person-period expansion: site i contributes windows 0..last_window[i]
    idx = np.flatnonzero(keep)
    nrows = last_window[idx] + 1
    rows = np.repeat(idx, nrows)
    win = np.concatenate([np.arange(k) for k in nrows]) if len(idx) else np.zeros(0, int)
    ev = (event_window[rows] == win) & (y[rows] == 1)
    W = np.zeros((len(rows), n_windows))
    W[np.arange(len(rows)), win] = 1.0
    # windows are centred so the penalty shrinks each towards the pooled rate
    W -= W.mean(axis=0)
    m.fit(np.hstack([Z[rows], W]), ev.astype(int), sample_weight=w[rows])
    coef = m.coef_[0]
    base = coef[p:]
    # undo the centring: intercept + W_centered @ b = (intercept - mean_W @ b) + onehot @ b
    wmean = np.bincount(win, minlength=n_windows) / max(len(rows), 1)
    icpt = float(m.intercept_[0]) - float(wmean @ coef[p:])
    return SiteModel(kind, features, mean, scale, coef[:p].copy(), icpt, base.copy(), C)


def spatial_blocks(xy: np.ndarray, n_blocks: tuple[int, int]) -> np.ndarray:
    """Block id of each site on an ``n_blocks`` (x, y) grid over the sites' extent."""
    xy = np.asarray(xy, float)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    nb = np.asarray(n_blocks, int)
    k = np.floor((xy - lo) / np.maximum(hi - lo, 1e-9) * nb).astype(int)
    k = np.clip(k, 0, nb - 1)
    return k[:, 1] * nb[0] + k[:, 0]


def cross_validate(kind, X, label, event_window, last_window, n_windows, features, xy,
                   blocks: np.ndarray, buffer: float, C: float,
                   weight: np.ndarray | None = None) -> np.ndarray:
    """Out-of-block probabilities: each block predicted by a model fitted on the other
    blocks without the sites within ``buffer`` px of the held-out block.

    Only the site part (the coefficients) comes from the fold; the intercept and
    baseline are those of a fit on all sites. Otherwise a block whose training set
    happens to hold more nuclei gets a higher intercept, and pooling the folds
    ranks its sites above the others for no reason related to them: with few
    nuclei that alone drags a no-information AUC far below 0.5. ``weight``
    (bootstrap multiplicities) weights the fits.
    """
    w = np.ones(len(label)) if weight is None else np.asarray(weight, float)
    ref = fit_model(kind, X, label, event_window, last_window, n_windows, features, C, weight=w)
    prob = np.full(len(label), np.nan)
    for b in np.unique(blocks):   # one fit per block (a handful), vectorized inside
        test = blocks == b
        train = ~test
        if buffer > 0:
            d, _ = cKDTree(xy[test]).query(xy, distance_upper_bound=buffer)
            train &= ~np.isfinite(d)
        m = fit_model(kind, X, label, event_window, last_window, n_windows, features, C,
                      weight=w * train)
        m.intercept, m.baseline = ref.intercept, ref.baseline
        prob[test] = m.predict(X[test], n_windows)
    return prob


def auc(y: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """ROC AUC (Mann-Whitney, ties count half, optional case weights); NaN without both
    classes."""
    from scipy.stats import rankdata

    y = np.asarray(y, bool)
    score = np.asarray(score, float)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
    w1, w0 = w[y].sum(), w[~y].sum()
    if w1 <= 0 or w0 <= 0:
        return float("nan")
    if weight is None:
        r = rankdata(score)
        n1 = int(y.sum())
        return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))
    # weighted: P(score_pos > score_neg) + 0.5 P(tie), by sorting the negatives once
    neg = np.sort(score[~y])
    wn = w[~y][np.argsort(score[~y], kind="stable")]
    cw = np.r_[0.0, np.cumsum(wn)]
    lo = np.searchsorted(neg, score[y], side="left")
    hi = np.searchsorted(neg, score[y], side="right")
    below = cw[lo] + 0.5 * (cw[hi] - cw[lo])
    return float((w[y] * below).sum() / (w1 * w0))


def tiles(xy: np.ndarray, size: float) -> np.ndarray:
    """Tile id of each site on a square grid of side ``size`` px."""
    k = np.floor((xy - xy.min(axis=0)) / size).astype(int)
    _, ids = np.unique(k, axis=0, return_inverse=True)
    return ids.ravel()


def tile_bootstrap_auc(y, score, tile_id, n_boot: int, rng) -> np.ndarray:
    """AUCs of fixed scores over bootstrap resamples of spatial tiles."""
    ut = np.unique(tile_id)
    inv = np.searchsorted(ut, tile_id)
    out = []
    for _ in range(n_boot):   # resampling loop; each AUC is vectorized
        cnt = np.bincount(rng.integers(0, len(ut), len(ut)), minlength=len(ut))
        out.append(auc(y, score, cnt[inv].astype(float)))
    out = np.asarray(out)
    return out[np.isfinite(out)]


def bootstrap_cv_auc(kind, X, label, event_window, last_window, n_windows, features, xy,
                     blocks, buffer, C, tile_id, n_boot: int, rng) -> np.ndarray:
    """Out-of-block AUCs over tile-bootstrap resamples, the whole cross-validation refitted
    on each: the interval holds the fitting noise too, not only which sites were drawn
    (with a few nuclei the fits vary more than the sample)."""
    ut = np.unique(tile_id)
    inv = np.searchsorted(ut, tile_id)
    out = []
    for _ in range(n_boot):   # one cross-validation per resample
        cnt = np.bincount(rng.integers(0, len(ut), len(ut)), minlength=len(ut))
        w = cnt[inv].astype(float)
        p = cross_validate(kind, X, label, event_window, last_window, n_windows, features, xy,
                           blocks, buffer, C, weight=w)
        out.append(auc(label, np.nan_to_num(p, nan=0.0), w))
    out = np.asarray(out)
    return out[np.isfinite(out)]


def bootstrap_coefficients(kind, X, label, event_window, last_window, n_windows, features,
                           tile_id, n_boot: int, C: float, rng) -> np.ndarray:
    """Standardized coefficients refitted on tile-bootstrap resamples, (n_boot, p)."""
    ut = np.unique(tile_id)
    inv = np.searchsorted(ut, tile_id)
    out = []
    for _ in range(n_boot):   # one penalized fit per resample
        cnt = np.bincount(rng.integers(0, len(ut), len(ut)), minlength=len(ut))
        m = fit_model(kind, X, label, event_window, last_window, n_windows, features, C,
                      weight=cnt[inv].astype(float))
        out.append(m.coef)
    return np.asarray(out)


def shuffled_baseline(kind, X, label, event_window, last_window, n_windows, features, xy,
                      blocks, buffer, C, n_shuffle: int, rng) -> np.ndarray:
    """Out-of-block AUCs with the descriptors shuffled across sites (no real relation)."""
    out = []
    for _ in range(n_shuffle):
        perm = rng.permutation(len(label))
        p = cross_validate(kind, X[perm], label, event_window, last_window, n_windows, features,
                           xy, blocks, buffer, C)
        out.append(auc(label, p))
    return np.asarray(out)


def top_k(prob: np.ndarray, xy: np.ndarray, nuclei_xy: np.ndarray, k: int,
          radius: float) -> tuple[float, float]:
    """Fraction of the ``k`` most probable sites within ``radius`` px of a true nucleus,
    and the same fraction for sites picked at random (chance)."""
    if len(nuclei_xy) == 0 or k <= 0:
        return float("nan"), float("nan")
    d, _ = cKDTree(nuclei_xy).query(xy)
    near = d <= radius
    order = np.argsort(-prob, kind="stable")[:k]
    return float(near[order].mean()), float(near.mean())
