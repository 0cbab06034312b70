r"""NUTS fits of the built-in models (NumPyro), with compilation cached across fits."""

from __future__ import annotations

import time

import numpy as np

from causalspy.bayes._deps import require
from causalspy.bayes.models import Model, get_model
from causalspy.bayes.priors import PriorSpec, parse_priors
from causalspy.exceptions import InvalidParameterError

__all__ = ["fit", "fit_wall", "fit_law", "clear_cache", "cache_info"]

FORMAT_VERSION = 1
_CACHE: dict = {}
_STATS = {"hits": 0, "misses": 0}


def clear_cache() -> None:
    """Forget the compiled samplers (they are kept per model, prior families,
    sampler settings and padded data length)."""
    _CACHE.clear()
    _STATS.update(hits=0, misses=0)


def cache_info() -> dict:
    """``{"hits", "misses", "size"}`` of the compiled-sampler cache."""
    return {**_STATS, "size": len(_CACHE)}


def _check_data(x, y, yerr, model: Model):
    C = model.n_channels
    k_in = len(model.inputs)
    try:
        x = np.asarray(x, dtype=float)
        x = x.ravel() if k_in == 1 else x
        y = np.asarray(y, dtype=float)
        y = y.ravel() if C == 1 else y
    except (TypeError, ValueError) as e:
        raise InvalidParameterError(f"x and y must be numeric arrays ({e}).") from e
    if C > 1 and (y.ndim != 2 or y.shape[0] != C):
        raise InvalidParameterError(
            f"Model {model.name!r} observes {C} quantities ({', '.join(model.channels)}); "
            f"give y as {C} rows on the shared x, shape ({C}, {x.shape[0]}); got {y.shape}.")
    if k_in > 1 and (x.ndim != 2 or x.shape[1] != k_in):
        raise InvalidParameterError(
            f"Model {model.name!r} takes {k_in} inputs ({', '.join(model.inputs)}); give x "
            f"with one column per input, shape (n, {k_in}); got {x.shape}.")
    if x.shape[0] != y.shape[-1]:
        raise InvalidParameterError(
            f"x and y differ in length ({x.shape[0]} vs {y.shape[-1]}).")
    bad = ~(np.all(np.isfinite(x.reshape(x.shape[0], -1)), axis=1)
            & np.all(np.isfinite(np.atleast_2d(y)), axis=0))
    if bad.any():
        raise InvalidParameterError(
            f"The profile has {int(bad.sum())} NaN/inf value(s) (first at index "
            f"{int(np.argmax(bad))}); drop or interpolate them before fitting.")
    k = len(model.names)
    if x.shape[0] * C <= k:
        raise InvalidParameterError(
            f"The profile has {x.shape[0]} points but model {model.name!r} has {k} parameters "
            f"({', '.join(model.names)}); it needs more points than parameters — take a "
            "longer profile or a simpler model.")
    for c, yy in zip(model.channels, np.atleast_2d(y), strict=True):
        if np.ptp(yy) == 0:
            what = "y" if C == 1 else f"y ({c})"
            raise InvalidParameterError(
                f"{what} has no variation (all values equal); there is nothing to fit — "
                "check the column chosen.")
    for name, col in zip(model.inputs, x.reshape(x.shape[0], -1).T, strict=True):
        if np.ptp(col) == 0:
            what = "x" if k_in == 1 else f"input {name!r}"
            raise InvalidParameterError(
                f"{what} has no variation (all values equal); check the column.")
    if yerr is not None:
        yerr = np.broadcast_to(np.asarray(yerr, dtype=float), y.shape).copy()
        if not np.all(np.isfinite(yerr)) or np.any(yerr < 0):
            raise InvalidParameterError("yerr must be finite and >= 0 at every point.")
    return x, y, yerr


def _pad_length(n: int) -> int:
    """Pad to a few fixed lengths (256, 512, 1024, 2048, ...) so profiles of similar
    size share one compilation (the sampler's cost is dominated by overhead, not points)."""
    p = 256
    while p < n:
        p = p * 2 if p < 1024 else p + 1024
    return p


