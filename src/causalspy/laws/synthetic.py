r"""Ground-truth kinetics and fields for testing law discovery.

Each generator returns a :class:`LawSample` with the data, the true law as
``{target: {term: value}}`` (terms named as pysindy names them) and a short
description. Noise is Gaussian with standard deviation ``noise`` times the
standard deviation of the clean signal ("1 % noise" is ``noise=0.01``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causalspy.exceptions import InvalidParameterError

__all__ = ["LawSample", "logistic", "landau_khalatnikov", "allen_cahn"]


@dataclass
class LawSample:
    """Synthetic data with its true law.

    Attributes
    ----------
    data : pandas.DataFrame or dict
        A time-series table (ODE generators) or ``{"u", "t", "x"}`` arrays
        (field generators, ``u[i, k]`` at ``(x[i], t[k])``).
    truth : dict
        ``{target: {term: value}}``; terms absent from the dict have
        coefficient 0.
    clean : numpy.ndarray
        The noise-free signal.
    description : str
    """

    data: object
    truth: dict
    clean: np.ndarray
    description: str = ""
    params: dict = field(default_factory=dict)


def _check(n: int, noise: float, minimum: int = 5) -> None:
    if int(n) < minimum:
        raise InvalidParameterError(f"n={n}: give at least {minimum} points.")
    if not (np.isfinite(noise) and noise >= 0):
        raise InvalidParameterError(f"noise={noise} must be a finite number >= 0.")


def _noisy(clean: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return clean + noise * np.std(clean) * rng.standard_normal(clean.shape)


def logistic(n: int = 100, *, rate: float = 1.0, capacity: float = 1.0, f0: float = 0.05,
             t_end: float = 10.0, noise: float = 0.01, seed: int = 0,
             name: str = "f") -> LawSample:
    r"""Autocatalytic (logistic, JMAK-type) transformation kinetics.

    .. math:: \frac{\mathrm{d}f}{\mathrm{d}t} = r f \left(1 - \frac{f}{K}\right)
              = r f - \frac{r}{K} f^2,
              \qquad f(t) = \frac{K}{1 + (K/f_0 - 1)\,e^{-rt}}

    (exact solution, sampled at ``n`` equally spaced times in ``[0, t_end]``).
    """
    _check(n, noise)
    t = np.linspace(0.0, t_end, int(n))
    clean = capacity / (1 + (capacity / f0 - 1) * np.exp(-rate * t))
    df = pd.DataFrame({"t": t, name: _noisy(clean, noise, seed)})
    truth = {name: {name: rate, f"{name}^2": -rate / capacity}}
    return LawSample(df, truth, clean, f"logistic growth r={rate}, K={capacity}, "
                     f"{100 * noise:g} % noise", {"rate": rate, "capacity": capacity, "f0": f0})


def landau_khalatnikov(n: int = 100, *, a: float = -1.0, b: float = 1.0, p0: float = 0.1,
                       t_end: float = 8.0, noise: float = 0.01, seed: int = 0,
                       name: str = "P") -> LawSample:
    r"""Landau–Khalatnikov relaxation of an order parameter (polarization).

    .. math:: \frac{\mathrm{d}P}{\mathrm{d}t} = -(aP + bP^3),
              \qquad P(t)^{-2} = -\frac{b}{a} + \left(P_0^{-2} + \frac{b}{a}\right) e^{2at}

    (exact solution). With ``a < 0 < b`` a small ``P0`` grows to the
    spontaneous value :math:`\sqrt{-a/b}`.
    """
    _check(n, noise)
    if a == 0 or p0 == 0:
        raise InvalidParameterError("a and p0 must be non-zero.")
    t = np.linspace(0.0, t_end, int(n))
    y = -b / a + (p0 ** -2 + b / a) * np.exp(2 * a * t)
    if np.any(y <= 0):
        raise InvalidParameterError("These parameters blow up before t_end; lower p0 or t_end.")
    clean = np.sign(p0) / np.sqrt(y)
    df = pd.DataFrame({"t": t, name: _noisy(clean, noise, seed)})
    truth = {name: {name: -a, f"{name}^3": -b}}
    return LawSample(df, truth, clean, f"Landau-Khalatnikov a={a}, b={b}, "
                     f"{100 * noise:g} % noise", {"a": a, "b": b, "p0": p0})


def allen_cahn(nx: int = 64, nt: int = 81, *, length: float = 2 * np.pi, t_end: float = 4.0,
               diffusion: float = 0.05, a: float = 1.0, b: float = 1.0, amplitude: float = 0.3,
               noise: float = 0.0, seed: int = 0, name: str = "u") -> LawSample:
    r"""A 1D periodic Allen–Cahn (time-dependent Ginzburg–Landau) field.

    .. math:: \partial_t u = D\,\partial_x^2 u + a u - b u^3

    from a smooth random initial field of the given ``amplitude``, solved
    with a semi-implicit spectral scheme (diffusion implicit) at a time step
    well below the explicit limit, and sampled at ``nt`` times.
    ``data`` holds ``u`` (shape ``(nx, nt)``), ``t`` and ``x``; the true terms
    are named as pysindy's ``WeakPDELibrary`` names them (``u``, ``u^3``,
    ``u_11``).
    """
    _check(nx, noise, 8)
    _check(nt, noise, 8)
    rng = np.random.default_rng(seed)
    dx = length / nx
    x = np.arange(nx) * dx
    k = 2 * np.pi * np.fft.rfftfreq(nx, d=dx)
    spec = (rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size)) * np.exp(-(k / 3) ** 2)
    spec[0] = 0
    u = np.fft.irfft(spec, n=nx)
    u = amplitude * u / np.max(np.abs(u))
    dt_out = t_end / (nt - 1)
    nsub = max(1, int(np.ceil(dt_out / min(0.2 * dx * dx / diffusion, 0.01))))
    dt = dt_out / nsub
    frames = [u]
    for _ in range(nt - 1):
        for _ in range(nsub):
            u = np.fft.irfft(np.fft.rfft(u + dt * (a * u - b * u ** 3))
                             / (1 + dt * diffusion * k ** 2), n=nx)
        frames.append(u)
    clean = np.array(frames).T
    t = np.linspace(0.0, t_end, nt)
    data = {"u": _noisy(clean, noise, seed + 1), "t": t, "x": x}
    truth = {name: {name: a, f"{name}^3": -b, f"{name}_11": diffusion}}
    return LawSample(data, truth, clean, f"1D Allen-Cahn D={diffusion}, a={a}, b={b}, "
                     f"{100 * noise:g} % noise", {"diffusion": diffusion, "a": a, "b": b})
