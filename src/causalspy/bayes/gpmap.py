r"""Structured Gaussian process for a descriptor map: physics + what it misses.

A map :math:`z(\mathbf r)` (e.g. polarization on the unit-cell grid) is modelled as

.. math::

   z(\mathbf r) = f(\mathbf r; \theta) + g(\mathbf r) + \varepsilon, \qquad
   g \sim \mathcal{GP}\big(0,\ \alpha^2 e^{-|\mathbf r - \mathbf r'|^2 / 2\ell^2}\big), \qquad
   \varepsilon \sim \mathcal N(0, \sigma^2)

with :math:`f` a physical mean function (:data:`MAP_MODELS`) and :math:`g` a
smooth residual: the part of the map the physics does not explain, separated
spatially. The GP is the Hilbert-space approximation of Riutort-Mayol et al.
(2023) — ``m x m`` Laplacian eigenfunctions on a box 1.5 times the map's
half-extent — kept orthogonal to the mean function's linear part (so physics and
residual do not trade off; see :func:`fit_map`), and its basis weights are integrated
out analytically (Woodbury identity), so NUTS samples only :math:`\theta, \alpha, \ell, \sigma`; a 50 x 50
map takes seconds. Given each draw, the residual's weights are Gaussian, so the
residual map's posterior mean and standard deviation are exact mixtures over draws.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causalspy.bayes._deps import arviz, require
from causalspy.bayes.posterior import ESS_MIN_PER_CHAIN, R_HAT_MAX
from causalspy.bayes.priors import PriorSpec, parse_priors
from causalspy.exceptions import FileReadError, InvalidParameterError

__all__ = ["MAP_MODELS", "MapModel", "MapPosterior", "fit_map"]

FORMAT = "causalspy.bayes.MapPosterior"
FORMAT_VERSION = 1
#: Box half-width of the Hilbert-space basis, in units of the map's half-extent.
BOX_FACTOR = 1.5
_CACHE: dict = {}


@dataclass(frozen=True)
class MapModel:
    """A physical mean function of position ``f(X, Y; theta)`` for :func:`fit_map`.

    ``X``, ``Y`` are coordinates relative to the map's centre (calibrated units).
    ``linear(X, Y)`` returns the columns ``(n, k)`` of the functions the mean
    reaches through its linear parameters ``linear_params`` (a constant, a
    plane): the GP residual is kept orthogonal to them, so that the physics and
    the residual do not trade off (see :func:`fit_map`, Notes).
    """

    name: str
    equation: str
    params: tuple[tuple[str, str, str], ...]  # (name, support, meaning)
    mean: object
    default_priors: object
    linear: object = None
    linear_params: tuple[str, ...] = ()


def _plane(xp, X, Y, b, s_x, s_y):
    return b + s_x * X + s_y * Y


def _plane_lin(X, Y):
    return np.column_stack([np.ones(X.size), X.ravel(), Y.ravel()])


def _constant_lin(X, Y):
    return np.ones((X.size, 1))


def _plane_pri(X, Y, z):
    R = float(np.ptp(z)) or 1.0
    S = float(max(np.ptp(X), np.ptp(Y))) or 1.0
    return {"b": PriorSpec("Normal", (float(np.mean(z)), 2 * R)),
            "s_x": PriorSpec("Normal", (0.0, 2 * R / S)),
            "s_y": PriorSpec("Normal", (0.0, 2 * R / S))}


def _constant(xp, X, Y, b):
    return b + 0.0 * X


def _constant_pri(X, Y, z):
    return {"b": PriorSpec("Normal", (float(np.mean(z)), 2 * (float(np.ptp(z)) or 1.0)))}


def _wall(xp, X, Y, P_s, phi, d, w, b):
    u = X * xp.cos(phi) + Y * xp.sin(phi) - d
    return P_s * xp.tanh(u / w) + b


def _wall_pri(X, Y, z):
    R = float(np.ptp(z)) or 1.0
    S = float(max(np.ptp(X), np.ptp(Y))) or 1.0
    return {"P_s": PriorSpec("Normal", (0.0, R)),
            "phi": PriorSpec("Uniform", (-math.pi / 2, math.pi / 2)),
            "d": PriorSpec("Normal", (0.0, S / 4)),
            "w": PriorSpec("LogNormal", (math.log(S / 20), 1.0)),
            "b": PriorSpec("Normal", (float(np.mean(z)), R))}


#: Physical mean functions of a map.
MAP_MODELS: dict[str, MapModel] = {
    "constant": MapModel("constant", "b", (("b", "real", "mean value"),), _constant,
                         _constant_pri, _constant_lin, ("b",)),
    "plane": MapModel("plane", "b + s_x*X + s_y*Y",
                      (("b", "real", "value at the map centre"),
                       ("s_x", "real", "gradient along x (per unit length)"),
                       ("s_y", "real", "gradient along y (per unit length)")),
                      _plane, _plane_pri, _plane_lin, ("b", "s_x", "s_y")),
    "wall": MapModel("wall", "P_s*tanh((X cos(phi) + Y sin(phi) - d)/w) + b",
                     (("P_s", "real", "half the step across the wall"),
                      ("phi", "real", "direction of the wall normal (rad, from +x)"),
                      ("d", "real", "signed distance of the wall from the map centre"),
                      ("w", "positive", "wall half-width"),
                      ("b", "real", "value on the wall")),
                     _wall, _wall_pri, _constant_lin, ("b",)),
}
_GP_PARAMS = (("amp", "positive", "residual amplitude (sd of the GP)"),
              ("ell", "positive", "residual length scale"),
              ("sigma", "positive", "pixel noise sd"))


def _basis(X, Y, L, m):
    """Laplacian eigenfunctions on [-Lx, Lx] x [-Ly, Ly]: ``(n, m*m)`` and eigenvalues."""
    j = np.arange(1, m + 1)
    wx = math.pi * j / (2 * L[0])
    wy = math.pi * j / (2 * L[1])
    fx = np.sin(wx[None, :] * (X[:, None] + L[0])) / math.sqrt(L[0])
    fy = np.sin(wy[None, :] * (Y[:, None] + L[1])) / math.sqrt(L[1])
    phi = (fx[:, :, None] * fy[:, None, :]).reshape(X.size, m * m)
    lam = (wx[:, None] ** 2 + wy[None, :] ** 2).reshape(-1)
    return phi, lam


def _spectral(xp, lam, amp, ell):
    """Spectral density of the 2-D squared-exponential kernel at |omega|^2 = lam."""
    return amp ** 2 * 2 * math.pi * ell ** 2 * xp.exp(-0.5 * ell ** 2 * lam)


def _noise_guess(z: np.ndarray) -> float:
    """Pixel noise sd from neighbour differences (robust; a smooth signal adds little)."""
    d = np.concatenate([np.diff(z, axis=0).ravel(), np.diff(z, axis=1).ravel()])
    d = d[np.isfinite(d)]
    if d.size < 10:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def _sampler(mm: MapModel, pri: dict, white: tuple, chains: int, warmup: int, draws: int,
             target_accept: float):
    """A cached ``run(seed, model_args) -> (samples, extra)`` for this map model.

    As in :func:`causalspy.bayes.fit`: NumPyro's NUTS kernel driven by one
    jit-compiled ``lax.scan`` (warm-up, then draws) with the data and prior values
    as arguments, compiled once per model, prior families, map size and sampler
    settings (``MCMC.run`` would trace and compile several functions per fit).
    """
    numpyro, jax, _ = require()
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from jax.flatten_util import ravel_pytree
    from numpyro.distributions import constraints
    from numpyro.infer import init_to_median
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import initialize_model

    fams = tuple((k, p.family) for k, p in pri.items())
    key = (mm.name, fams, white, chains, warmup, draws, target_accept)
    if key in _CACHE:
        return _CACHE[key]
    specs = dict(pri)  # families only: the values come in as arguments
    phys = [p[0] for p in mm.params]
    mfun = mm.mean

    def gp_model(jX, jY, jz, jphi, jlam, jPtP, jc0, jT, pargs):
        pa = dict(zip(specs, pargs, strict=True))
        th = {}
        if white:
            u = numpyro.sample("_white", dist.ImproperUniform(
                constraints.real_vector, (), (len(white),)))
            beta = jc0 + jT @ u
            for i, k in enumerate(white):
                th[k] = numpyro.deterministic(k, beta[i])
                numpyro.factor(f"_prior_{k}", specs[k].to_numpyro(pa[k]).log_prob(th[k]))
        th.update({k: numpyro.sample(k, p.to_numpyro(pa[k])) for k, p in specs.items()
                   if k not in white})
        mu = mfun(jnp, jX, jY, **{k: th[k] for k in phys})
        r = jz - mu
        n = jz.shape[0]
        sq = jnp.sqrt(_spectral(jnp, jlam, th["amp"], th["ell"]))
        sig = th["sigma"]
        # r' K^-1 r with K = sigma^2 I + Phi S Phi' (Woodbury, B = I + S^1/2 Phi'Phi S^1/2
        # / sigma^2), written as the minimum of ||r - Phi S^1/2 g||^2 / sigma^2 + ||g||^2:
        # two positive terms, no cancellation
        B = jnp.eye(sq.size) + sq[:, None] * jPtP * sq[None, :] / sig ** 2
        Lc = jnp.linalg.cholesky(B)
        w = sq * (jphi.T @ r) / sig
        g = jax.scipy.linalg.cho_solve((Lc, True), w) / sig
        e = r - jphi @ (sq * g)
        quad = e @ e / sig ** 2 + g @ g
        logdet = 2 * jnp.sum(jnp.log(jnp.diag(Lc))) + 2 * n * jnp.log(sig)
        numpyro.factor("z", -0.5 * (quad + logdet + n * math.log(2 * math.pi)))

    state: dict = {}

    @jax.jit
    def run_chain(z0, rng_key, model_args):
        init_kernel, sample_kernel = hmc(potential_fn_gen=state["pe_gen"], algo="NUTS")
        # a first guess of the posterior scales in the unconstrained space (whitened
        # linear part: 1; log sigma: 1/sqrt(2n), the sd of a variance estimate's log;
        # log amp, log ell: 0.1; the rest 1) so that the first warm-up window, before the
        # mass matrix is adapted, does not need ~100 leapfrog steps per iteration
        n = model_args[2].shape[0]
        guess = {k: jnp.full(jnp.shape(v), {"sigma": 0.5 / n, "amp": 1e-2, "ell": 1e-2}.get(
            k, 1.0)) for k, v in z0.items()}
        inv_mass = jnp.diag(ravel_pytree(guess)[0])
        st = init_kernel(z0, warmup, dense_mass=True, target_accept_prob=target_accept,
                         inverse_mass_matrix=inv_mass, model_args=model_args,
                         rng_key=rng_key)

        def warm(s, _):
            return sample_kernel(s, model_args=model_args), None

        def keep(s, _):
            s = sample_kernel(s, model_args=model_args)
            return s, (s.z, s.diverging, s.num_steps)

        st, _ = jax.lax.scan(warm, st, None, length=warmup)
        _, (zs, div, steps) = jax.lax.scan(keep, st, None, length=draws)
        return jax.vmap(state["post_gen"](*model_args))(zs), div, steps

    def run(seed: int, model_args):
        if not state:
            info = initialize_model(jax.random.PRNGKey(0), gp_model, model_args=model_args,
                                    dynamic_args=True)
            state["pe_gen"], state["post_gen"] = info.potential_fn, info.postprocess_fn
        keys = jax.random.split(jax.random.PRNGKey(seed), 2 * chains)
        outs = []
        for c in range(chains):
            info = initialize_model(keys[2 * c], gp_model, model_args=model_args,
                                    init_strategy=init_to_median(num_samples=15))
            outs.append(jax.block_until_ready(run_chain(info.param_info.z, keys[2 * c + 1],
                                                        model_args)))
        samples = {k: np.stack([np.asarray(o[0][k]) for o in outs]) for k in specs}
        extra = {"diverging": np.stack([np.asarray(o[1]) for o in outs]),
                 "num_steps": np.stack([np.asarray(o[2]) for o in outs])}
        return samples, extra

    _CACHE[key] = run
    return run


def _read_map(data, name):
    """(z, valid, (sx, sy), (ox, oy), units, title) from an array or a signal."""
    sx = sy = 1.0
    ox = oy = 0.0
    units = "px"
    title = name or ""
    valid = None
    if hasattr(data, "axes_manager"):
        if getattr(data, "_signal_type", "") == "descriptor_maps" or (
                data.axes_manager.navigation_dimension == 1):
            names = list(getattr(data, "descriptor_names", []))
            if name is None:
                raise InvalidParameterError(
                    f"Give the descriptor to use, name=...; available: {names}.")
            if name not in names:
                raise InvalidParameterError(f"No descriptor {name!r}; available: {names}.")
            sig = data.inav[names.index(name)]
            try:
                valid = np.asarray(data.metadata.Descriptors.valid, bool)
            except AttributeError:
                valid = None
        else:
            sig = data
        ax_x, ax_y = sig.axes_manager.signal_axes
        sx, sy, ox, oy = float(ax_x.scale), float(ax_y.scale), float(ax_x.offset), float(
            ax_y.offset)
        units = str(ax_x.units) if ax_x.units and str(ax_x.units) != "<undefined>" else "px"
        z = np.asarray(sig.data, float)
    else:
        z = np.asarray(data, float)
    if z.ndim != 2:
        raise InvalidParameterError(f"A map is 2-D; got shape {z.shape}.")
    return z.copy(), valid, (sx, sy), (ox, oy), units, title


def fit_map(data, model: str = "plane", priors=None, *, name: str | None = None, mask=None,
            n_basis: int = 10, max_points: int = 5000, chains: int = 2, warmup: int = 300,
            draws: int = 500, seed: int = 0, target_accept: float = 0.9,
            hdi_prob: float = 0.9, n_predict: int = 100) -> MapPosterior:
    r"""Fit physics + GP residual to a 2-D map with NUTS.

    Parameters
    ----------
    data : array_like, Signal2D or DescriptorMaps
        The map (NaN where not measured). A ``descriptor_maps`` signal needs
        ``name``; its calibration gives the coordinates and its
        ``metadata.Descriptors.valid`` the mask.
    model : str
        Physical mean function, a key of :data:`MAP_MODELS`: ``"plane"``
        (:math:`b + s_x X + s_y Y`), ``"wall"`` (a straight tanh wall at angle
        ``phi``) or ``"constant"``. ``X, Y`` are relative to the map centre.
    priors : optional
        Replacements for the defaults, e.g. ``["ell=LogNormal(1, 0.3)"]``
        (``amp``, ``ell``, ``sigma`` are the GP amplitude, length scale and
        pixel noise; units of the map and of its axes).
    mask : array of bool, optional
        True where the map is to be used (combined with finiteness).
    n_basis : int
        Basis functions per axis (``n_basis**2`` in total). Length scales below
        about ``1.75 * 1.5 * half-extent / n_basis`` are not resolved; the cost
        per gradient grows as ``n_basis**6`` (Cholesky of the basis matrix).
    max_points : int
        Larger maps are fitted on a random subset of this many pixels (the
        prediction covers every pixel).
    chains, warmup, draws, seed, target_accept, hdi_prob
        As in :func:`~causalspy.bayes.fit`.
    n_predict : int
        Posterior draws used for the residual map's mean and sd.

    Returns
    -------
    MapPosterior

    Notes
    -----
    A GP can imitate an offset or a plane, so physics + residual alone is not
    identifiable. Each basis function is therefore replaced by its residual after
    a least-squares fit, over every pixel of the map, by the functions the model
    reaches linearly (``MapModel.linear``: 1, X, Y for ``"plane"``; 1 for the
    others): restricted spatial regression (Hodges & Reich 2010). The physical
    parameters are then the best physical description of the noise-free map and
    the residual is orthogonal to it. Those linear parameters are sampled in
    coordinates whitened around their least-squares values (the posterior is
    unchanged, warm-up is shorter).
    """
    numpyro, jax, _ = require()
    import jax.numpy as jnp

    if model not in MAP_MODELS:
        raise InvalidParameterError(f"Unknown map model {model!r}; use one of "
                                    f"{sorted(MAP_MODELS)}.")
    mm = MAP_MODELS[model]
    for nm, v, lo in (("chains", chains, 1), ("warmup", warmup, 10), ("draws", draws, 10),
                      ("n_basis", n_basis, 3), ("max_points", max_points, 10),
                      ("n_predict", n_predict, 1)):
        if int(v) != v or v < lo:
            raise InvalidParameterError(f"{nm} must be an integer >= {lo}; got {v!r}.")
    z, valid, (sx, sy), (ox, oy), units, title = _read_map(data, name)
    ok = np.isfinite(z)
    if valid is not None and valid.shape == z.shape:
        ok &= valid
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != z.shape:
            raise InvalidParameterError(f"mask has shape {mask.shape}, the map {z.shape}.")
        ok &= mask
    npar = len(mm.params) + len(_GP_PARAMS)
    if ok.sum() <= 2 * npar:
        raise InvalidParameterError(
            f"The map has {int(ok.sum())} usable pixels; the model needs many more than its "
            f"{npar} parameters.")
    if np.ptp(z[ok]) == 0:
        raise InvalidParameterError("The map has no variation; there is nothing to fit.")
    ny, nx = z.shape
    xs = ox + sx * np.arange(nx)
    ys = oy + sy * np.arange(ny)
    xc, yc = (xs[0] + xs[-1]) / 2, (ys[0] + ys[-1]) / 2
    GX, GY = np.meshgrid(xs - xc, ys - yc)
    half = (max(abs(GX).max(), abs(sx)), max(abs(GY).max(), abs(sy)))
    L = (BOX_FACTOR * half[0], BOX_FACTOR * half[1])
    idx = np.flatnonzero(ok.ravel())
    rng = np.random.default_rng(seed)
    if idx.size > max_points:
        idx = np.sort(rng.choice(idx, size=int(max_points), replace=False))
    X, Y, zz = GX.ravel()[idx], GY.ravel()[idx], z.ravel()[idx]
    gx, gy = GX.ravel(), GY.ravel()
    phi_g, lam = _basis(gx, gy, L, int(n_basis))
    if mm.linear is not None:
        # restricted spatial regression: take out of every basis function its
        # least-squares fit by the physics' linear part over the whole map, so the
        # GP can no longer carry an offset or a trend the physics explains
        A = mm.linear(gx, gy)
        phi_g = phi_g - A @ np.linalg.lstsq(A, phi_g, rcond=None)[0]
    phi = phi_g[idx]

    pri = dict(mm.default_priors(X, Y, zz))
    S = max(half)
    sd = float(np.std(zz)) or 1.0
    pri["amp"] = PriorSpec("HalfNormal", (sd,))
    pri["ell"] = PriorSpec("LogNormal", (math.log(S / 2), 0.5))
    pri["sigma"] = PriorSpec("HalfNormal", (sd,))
    supports = {n: s for n, s, _ in mm.params + _GP_PARAMS}
    for k, v in parse_priors(priors).items():
        if k not in pri:
            raise InvalidParameterError(f"Prior given for {k!r}, which the {model!r} map model "
                                        f"does not have; its parameters are {list(pri)}.")
        v.check_support(k, supports[k])
        pri[k] = v
    phys = [p[0] for p in mm.params]
    n = zz.size
    mfun = mm.mean
    # The linear parameters are known to about sigma / sqrt(n) (the GP no longer
    # competes for them), thousands of times better than their priors: NUTS samples
    # them in whitened coordinates around the least-squares fit (a constant Jacobian,
    # the posterior is unchanged) so that warm-up need not find that scale itself.
    white = [k for k in mm.linear_params if pri[k].support == "real"]
    if white:
        A = mm.linear(X, Y)
        j = [mm.linear_params.index(k) for k in white]
        c0 = np.linalg.lstsq(A, zz, rcond=None)[0][j]
        s_hat = _noise_guess(np.where(ok, z, np.nan)) or sd
        T = s_hat * np.linalg.cholesky(np.linalg.inv(A.T @ A)[np.ix_(j, j)])
    else:
        c0, T = np.zeros(0), np.zeros((0, 0))

    t0 = time.perf_counter()
    run = _sampler(mm, pri, tuple(white), int(chains), int(warmup), int(draws),
                   float(target_accept))
    # float64 inside this fit only: the marginal likelihood of ~1e3 pixels needs it
    with jax.enable_x64(True):
        args = tuple(jnp.asarray(a, jnp.float64) for a in (X, Y, zz, phi, lam, phi.T @ phi,
                                                           c0, T))
        pargs = tuple(jnp.asarray(p.args, jnp.float64) for p in pri.values())
        samples, extra = run(int(seed), (*args, pargs))
    div = np.asarray(extra["diverging"])
    mean_steps = float(np.mean(np.asarray(extra["num_steps"])))
    elapsed = time.perf_counter() - t0

    # ---- maps: physics from every draw, residual as an exact Gaussian mixture
    flat = {k: v.reshape(-1).astype(float) for k, v in samples.items()}
    ndraw = flat["sigma"].size
    f_all = mfun(np, gx[None, :], gy[None, :], **{k: flat[k][:, None] for k in phys})
    f_all = np.broadcast_to(f_all, (ndraw, gx.size))
    phys_mean, phys_sd = f_all.mean(0), f_all.std(0)
    pick = rng.choice(ndraw, size=min(int(n_predict), ndraw), replace=False)
    PtP = phi.T @ phi
    gm = np.zeros((pick.size, gx.size))
    gv = np.zeros((pick.size, gx.size))
    for t, i in enumerate(pick):
        th = {k: flat[k][i] for k in flat}
        r = zz - mfun(np, X, Y, **{k: th[k] for k in phys})
        sq = np.sqrt(_spectral(np, lam, th["amp"], th["ell"]))
        B = np.eye(sq.size) + sq[:, None] * PtP * sq[None, :] / th["sigma"] ** 2
        Lc = np.linalg.cholesky(B)
        w = sq * (phi.T @ r) / th["sigma"]
        gam = np.linalg.solve(Lc.T, np.linalg.solve(Lc, w)) / th["sigma"]
        G = phi_g * sq[None, :]
        gm[t] = G @ gam
        V = np.linalg.solve(Lc, G.T)  # cov of gamma is B^-1 = Lc^-T Lc^-1
        gv[t] = np.sum(V * V, axis=0)
    res_mean = gm.mean(0)
    res_sd = np.sqrt(gv.mean(0) + gm.var(0))
    # physics and residual trade off (a GP can carry part of a trend): their sum is
    # known much better than either part, so report it with its own sd
    tot = f_all[pick] + gm
    tot_mean = tot.mean(0)
    tot_sd = np.sqrt(gv.mean(0) + tot.var(0))

    settings = {"chains": int(chains), "warmup": int(warmup), "draws": int(draws),
                "seed": int(seed), "target_accept": float(target_accept),
                "hdi_prob": float(hdi_prob), "n_basis": int(n_basis),
                "box": [float(L[0]), float(L[1])], "n_fit_pixels": int(n),
                "n_predict": int(pick.size), "sampler": "numpyro NUTS (dense mass), "
                "HSGP with analytically integrated basis weights", "seconds": round(elapsed, 3),
                "mean_leapfrog_steps": round(mean_steps, 1)}
    shape = z.shape
    return MapPosterior._build(
        model=model, priors=pri, samples=samples, diverging=div, data=z, used=ok,
        maps={"physics_mean": phys_mean.reshape(shape), "physics_sd": phys_sd.reshape(shape),
              "residual_mean": res_mean.reshape(shape), "residual_sd": res_sd.reshape(shape),
              "total_mean": tot_mean.reshape(shape), "total_sd": tot_sd.reshape(shape)},
        axes={"x": xs, "y": ys, "units": units}, settings=settings, title=title)


class MapPosterior:
    """The result of :func:`fit_map`.

    Attributes
    ----------
    idata : arviz.InferenceData
        Draws of the physical parameters and ``amp``, ``ell``, ``sigma``;
        ``constant_data`` holds the data, the mask of fitted pixels and the maps.
    physics_mean, physics_sd : numpy.ndarray
        Posterior mean and sd of the physical mean function on every pixel.
    residual_mean, residual_sd : numpy.ndarray
        Posterior mean and sd of the GP residual (what the physics misses).
    total_mean, total_sd : numpy.ndarray
        Physics + residual (the noise-free map). Its sd is smaller than the two
        parts' combined: how the map splits between them is less certain than
        the map itself.
    data, used : numpy.ndarray
        The map and the mask of pixels that entered the fit.
    x, y : numpy.ndarray
        Pixel coordinates (calibrated); ``units`` their unit.
    model : str
    priors : dict of str to PriorSpec
    settings : dict
    """

    def __init__(self, idata) -> None:
        self.idata = idata
        try:
            meta = json.loads(idata.posterior.attrs["causalspy"])
        except (KeyError, AttributeError, ValueError) as e:
            raise FileReadError("This InferenceData was not written by fit_map.") from e
        if meta.get("format") != FORMAT:
            raise FileReadError(f"Not a map posterior (format {meta.get('format')!r}).")
        self.meta = meta
        self.model = meta["model"]
        self.priors = parse_priors(meta["priors"])
        self.settings = meta["settings"]
        self.units = meta.get("units", "px")
        self.title = meta.get("title", "")
        c = idata.constant_data
        self.data = np.asarray(c["data"].values)
        self.used = np.asarray(c["used"].values).astype(bool)
        for k in ("physics_mean", "physics_sd", "residual_mean", "residual_sd", "total_mean",
                  "total_sd"):
            setattr(self, k, np.asarray(c[k].values))
        self.x = np.asarray(c["x"].values)
        self.y = np.asarray(c["y"].values)
        self._summary: dict[float, pd.DataFrame] = {}

    @classmethod
    def _build(cls, *, model, priors, samples, diverging, data, used, maps, axes, settings,
               title):
        az = arviz()
        const = {"data": data, "used": used.astype(np.int8), **maps, "x": axes["x"],
                 "y": axes["y"]}
        dims = {k: ["row", "col"] for k in ("data", "used", *maps)}
        dims.update({"x": ["col"], "y": ["row"]})
        idata = az.from_dict(posterior=samples, sample_stats={"diverging": diverging},
                             constant_data=const, dims=dims)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model,
                "equation": MAP_MODELS[model].equation,
                "priors": {k: str(v) for k, v in priors.items()}, "settings": settings,
                "units": axes["units"], "title": title}
        idata.posterior.attrs["causalspy"] = json.dumps(meta)
        return cls(idata)

    @property
    def names(self) -> list[str]:
        return [p[0] for p in MAP_MODELS[self.model].params] + [p[0] for p in _GP_PARAMS]

    def samples(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise InvalidParameterError(f"No parameter {name!r}; parameters: {self.names}.")
        return np.asarray(self.idata.posterior[name].values).reshape(-1)

    def summary(self, hdi_prob: float | None = None) -> pd.DataFrame:
        """Mean, sd, HDI, R-hat and ESS of the physical and GP parameters."""
        az = arviz()
        hp = float(hdi_prob or self.settings.get("hdi_prob", 0.9))
        if hp not in self._summary:
            rhat, hdi = az.rhat(self.idata), az.hdi(self.idata, hdi_prob=hp)
            eb, et = az.ess(self.idata, method="bulk"), az.ess(self.idata, method="tail")
            rows = []
            for n in self.names:
                s = self.samples(n).astype(float)
                lo, hi = (float(v) for v in np.asarray(hdi[n].values))
                rows.append({"parameter": n, "mean": s.mean(), "sd": s.std(ddof=1),
                             "hdi_low": lo, "hdi_high": hi, "r_hat": float(rhat[n]),
                             "ess_bulk": float(eb[n]), "ess_tail": float(et[n]),
                             "prior": str(self.priors[n])})
            self._summary[hp] = pd.DataFrame(rows).set_index("parameter")
        return self._summary[hp].copy()

    @property
    def warnings(self) -> list[str]:
        """Divergences, R-hat > 1.01, low effective sample size (plain words)."""
        s = self.summary()
        out = []
        div = int(np.asarray(self.idata.sample_stats["diverging"].values).sum())
        if div:
            out.append(f"{div} divergent transition(s): the posterior may be biased; raise "
                       "target_accept or tighten the priors.")
        nch = int(self.idata.posterior.sizes["chain"])
        bad = [n for n in self.names if not s.loc[n, "r_hat"] <= R_HAT_MAX]
        if bad:
            out.append(f"R-hat > {R_HAT_MAX} for {', '.join(bad)}: not converged; run longer.")
        low = [n for n in self.names if not min(s.loc[n, "ess_bulk"], s.loc[n, "ess_tail"])
               >= ESS_MIN_PER_CHAIN * nch]
        if low:
            out.append(f"Effective sample size < {ESS_MIN_PER_CHAIN * nch} for "
                       f"{', '.join(low)}: run more draws.")
        return out

    @property
    def converged(self) -> bool:
        return not self.warnings

    def plot(self, fig=None):
        """Data, physics (mean, sd), residual (mean, sd) and what is left (noise)."""
        import matplotlib.pyplot as plt

        if fig is None:
            fig = plt.figure(figsize=(11, 6.5))
        ext = [self.x[0], self.x[-1], self.y[-1], self.y[0]]
        panels = [("data", self.data), ("physics: mean", self.physics_mean),
                  ("residual (GP): mean", self.residual_mean),
                  ("data - physics - residual", self.data - self.physics_mean -
                   self.residual_mean),
                  ("physics: sd", self.physics_sd), ("residual: sd", self.residual_sd)]
        axes = fig.subplots(2, 3)
        for ax, (t, im) in zip(axes.ravel(), panels, strict=True):
            h = ax.imshow(im, extent=ext, cmap="viridis" if "sd" in t else "RdBu_r")
            ax.set_title(t, fontsize=9)
            fig.colorbar(h, ax=ax, shrink=0.8)
        axes[1, 0].set_xlabel(f"x ({self.units})")
        status = "" if self.converged else "  [NOT CONVERGED]"
        fig.suptitle(f"{self.title + ': ' if self.title else ''}"
                     f"{MAP_MODELS[self.model].equation} + GP{status}", fontsize=10)
        return fig

    def save(self, path: str | Path) -> Path:
        """Write to netCDF (``.nc``); :meth:`load` restores it."""
        from causalspy.bayes.posterior import save_idata

        return save_idata(self.idata, path, "Map posteriors")

    @classmethod
    def load(cls, path: str | Path) -> MapPosterior:
        from causalspy.bayes.posterior import load_idata

        return cls(load_idata(path, "map posterior"))

    def __repr__(self) -> str:
        s = self.summary()
        st = "converged" if self.converged else "NOT CONVERGED"
        lines = [f"MapPosterior({self.model} + GP residual; {self.data.shape[0]}x"
                 f"{self.data.shape[1]} map, {self.settings['n_fit_pixels']} pixels fitted; {st})"]
        from causalspy.bayes.posterior import summary_lines

        lines += summary_lines(s, 6, units=False)
        return "\n".join(lines + [f"  warning: {w}" for w in self.warnings])
