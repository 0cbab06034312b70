"""The :class:`Law` result: a sparse differential equation with intervals and inclusion probabilities."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from causalspy._tableio import jsonable, read_json
from causalspy.exceptions import FileReadError, InvalidParameterError

__all__ = ["Law"]

FORMAT = "causalspy-law"
FORMAT_VERSION = 1
KINDS = ("ode", "field")


class Law:
    r"""A parsimonious law :math:`\dot{x}_i = \sum_k \xi_{ik}\,\theta_k(x)` found by SINDy.

    Made by :func:`causalspy.laws.discover` (``kind="ode"``, descriptor time
    series) or :func:`causalspy.laws.discover_field` (``kind="field"``,
    weak-form PDE on a field).

    Parameters
    ----------
    targets : list of str
        Left-hand sides (the differentiated variables).
    terms : list of str
        Library terms, named as pysindy names them (``"1"``, ``"f"``,
        ``"f^2"``, ``"u_11"``, ...).
    coef : array, shape (n_targets, n_terms)
        Coefficients :math:`\xi`; zero for terms left out of the law.
    intervals : array, shape (n_targets, n_terms, 2), optional
        Lower and upper ends of the ensemble (bagging) interval of each
        coefficient; NaN without an ensemble.
    inclusion : array, shape (n_targets, n_terms), optional
        Fraction of ensemble models that kept each term; NaN without an
        ensemble.
    kind : {"ode", "field"}
    features : list of str, optional
        Input variables of the library (the targets for an ODE).
    powers : array, shape (n_terms, n_features), optional
        Exponents of each term when every term is a monomial of ``features``
        (polynomial libraries). Needed by :meth:`simulate` after :meth:`load`.
    time : str
        Name of the time column.
    data : dict, optional
        ``t``, ``x`` (data), ``x_smooth`` and ``x_dot`` (derivatives) the
        law was fitted on, kept for :meth:`plot` (ODE laws only).
    params : dict, optional
        How the law was found (library, criterion, chosen thresholds, ...).
    score : dict, optional
        ``{target: R^2}`` of the fitted derivatives.
    """

    def __init__(self, targets, terms, coef, *, intervals=None, inclusion=None, kind="ode",
                 features=None, powers=None, time="t", data=None, params=None,
                 score=None) -> None:
        self.targets = [str(v) for v in targets]
        self.terms = [str(v) for v in terms]
        shape = (len(self.targets), len(self.terms))
        self.coef = np.asarray(coef, dtype=float).reshape(shape)
        self.intervals = (np.full(shape + (2,), np.nan) if intervals is None
                          else np.asarray(intervals, dtype=float).reshape(shape + (2,)))
        self.inclusion = (np.full(shape, np.nan) if inclusion is None
                          else np.asarray(inclusion, dtype=float).reshape(shape))
        if kind not in KINDS:
            raise InvalidParameterError(f"kind must be one of {KINDS}; got {kind!r}.")
        self.kind = kind
        self.features = list(features) if features is not None else list(self.targets)
        self.powers = None if powers is None else np.asarray(powers, dtype=int)
        self.time = str(time)
        self.data = {k: np.asarray(v, dtype=float) for k, v in (data or {}).items()}
        self.params = dict(params or {})
        self.score = dict(score or {})
        self._library = None  # fitted pysindy library, kept in memory only

    # ------------------------------------------------------------------ access
    @property
    def coefficients(self) -> dict[str, dict[str, float]]:
        """``{target: {term: value}}`` for the terms in the law (non-zero coefficients)."""
        return {t: {term: float(c) for term, c in zip(self.terms, row, strict=True) if c != 0}
                for t, row in zip(self.targets, self.coef, strict=True)}

    @property
    def coefficient_intervals(self) -> dict[str, dict[str, tuple[float, float]]]:
        """``{target: {term: (low, high)}}`` for the terms in the law."""
        return {t: {term: (float(iv[0]), float(iv[1]))
                    for term, c, iv in zip(self.terms, row, ivs, strict=True) if c != 0}
                for t, row, ivs in zip(self.targets, self.coef, self.intervals, strict=True)}

    @property
    def inclusion_probabilities(self) -> dict[str, dict[str, float]]:
        """``{target: {term: p}}`` for every library term (NaN without an ensemble)."""
        return {t: dict(zip(self.terms, map(float, row), strict=True))
                for t, row in zip(self.targets, self.inclusion, strict=True)}

    def equations(self, precision: int = 4) -> list[str]:
        """The law as text, one equation per target, e.g. ``"df/dt = 1 f - 1 f^2"``."""
        out = []
        for t, row in zip(self.targets, self.coef, strict=True):
            lhs = f"d{t}/dt" if self.kind == "ode" else f"{t}_t"
            out.append(f"{lhs} = " + _rhs(row, self.terms, precision, latex=False))
        return out

    def latex(self, precision: int = 4) -> list[str]:
        r"""The law in LaTeX, e.g. ``\frac{\mathrm{d}f}{\mathrm{d}t} = 1\,f - 1\,f^{2}``."""
        out = []
        for t, row in zip(self.targets, self.coef, strict=True):
            v = _latex_name(t)
            lhs = (rf"\frac{{\mathrm{{d}}{v}}}{{\mathrm{{d}}t}}" if self.kind == "ode"
                   else rf"\partial_t {v}")
            out.append(f"{lhs} = " + _rhs(row, self.terms, precision, latex=True,
                                          spatial=self._spatial_axes()))
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (target, term): ``coefficient``, ``low``, ``high``, ``inclusion``, ``active``."""
        nt, nk = self.coef.shape
        return pd.DataFrame({
            "target": np.repeat(self.targets, nk),
            "term": np.tile(self.terms, nt),
            "coefficient": self.coef.ravel(),
            "low": self.intervals[..., 0].ravel(),
            "high": self.intervals[..., 1].ravel(),
            "inclusion": self.inclusion.ravel(),
            "active": self.coef.ravel() != 0,
        })

    def __repr__(self) -> str:
        eqs = "; ".join(self.equations(3))
        return f"<Law ({self.kind}, {len(self.terms)} library terms): {eqs}>"

    def _spatial_axes(self) -> str:
        return "xy" if self.params.get("spatial_dims", 1) == 2 else "x"

    # --------------------------------------------------------------- evaluate
    def features_matrix(self, x) -> np.ndarray:
        """Evaluate the library terms on states ``x`` (shape ``(n, n_features)``)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if self.powers is not None:
            return np.prod(x[:, None, :] ** self.powers[None, :, :], axis=2)
        if self._library is not None:
            return np.asarray(self._library.transform(x))
        raise InvalidParameterError(
            "This law's library terms are not monomials, and the pysindy library is not kept "
            "in a saved file: simulate it in the session that discovered it."
        )

    def rhs(self, x) -> np.ndarray:
        """Time derivatives predicted by the law at states ``x`` (shape ``(n, n_targets)``)."""
        return self.features_matrix(x) @ self.coef.T

    def simulate(self, t, x0, *, rtol: float = 1e-8, atol: float = 1e-10) -> pd.DataFrame:
        """Integrate the law from ``x0`` over times ``t`` (SciPy ``solve_ivp``, LSODA).

        Parameters
        ----------
        t : array
            Increasing output times; the integration starts at ``t[0]``.
        x0 : float, sequence or dict
            Initial state, in the order of :attr:`targets` (or ``{target: value}``).

        Returns
        -------
        pandas.DataFrame
            The time column and one column per target. A trajectory that
            blows up stops early: later rows hold NaN.
        """
        from scipy.integrate import solve_ivp

        if self.kind != "ode":
            raise InvalidParameterError(
                "simulate() integrates ODE laws from causalspy.laws.discover; a field law needs a "
                "PDE solver (use the coefficients with your own solver)."
            )
        t = np.asarray(t, dtype=float).ravel()
        if t.size < 2 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
            raise InvalidParameterError("Give at least two finite, strictly increasing times.")
        if isinstance(x0, dict):
            missing = [v for v in self.targets if v not in x0]
            if missing:
                raise InvalidParameterError(f"x0 lacks {missing}; give a value for each target.")
            x0 = [x0[v] for v in self.targets]
        x0 = np.atleast_1d(np.asarray(x0, dtype=float))
        if x0.shape != (len(self.targets),):
            raise InvalidParameterError(
                f"x0 needs {len(self.targets)} value(s) ({self.targets}); got shape {x0.shape}."
            )
        sol = solve_ivp(lambda _t, y: self.rhs(y[None, :])[0], (t[0], t[-1]), x0, t_eval=t,
                        method="LSODA", rtol=rtol, atol=atol)
        y = np.full((t.size, len(self.targets)), np.nan)
        y[: sol.y.shape[1]] = sol.y.T
        out = pd.DataFrame(y, columns=self.targets)
        out.insert(0, self.time, t)
        return out

    # -------------------------------------------------------------------- plot
    def plot(self, axes=None):
        """Data vs. model (ODE laws) and the coefficients with their intervals.

        For an ODE law the left panel shows the data, the smoothed data and the
        law integrated from the first smoothed point; the right panel (and the
        only panel of a field law) shows each active coefficient with its
        ensemble interval.
        """
        import matplotlib.pyplot as plt

        show_data = self.kind == "ode" and "t" in self.data
        if axes is None:
            _, axes = plt.subplots(1, 2 if show_data else 1,
                                   figsize=(10 if show_data else 5, 3.8), squeeze=False)
            axes = axes.ravel()
        axes = np.atleast_1d(axes)
        if show_data:
            ax = axes[0]
            t, x = self.data["t"], self.data["x"]
            xs = self.data.get("x_smooth", x)
            sim = self.simulate(t, xs[0])
            for j, name in enumerate(self.targets):
                (line,) = ax.plot(t, x[:, j], ".", ms=4, alpha=0.6, label=f"{name} data")
                ax.plot(t, sim[name], "-", color=line.get_color(), lw=2, label=f"{name} law")
            ax.set_xlabel(self.time)
            ax.legend(fontsize="small")
            ax.set_title("data vs. discovered law", fontsize="medium")
        ax = axes[-1]
        df = self.to_dataframe()
        df = df[df["active"]].reset_index(drop=True)
        labels = [f"{r.target}: {r.term}" for r in df.itertuples()]
        y = np.arange(len(df))
        err = np.vstack([df["coefficient"] - df["low"], df["high"] - df["coefficient"]])
        err = np.where(np.isfinite(err), np.abs(err), 0.0)
        ax.errorbar(df["coefficient"], y, xerr=err, fmt="o", capsize=4)
        ax.axvline(0, color="gray", lw=0.8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_xlabel("coefficient (95 % ensemble interval)")
        ax.set_title("terms of the law", fontsize="medium")
        return axes

    # --------------------------------------------------------------- save/load
    def to_json_dict(self) -> dict:
        """The JSON document :meth:`save` writes (``equations``, ``coefficients``, ...)."""
        t = self.targets
        return jsonable({
            "format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
            "equations": self.equations(), "latex": self.latex(),
            "targets": t, "features": self.features, "terms": self.terms, "time": self.time,
            "coefficients": self.coefficients,
            "intervals": {v: {k: [float(a), float(b)] for k, (a, b)
                              in zip(self.terms, self.intervals[i], strict=True)}
                          for i, v in enumerate(t)},
            "inclusion": self.inclusion_probabilities,
            "powers": None if self.powers is None else self.powers.tolist(),
            "params": self.params, "score": self.score,
            "data": {k: v.tolist() for k, v in self.data.items()},
        })

    def save(self, path: str | Path) -> Path:
        """Save as JSON (lossless: floats are written with full precision, NaN as ``NaN``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json_dict(), indent=1, allow_nan=True))
        return path

    @classmethod
    def from_json_dict(cls, d: dict) -> Law:
        """Rebuild a law from :meth:`to_json_dict`."""
        terms, targets = d["terms"], d["targets"]
        coef = np.array([[d["coefficients"][v].get(k, 0.0) for k in terms] for v in targets],
                        dtype=float).reshape(len(targets), len(terms))
        iv = np.array([[d["intervals"][v][k] for k in terms] for v in targets],
                      dtype=float).reshape(len(targets), len(terms), 2)
        inc = np.array([[d["inclusion"][v][k] for k in terms] for v in targets],
                       dtype=float).reshape(len(targets), len(terms))
        data = {k: np.asarray(v, dtype=float) for k, v in d.get("data", {}).items()}
        return cls(targets, terms, coef, intervals=iv, inclusion=inc, kind=d["kind"],
                   features=d["features"], powers=d.get("powers"), time=d["time"], data=data,
                   params=d.get("params"), score=d.get("score"))

    @classmethod
    def load(cls, path: str | Path) -> Law:
        """Load what :meth:`save` wrote."""
        d = read_json(path, FORMAT, "law")
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise FileReadError(f"{path} was written by a newer causalspy; upgrade to read it.")
        return cls.from_json_dict(d)


