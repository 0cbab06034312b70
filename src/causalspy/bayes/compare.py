"""Model comparison by PSIS-LOO or WAIC (ArviZ), with weights and a plain verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causalspy.bayes._deps import arviz
from causalspy.exceptions import InvalidParameterError

__all__ = ["Comparison", "compare", "DECISIVE_ELPD"]

#: A model is preferred only when its expected log predictive density beats the
#: next one by more than this many nats *and* by more than two standard errors
#: of the difference (Sivula, Magnusson & Vehtari 2022: below ~4 the difference is
#: small and its standard error unreliable).
DECISIVE_ELPD = 4.0


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    table : pandas.DataFrame
        ArviZ's comparison table (``rank``, ``elpd_loo``/``elpd_waic``, ``p_*``,
        ``elpd_diff``, ``weight`` (stacking), ``se``, ``dse``, ``warning``), best first.
    weights : dict of str to float
        Stacking weight of each model.
    best : str or None
        The preferred model, or None when the data cannot tell.
    verdict : str
        One plain sentence: which model the data prefer, or ``"undecided"`` and why.
    warnings : list of str
        Unreliable PSIS estimates (Pareto k > 0.7), unconverged fits.
    """

    table: pd.DataFrame
    weights: dict[str, float]
    best: str | None
    verdict: str
    ic: str = "loo"
    warnings: list[str] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.best is not None

    def __repr__(self) -> str:
        w = ", ".join(f"{k} {v:.2f}" for k, v in self.weights.items())
        return f"Comparison({self.ic.upper()}: {self.verdict}; weights {w})"


def compare(posteriors, ic: str = "loo", decisive: float = DECISIVE_ELPD) -> Comparison:
    r"""Compare models fitted to the same data by their expected predictive accuracy.

    Parameters
    ----------
    posteriors : dict of str to Posterior, or list of Posterior
        Fits of different models to the same ``x``, ``y`` (a list is keyed by
        model name).
    ic : {"loo", "waic"}
        PSIS leave-one-out cross-validation (default, more robust) or WAIC.
    decisive : float
        Minimum :math:`\Delta\mathrm{elpd}` (nats) to prefer a model; it must
        also exceed twice its standard error :math:`\mathrm{dse}`.

    Returns
    -------
    Comparison

    Notes
    -----
    :math:`\mathrm{elpd} = \sum_i \log p(y_i \mid y_{-i})`. When the best model
    leads by :math:`\Delta\mathrm{elpd} > \max(\text{decisive}, 2\,\mathrm{dse})`
    the verdict names it; otherwise it is ``"undecided"`` — e.g. a wall much
    wider than the profile looks linear, and a nested model that fits equally
    well is not evidence for the richer one.
    """
    az = arviz()
    if ic not in ("loo", "waic"):
        raise InvalidParameterError(f"ic must be 'loo' or 'waic'; got {ic!r}.")
    if not isinstance(posteriors, dict):
        posteriors = list(posteriors)
        names = [p.model.name for p in posteriors]
        if len(set(names)) != len(names):
            raise InvalidParameterError("Two fits of the same model: pass a dict with distinct "
                                        "names instead of a list.")
        posteriors = dict(zip(names, posteriors, strict=True))
    if len(posteriors) < 2:
        raise InvalidParameterError("Model comparison needs at least two fitted models.")
    ref = next(iter(posteriors.values()))
    for k, p in posteriors.items():
        if p.x.shape != ref.x.shape or not (np.array_equal(p.x, ref.x)
                                            and np.array_equal(p.y, ref.y)):
            raise InvalidParameterError(
                f"Model {k!r} was fitted to different data; compare fits of the same profile.")
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("ignore")
        table = az.compare({k: p.idata for k, p in posteriors.items()}, ic=ic, seed=0)
    weights = {str(k): float(v) for k, v in table["weight"].items()}
    order = list(table.index)
    best, second = order[0], order[1]
    d = float(table.loc[second, "elpd_diff"])
    dse = float(table.loc[second, "dse"])
    warns = []
    if table["warning"].any():
        bad = [str(k) for k in table.index if table.loc[k, "warning"]]
        warns.append(f"{ic.upper()} estimates unreliable for {', '.join(bad)} (Pareto k > 0.7 "
                     "or WAIC variance warning): influential points; treat weights with care.")
    for k, p in posteriors.items():
        if not p.converged:
            warns.append(f"The fit of {k!r} did not converge cleanly: {p.warnings[0]}")
    if d > max(decisive, 2 * dse):
        verdict = (f"{best} is preferred (Δelpd = {d:.1f} ± {dse:.1f} nats over {second}; "
                   f"weight {weights[best]:.2f})")
        chosen = str(best)
    else:
        verdict = (f"undecided: {best} and {second} predict equally well (Δelpd = {d:.1f} ± "
                   f"{dse:.1f} nats < max({decisive:g}, 2·se)); the data cannot tell them apart")
        chosen = None
    return Comparison(table=table, weights=weights, best=chosen, verdict=verdict, ic=ic,
                      warnings=warns)
