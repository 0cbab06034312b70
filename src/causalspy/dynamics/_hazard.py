"""Nucleation models over lattice sites and their honest validation.

Two L2-penalized logistic models on standardized descriptors (the objective
of scikit-learn's ``LogisticRegression``, solved by Newton's method, see
:func:`penalized_logistic`):

* ``"hazard"`` — a discrete-time (logistic) hazard model. Every site is
  observed for the windows in which it is still *at risk* (2H, not yet
  reached by a growing 1T region); the event is "a new nucleus forms here
  in this window". Sites swallowed by a growing region are censored when
  they are swallowed instead of counted as negatives. The baseline is one
  constant over the windows (the few windows of one transition do not
  support a per-window rate; a changing rate moves every site alike and
  leaves the ranking unchanged), so the site-window likelihood is binomial
  and is fitted as two weighted rows per site. The probability map is
  ``1 - (1 - h_i)^W`` over the ``W`` observed windows.
* ``"logistic"`` — one row per site, label "the site is part of a nucleus".
  Simpler and fast, but it counts sites that were swallowed before they
  could nucleate as negatives.

The AUC of the validation is the *incident/dynamic* AUC of survival analysis
(:func:`auc_incident`): each nucleation site against the sites still at risk
in the window its nucleus formed. Growth removes sites from later risk sets,
and where it does so depends on place (a growing region reaches the interior
before the edges of the view) and, when the hazard depends on smooth
descriptors, on the descriptors too. Comparing nucleation sites with the
sites that survive to the end (the cumulative AUC, :func:`auc` with censored
sites left out) then measures where growth did not arrive as much as where
nuclei formed; the incident AUC of a score unrelated to the hazard is 0.5 in
expectation whatever the growth does.

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

__all__ = ["SiteModel", "fit_model", "penalized_logistic", "spatial_blocks", "cross_validate", "auc",
           "auc_incident", "tile_bootstrap_auc", "bootstrap_cv_auc", "bootstrap_coefficients",
           "shuffled_baseline", "top_k"]


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


def penalized_logistic(Z: np.ndarray, y: np.ndarray, w: np.ndarray, C: float,
                       tol: float = 1e-10, max_iter: int = 100) -> tuple[np.ndarray, float]:
    """L2-penalized logistic regression by Newton's method.

    Minimizes ``0.5 |beta|^2 + C sum_i w_i logloss_i`` with an unpenalized
    intercept: the objective of scikit-learn's ``LogisticRegression(C=C)``
    (same coefficients), solved directly because the problems here are small
    (a few descriptors) and are refitted hundreds of times in the bootstraps,
    where an iterative quasi-Newton solver costs 100x more.
    """
    n, p = Z.shape
    A = np.column_stack([np.ones(n), Z])
    theta = np.zeros(p + 1)
    pen = np.r_[0.0, np.ones(p)]

    def objective(t):
        eta = A @ t
        return C * float(w @ (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * float(pen @ (t * t))

    f = objective(theta)
    for _ in range(max_iter):   # Newton steps (converges in ~10)
        eta = A @ theta
        mu = _sigmoid(eta)
        g = C * (A.T @ (w * (mu - y))) + pen * theta
        H = C * (A.T * (w * mu * (1 - mu))) @ A + np.diag(pen + 1e-12)
        step = np.linalg.solve(H, g)
        t_new, f_new, lam = theta - step, objective(theta - step), 1.0
        while f_new > f + 1e-12 and lam > 1e-6:   # damped where a full step overshoots
            lam *= 0.5
            t_new = theta - lam * step
            f_new = objective(t_new)
        done = abs(f - f_new) <= tol * max(1.0, abs(f))
        theta, f = t_new, f_new
        if done:
            break
    return theta[1:], float(theta[0])


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
    label : (n,) 1 where a nucleus formed, 0 where the site stayed untransformed
        (a control), -1 where a growing region reached it first (censored: in
        the hazard model it counts for the windows it was at risk, the
        logistic model leaves it out).
    event_window : (n,) window of the nucleation (-1: none).
    last_window : (n,) last window the site is at risk (its nucleation window,
        the window before a growing region swallowed it, or the last window).
    weight : (n,) optional integer multiplicities (bootstrap).
    """
    X = np.asarray(X, float)
    lab = np.asarray(label, int)
    y = (lab == 1).astype(int)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
    keep = (w > 0) & ((lab >= 0) if kind == "logistic" else np.ones(len(y), bool))
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
    if kind == "logistic":
        coef, icpt = penalized_logistic(Z[keep], y[keep].astype(float), w[keep], C)
        return SiteModel(kind, features, mean, scale, coef, icpt, np.zeros(0), C)
    # discrete-time hazard, constant baseline: site i is at risk in windows
    # 0..last_window[i] and nucleates in one of them or none. Its likelihood
    # (1 - h_i)^(n_i - y_i) h_i^y_i is a binomial one, so the person-period rows
    # collapse into two weighted rows per site (exactly the same fit, sites
    # instead of site-windows: fast enough to refit inside every bootstrap)
    idx = np.flatnonzero(keep)
    exposure = (last_window[idx] + 1).astype(float)
    ev = y[idx].astype(float)
    rows = np.r_[idx, idx]
    target = np.r_[np.ones(len(idx)), np.zeros(len(idx))]
    sw = np.r_[ev, exposure - ev] * np.r_[w[idx], w[idx]]
    pos = sw > 0
    coef, icpt = penalized_logistic(Z[rows[pos]], target[pos], sw[pos], C)
    return SiteModel(kind, features, mean, scale, coef, icpt, np.zeros(n_windows), C)


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
    classes. ``y``: 1 case, 0 control, -1 (censored) left out."""
    from scipy.stats import rankdata

    y = np.asarray(y)
    keep = y >= 0
    if not keep.all():
        return auc(y[keep], np.asarray(score)[keep],
                   None if weight is None else np.asarray(weight)[keep])
    y = y.astype(bool)
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


def auc_incident(label: np.ndarray, event_window: np.ndarray, last_window: np.ndarray,
                 score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Incident/dynamic ROC AUC (a concordance index over risk sets).

    Parameters
    ----------
    label : (n,) 1 nucleation site, 0 untransformed to the end, -1 censored
        (reached by a growing region after ``last_window``); anything below
        -1 is left out.
    event_window : (n,) window of the nucleation of the cases.
    last_window : (n,) last window each site is at risk.
    score : (n,) predicted risk (higher: more likely to nucleate).
    weight : (n,) optional case weights (bootstrap multiplicities).

    Returns
    -------
    float
        NaN without a case that has a risk set.

    Notes
    -----
    With ``R_w`` the sites at risk in window ``w`` (``last_window >= w``)
    other than the cases of window ``w``,

    .. math:: \\mathrm{AUC} = \\frac{\\sum_w \\sum_{i \\in D_w} \\sum_{j \\in R_w}
              w_i w_j [I(s_i > s_j) + \\tfrac12 I(s_i = s_j)]}
              {\\sum_w \\sum_{i \\in D_w} \\sum_{j \\in R_w} w_i w_j}

    (Heagerty & Zheng 2005, pooled over event times like Harrell's C; cases
    of the same window are not compared with each other). If the hazard does
    not depend on the score, each case is a random member of its risk set
    and the expectation is exactly 0.5, however growth thins the risk sets.
    """
    lab = np.asarray(label)
    ev = np.asarray(event_window)
    last = np.asarray(last_window)
    s = np.asarray(score, float)
    w = np.ones(len(lab)) if weight is None else np.asarray(weight, float)
    use = (w > 0) & (lab >= -1) & np.isfinite(s)
    case = use & (lab == 1)
    num = den = 0.0
    for win in np.unique(ev[case]):   # a few event windows; each is one sorted count
        ci = case & (ev == win)
        risk = use & (last >= win) & ~ci
        if not risk.any():
            continue
        order = np.argsort(s[risk], kind="stable")
        neg, wn = s[risk][order], w[risk][order]
        cw = np.r_[0.0, np.cumsum(wn)]
        lo = np.searchsorted(neg, s[ci], side="left")
        hi = np.searchsorted(neg, s[ci], side="right")
        num += float((w[ci] * (cw[lo] + 0.5 * (cw[hi] - cw[lo]))).sum())
        den += float(w[ci].sum() * cw[-1])
    return num / den if den > 0 else float("nan")