# ---------------------------------------------------------------- formatting
def _fmt(c: float, precision: int) -> str:
    return f"{c:.{precision}g}"


def _rhs(row, terms, precision, *, latex: bool, spatial: str = "x") -> str:
    parts = []
    for c, term in zip(row, terms, strict=True):
        if c == 0:
            continue
        mag = _fmt(abs(c), precision)
        name = _latex_term(term, spatial) if latex else term
        body = mag if term == "1" else (rf"{mag}\,{name}" if latex else f"{mag} {name}")
        sign = "-" if c < 0 else "+"
        parts.append((sign, body))
    if not parts:
        return "0"
    s = ("-" if parts[0][0] == "-" else "") + parts[0][1]
    for sign, body in parts[1:]:
        s += f" {sign} {body}"
    return s


def _latex_name(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z]", name) else rf"\mathrm{{{_escape(name)}}}"


def _escape(s: str) -> str:
    return s.replace("\\", r"\backslash ").replace("_", r"\_").replace("%", r"\%") \
        .replace("&", r"\&").replace("#", r"\#").replace("$", r"\$")


def _latex_term(term: str, spatial: str = "x") -> str:
    """``"f^2 g"`` -> ``f^{2}\\,g``; pysindy derivative names ``"u_11"`` -> ``u_{xx}``."""
    out = []
    for factor in term.split(" "):
        m = re.fullmatch(r"(.+?)_(\d+)", factor)
        if m and all(0 < int(ch) <= len(spatial) for ch in m.group(2)):
            axes = "".join(spatial[int(ch) - 1] for ch in m.group(2))
            out.append(rf"{_latex_factor(m.group(1))}_{{{axes}}}")
        else:
            out.append(_latex_factor(factor))
    return r"\,".join(out)


def _latex_factor(factor: str) -> str:
    m = re.fullmatch(r"(.+)\^(\d+)", factor)
    if m:
        return rf"{_latex_name(m.group(1))}^{{{m.group(2)}}}"
    return _latex_name(factor)