def _sampler(model: Model, priors: dict[str, PriorSpec], chains, warmup, draws, target_accept,
             npad):
    """A cached ``run(seed, model_args) -> (samples, extra)`` for this model and settings.

    NumPyro's ``MCMC.run`` re-compiles its sampling loop on every call here, so the
    NUTS kernel (``numpyro.infer.hmc.hmc``) is driven by a ``lax.scan`` loop that is
    jit-compiled once, with the data and prior values as arguments.
    """
    numpyro, jax, _ = require()
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.infer import init_to_median
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import initialize_model

    fams = tuple((n, p.family) for n, p in priors.items())
    # a model built at run time bakes its spec (e.g. centring) into the mean function
    spec = None if model.spec is None else repr(sorted(model.spec.items()))
    key = (model.name, spec, fams, chains, warmup, draws, float(target_accept), npad)
    if key in _CACHE:
        _STATS["hits"] += 1
        return _CACHE[key]
    _STATS["misses"] += 1
    specs = [(n, PriorSpec(p.family, p.args)) for n, p in priors.items()]  # families only used
    phys = [p.name for p in model.params]
    noise = model.noise_names

    def nmodel(x, y, yerr, mask, args):
        theta = {n: numpyro.sample(n, s.to_numpyro(a)) for (n, s), a in zip(specs, args,
                                                                          strict=True)}
        mu = model.mean(jnp, x, **{n: theta[n] for n in phys}).reshape(-1)
        # channel-major layout: one block of npad points per channel, each its own noise
        sig = jnp.concatenate([jnp.full(x.shape[:1], theta[n]) for n in noise])
        sd = jnp.sqrt(sig ** 2 + yerr ** 2)
        with numpyro.handlers.mask(mask=mask):
            numpyro.sample("y", dist.Normal(mu, sd), obs=y)

    state: dict = {}

    @jax.jit
    def run_chain(z0, rng_key, model_args):
        pe_gen, post_gen = state["pe_gen"], state["post_gen"]
        init_kernel, sample_kernel = hmc(potential_fn_gen=pe_gen, algo="NUTS")
        st = init_kernel(z0, warmup, dense_mass=True, target_accept_prob=target_accept,
                         model_args=model_args, rng_key=rng_key)

        def warm(s, _):
            return sample_kernel(s, model_args=model_args), None

        def keep(s, _):
            s = sample_kernel(s, model_args=model_args)
            return s, (s.z, s.diverging, s.potential_energy)

        st, _ = jax.lax.scan(warm, st, None, length=warmup)
        _, (zs, div, pe) = jax.lax.scan(keep, st, None, length=draws)
        post = jax.vmap(post_gen(*model_args))(zs)
        return post, div, pe

    def run(seed: int, model_args, progress=None):
        if not state:
            info = initialize_model(jax.random.PRNGKey(0), nmodel, model_args=model_args,
                                    dynamic_args=True)
            state["pe_gen"], state["post_gen"] = info.potential_fn, info.postprocess_fn
        keys = jax.random.split(jax.random.PRNGKey(seed), 2 * chains)
        outs = []
        for c in range(chains):
            if progress is not None:
                progress(c, chains, f"NUTS chain {c + 1} of {chains}")
            info = initialize_model(keys[2 * c], nmodel, model_args=model_args,
                                    init_strategy=init_to_median(num_samples=15))
            outs.append(run_chain(info.param_info.z, keys[2 * c + 1], model_args))
            jax.block_until_ready(outs[-1])
        if progress is not None:
            progress(chains, chains, "summarizing")
        samples = {n: np.stack([np.asarray(o[0][n]) for o in outs]) for n in outs[0][0]}
        extra = {"diverging": np.stack([np.asarray(o[1]) for o in outs]),
                 "potential_energy": np.stack([np.asarray(o[2]) for o in outs])}
        return samples, extra

    _CACHE[key] = run
    return run


