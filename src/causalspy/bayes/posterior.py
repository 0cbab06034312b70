"""The :class:`Posterior` result: summaries, diagnostics, information gain, plots, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from causalspy.bayes._deps import arviz
from causalspy.bayes.models import Model, get_model
from causalspy.bayes.priors import PriorSpec, parse_priors
from causalspy.exceptions import FileReadError, InvalidParameterError

__all__ = ["Posterior", "R_HAT_MAX", "ESS_MIN_PER_CHAIN"]

#: Largest acceptable R-hat (Vehtari et al. 2021).
R_HAT_MAX = 1.01
#: Smallest acceptable bulk and tail effective sample size, per chain.
ESS_MIN_PER_CHAIN = 100
FORMAT = "causalspy.bayes.Posterior"
FORMAT_VERSION = 1


def _curves(model: Model, theta: dict[str, np.ndarray], x) -> np.ndarray:
    """Model curves for draws ``theta`` (any leading shape ``L``): ``L + (n,)``, or
    ``L + (channels, n)`` for a model with several channels."""
    phys = {p.name: np.asarray(theta[p.name], float)[..., None] for p in model.params}
    return model.mean(np, x, **phys)


def _noise(model: Model, theta: dict[str, np.ndarray]) -> np.ndarray:
    """Noise sd per draw: ``L + (1,)`` or ``L + (channels, 1)``."""
    if model.n_channels == 1:
        return np.asarray(theta["sigma"], float)[..., None]
    return np.stack([np.asarray(theta[n], float) for n in model.noise_names], axis=-1)[..., None]


def _loglik(model: Model, theta: dict[str, np.ndarray], x, y, yerr) -> np.ndarray:
    """Pointwise log-likelihood, shape ``(chain, draw, n)`` (``n * channels``,
    channel-major, for several channels)."""
    y = np.asarray(y, float)
    x = np.asarray(x, float)
    mu = _curves(model, {p.name: theta[p.name] for p in model.params}, x)
    var = _noise(model, theta) ** 2 + (0.0 if yerr is None else np.asarray(yerr, float) ** 2)
    ll = -0.5 * (np.log(2 * np.pi * var) + (y - mu) ** 2 / var)
    return ll.reshape(ll.shape[:2] + (-1,))



def save_idata(idata, path: str | Path, what: str) -> Path:
    """Write ArviZ InferenceData to ``path`` (``.nc`` only); ``what`` names it in errors."""
    path = Path(path)
    if path.suffix.lower() != ".nc":
        raise InvalidParameterError(f"{what} are saved as netCDF (.nc); got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(str(path))
    return path


def summary_lines(summary, width: int, units: bool = True) -> list[str]:
    """One line per parameter of a summary table: mean ± sd (unit), HDI and R-hat."""
    lines = []
    for n in summary.index:
        r = summary.loc[n]
        u = f" {r['unit']}" if units and r["unit"] else ""
        lines.append(f"  {n:>{width}} = {r['mean']:.4g} ± {r['sd']:.2g}{u}   "
                     f"HDI [{r['hdi_low']:.4g}, {r['hdi_high']:.4g}]  R-hat {r['r_hat']:.3f}")
    return lines


def load_idata(path: str | Path, what: str):
    """Read InferenceData written by :func:`save_idata`, fully into memory."""
    az = arviz()
    path = Path(path)
    if not path.exists():
        raise FileReadError(f"No such file: {path}")
    try:
        idata = az.from_netcdf(str(path))
        idata.load()
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file
        raise FileReadError(f"Could not read {path} as a netCDF {what}: {e}") from e
    return idata

class Posterior:
    """Posterior of a physical model fitted to one profile.

    Made by :func:`causalspy.bayes.fit`; read back with :meth:`load`.

    Attributes
    ----------
    idata : arviz.InferenceData
        Draws (``posterior``), pointwise ``log_likelihood`` (for LOO/WAIC),
        ``sample_stats`` (divergences, log density), ``observed_data`` (y) and
        ``constant_data`` (x, yerr). Everything else (model, priors, units,
        settings) is in ``idata.posterior.attrs["causalspy"]`` as JSON.
    model : Model
    priors : dict of str to PriorSpec
        The priors used (defaults filled in).
    x, y, yerr : numpy.ndarray
        The data (``yerr`` is None when not given).
    x_unit, y_unit, label : str
    settings : dict
        Sampler settings, seed and run time.
    """

    def __init__(self, idata) -> None:
        self.idata = idata
        try:
            meta = json.loads(idata.posterior.attrs["causalspy"])
        except (KeyError, AttributeError, ValueError) as e:
            raise FileReadError("This InferenceData was not written by causalspy.bayes "
                                "(no 'causalspy' metadata).") from e
        self.meta = meta
        self.model = get_model(meta.get("model_spec") or meta["model"])
        self.priors = parse_priors(meta["priors"])
        self.x_unit = meta.get("x_unit", "")
        self.y_unit = meta.get("y_unit", "")
        self.label = meta.get("label", "")
        self.settings = meta.get("settings", {})
        self.x = np.asarray(idata.constant_data["x"].values)
        C = self.model.n_channels
        self.y = np.asarray(idata.observed_data["y"].values)
        self.yerr = (np.asarray(idata.constant_data["yerr"].values)
                     if "yerr" in idata.constant_data else None)
        if C > 1:  # stored channel-major and flat (LOO needs one observation axis)
            self.y = self.y.reshape(C, -1)
            self.yerr = None if self.yerr is None else self.yerr.reshape(C, -1)
        self._summaries: dict[float, pd.DataFrame] = {}

    # ------------------------------------------------------------ construction
    @classmethod
    def from_samples(cls, model: Model, priors: dict[str, PriorSpec], x, y, yerr,
                     samples: dict, extra: dict, *, settings: dict, x_unit: str = "",
                     y_unit: str = "", label: str = "") -> Posterior:
        az = arviz()
        post = {n: np.asarray(samples[n]) for n in model.names}
        ll = _loglik(model, post, x, y, yerr)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.name,
                "equation": model.equation, "priors": {k: str(v) for k, v in priors.items()},
                "x_unit": x_unit, "y_unit": y_unit, "label": label, "settings": settings}
        if model.spec is not None:
            meta["model_spec"] = model.spec
        const = {"x": np.asarray(x, float)}
        if yerr is not None:
            const["yerr"] = np.asarray(yerr, float).reshape(-1)
        dims = {"y": ["obs"], "yerr": ["obs"], "x": ["obs"]}
        if model.n_channels > 1:
            dims["x"] = ["position"]
        if const["x"].ndim == 2:
            dims["x"] = [dims["x"][0], "input"]
        stats = {"diverging": np.asarray(extra["diverging"], bool)}
        if "potential_energy" in extra:
            stats["lp"] = -np.asarray(extra["potential_energy"], float)
        idata = az.from_dict(
            posterior=post, log_likelihood={"y": ll}, sample_stats=stats,
            observed_data={"y": np.asarray(y, float).reshape(-1)}, constant_data=const,
            dims=dims)
        idata.posterior.attrs["causalspy"] = json.dumps(meta)
        return cls(idata)

    # ------------------------------------------------------------ access
    @property
    def names(self) -> list[str]:
        """Parameter names (physical ones, then ``sigma``)."""
        return self.model.names

    @property
    def n_chains(self) -> int:
        return int(self.idata.posterior.sizes["chain"])

    @property
    def n_draws(self) -> int:
        return int(self.idata.posterior.sizes["draw"])

    def samples(self, name: str) -> np.ndarray:
        """All draws of parameter ``name``, chains concatenated."""
        if name not in self.names:
            raise InvalidParameterError(f"No parameter {name!r}; parameters: {self.names}.")
        return np.asarray(self.idata.posterior[name].values).reshape(-1)

    def unit_of(self, name: str) -> str:
        return self.model.unit_of(name, self.x_unit, self.y_unit)

    def summary(self, hdi_prob: float | None = None) -> pd.DataFrame:
        """Mean, sd, HDI (``hdi_low``, ``hdi_high``), R-hat and ESS per parameter.

        The HDI is the narrowest interval holding ``hdi_prob`` of the posterior
        (default: the fit's, 0.9).
        """
        az = arviz()
        hp = float(hdi_prob or self.settings.get("hdi_prob", 0.9))
        if hp in self._summaries:
            return self._summaries[hp].copy()
        rhat = az.rhat(self.idata)
        ess_b = az.ess(self.idata, method="bulk")
        ess_t = az.ess(self.idata, method="tail")
        hdi = az.hdi(self.idata, hdi_prob=hp)
        rows = []
        for n in self.names:
            s = self.samples(n).astype(float)
            lo, hi = (float(v) for v in np.asarray(hdi[n].values))
            rows.append({"parameter": n, "mean": s.mean(), "sd": s.std(ddof=1),
                         "hdi_low": lo, "hdi_high": hi, "r_hat": float(rhat[n]),
                         "ess_bulk": float(ess_b[n]), "ess_tail": float(ess_t[n]),
                         "unit": self.unit_of(n), "prior": str(self.priors[n])})
        self._summaries[hp] = pd.DataFrame(rows).set_index("parameter")
        return self._summaries[hp].copy()

    @property
    def diagnostics(self) -> dict:
        """``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, chains, draws."""
        s = self.summary()
        div = int(np.asarray(self.idata.sample_stats["diverging"].values).sum())
        return {"r_hat_max": float(s["r_hat"].max()), "ess_bulk_min": float(s["ess_bulk"].min()),
                "ess_tail_min": float(s["ess_tail"].min()), "divergences": div,
                "chains": self.n_chains, "draws": self.n_draws}

    @property
    def warnings(self) -> list[str]:
        """Plain-language problems with the sampling (empty when it is trustworthy)."""
        d = self.diagnostics
        s = self.summary()
        out = []
        if d["divergences"]:
            out.append(f"{d['divergences']} divergent transition(s): the posterior has regions "
                       "the sampler could not explore, so it may be biased. Raise target_accept "
                       "(e.g. 0.99), tighten the priors or simplify the model.")
        bad = [n for n in self.names if not s.loc[n, "r_hat"] <= R_HAT_MAX]
        if bad:
            out.append(f"R-hat > {R_HAT_MAX} for {', '.join(bad)} (max {d['r_hat_max']:.3f}): "
                       "the chains disagree — not converged. Run more warmup/draws or check for "
                       "several modes (e.g. two walls in the profile).")
        need = ESS_MIN_PER_CHAIN * self.n_chains
        low = [n for n in self.names
               if not min(s.loc[n, "ess_bulk"], s.loc[n, "ess_tail"]) >= need]
        if low:
            out.append(f"Effective sample size < {need} for {', '.join(low)} (min "
                       f"{min(d['ess_bulk_min'], d['ess_tail_min']):.0f}): summaries and HDIs "
                       "are noisy; run more draws.")
        if self.n_chains < 2:
            out.append("Only one chain: R-hat is computed from its two halves; use chains >= 2 "
                       "to check convergence.")
        return out

    @property
    def converged(self) -> bool:
        """True when R-hat, ESS and divergences are all fine (see :attr:`warnings`)."""
        return not self.warnings

    # ------------------------------------------------------------ prediction and plots
    def predict(self, x=None, hdi_prob: float = 0.9, max_draws: int = 1000, seed: int = 0):
        """Posterior mean curve and bands at ``x`` (default: the data's x).

        Returns
        -------
        dict
            ``x``, ``mean``, ``mean_low``/``mean_high`` (HDI of the model curve) and
            ``pred_low``/``pred_high`` (central interval of new observations,
            including the noise).
        """
        xx = self.x if x is None else np.asarray(x, float)
        rng = np.random.default_rng(seed)
        n = self.n_chains * self.n_draws
        idx = rng.choice(n, size=min(n, max_draws), replace=False)
        th = {p: self.samples(p)[idx].astype(float) for p in self.names}
        mu = _curves(self.model, th, xx)
        ynew = mu + rng.normal(size=mu.shape) * _noise(self.model, th)
        a = (1 - hdi_prob) / 2
        return {"x": xx, "mean": mu.mean(0),
                "mean_low": np.quantile(mu, a, axis=0), "mean_high": np.quantile(mu, 1 - a, axis=0),
                "pred_low": np.quantile(ynew, a, axis=0),
                "pred_high": np.quantile(ynew, 1 - a, axis=0)}

    def plot(self, ax=None, truth: dict | None = None):
        """Posterior-predictive plot: data, posterior mean, 90 % bands of the curve
        and of new observations.

        Returns the matplotlib Axes (a list of Axes, one per channel, for a
        model with several channels). A regression on several inputs
        (:func:`~causalspy.bayes.causal_model`) plots observed against predicted.
        """
        import matplotlib.pyplot as plt

        C = self.model.n_channels
        if ax is None:
            _, ax = plt.subplots(C, 1, figsize=(6, 4 if C == 1 else 2.6 * C), sharex=True,
                                 squeeze=False)
            ax = list(ax[:, 0]) if C > 1 else ax[0, 0]
        axes = ax if C > 1 else [ax]
        if len(axes) != C:
            raise InvalidParameterError(f"Give {C} Axes for the {C} channels of "
                                        f"{self.model.name!r}.")
        status = "" if self.converged else "  [NOT CONVERGED]"
        title = (f"{self.label}: " if self.label else "") + self.model.equation + status
        if self.x.ndim == 2:
            p = self.predict()
            ax.errorbar(p["mean"], self.y, xerr=[p["mean"] - p["mean_low"],
                                                 p["mean_high"] - p["mean"]],
                        fmt=".", color="k", ms=3, lw=0.5, label="data vs 90 % fit")
            lim = [min(self.y.min(), p["mean"].min()), max(self.y.max(), p["mean"].max())]
            ax.plot(lim, lim, "r--", lw=1, label="y = prediction")
            ax.set_xlabel("predicted")
            ax.set_ylabel(f"observed ({self.y_unit})" if self.y_unit else "observed")
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=8)
            return ax
        grid = np.linspace(self.x.min(), self.x.max(), 300)
        p = self.predict(grid)
        y2 = np.atleast_2d(self.y)
        e2 = None if self.yerr is None else np.atleast_2d(self.yerr)
        tcurve = None
        if truth is not None:
            tcurve = np.atleast_2d(self.model.mean(
                np, grid, **{q.name: truth[q.name] for q in self.model.params}))
        for c, a in enumerate(axes):
            pick = (lambda v: v[c]) if C > 1 else (lambda v: v)  # noqa: B023
            a.fill_between(grid, pick(p["pred_low"]), pick(p["pred_high"]), color="tab:blue",
                           alpha=0.15, label="90 % predictive")
            a.fill_between(grid, pick(p["mean_low"]), pick(p["mean_high"]), color="tab:blue",
                           alpha=0.4, label="90 % curve")
            a.plot(grid, pick(p["mean"]), color="tab:blue", lw=2,
                   label=f"{self.model.name} (mean)")
            if e2 is not None:
                a.errorbar(self.x, y2[c], e2[c], fmt=".", color="k", ms=3, lw=0.5, label="data")
            else:
                a.plot(self.x, y2[c], ".", color="k", ms=3, label="data")
            if tcurve is not None:
                a.plot(grid, tcurve[c], "r--", lw=1, label="truth")
            if C > 1:
                a.set_ylabel(self.model.channels[c] + (f" ({self.y_unit})" if c == 0 and
                                                       self.y_unit else ""))
            else:
                a.set_ylabel(f"y ({self.y_unit})" if self.y_unit else "y")
            a.legend(fontsize=8)
        axes[-1].set_xlabel(f"x ({self.x_unit})" if self.x_unit else "x")
        axes[0].set_title(title, fontsize=9)
        return ax

    # ------------------------------------------------------------ information
    def information_gain(self) -> dict:
        r"""How much the data taught: KL(posterior ‖ prior) per parameter and in total.

        .. math:: D_\mathrm{KL}(q\,\|\,p) = \mathbb{E}_q[\log q(\theta) - \log p(\theta)]

        Computed in the sampler's unconstrained space (where KL is unchanged and
        posteriors are close to Gaussian): :math:`\mathbb{E}_q[\log p]` exactly
        from the draws, :math:`\mathbb{E}_q[\log q]` from a Gaussian fitted to the
        draws (per parameter for the marginals, a full covariance for the total).

        Returns
        -------
        dict
            ``{name: nats, ..., "total": nats}``; divide by ln 2 for bits. The
            total counts correlations, so it differs from the sum of marginals.
        """
        from numpyro.distributions import biject_to

        us, lps = [], []
        out: dict[str, float] = {}
        for n in self.names:
            d = self.priors[n].to_numpyro()
            t = biject_to(d.support)
            th = self.samples(n).astype(np.float32)
            lo, hi = self.priors[n].bounds
            eps = 1e-6 * max(1.0, abs(lo) if math.isfinite(lo) else 1.0, abs(hi) if
                             math.isfinite(hi) else 1.0)
            th = np.clip(th, lo + eps if math.isfinite(lo) else -np.inf,
                         hi - eps if math.isfinite(hi) else np.inf)
            u = np.asarray(t.inv(th), float)
            lp = np.asarray(d.log_prob(th), float) + np.asarray(
                t.log_abs_det_jacobian(u, th), float)
            var = max(float(np.var(u)), 1e-300)
            out[n] = float(-0.5 * math.log(2 * math.pi * math.e * var) - np.mean(lp))
            us.append(u)
            lps.append(np.mean(lp))
        cov = np.atleast_2d(np.cov(np.vstack(us)))
        sign, logdet = np.linalg.slogdet(2 * math.pi * math.e * cov)
        out["total"] = float(-0.5 * logdet - sum(lps)) if sign > 0 else math.nan
        return out

    def as_prior(self, keep: tuple[str, ...] = ("sigma",)) -> dict[str, PriorSpec]:
        """This posterior as priors for the next data set (sequential updating).

        Each parameter becomes an independent ``Normal(mean, sd)`` (real
        parameters), ``LogNormal(mean log, sd log)`` (positive ones) or
        ``TruncatedNormal(mean, sd, 0, 1)`` (fractions); those
        in ``keep`` (by default the noise, which belongs to each image) keep
        their original prior. Correlations between parameters are dropped.
        """
        out = {}
        for n in self.names:
            if n in keep:
                out[n] = self.priors[n]
                continue
            s = self.samples(n).astype(float)
            support = self.model.param(n).support
            if support == "positive":
                ls = np.log(s)
                out[n] = PriorSpec("LogNormal", (float(ls.mean()), max(float(ls.std()), 1e-12)))
            elif support == "unit":
                out[n] = PriorSpec("TruncatedNormal",
                                   (float(s.mean()), max(float(s.std()), 1e-12), 0.0, 1.0))
            else:
                out[n] = PriorSpec("Normal", (float(s.mean()), max(float(s.std()), 1e-12)))
        return out

    # ------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """JSON-ready: model, equation, ``parameters: {name: {mean, sd, hdi_low, hdi_high,
        r_hat, ess_bulk, unit, prior}}``, diagnostics, warnings, information gain."""
        s = self.summary()
        params = {n: {k: (v.item() if hasattr(v, "item") else v) for k, v in s.loc[n].items()}
                  for n in s.index}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": self.model.name,
                "equation": self.model.equation, "label": self.label, "x_unit": self.x_unit,
                "y_unit": self.y_unit, "n_points": int(self.x.shape[0]), "parameters": params,
                "hdi_prob": self.settings.get("hdi_prob", 0.9), "diagnostics": self.diagnostics,
                "converged": self.converged, "warnings": self.warnings,
                "information_gain_nats": self.information_gain(), "settings": self.settings}

    def save(self, path: str | Path) -> Path:
        """Write the InferenceData to netCDF (``.nc``); :meth:`load` restores it exactly."""
        return save_idata(self.idata, path, "Posteriors")

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        """Read a posterior written by :meth:`save`."""
        return cls(load_idata(path, "posterior"))

    def __repr__(self) -> str:
        s = self.summary()
        status = "converged" if self.converged else "NOT CONVERGED"
        lines = [f"Posterior({self.model.name}: {self.model.equation}; {self.x.shape[0]} points; "
                 f"{self.n_chains}x{self.n_draws} draws; {status})"]
        lines += summary_lines(s, 8)
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)
