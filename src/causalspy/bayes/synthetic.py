"""Synthetic profiles with known parameters, for tests, benchmarks and examples."""

from __future__ import annotations

import numpy as np

from causalspy.bayes.models import get_model

__all__ = ["synthetic_profile", "synthetic_wall"]


def synthetic_profile(model: str = "tanh", params: dict | None = None, *, n: int = 200,
                      x_range: tuple[float, float] = (0.0, 20.0), noise: float = 0.1,
                      seed: int | None = 0):
    """``(x, y, truth)`` from a built-in model with Gaussian noise of sd ``noise``.

    ``truth`` holds the parameters including ``sigma``.
    """
    m = get_model(model)
    rng = np.random.default_rng(seed)
    x = np.linspace(x_range[0], x_range[1], int(n))
    p = dict(params or {})
    missing = [q.name for q in m.params if q.name not in p]
    if missing:
        raise ValueError(f"synthetic_profile: give values for {missing}.")
    y = m.mean(np, x, **{q.name: p[q.name] for q in m.params}) + rng.normal(0, noise, x.size)
    return x, y, {**{q.name: float(p[q.name]) for q in m.params}, "sigma": float(noise)}


def synthetic_wall(*, n: int = 200, P_s: float = 1.0, x0: float = 9.0, w: float = 1.5,
                   b: float = 0.2, noise: float = 0.1, x_range: tuple[float, float] = (0.0, 20.0),
                   seed: int | None = 0):
    r"""A noisy domain-wall profile :math:`P_s \tanh((x - x_0)/w) + b + \varepsilon`.

    Returns
    -------
    x, y : numpy.ndarray
    truth : dict
        ``P_s``, ``x0``, ``w``, ``b``, ``sigma``.
    """
    return synthetic_profile("tanh", {"P_s": P_s, "x0": x0, "w": w, "b": b}, n=n,
                             x_range=x_range, noise=noise, seed=seed)