def fit(x, y, model: str | Model = "tanh", priors=None, *, yerr=None, x_unit: str = "",
        y_unit: str = "", chains: int = 4, warmup: int = 500, draws: int = 1000,
        seed: int = 0, target_accept: float = 0.9, hdi_prob: float = 0.9, label: str = "",
        progress=None):
    r"""Fit a physical model to a profile with NUTS and return its :class:`Posterior`.

    The likelihood is

    .. math:: y_i \sim \mathcal{N}\big(f(x_i;\theta),\ \sigma^2 + \mathrm{yerr}_i^2\big)

    with :math:`f` one of :data:`~causalspy.bayes.MODELS` (e.g. the domain wall
    :math:`f = P_s \tanh((x - x_0)/w) + b`) and priors on :math:`\theta` and
    :math:`\sigma`.

    Parameters
    ----------
    x, y : array_like
        Positions (e.g. distance across the wall) and values (e.g. polarization),
        same length, finite, more points than parameters. For a model with
        several channels (``coupled``), ``y`` has one row per channel, shape
        ``(channels, len(x))``.
    model : str or Model
        A key of :data:`~causalspy.bayes.MODELS` (``"tanh"``, ``"tanh_slope"``,
        ``"charged"``, ``"coupled"``, ``"linear"``, ``"constant"``,
        ``"law_linear"``, ``"saturating"``, ``"vegard"``) or a :class:`Model`.
    priors : dict, list of str or str, optional
        Replacements for the default priors, e.g. ``["w=LogNormal(0, 1)"]`` or
        ``{"w": "LogNormal(0, 1)"}``, in the units of the data (see
        :mod:`causalspy.bayes.priors`). The others stay weakly informative and
        scaled to the data.
    yerr : array_like, optional
        Known per-point standard errors (e.g. from a band average), added in
        quadrature to the fitted noise.
    x_unit, y_unit : str
        Units, carried into summaries and plots.
    chains, warmup, draws : int
        NUTS chains (run one after another, each from its own start drawn around the
        prior medians), warm-up and kept iterations per chain. R-hat needs
        ``chains >= 2``.
    seed : int
        Random seed; the same seed and data give the same draws.
    target_accept : float
        NUTS target acceptance (raise towards 0.99 if divergences are reported).
    hdi_prob : float
        Probability mass of the highest-density intervals in summaries.
    label : str
        A name for this fit (e.g. the image it came from).
    progress : callable, optional
        ``progress(done, total, message)`` before each chain and at the end (the
        first chain of a new model includes the compilation); it may raise to
        abort.

    Returns
    -------
    Posterior

    Notes
    -----
    The compiled sampler (NumPyro's NUTS kernel in a jit-compiled ``lax.scan``
    loop, data and prior values as arguments) is cached per model, prior
    families, sampler settings and padded data length (profiles are padded to 256, 512, 1024, ... points
    and masked), so refitting new data or new prior *values* does not recompile.

    Examples
    --------
    >>> from causalspy.bayes import fit, synthetic_wall
    >>> x, y, truth = synthetic_wall(seed=0)
    >>> post = fit(x, y, "tanh", priors=["w=LogNormal(0, 1)"], seed=1)  # doctest: +SKIP
    >>> post.summary()  # doctest: +SKIP
    """
    numpyro, jax, _ = require()
    import jax.numpy as jnp

    from causalspy.bayes.posterior import Posterior

    m = get_model(model)
    for nm, v, lo in (("chains", chains, 1), ("warmup", warmup, 10), ("draws", draws, 10)):
        if int(v) != v or v < lo:
            raise InvalidParameterError(f"{nm} must be an integer >= {lo}; got {v!r}.")
    if not 0.5 <= target_accept < 1:
        raise InvalidParameterError("target_accept must be in [0.5, 1).")
    if not 0 < hdi_prob < 1:
        raise InvalidParameterError("hdi_prob must be in (0, 1).")
    x, y, yerr_arr = _check_data(x, y, yerr, m)
    pri = m.priors_for(x, y, parse_priors(priors))
    n = x.shape[0]
    C = m.n_channels
    npad = _pad_length(n)
    run = _sampler(m, pri, int(chains), int(warmup), int(draws), target_accept, npad)
    xp = np.concatenate([x, np.repeat(x[-1:], npad - n, axis=0)])
    y2 = np.atleast_2d(y)
    yp = np.concatenate([y2, np.zeros((C, npad - n))], axis=1).ravel()
    e2 = np.zeros_like(y2) if yerr_arr is None else np.atleast_2d(yerr_arr)
    ep = np.concatenate([e2, np.zeros((C, npad - n))], axis=1).ravel()
    mask = np.tile(np.arange(npad) < n, C)
    args = tuple(jnp.asarray(p.args, dtype=jnp.float32) for p in pri.values())
    t0 = time.perf_counter()
    f32 = jnp.float32
    samples, extra = run(int(seed), (jnp.asarray(xp, dtype=f32), jnp.asarray(yp, dtype=f32),
                                     jnp.asarray(ep, dtype=f32), jnp.asarray(mask), args),
                         progress)
    elapsed = time.perf_counter() - t0
    settings = {"chains": int(chains), "warmup": int(warmup), "draws": int(draws),
                "seed": int(seed), "target_accept": float(target_accept),
                "hdi_prob": float(hdi_prob), "sampler": "numpyro NUTS (dense mass)",
                "seconds": round(elapsed, 3)}
    return Posterior.from_samples(m, pri, x, y, yerr_arr, samples, extra, settings=settings,
                                  x_unit=x_unit, y_unit=y_unit, label=label)


def fit_wall(x, y, model: str | Model = "tanh", priors=None, **kwargs):
    """:func:`fit` restricted to the domain-wall models (``tanh``, ``tanh_slope``,
    ``charged``, ``coupled``, ``linear``, ``constant``)."""
    m = get_model(model)
    if m.kind != "wall":
        raise InvalidParameterError(f"{m.name!r} is not a wall model; use fit_law or fit.")
    return fit(x, y, m, priors, **kwargs)


def fit_law(c, y, model: str | Model = "vegard", priors=None, **kwargs):
    """:func:`fit` for a law against composition ``c`` (``law_linear``,
    ``saturating``, ``vegard``)."""
    m = get_model(model)
    if m.kind != "law":
        raise InvalidParameterError(f"{m.name!r} is not a composition law; use fit_wall or fit.")
    return fit(c, y, m, priors, **kwargs)

