r"""Built-in physical models: a mean function, its parameters and default priors.

Every model adds Gaussian noise of unknown standard deviation ``sigma`` (unit
of ``y``; with per-point errors ``yerr`` the variance is
:math:`\sigma^2 + \mathrm{yerr}_i^2`):

.. math:: y_i \sim \mathcal{N}\big(f(x_i; \theta),\ \sigma^2 + \mathrm{yerr}_i^2\big)

Domain-wall profiles (``x`` is the distance across the wall):

``tanh``
    Ginzburg–Landau–Devonshire wall, :math:`f = P_s \tanh((x - x_0)/w) + b`.
``tanh_slope``
    The same on a linear background, :math:`f = P_s \tanh((x - x_0)/w) + b + s (x - x_0)`.
``charged``
    A charged (head-to-head / tail-to-tail) wall, profile of the polarization
    component *normal* to the wall: a gradient core of width :math:`w` plus the
    part of the step carried by the screening charge over a length :math:`\lambda`,
    :math:`f = P_s [(1 - a) \tanh(u/w) + a \tanh(u/\lambda)] + b`,
    :math:`u = x - x_0`, :math:`0 \le a \le 1`.
``coupled``
    Two order parameters across the same wall (two channels sharing :math:`x_0`
    and the width): the polarization :math:`P = P_s \tanh(u/w) + b` and, by
    electrostrictive coupling (:math:`\eta \propto P^2`), the tetragonality or
    strain :math:`\eta = \eta_\infty - \Delta\eta\, \mathrm{sech}^2(u/(\kappa w))`
    (:math:`\kappa = 1` for a purely local coupling).
``linear``
    No wall, a gradient: :math:`f = b + s x`.
``constant``
    Nothing: :math:`f = b`.

Laws against composition or molar volume (``x`` is ``c``):

``law_linear``
    :math:`f = y_0 + k c`.
``saturating``
    :math:`f = y_0 + A (1 - e^{-c / c_s})`.
``vegard``
    Vegard's law with bowing, :math:`f = (1 - c) y_A + c\, y_B - \beta c (1 - c)`.

Default priors are weakly informative and scaled to the data (``R`` is the
range of ``y``, ``X`` the range of ``x``, ``sd`` the standard deviation of
``y``); replace any of them with ``priors={"w": "LogNormal(0, 1)"}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from causalspy.bayes.priors import PriorSpec
from causalspy.exceptions import InvalidParameterError

__all__ = ["Model", "Param", "MODELS", "get_model"]


@dataclass(frozen=True)
class Param:
    """A model parameter.

    Attributes
    ----------
    name : str
    unit : str
        ``"x"``, ``"y"``, ``"y/x"`` or ``"1"`` (dimensionless); resolved to the
        data's units by :meth:`Model.unit_of`.
    support : str
        ``"real"``, ``"positive"`` or ``"unit"`` (between 0 and 1).
    meaning : str
        Physical meaning, for docs and reports.
    """

    name: str
    unit: str
    support: str
    meaning: str


@dataclass(frozen=True)
class Model:
    """A physical model ``y = f(x; theta) + noise``.

    Attributes
    ----------
    name, equation : str
    params : tuple of Param
        The physical parameters (the noise ``sigma`` is added by the fit).
    mean : callable
        ``mean(xp, x, **theta)`` with ``xp`` the array module (NumPy or
        ``jax.numpy``), broadcasting over leading sample axes of ``theta``.
    default_priors : callable
        ``default_priors(x, y) -> {name: PriorSpec}``.
    kind : str
        ``"wall"`` or ``"law"``.
    channels : tuple of str
        Names of the observed quantities. One (``("y",)``) for most models; a
        model with several (``coupled``) takes ``y`` of shape ``(channels, n)``
        on a shared ``x``, its ``mean`` returns that shape, and each channel has
        its own noise (``sigma``, ``sigma_<channel>``).
    inputs : tuple of str
        Names of the explanatory variables: one (``x``) for profiles and laws;
        a regression on several (:func:`~causalspy.bayes.causal_model`) takes
        ``x`` of shape ``(n, len(inputs))``.
    spec : dict or None
        For models built at run time (:func:`~causalspy.bayes.causal_model`):
        what :func:`get_model` needs to rebuild it when a posterior is loaded.
    """

    name: str
    equation: str
    params: tuple[Param, ...]
    mean: Callable
    default_priors: Callable
    kind: str
    channels: tuple[str, ...] = ("y",)
    inputs: tuple[str, ...] = ("x",)
    spec: dict | None = field(default=None, compare=False, hash=False)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def noise_names(self) -> list[str]:
        """``["sigma"]``, or ``["sigma", "sigma_<channel 2>", ...]`` for several channels."""
        return ["sigma"] + [f"sigma_{c}" for c in self.channels[1:]]

    @property
    def names(self) -> list[str]:
        """Parameter names including the noise ``sigma``."""
        return [p.name for p in self.params] + self.noise_names

    def param(self, name: str) -> Param:
        for p in self.all_params:
            if p.name == name:
                return p
        raise InvalidParameterError(
            f"Model {self.name!r} has no parameter {name!r}; its parameters are {self.names}.")

    @property
    def all_params(self) -> tuple[Param, ...]:
        noise = [Param("sigma", "y", "positive", "noise standard deviation")]
        noise += [Param(f"sigma_{c}", "1", "positive", f"noise standard deviation of {c}")
                  for c in self.channels[1:]]
        return self.params + tuple(noise)

    def unit_of(self, name: str, x_unit: str = "", y_unit: str = "") -> str:
        u = self.param(name).unit
        if u == "x":
            return x_unit
        if u == "y":
            return y_unit
        if u == "y/x":
            return f"{y_unit}/{x_unit}" if (x_unit or y_unit) else ""
        return ""

    def priors_for(self, x: np.ndarray, y: np.ndarray,
                   user: dict[str, PriorSpec] | None = None) -> dict[str, PriorSpec]:
        """Default priors for this data, overridden by ``user``; checks names and supports."""
        pri = dict(self.default_priors(x, y))
        yc = np.atleast_2d(y) if self.n_channels > 1 else [y]
        for nm, yy in zip(self.noise_names, yc, strict=True):
            pri[nm] = PriorSpec("HalfNormal", (_pos(np.std(yy)),))
        for k, v in (user or {}).items():
            if k not in pri:
                raise InvalidParameterError(
                    f"Prior given for {k!r}, which model {self.name!r} does not have; "
                    f"its parameters are {self.names}.")
            v.check_support(k, self.param(k).support)
            pri[k] = v
        return {n: pri[n] for n in self.names}


def _pos(v: float) -> float:
    v = float(v)
    return v if v > 0 and math.isfinite(v) else 1.0


def _ranges(x, y):
    return _pos(np.ptp(y)), _pos(np.ptp(x)), float(np.mean(y))


# ------------------------------------------------------------------ walls
def _tanh(xp, x, P_s, x0, w, b):
    return P_s * xp.tanh((x - x0) / w) + b


def _tanh_pri(x, y):
    R, X, m = _ranges(x, y)
    return {"P_s": PriorSpec("Normal", (0.0, R)),
            "x0": PriorSpec("Normal", (float(np.min(x) + np.max(x)) / 2, X / 2)),
            "w": PriorSpec("LogNormal", (math.log(X / 10), 1.5)),
            "b": PriorSpec("Normal", (m, R))}


def _tanh_slope(xp, x, P_s, x0, w, b, s):
    return P_s * xp.tanh((x - x0) / w) + b + s * (x - x0)


def _tanh_slope_pri(x, y):
    R, X, _ = _ranges(x, y)
    return {**_tanh_pri(x, y), "s": PriorSpec("Normal", (0.0, R / X))}


def _charged(xp, x, P_s, x0, w, lam, a, b):
    u = x - x0
    return P_s * ((1 - a) * xp.tanh(u / w) + a * xp.tanh(u / lam)) + b


def _charged_pri(x, y):
    R, X, m = _ranges(x, y)
    # the screened part is wider than the gradient core: separate median widths
    # keep the two length scales from swapping labels
    return {"P_s": PriorSpec("Normal", (0.0, R)),
            "x0": PriorSpec("Normal", (float(np.min(x) + np.max(x)) / 2, X / 2)),
            "w": PriorSpec("LogNormal", (math.log(X / 20), 1.0)),
            "lam": PriorSpec("LogNormal", (math.log(X / 4), 1.0)),
            "a": PriorSpec("Uniform", (0.0, 1.0)),
            "b": PriorSpec("Normal", (m, R))}


def _coupled(xp, x, P_s, x0, w, b, eta_inf, d_eta, kappa):
    u = (x - x0) / w
    p = P_s * xp.tanh(u) + b
    eta = eta_inf - d_eta / xp.cosh(u / kappa) ** 2
    return xp.stack([p + 0.0 * eta, eta + 0.0 * p], axis=-2)


def _coupled_pri(x, y):
    y = np.atleast_2d(y)
    p = _tanh_pri(x, y[0])
    Re, _, _ = _ranges(x, y[1])
    return {**p, "eta_inf": PriorSpec("Normal", (float(np.median(y[1])), Re)),
            "d_eta": PriorSpec("Normal", (0.0, Re)),
            "kappa": PriorSpec("LogNormal", (0.0, 0.5))}


def _linear(xp, x, b, s):
    return b + s * x


def _linear_pri(x, y):
    R, X, m = _ranges(x, y)
    xm = float(np.max(np.abs(x)))
    return {"b": PriorSpec("Normal", (m, 2 * R * (1 + xm / X))),
            "s": PriorSpec("Normal", (0.0, 2 * R / X))}


def _constant(xp, x, b):
    return b + 0.0 * x


def _constant_pri(x, y):
    R, _, m = _ranges(x, y)
    return {"b": PriorSpec("Normal", (m, R))}


# ------------------------------------------------------------------ laws
def _law_linear(xp, x, y0, k):
    return y0 + k * x


def _law_linear_pri(x, y):
    p = _linear_pri(x, y)
    return {"y0": p["b"], "k": p["s"]}


def _saturating(xp, x, y0, A, c_s):
    return y0 + A * (1 - xp.exp(-x / c_s))


def _saturating_pri(x, y):
    R, X, m = _ranges(x, y)
    return {"y0": PriorSpec("Normal", (m, 2 * R)), "A": PriorSpec("Normal", (0.0, 2 * R)),
            "c_s": PriorSpec("LogNormal", (math.log(X / 3), 1.5))}


def _vegard(xp, x, y_A, y_B, beta):
    return (1 - x) * y_A + x * y_B - beta * x * (1 - x)


def _vegard_pri(x, y):
    R, _, m = _ranges(x, y)
    return {"y_A": PriorSpec("Normal", (m, 2 * R)), "y_B": PriorSpec("Normal", (m, 2 * R)),
            "beta": PriorSpec("Normal", (0.0, 4 * R))}


_P_s = Param("P_s", "y", "real", "half the step across the wall (spontaneous polarization "
             "or order parameter); its sign gives the wall's orientation")
_x0 = Param("x0", "x", "real", "wall position")
_w = Param("w", "x", "positive", "wall half-width (the GLD correlation length)")
_b = Param("b", "y", "real", "offset (the value at the wall centre)")
_s = Param("s", "y/x", "real", "linear background slope")

#: The built-in models by name.
MODELS: dict[str, Model] = {
    "tanh": Model("tanh", "P_s*tanh((x - x0)/w) + b", (_P_s, _x0, _w, _b), _tanh, _tanh_pri,
                  "wall"),
    "tanh_slope": Model("tanh_slope", "P_s*tanh((x - x0)/w) + b + s*(x - x0)",
                        (_P_s, _x0, _w, _b, _s), _tanh_slope, _tanh_slope_pri, "wall"),
    "charged": Model("charged", "P_s*((1 - a)*tanh((x - x0)/w) + a*tanh((x - x0)/lam)) + b",
                     (_P_s, _x0, Param("w", "x", "positive", "half-width of the gradient core "
                                       "(the GLD correlation length)"),
                      Param("lam", "x", "positive", "screening length of the bound charge"),
                      Param("a", "1", "unit", "fraction of the step carried by the screened "
                            "part (0: a neutral-like wall)"), _b),
                     _charged, _charged_pri, "wall"),
    "coupled": Model("coupled", "P = P_s*tanh((x - x0)/w) + b; "
                     "eta = eta_inf - d_eta*sech((x - x0)/(kappa*w))**2",
                     (_P_s, _x0, _w, _b,
                      Param("eta_inf", "1", "real", "second order parameter (tetragonality, "
                            "strain) far from the wall"),
                      Param("d_eta", "1", "real", "its change at the wall centre (> 0: a dip)"),
                      Param("kappa", "1", "positive", "width ratio of the second order "
                            "parameter to the polarization (1: local coupling eta ~ P^2)")),
                     _coupled, _coupled_pri, "wall", channels=("P", "eta")),
    "linear": Model("linear", "b + s*x",
                    (Param("b", "y", "real", "value at x = 0"), _s), _linear, _linear_pri,
                    "wall"),
    "constant": Model("constant", "b", (Param("b", "y", "real", "mean value"),), _constant,
                      _constant_pri, "wall"),
    "law_linear": Model("law_linear", "y0 + k*c",
                        (Param("y0", "y", "real", "value at c = 0"),
                         Param("k", "y/x", "real", "slope against composition")),
                        _law_linear, _law_linear_pri, "law"),
    "saturating": Model("saturating", "y0 + A*(1 - exp(-c/c_s))",
                        (Param("y0", "y", "real", "value at c = 0"),
                         Param("A", "y", "real", "saturation amplitude"),
                         Param("c_s", "x", "positive", "saturation composition scale")),
                        _saturating, _saturating_pri, "law"),
    "vegard": Model("vegard", "(1 - c)*y_A + c*y_B - beta*c*(1 - c)",
                    (Param("y_A", "y", "real", "end member A (c = 0)"),
                     Param("y_B", "y", "real", "end member B (c = 1)"),
                     Param("beta", "y", "real", "bowing parameter (0: Vegard's law)")),
                    _vegard, _vegard_pri, "law"),
}


def get_model(model: str | Model | dict) -> Model:
    """A :class:`Model` from its name (a key of :data:`MODELS`), itself, or the
    ``spec`` of a model built at run time (e.g. by
    :func:`~causalspy.bayes.causal_model`)."""
    if isinstance(model, Model):
        return model
    if isinstance(model, dict):
        if model.get("type") == "causal":
            from causalspy.bayes.causal import _build

            return _build(model)
        raise InvalidParameterError(f"Unknown model spec {model!r}.")
    if model not in MODELS:
        raise InvalidParameterError(f"Unknown model {model!r}; choose one of {sorted(MODELS)}.")
    return MODELS[model]