def tiles(xy: np.ndarray, size: float) -> np.ndarray:
    """Tile id of each site on a square grid of side ``size`` px."""
    k = np.floor((xy - xy.min(axis=0)) / size).astype(int)
    _, ids = np.unique(k, axis=0, return_inverse=True)
    return ids.ravel()


def tile_bootstrap_auc(y, score, tile_id, n_boot: int, rng, event_window=None,
                       last_window=None) -> np.ndarray:
    """AUCs of fixed scores over bootstrap resamples of spatial tiles (the incident AUC
    when ``event_window`` and ``last_window`` are given, else the cumulative one)."""
    ut = np.unique(tile_id)
    inv = np.searchsorted(ut, tile_id)
    out = []
    for _ in range(n_boot):   # resampling loop; each AUC is vectorized
        cnt = np.bincount(rng.integers(0, len(ut), len(ut)), minlength=len(ut))
        w = cnt[inv].astype(float)
        out.append(auc(y, score, w) if event_window is None
                   else auc_incident(y, event_window, last_window, score, w))
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
        out.append(auc_incident(label, event_window, last_window, np.nan_to_num(p, nan=0.0),
                                w))
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
    """Out-of-block incident AUCs with the descriptors shuffled across sites (no real
    relation)."""
    out = []
    for _ in range(n_shuffle):
        perm = rng.permutation(len(label))
        p = cross_validate(kind, X[perm], label, event_window, last_window, n_windows, features,
                           xy, blocks, buffer, C)
        out.append(auc_incident(label, event_window, last_window, p))
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
