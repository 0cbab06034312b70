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
from dataclasses import dataclass

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
        ``"real"`` or ``"positive"``.
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
    """

    name: str
    equation: str
    params: tuple[Param, ...]
    mean: Callable
    default_priors: Callable
    kind: str

    @property
    def names(self) -> list[str]:
        """Parameter names including the noise ``sigma``."""
        return [p.name for p in self.params] + ["sigma"]

    def param(self, name: str) -> Param:
        for p in self.all_params:
            if p.name == name:
                return p
        raise InvalidParameterError(
            f"Model {self.name!r} has no parameter {name!r}; its parameters are {self.names}.")

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + (Param("sigma", "y", "positive", "noise standard deviation"),)

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
        pri["sigma"] = PriorSpec("HalfNormal", (_pos(np.std(y)),))
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


def get_model(model: str | Model) -> Model:
    """A :class:`Model` from its name (a key of :data:`MODELS`) or itself."""
    if isinstance(model, Model):
        return model
    if model not in MODELS:
        raise InvalidParameterError(f"Unknown model {model!r}; choose one of {sorted(MODELS)}.")
    return MODELS[model]
