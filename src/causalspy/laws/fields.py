"""Weak-form PDE discovery on fields (order parameters, descriptor maps over time)."""

from __future__ import annotations

import warnings

import numpy as np

from causalspy.exceptions import InvalidParameterError
from causalspy.laws.discover import CRITERIA, _library, _seeded, ensemble_fit, select_sparse
from causalspy.laws.law import Law

__all__ = ["discover_field"]


def _grid_axis(v, n: int, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=float).ravel()
    if v.size != n:
        raise InvalidParameterError(
            f"{name} has {v.size} values but the field has {n} along that axis; u[i, (j,) k] "
            "must be the value at (x[i], (y[j],) t[k])."
        )
    if not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
        raise InvalidParameterError(f"{name} must be finite and strictly increasing.")
    step = np.diff(v)
    if np.ptp(step) > 1e-6 * np.mean(step):
        raise InvalidParameterError(f"{name} must be equally spaced (resample the field first).")
    return v


def _function_library(library_functions, function_names):
    import pysindy as ps

    if callable(library_functions) or (isinstance(library_functions, (list, tuple))
                                       and library_functions and callable(library_functions[0])):
        funcs = list(library_functions) if isinstance(library_functions, (list, tuple)) \
            else [library_functions]
        if function_names is None or len(function_names) != len(funcs):
            raise InvalidParameterError(
                "Give function_names (one callable name -> str per function) with "
                "library_functions, e.g. [lambda x: x + '^3'] for [lambda x: x ** 3]."
            )
        return ps.CustomLibrary(library_functions=funcs, function_names=list(function_names))
    return _library(library_functions, allow_bias=False)


