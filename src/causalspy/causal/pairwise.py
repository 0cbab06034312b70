"""Cause or effect from two variables alone: additive noise models and IGCI."""

from __future__ import annotations

from typing import Literal

import numpy as np

from causalspy.exceptions import InvalidParameterError

__all__ = ["pairwise"]


def _igci(x: np.ndarray, y: np.ndarray) -> float:
    """IGCI slope estimator with uniform reference measure (Daniusis et al. 2010).

    Returns ``C_xy - C_yx``; negative means ``x -> y``.
    """
    def scale(v):
        return (v - v.min()) / (v.max() - v.min())

    def slope(a, b):
        o = np.argsort(a)
        a, b = a[o], b[o]
        da, db = np.diff(a), np.diff(b)
        ok = (da != 0) & (db != 0)
        return float(np.mean(np.log(np.abs(db[ok] / da[ok]))))

    x, y = scale(x), scale(y)
    return slope(x, y) - slope(y, x)


def pairwise(x, y, method: Literal["anm", "igci"] = "anm", *, max_samples: int = 500,
             seed: int = 0) -> dict:
    """Decide whether ``x`` causes ``y`` or ``y`` causes ``x``.

    Parameters
    ----------
    x, y : array-like
        Two variables, one value per cell.
    method : {"anm", "igci"}
        ``anm``: additive noise model (causal-learn's ``ANM``): regress each on
        the other with a Gaussian process and test the residual's
        independence (HSIC); the direction whose residual is independent
        wins. ``igci``: information-geometric causal inference (slope-based,
        for deterministic or low-noise relations).
    max_samples : int
        ANM is O(n^3): a random subsample of at most this size is used.

    Returns
    -------
    dict
        ``direction`` ("x->y", "y->x" or "undecided"), and the method's scores
        (``p_forward``, ``p_backward`` for ANM; ``score`` for IGCI).
    """
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 20:
        raise InvalidParameterError(f"{x.size} paired samples are too few; at least 20 are needed.")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise InvalidParameterError("A constant variable has no causal direction.")
    if method == "igci":
        s = _igci(x, y)
        return {"direction": "x->y" if s < 0 else "y->x", "score": s, "method": "igci"}
    if method != "anm":
        raise InvalidParameterError(f"method must be 'anm' or 'igci'; got {method!r}.")
    from causallearn.search.FCMBased.ANM.ANM import ANM

    rng = np.random.default_rng(seed)
    if x.size > max_samples:
        ix = rng.choice(x.size, max_samples, replace=False)
        x, y = x[ix], y[ix]
    xs = ((x - x.mean()) / x.std())[:, None]
    ys = ((y - y.mean()) / y.std())[:, None]
    p_fw, p_bw = ANM().cause_or_effect(xs, ys)
    if p_fw > p_bw:
        d = "x->y"
    elif p_bw > p_fw:
        d = "y->x"
    else:
        d = "undecided"
    return {"direction": d, "p_forward": float(p_fw), "p_backward": float(p_bw), "method": "anm"}
