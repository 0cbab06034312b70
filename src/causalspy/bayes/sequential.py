"""Sequential updating: the posterior from one image becomes the prior for the next."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from causalspy.bayes.fit import fit
from causalspy.bayes.models import get_model
from causalspy.bayes.priors import parse_priors
from causalspy.exceptions import InvalidParameterError

__all__ = ["SequentialResult", "sequential_update"]


@dataclass
class SequentialResult:
    """The result of :func:`sequential_update`.

    Attributes
    ----------
    posteriors : list of Posterior
        One per data set, each fitted with the previous posterior as prior.
    table : pandas.DataFrame
        Per step: ``step``, ``label``, ``n_points``, ``info_gain_total`` (nats that
        this data set added, KL(posterior ‖ its prior)), and for each parameter its
        posterior ``<name>_mean``, ``<name>_sd`` and ``<name>_gain`` (nats).
    """

    posteriors: list
    table: pd.DataFrame

    @property
    def final(self):
        """The posterior after all data sets."""
        return self.posteriors[-1]


def sequential_update(datasets, model="tanh", priors=None, *, labels=None,
                      keep: tuple[str, ...] = ("sigma",), **fit_kwargs) -> SequentialResult:
    r"""Fit data sets one after another, each posterior the next prior.

    .. math:: p(\theta \mid D_1..D_k) \propto p(D_k \mid \theta)\, p(\theta \mid D_1..D_{k-1})

    The previous posterior is passed on as independent Normal / LogNormal
    marginals (:meth:`Posterior.as_prior`), so correlations between parameters
    are not carried over; the noise ``sigma`` is per image and keeps its prior.

    Parameters
    ----------
    datasets : list of (x, y) or (x, y, yerr)
        Profiles of the same physical quantity (e.g. the same wall type in
        several images), in the same units.
    model : str or Model
    priors : optional
        Priors for the first data set (see :func:`fit`).
    labels : list of str, optional
        A name per data set (default ``"1"``, ``"2"``, ...).
    keep : tuple of str
        Parameters that keep their original prior at every step.
    **fit_kwargs
        Passed to :func:`fit` (``seed`` is incremented per step).

    Returns
    -------
    SequentialResult
    """
    m = get_model(model)
    datasets = list(datasets)
    if not datasets:
        raise InvalidParameterError("sequential_update needs at least one data set.")
    labels = list(labels) if labels is not None else [str(i + 1) for i in range(len(datasets))]
    if len(labels) != len(datasets):
        raise InvalidParameterError("Give one label per data set.")
    user = parse_priors(priors)
    seed = int(fit_kwargs.pop("seed", 0))
    posts, rows = [], []
    current = dict(user)
    for k, (ds, lab) in enumerate(zip(datasets, labels, strict=True)):
        if len(ds) not in (2, 3):
            raise InvalidParameterError("Each data set is (x, y) or (x, y, yerr).")
        x, y = ds[0], ds[1]
        yerr = ds[2] if len(ds) == 3 else None
        pri = {n: v for n, v in current.items() if not (n in keep and n not in user)}
        p = fit(x, y, m, pri, yerr=yerr, seed=seed + k, label=lab, **fit_kwargs)
        posts.append(p)
        gain = p.information_gain()
        s = p.summary()
        row = {"step": k + 1, "label": lab, "n_points": int(p.x.shape[0]),
               "info_gain_total": gain["total"]}
        for n in p.names:
            row[f"{n}_mean"] = s.loc[n, "mean"]
            row[f"{n}_sd"] = s.loc[n, "sd"]
            row[f"{n}_gain"] = gain[n]
        rows.append(row)
        current = p.as_prior(keep=keep)
    return SequentialResult(posts, pd.DataFrame(rows))
