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


def _loglik(model: Model, theta: dict[str, np.ndarray], x, y, yerr) -> np.ndarray:
    """Pointwise log-likelihood, shape ``(chain, draw, n)``."""
    phys = {p.name: theta[p.name][..., None].astype(float) for p in model.params}
    mu = model.mean(np, x, **phys)
    var = theta["sigma"][..., None].astype(float) ** 2 + (0.0 if yerr is None else yerr ** 2)
    return -0.5 * (np.log(2 * np.pi * var) + (y - mu) ** 2 / var)


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
        self.model = get_model(meta["model"])
        self.priors = parse_priors(meta["priors"])
        self.x_unit = meta.get("x_unit", "")
        self.y_unit = meta.get("y_unit", "")
        self.label = meta.get("label", "")
        self.settings = meta.get("settings", {})
        self.x = np.asarray(idata.constant_data["x"].values)
        self.y = np.asarray(idata.observed_data["y"].values)
        self.yerr = (np.asarray(idata.constant_data["yerr"].values)
                     if "yerr" in idata.constant_data else None)
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
        const = {"x": np.asarray(x, float)}
        if yerr is not None:
            const["yerr"] = np.asarray(yerr, float)
        stats = {"diverging": np.asarray(extra["diverging"], bool)}
        if "potential_energy" in extra:
            stats["lp"] = -np.asarray(extra["potential_energy"], float)
        idata = az.from_dict(
            posterior=post, log_likelihood={"y": ll}, sample_stats=stats,
            observed_data={"y": np.asarray(y, float)}, constant_data=const,
            dims={"y": ["obs"], "x": ["obs"], "yerr": ["obs"]})
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
        th = {p.name: self.samples(p.name)[idx][:, None].astype(float) for p in self.model.params}
        mu = self.model.mean(np, xx[None, :], **th)
        sig = self.samples("sigma")[idx][:, None].astype(float)
        ynew = mu + rng.normal(size=mu.shape) * sig
        a = (1 - hdi_prob) / 2
        return {"x": xx, "mean": mu.mean(0),
                "mean_low": np.quantile(mu, a, axis=0), "mean_high": np.quantile(mu, 1 - a, axis=0),
                "pred_low": np.quantile(ynew, a, axis=0),
                "pred_high": np.quantile(ynew, 1 - a, axis=0)}

    def plot(self, ax=None, truth: dict | None = None):
        """Posterior-predictive plot: data, posterior mean, 90 % bands of the curve
        and of new observations. Returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        grid = np.linspace(self.x.min(), self.x.max(), 300)
        p = self.predict(grid)
        ax.fill_between(grid, p["pred_low"], p["pred_high"], color="tab:blue", alpha=0.15,
                        label="90 % predictive")
        ax.fill_between(grid, p["mean_low"], p["mean_high"], color="tab:blue", alpha=0.4,
                        label="90 % curve")
        ax.plot(grid, p["mean"], color="tab:blue", lw=2, label=f"{self.model.name} (mean)")
        if self.yerr is not None:
            ax.errorbar(self.x, self.y, self.yerr, fmt=".", color="k", ms=3, lw=0.5, label="data")
        else:
            ax.plot(self.x, self.y, ".", color="k", ms=3, label="data")
        if truth is not None:
            th = {q.name: truth[q.name] for q in self.model.params}
            ax.plot(grid, self.model.mean(np, grid, **th), "r--", lw=1, label="truth")
        ax.set_xlabel(f"x ({self.x_unit})" if self.x_unit else "x")
        ax.set_ylabel(f"y ({self.y_unit})" if self.y_unit else "y")
        title = f"{self.label}: " if self.label else ""
        ax.set_title(title + self.model.equation + ("" if self.converged else "  [NOT CONVERGED]"),
                     fontsize=9)
        ax.legend(fontsize=8)
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
        parameters) or ``LogNormal(mean log, sd log)`` (positive ones); those
        in ``keep`` (by default the noise, which belongs to each image) keep
        their original prior. Correlations between parameters are dropped.
        """
        out = {}
        for n in self.names:
            if n in keep:
                out[n] = self.priors[n]
                continue
            s = self.samples(n).astype(float)
            if self.model.param(n).support == "positive":
                ls = np.log(s)
                out[n] = PriorSpec("LogNormal", (float(ls.mean()), max(float(ls.std()), 1e-12)))
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
                "y_unit": self.y_unit, "n_points": int(self.x.size), "parameters": params,
                "hdi_prob": self.settings.get("hdi_prob", 0.9), "diagnostics": self.diagnostics,
                "converged": self.converged, "warnings": self.warnings,
                "information_gain_nats": self.information_gain(), "settings": self.settings}

    def save(self, path: str | Path) -> Path:
        """Write the InferenceData to netCDF (``.nc``); :meth:`load` restores it exactly."""
        path = Path(path)
        if path.suffix.lower() != ".nc":
            raise InvalidParameterError(f"Posteriors are saved as netCDF (.nc); got {path.name!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.idata.to_netcdf(str(path))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        """Read a posterior written by :meth:`save`."""
        az = arviz()
        path = Path(path)
        if not path.exists():
            raise FileReadError(f"No such file: {path}")
        try:
            idata = az.from_netcdf(str(path))
            idata.load()
        except Exception as e:  # noqa: BLE001 - any reader failure is a bad file
            raise FileReadError(f"Could not read {path} as a netCDF posterior: {e}") from e
        return cls(idata)

    def __repr__(self) -> str:
        s = self.summary()
        status = "converged" if self.converged else "NOT CONVERGED"
        lines = [f"Posterior({self.model.name}: {self.model.equation}; {self.x.size} points; "
                 f"{self.n_chains}x{self.n_draws} draws; {status})"]
        for n in s.index:
            r = s.loc[n]
            u = f" {r['unit']}" if r["unit"] else ""
            lines.append(f"  {n:>8} = {r['mean']:.4g} ± {r['sd']:.2g}{u}   "
                         f"HDI [{r['hdi_low']:.4g}, {r['hdi_high']:.4g}]  R-hat {r['r_hat']:.3f}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)