def discover_field(u, t, x, y=None, *, library_functions="poly3", function_names=None,
                   derivative_order: int = 2, threshold=None, criterion: str = "aicc",
                   ensemble: bool = True, n_models: int = 100, K: int = 200, H_xt=None,
                   p: int = 4, seed: int = 0, name: str = "u") -> Law:
    r"""Find a PDE :math:`\partial_t u = F(u, \nabla u, \nabla^2 u, \dots)` by weak-form SINDy.

    Parameters
    ----------
    u : array, shape (nx, nt) or (nx, ny, nt)
        The field; ``u[i, k]`` (or ``u[i, j, k]``) is the value at
        ``(x[i], t[k])`` (or ``(x[i], y[j], t[k])``). Time is the *last* axis:
        a stack of descriptor maps ``frames`` of shape ``(nt, ny, nx)`` is
        passed as ``frames.transpose(2, 1, 0)``.
    t, x, y : array
        Equally spaced, increasing coordinates of each axis.
    library_functions : str, callable or list of callables, or pysindy library
        Functions of the field: ``"poly3"`` (default: :math:`u, u^2, u^3`),
        ``"polyN"``, a list of callables (with ``function_names``) or a
        pysindy library.
    function_names : list of callables, optional
        Names of ``library_functions`` when they are callables.
    derivative_order : int
        Highest spatial derivative in the library (2 for diffusion).
    threshold, criterion, ensemble, n_models, seed
        As in :func:`causalspy.laws.discover`; the information criteria count
        the ``K`` subdomains as samples.
    K : int
        Number of random space-time subdomains (test functions).
    H_xt : float or list, optional
        Half-widths of the subdomains along (x, [y,] t); default 1/20 of
        each axis length (pysindy's default) but at least 3 grid steps.
    p : int
        Exponent of the polynomial test functions :math:`(1-\xi^2)^p`.
    name : str
        Name of the field in the equations.

    Returns
    -------
    Law
        ``kind="field"``; terms are named as pysindy's ``WeakPDELibrary``
        names them, e.g. ``u``, ``u^3``, ``u_11`` (:math:`\partial_x^2 u`),
        ``u_22`` (:math:`\partial_y^2 u`).

    Notes
    -----
    The weak form [1]_ multiplies the PDE by smooth test functions
    :math:`\psi_k` that vanish on the boundary of subdomain :math:`\Omega_k`
    and integrates by parts, so no derivative of the (noisy) data is taken:

    .. math:: -\int_{\Omega_k} u\,\partial_t\psi_k
              = \sum_j \xi_j \int_{\Omega_k} \theta_j(u)\,(-1)^{|\alpha_j|}
                \partial^{\alpha_j}\psi_k .

    An Allen–Cahn / Landau–Khalatnikov law for an order parameter reads
    :math:`\partial_t u = D\nabla^2 u + a u - b u^3`. The subdomains are
    drawn with ``seed``; NumPy's global random state is restored.

    References
    ----------
    .. [1] D. A. Messenger, D. M. Bortz, "Weak SINDy for partial differential
       equations", J. Comput. Phys. 443, 110525 (2021).
    """
    import pysindy as ps

    if criterion not in CRITERIA:
        raise InvalidParameterError(f"criterion must be one of {CRITERIA}; got {criterion!r}.")
    if threshold is not None and not (0 < float(threshold) < 1):
        raise InvalidParameterError(f"threshold must lie in (0, 1); got {threshold}.")
    u = np.asarray(u)
    if not np.issubdtype(u.dtype, np.number) or np.iscomplexobj(u):
        raise InvalidParameterError("u must be a real numeric array.")
    u = u.astype(float)
    ndim = 2 if y is None else 3
    if u.ndim != ndim:
        raise InvalidParameterError(
            f"u must have shape (nx, nt){'' if y is None else ' -> (nx, ny, nt) with y'}; got "
            f"{u.shape}. Put time on the last axis."
        )
    if min(u.shape) < 8:
        raise InvalidParameterError(f"u has shape {u.shape}: need at least 8 points per axis.")
    if not np.all(np.isfinite(u)):
        raise InvalidParameterError("u holds NaN or inf; fill or crop those regions first.")
    if np.ptp(u) <= 1e-12 * max(1.0, float(np.max(np.abs(u)))):
        raise InvalidParameterError("u is constant: there is no dynamics to learn.")
    if int(derivative_order) < 1:
        raise InvalidParameterError("derivative_order must be >= 1.")
    if int(K) < 20:
        raise InvalidParameterError(f"K={K}: use at least 20 subdomains.")
    axes = [_grid_axis(x, u.shape[0], "x")]
    if y is not None:
        axes.append(_grid_axis(y, u.shape[1], "y"))
    axes.append(_grid_axis(t, u.shape[-1], "t"))
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    funcs = _function_library(library_functions, function_names)
    if H_xt is None:  # pysindy's 1/20 of each axis, but never fewer than 3 grid steps
        H_xt = [max((v[-1] - v[0]) / 20, 3 * (v[1] - v[0])) for v in axes]
    kw = {"H_xt": [float(h) for h in np.broadcast_to(np.asarray(H_xt, float), (len(axes),))]}
    with _seeded(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            lib = ps.WeakPDELibrary(function_library=funcs, derivative_order=int(derivative_order),
                                    spatiotemporal_grid=grid, K=int(K), p=int(p),
                                    is_uniform=True, include_interaction=False, **kw)
        except ValueError as e:
            raise InvalidParameterError(f"pysindy rejected the weak-form setup: {e}") from e
        uu = u[..., None]
        theta = np.asarray(lib.fit_transform(uu), dtype=float)
        u_dot = np.asarray(lib.convert_u_dot_integral(uu), dtype=float)[:, 0]
    terms = list(lib.get_feature_names([name]))
    iv = np.full((1, len(terms), 2), np.nan)
    inc = np.full((1, len(terms)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c, tau, path = select_sparse(theta, u_dot, threshold=threshold, criterion=criterion,
                                     n_eff=float(K))
        if ensemble:
            iv[0], inc[0] = ensemble_fit(theta, u_dot, tau, n_models=n_models, seed=seed)
    resid = u_dot - theta @ c
    r2 = float(1 - resid @ resid / np.sum((u_dot - u_dot.mean()) ** 2))
    params = {"library_functions": library_functions if isinstance(library_functions, str)
              else repr(library_functions), "derivative_order": int(derivative_order),
              "K": int(K), "p": int(p), "H_xt": H_xt, "criterion": criterion
              if threshold is None else "fixed", "threshold": threshold,
              "stlsq_threshold": {name: tau}, "ensemble": bool(ensemble),
              "n_models": int(n_models) if ensemble else 0, "seed": int(seed),
              "spatial_dims": ndim - 1, "shape": list(u.shape), "path": {name: path}}
    return Law([name], terms, c[None, :], intervals=iv, inclusion=inc, kind="field",
               features=[name], time="t", params=params, score={name: r2})
