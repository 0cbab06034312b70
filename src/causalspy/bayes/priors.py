"""A small prior language: ``"w=LogNormal(0, 1)"`` → a NumPyro distribution.

A prior is written ``name=Family(p1, p2, ...)`` with numbers in the units of
the parameter (the unit of ``x`` for positions and widths, of ``y`` for
amplitudes and offsets, of ``y`` per unit ``x`` for slopes; see each model's
``params``). ``LogNormal(mu, s)`` is the distribution of ``exp(Normal(mu, s))``,
so ``mu`` is the natural log of the median in the parameter's unit.

Families (``support`` is where the density is non-zero):

=================================  ============  =================================
family                             support       parameters must satisfy
=================================  ============  =================================
``Normal(loc, scale)``             real          scale > 0
``StudentT(df, loc, scale)``       real          df > 0, scale > 0
``Cauchy(loc, scale)``             real          scale > 0
``Uniform(low, high)``             [low, high]   low < high
``HalfNormal(scale)``              positive      scale > 0
``HalfCauchy(scale)``              positive      scale > 0
``LogNormal(mu, s)``               positive      s > 0
``Exponential(rate)``              positive      rate > 0
``Gamma(concentration, rate)``     positive      both > 0
``TruncatedNormal(loc, scale,      [low, high]   scale > 0, low < high
low, high)``
=================================  ============  =================================
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from causalspy.exceptions import InvalidParameterError

__all__ = ["PriorSpec", "parse_prior", "parse_priors", "FAMILIES"]

#: family -> (parameter names, support kind: "real", "positive" or "interval")
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "Normal": (("loc", "scale"), "real"),
    "StudentT": (("df", "loc", "scale"), "real"),
    "Cauchy": (("loc", "scale"), "real"),
    "Uniform": (("low", "high"), "interval"),
    "HalfNormal": (("scale",), "positive"),
    "HalfCauchy": (("scale",), "positive"),
    "LogNormal": (("mu", "s"), "positive"),
    "Exponential": (("rate",), "positive"),
    "Gamma": (("concentration", "rate"), "positive"),
    "TruncatedNormal": (("loc", "scale", "low", "high"), "interval"),
}
_POSITIVE_ARGS = {"scale", "s", "rate", "df", "concentration"}
_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class PriorSpec:
    """One prior: a distribution family and its numeric parameters.

    Attributes
    ----------
    family : str
        A key of :data:`FAMILIES`.
    args : tuple of float
        The parameters in the order of :data:`FAMILIES` (units of the model
        parameter it is attached to).
    """

    family: str
    args: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InvalidParameterError(
                f"Unknown prior family {self.family!r}; use one of {sorted(FAMILIES)}.")
        names, _ = FAMILIES[self.family]
        if len(self.args) != len(names):
            raise InvalidParameterError(
                f"{self.family} takes {len(names)} parameter(s) ({', '.join(names)}); "
                f"got {len(self.args)}: {self}.")
        for n, v in zip(names, self.args, strict=True):
            if not math.isfinite(v):
                raise InvalidParameterError(f"Prior {self}: {n} must be a finite number.")
            if n in _POSITIVE_ARGS and v <= 0:
                raise InvalidParameterError(f"Prior {self}: {n} must be > 0, got {v:g}.")
        d = dict(zip(names, self.args, strict=True))
        if "low" in d and not d["low"] < d["high"]:
            raise InvalidParameterError(f"Prior {self}: low must be < high.")

    @property
    def support(self) -> str:
        """``"real"``, ``"positive"`` or ``"interval"``."""
        return FAMILIES[self.family][1]

    @property
    def bounds(self) -> tuple[float, float]:
        """Lower and upper end of the support."""
        if self.support == "real":
            return (-math.inf, math.inf)
        if self.support == "positive":
            return (0.0, math.inf)
        return (self.args[-2], self.args[-1])

    def __str__(self) -> str:
        return f"{self.family}({', '.join(f'{a:.6g}' for a in self.args)})"

    def to_numpyro(self, args=None):
        """The NumPyro distribution (``args`` may be JAX arrays replacing :attr:`args`)."""
        import numpyro.distributions as dist

        a = self.args if args is None else args
        f = self.family
        if f == "Normal":
            return dist.Normal(a[0], a[1])
        if f == "StudentT":
            return dist.StudentT(a[0], a[1], a[2])
        if f == "Cauchy":
            return dist.Cauchy(a[0], a[1])
        if f == "Uniform":
            return dist.Uniform(a[0], a[1])
        if f == "HalfNormal":
            return dist.HalfNormal(a[0])
        if f == "HalfCauchy":
            return dist.HalfCauchy(a[0])
        if f == "LogNormal":
            return dist.LogNormal(a[0], a[1])
        if f == "Exponential":
            return dist.Exponential(a[0])
        if f == "Gamma":
            return dist.Gamma(a[0], a[1])
        return dist.TruncatedNormal(a[0], a[1], low=a[2], high=a[3])

    def check_support(self, name: str, support: str) -> None:
        """Raise if this prior puts mass where parameter ``name`` cannot be.

        ``support`` is the parameter's own: ``"real"``, ``"positive"`` or
        ``"unit"`` (between 0 and 1).
        """
        if support == "unit" and (self.bounds[0] < 0 or self.bounds[1] > 1):
            raise InvalidParameterError(
                f"Prior {name}={self} puts mass outside [0, 1] but {name} is a fraction; "
                f"use Uniform(low, high) or TruncatedNormal(loc, scale, low, high) within "
                f"[0, 1].")
        if support == "positive" and self.bounds[0] < 0:
            raise InvalidParameterError(
                f"Prior {name}={self} allows negative values but {name} must be positive; "
                f"use a positive family (LogNormal, HalfNormal, Gamma, Exponential) or "
                f"Uniform/TruncatedNormal with low >= 0.")


def _parse_spec(text: str) -> PriorSpec:
    m = _SPEC.match(text)
    if not m:
        raise InvalidParameterError(
            f"Cannot read the prior {text!r}; write it as Family(numbers), e.g. 'LogNormal(0, 1)'.")
    family, body = m.group(1), m.group(2)
    canon = {k.lower(): k for k in FAMILIES}
    if family.lower() not in canon:
        raise InvalidParameterError(
            f"Unknown prior family {family!r}; use one of {sorted(FAMILIES)}.")
    try:
        args = tuple(float(s) for s in body.split(",")) if body.strip() else ()
    except ValueError as e:
        raise InvalidParameterError(
            f"Prior {text!r}: the parameters must be numbers separated by commas.") from e
    return PriorSpec(canon[family.lower()], args)


def parse_prior(text: str) -> tuple[str, PriorSpec]:
    """Parse ``"name=Family(a, b)"`` into ``(name, PriorSpec)``.

    Examples
    --------
    >>> parse_prior("w=LogNormal(0, 1)")
    ('w', PriorSpec(family='LogNormal', args=(0.0, 1.0)))
    """
    if not isinstance(text, str) or "=" not in text:
        raise InvalidParameterError(
            f"A prior is written 'name=Family(numbers)', e.g. 'w=LogNormal(0, 1)'; got {text!r}.")
    name, spec = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise InvalidParameterError(f"Prior {text!r}: {name!r} is not a parameter name.")
    return name, _parse_spec(spec)


def parse_priors(priors) -> dict[str, PriorSpec]:
    """Normalize priors given as a dict ``{name: spec}``, a list of ``"name=spec"``
    strings or one such string (several separated by ``;``)."""
    if priors is None:
        return {}
    if isinstance(priors, str):
        priors = [p for p in priors.split(";") if p.strip()]
    out: dict[str, PriorSpec] = {}
    if isinstance(priors, dict):
        for k, v in priors.items():
            out[str(k)] = v if isinstance(v, PriorSpec) else _parse_spec(str(v))
        return out
    for p in priors:
        name, spec = parse_prior(p)
        if name in out:
            raise InvalidParameterError(f"Prior for {name!r} given twice.")
        out[name] = spec
    return out
