"""Sub-pixel refinement of column positions, vectorized over all columns.

Two estimators share one patch machinery (every column's pixels gathered
into an ``(n_columns, n_pixels)`` array, so each step is a few array
operations for all columns together):

* :func:`refine_gaussian` – maximum-likelihood fit of a 2D elliptical
  Gaussian on a local constant background, all columns at once by batched
  Fisher scoring (Gauss-Newton with Levenberg-Marquardt damping). Neighbour
  overlap is handled by fitting the columns jointly: at every iteration
  each column's patch has the current model of all *other* columns
  subtracted (block Jacobi), so overlapping tails do not pull positions.
  Uncertainties come from the inverse Fisher information.
* :func:`refine_com` – iterated Gaussian-weighted centre of mass, unbiased
  for symmetric columns on a flat background, with propagated errors.

Noise model: pixel variance ``var = alpha + beta * mu`` (Poisson counts
with gain ``beta`` plus read-out/quantisation ``alpha``), estimated from
the fit residuals, so errors are right for counts and for scaled data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "NoiseModel",
    "GaussianFit",
    "refine_gaussian",
    "refine_com",
    "render_gaussians",
    "estimate_noise_model_from_residuals",
]

_CHUNK = 4096  # columns per batch: bounds memory to ~ chunk * pixels * 7 floats


@dataclass(frozen=True)
class NoiseModel:
    """Pixel variance as an affine function of the expected value ``mu``."""

    alpha: float
    beta: float
    floor: float

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Pixel variance for expected values ``mu`` (never below ``floor``)."""
        return np.maximum(self.alpha + self.beta * mu, self.floor)

    def as_dict(self) -> dict:
        """The model's coefficients as a plain dict (for metadata)."""
        return {"alpha": float(self.alpha), "beta": float(self.beta), "floor": float(self.floor)}


def _patch_grid(radius: int) -> tuple[np.ndarray, np.ndarray]:
    o = np.arange(-radius, radius + 1)
    oy, ox = np.meshgrid(o, o, indexing="ij")
    return oy.ravel(), ox.ravel()


class _Patches:
    """Pixel indices of every column's square window, with an inside-image mask."""

    def __init__(self, shape, x, y, radius):
        h, w = shape
        oy, ox = _patch_grid(radius)
        cx = np.rint(x).astype(np.intp)
        cy = np.rint(y).astype(np.intp)
        X = cx[:, None] + ox[None, :]
        Y = cy[:, None] + oy[None, :]
        self.valid = (X >= 0) & (X < w) & (Y >= 0) & (Y < h)
        self.flat = np.where(self.valid, np.clip(Y, 0, h - 1) * w + np.clip(X, 0, w - 1), 0)
        self.X = X.astype(np.float64)
        self.Y = Y.astype(np.float64)
        self.size = h * w

    def take(self, image_flat: np.ndarray, sel=slice(None)) -> np.ndarray:
        return np.where(self.valid[sel], image_flat[self.flat[sel]], 0.0)


def estimate_noise_model_from_residuals(mu: np.ndarray, r2: np.ndarray) -> NoiseModel:
    """Fit ``var = alpha + beta * mu`` to squared residuals ``r2``, binned in ``mu``."""
    if mu.size < 50:
        v = float(np.mean(r2)) if mu.size else 1.0
        v = max(v, 1e-12)
        return NoiseModel(v, 0.0, v * 1e-3)
    nb = 24
    edges = np.unique(np.quantile(mu, np.linspace(0, 1, nb + 1)))
    idx = np.clip(np.searchsorted(edges, mu, side="right") - 1, 0, max(len(edges) - 2, 0))
    nbin = max(len(edges) - 1, 1)
    cnt = np.bincount(idx, minlength=nbin)
    ok = cnt > 10
    mb = np.bincount(idx, mu, minlength=nbin)[ok] / cnt[ok]
    vb = np.bincount(idx, r2, minlength=nbin)[ok] / cnt[ok]
    wts = cnt[ok].astype(float)
    vmean = float(np.average(vb, weights=wts)) if wts.size else float(np.mean(r2))
    alpha, beta = vmean, 0.0
    if len(mb) >= 2 and np.ptp(mb) > 0:
        # weighted by counts and by 1/var^2 (relative errors of a variance estimate)
        ww = wts / np.maximum(vb, 1e-300) ** 2
        A = np.stack([np.ones_like(mb), mb], axis=1) * np.sqrt(ww)[:, None]
        alpha, beta = np.linalg.lstsq(A, vb * np.sqrt(ww), rcond=None)[0]
    floor = max(1e-3 * float(np.median(vb)) if vb.size else 1e-12, 1e-12)
    if np.any(alpha + beta * mb <= floor):
        # an affine fit going negative over the data range is not credible: constant variance
        alpha, beta = max(vmean, 1e-12), 0.0
    return NoiseModel(float(alpha), float(beta), floor)


@dataclass
class GaussianFit:
    """Result arrays of :func:`~causalspy.atoms.refine_gaussian` (one entry per column).

    Attributes
    ----------
    x, y, x_err, y_err : ndarray
        Fitted centre (px) and its 1-sigma error from the Fisher information.
    amplitude, background : ndarray
        Peak height and local background (image units).
    sigma_major, sigma_minor, rotation : ndarray
        Principal widths (px) and major-axis angle from +x (rad).
    intensity, intensity_err : ndarray
        Integrated intensity ``2 pi A sigma_major sigma_minor`` and its error.
    chi2 : ndarray
        Reduced chi-square in each column's window.
    converged, ok : ndarray of bool
        Convergence, and False where the fit failed (start values kept).
    iterations : int
        Iterations used.
    noise : NoiseModel
        The pixel noise model used for the weights and errors.
    params : ndarray, shape (n, 7)
        Raw parameters ``x, y, A, b, qa, qb, qc`` (for :func:`render_gaussians`).
    radius : float
        Fitting-window radius (px).
    """

    x: np.ndarray
    y: np.ndarray
    x_err: np.ndarray
    y_err: np.ndarray
    amplitude: np.ndarray
    background: np.ndarray
    sigma_major: np.ndarray
    sigma_minor: np.ndarray
    rotation: np.ndarray
    intensity: np.ndarray
    intensity_err: np.ndarray
    chi2: np.ndarray
    converged: np.ndarray
    ok: np.ndarray
    iterations: int
    noise: NoiseModel
    params: np.ndarray  # (n, 7): x, y, A, b, qa, qb, qc
    radius: float

    @property
    def sigma(self) -> np.ndarray:
        """Geometric-mean column width ``sqrt(sigma_major * sigma_minor)`` (px)."""
        return np.sqrt(self.sigma_major * self.sigma_minor)


class _Window:
    """A circular window of pixel offsets, stored row by row for the kernels.

    The window reaches ``render_radius``; ``inner`` marks the pixels within
    ``radius`` that enter the fit. The outer ring only carries the column's
    tail into its neighbours' model (a window cut at 3.5 sigma would leave
    ~0.3 % of a bright column's peak as unmodelled steps around it).
    """

    def __init__(self, radius: float, render_radius: float | None = None):
        render_radius = max(radius, render_radius or radius)
        rr = int(np.ceil(render_radius))
        o = np.arange(-rr, rr + 1)
        oy, ox = np.meshgrid(o, o, indexing="ij")
        keep = oy**2 + ox**2 <= render_radius**2
        self.offy = oy[keep].astype(np.int64)  # row-major: rows are contiguous
        self.offx = ox[keep].astype(np.int64)
        self.size = int(self.offy.size)
        rows, start, counts = np.unique(self.offy, return_index=True, return_counts=True)
        self.row_dy = rows.astype(np.int64)
        self.row_k0 = start.astype(np.int64)
        self.row_len = counts.astype(np.int64)
        self.row_dx0 = self.offx[start].astype(np.int64)
        self.inner = (self.offy**2 + self.offx**2 <= radius**2).astype(np.bool_)

    @property
    def rows(self):
        return self.row_dy, self.row_dx0, self.row_len, self.row_k0

    @property
    def rows_inner(self):
        return self.row_dy, self.row_dx0, self.row_len, self.row_k0, self.inner


def refine_gaussian(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    sigma: float | np.ndarray,
    *,
    radius: float | None = None,
    noise: NoiseModel | str = "auto",
    max_iter: int = 30,
    tol: float = 0.05,
    max_shift: float | None = None,
    parallel: bool = True,
) -> GaussianFit:
    """Fit every column with a 2D elliptical Gaussian, jointly with its neighbours.

    Parameters
    ----------
    image : (M, N) float array
        Image with bright columns.
    x, y : (n,) arrays
        Starting positions (px; x = column index, y = row index).
    sigma : float or (n,) array
        Starting column width (px).
    radius : float, optional
        Radius of the circular fitting window (px); default ``3.5 * sigma``,
        which keeps 98 % of a Gaussian's position information.
    noise : NoiseModel, "auto" or "poisson"
        Pixel noise model. "auto" fits ``var = alpha + beta * mu`` to the
        (leverage-corrected) residuals of a first, unweighted pass;
        "poisson" assumes the data are counts.
    max_iter, tol : int, float
        Stop when every column moves less than ``tol`` times its own
        position error, or after ``max_iter`` iterations.
    max_shift : float, optional
        A column whose fit wanders further than this from its start (px)
        is marked not ``ok`` and keeps its starting position.
    parallel : bool
        Use all cores (set False inside Dask tasks).

    Returns
    -------
    GaussianFit

    Notes
    -----
    Model for the pixels of column :math:`i`:

    .. math:: \\mu_i(\\mathbf r) = A_i \\exp\\left[-\\tfrac12 (\\mathbf r-\\mathbf r_i)^T
              Q_i (\\mathbf r-\\mathbf r_i)\\right] + b_i + \\sum_{j\\neq i} A_j G_j(\\mathbf r)

    with :math:`Q_i` the inverse covariance of the column shape. Columns are
    updated together (block Jacobi): each step sees the current model of
    all other columns, so overlapping neighbours do not bias positions.
    The fit maximises the (quasi-)likelihood by Fisher scoring, whose fixed
    point for ``var = beta * mu`` is the Poisson maximum-likelihood
    estimate; position errors are :math:`\\sqrt{(J^T W J)^{-1}}`, the
    Cramér-Rao bound evaluated at the fit.
    """
    # a first, loose pass brings the columns near their optimum; the precise pass then
    # starts afresh from where they arrived (windows, Voronoi cells, widths, damping and
    # the noise model set again), so the answer does not depend on where the fit started
    fit = _refine_gaussian_once(image, x, y, sigma, radius=radius, noise=noise,
                                max_iter=min(max_iter, 12), tol=max(tol, 0.5),
                                max_shift=max_shift, parallel=parallel)
    if fit.x.size:
        if max_shift is None:
            max_shift = max(1.0, 1.5 * float(np.median(np.broadcast_to(sigma, fit.x.shape))))
        left = max(0.0, max_shift)
        again = _refine_gaussian_once(
            image, np.where(fit.ok, fit.x, x), np.where(fit.ok, fit.y, y),
            sigma, radius=fit.radius, noise=noise,
            max_iter=max_iter, tol=tol, max_shift=left, parallel=parallel)
        keep = again.ok | ~fit.ok
        fit = _merge_fits(fit, again, keep)
    return fit


def _merge_fits(a: GaussianFit, b: GaussianFit, use_b: np.ndarray) -> GaussianFit:
    """Per column: ``b`` where ``use_b`` else ``a``."""
    out = {}
    for f in a.__dataclass_fields__:
        va, vb = getattr(a, f), getattr(b, f)
        if isinstance(va, np.ndarray) and va.shape[:1] == use_b.shape:
            m = use_b.reshape((-1,) + (1,) * (va.ndim - 1))
            out[f] = np.where(m, vb, va)
        else:
            out[f] = vb
    out["iterations"] = a.iterations + b.iterations
    return GaussianFit(**out)


def _refine_gaussian_once(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    sigma: float | np.ndarray,
    *,
    radius: float | None = None,
    noise: NoiseModel | str = "auto",
    max_iter: int = 30,
    tol: float = 0.05,
    max_shift: float | None = None,
    parallel: bool = True,
) -> GaussianFit:
    """One pass of :func:`refine_gaussian` from the given starts (same parameters)."""
    from causalspy.atoms import _kernels as kn

    image = np.ascontiguousarray(image, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    sig0 = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n,)).copy()
    med_sig = float(np.median(sig0)) if n else 1.0
    if radius is None:
        radius = 3.5 * med_sig
    radius = max(2.0, float(radius))
    if max_shift is None:
        max_shift = max(1.0, 1.5 * med_sig)
    win = _Window(radius, render_radius=max(radius, 4.5 * med_sig))
    offy, offx = win.offy, win.offx
    rows = win.rows
    cx = np.rint(x).astype(np.int64)
    cy = np.rint(y).astype(np.int64)
    h, w = image.shape
    owner = _voronoi_owner(image.shape, x, y, cx, cy, win)
    iterate = kn.iterate_par if parallel else kn.iterate_ser
    hessian = kn.hessian_par if parallel else kn.hessian_ser
    own_model = kn.own_model_par if parallel else kn.own_model_ser

    # starting values from the window's pixels: background = 10th percentile
    Y = cy[:, None] + offy[None, ::5]  # every 5th window pixel is enough for a start
    X = cx[:, None] + offx[None, ::5]
    inside = (X >= 0) & (X < w) & (Y >= 0) & (Y < h)
    vals = np.where(inside, image[np.clip(Y, 0, h - 1), np.clip(X, 0, w - 1)], np.nan)
    b0 = _row_percentile(vals, 10)
    vmax = np.nanmax(vals, axis=1) if n else b0
    peak = image[np.clip(cy, 0, h - 1), np.clip(cx, 0, w - 1)]
    a0 = np.maximum(peak - b0, 1e-3 * (vmax - b0) + 1e-12) if n else b0
    del Y, X, inside, vals
    p = np.zeros((n, 7))
    p[:, _X], p[:, _Y] = x, y
    p[:, _A], p[:, _B] = a0, b0
    p[:, _QA] = p[:, _QC] = 1.0 / sig0**2
    start = p.copy()
    lam = np.full(n, 1e-3)
    ok = np.ones(n, dtype=bool)
    conv = np.zeros(n, dtype=bool)
    full = np.zeros_like(image)
    own = np.zeros((n, offy.size))
    acc = np.zeros(n, dtype=bool)
    omega = np.ones(n)
    last_step = np.zeros((n, 7))

    if isinstance(noise, NoiseModel):
        nm, warm = noise, 0
    elif noise == "poisson":
        nm, warm = NoiseModel(0.0, 1.0, 0.25), 0
    elif noise == "auto":
        nm, warm = NoiseModel(1.0, 0.0, 1e-12), 1  # unweighted first pass
    else:
        raise ValueError(f"noise must be 'auto', 'poisson' or a NoiseModel; got {noise!r}")
    # convergence tolerance in px: a fraction of the expected position error
    tol_px = tol
    # first iteration(s): positions fixed, so that amplitudes and widths of
    # bright columns are right before weak neighbours may move
    fixed = 1
    warm = max(warm, fixed + 1) if noise == "auto" else warm
    max_step = max(0.5, 0.25 * med_sig)
    it = 0
    own_model(p, cx, cy, *rows, h, w, own)
    for it in range(1, max_iter + 1):  # noqa: B007 - reported
        kn.scatter(full, own, cx, cy, *rows)
        if it == warm + 1 and n:
            # the window models lag one step behind: refresh them before using residuals
            own_model(p, cx, cy, *rows, h, w, own)
            kn.scatter(full, own, cx, cy, *rows)
            if noise == "auto":
                nm = _noise_from_fit(image, owner, full, p, cx, cy, win, nm, hessian)
                conv[:] = False
            # tolerance: a fraction of the typical position error (from a subset of columns)
            sub = np.linspace(0, n - 1, min(n, 120)).astype(np.int64)
            C = _covariance(image, owner, full, p, cx, cy, win.rows_inner, nm, hessian, sub)[0]
            err = np.sqrt(np.maximum(np.minimum(C[:, _X, _X], C[:, _Y, _Y]), 0))
            err = err[np.isfinite(err)]
            tol_px = max(tol * float(np.median(err)), 1e-7) if err.size else tol
        active = ~conv & ok
        if not active.any():
            break
        p_before = p.copy()
        iterate(image, owner, p[:, _B].copy(), full, own, p, cx, cy, *win.rows_inner, nm.alpha,
                nm.beta,
                nm.floor, lam, active, acc, it <= fixed, max_step)
        # block-Jacobi oscillates when neighbours overlap strongly: a column whose
        # (non-negligible) step reverses direction gets a smaller relaxation factor
        step = p - p_before
        rev = (np.einsum("ij,ij->i", step[:, :2], last_step[:, :2]) < 0) & (
            np.hypot(step[:, 0], step[:, 1]) > 0.5 * tol_px) & (it > warm + 1)
        omega = np.where(rev, np.maximum(0.5 * omega, 0.1), np.minimum(1.5 * omega, 1.0))
        damp = omega < 1.0
        if damp.any():
            p[damp] = p_before[damp] + omega[damp, None] * step[damp]
            sub_own = np.zeros((int(damp.sum()), own.shape[1]))
            own_model(np.ascontiguousarray(p[damp]), cx[damp], cy[damp], *rows, h, w, sub_own)
            own[damp] = sub_own
        last_step = p - p_before
        # convergence is judged on the full (undamped) step: a damped step is small
        # without the column being at its optimum
        moved = np.hypot(step[:, _X], step[:, _Y])
        # converged: an accepted step smaller than the tolerance, or no better point nearby
        conv = np.where(active, (acc & (moved < tol_px) & (it > fixed)) | (lam > 1e6), conv)
        bad = (np.hypot(p[:, _X] - x, p[:, _Y] - y) > max_shift) | ~np.isfinite(p).all(axis=1)
        if bad.any():
            p[bad] = start[bad]
            ok[bad] = False
            conv[bad] = True
            own_model(p, cx, cy, *rows, h, w, own)
        # windows and Voronoi cells follow the columns: a column that moved well away
        # from its window centre gets a re-centred window (otherwise the result would
        # depend on where the fit started)
        if it > fixed:
            nx_ = np.rint(p[:, _X]).astype(np.int64)
            ny_ = np.rint(p[:, _Y]).astype(np.int64)
            # with hysteresis (0.75 px), so a column near a pixel edge does not flip
            # between two windows
            shift = ((np.abs(p[:, _X] - cx) > 0.75) | (np.abs(p[:, _Y] - cy) > 0.75)) & ok
            if shift.any():
                cx = np.where(shift, nx_, cx)
                cy = np.where(shift, ny_, cy)
                owner = _voronoi_owner(image.shape, p[:, _X], p[:, _Y], cx, cy, win)
                sub_own = np.zeros((int(shift.sum()), own.shape[1]))
                own_model(np.ascontiguousarray(p[shift]), cx[shift], cy[shift], *rows, h, w,
                          sub_own)
                own[shift] = sub_own
                conv[shift] = False
        if it > warm and conv.all():
            break

    own_model(p, cx, cy, *rows, h, w, own)
    kn.scatter(full, own, cx, cy, *rows)
    # a fit that collapsed (a width beyond half the window: the Gaussian has become
    # background) is not a column fit: keep the start position and say so
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_min = 0.5 * (p[:, _QA] + p[:, _QC]) - np.sqrt(
            0.25 * (p[:, _QA] - p[:, _QC]) ** 2 + p[:, _QB] ** 2)
        collapsed = ok & ~(lam_min > 1.0 / (0.5 * radius) ** 2)
        # ... or is so faint that its position is unknown (error beyond half its width)
        C0, _ = _covariance(image, owner, full, p, cx, cy, win.rows_inner, nm, hessian)
        err0 = np.sqrt(np.abs(C0[:, _X, _X]) + np.abs(C0[:, _Y, _Y]))
        collapsed |= ok & ~(err0 < 0.5 * med_sig)
    if collapsed.any():
        p[collapsed] = start[collapsed]
        ok[collapsed] = False
        own_model(p, cx, cy, *rows, h, w, own)
        kn.scatter(full, own, cx, cy, *rows)
    C, chi2 = _covariance(image, owner, full, p, cx, cy, win.rows_inner, nm, hessian)
    qa, qb, qc, A = p[:, _QA], p[:, _QB], p[:, _QC], p[:, _A]
    det = np.maximum(qa * qc - qb * qb, 1e-300)
    tr = (qa + qc) / det  # trace of the covariance S = Q^-1
    disc = np.sqrt(np.maximum(((qc - qa) / det) ** 2 + 4 * (qb / det) ** 2, 0.0))
    lmax = 0.5 * (tr + disc)
    lmin = np.maximum(0.5 * (tr - disc), 1e-300)
    rot = 0.5 * np.arctan2(-2 * qb / det, (qc - qa) / det)  # major axis angle from +x
    intensity = 2 * np.pi * A / np.sqrt(det)
    grad = np.zeros((n, 7))  # d intensity / d params, for error propagation
    grad[:, _A] = intensity / np.where(A != 0, A, 1)
    grad[:, _QA] = -0.5 * intensity * qc / det
    grad[:, _QC] = -0.5 * intensity * qa / det
    grad[:, _QB] = intensity * qb / det
    var_i = np.einsum("ni,nij,nj->n", grad, C, grad)
    return GaussianFit(
        x=p[:, _X].copy(),
        y=p[:, _Y].copy(),
        # a failed fit keeps its start position, which has no fit error
        x_err=np.where(ok, np.sqrt(np.maximum(C[:, _X, _X], 0)), np.nan),
        y_err=np.where(ok, np.sqrt(np.maximum(C[:, _Y, _Y], 0)), np.nan),
        amplitude=A.copy(),
        background=p[:, _B].copy(),
        sigma_major=np.sqrt(lmax),
        sigma_minor=np.sqrt(lmin),
        rotation=rot,
        intensity=intensity,
        intensity_err=np.sqrt(np.maximum(var_i, 0)),
        chi2=chi2,
        converged=conv & ok,
        ok=ok,
        iterations=it,
        noise=nm,
        params=p,
        radius=radius,
    )


_X, _Y, _A, _B, _QA, _QB, _QC = range(7)


def render_gaussians(shape: tuple[int, int], params: np.ndarray, radius: float) -> np.ndarray:
    """Sum of the fitted Gaussians (no backgrounds) as an image of ``shape``.

    ``params`` is :attr:`GaussianFit.params`; each Gaussian is drawn in its
    circular window of ``radius`` px around its rounded centre.
    """
    from causalspy.atoms import _kernels as kn

    h, w = int(shape[0]), int(shape[1])
    params = np.ascontiguousarray(params, dtype=np.float64)
    win = _Window(radius, render_radius=radius * 4.5 / 3.5)
    cx = np.rint(params[:, _X]).astype(np.int64)
    cy = np.rint(params[:, _Y]).astype(np.int64)
    own = np.zeros((len(params), win.size))
    kn.own_model_par(params, cx, cy, *win.rows, h, w, own)
    full = np.zeros((h, w))
    kn.scatter(full, own, cx, cy, *win.rows)
    return full


def _voronoi_owner(shape, x, y, cx, cy, win) -> np.ndarray:
    """Index of the nearest column (start positions) for every pixel of every window."""
    from causalspy.atoms import _kernels as kn

    owner = np.zeros(shape, dtype=np.int64)
    best = np.full(shape, np.inf)
    if len(x):
        kn.voronoi(np.asarray(x, float), np.asarray(y, float), cx, cy, win.row_dy, win.row_dx0,
                   win.row_len, owner, best)
    return owner


def _row_percentile(vals: np.ndarray, q: float) -> np.ndarray:
    """Percentile of each row ignoring NaN (faster than np.nanpercentile per row)."""
    if vals.shape[0] == 0:
        return np.zeros(0)
    filled = np.where(np.isnan(vals), np.inf, vals)
    nin = np.isfinite(filled).sum(axis=1)
    srt = np.sort(filled, axis=1)
    idx = np.clip((q / 100.0 * np.maximum(nin - 1, 0)).astype(np.intp), 0, vals.shape[1] - 1)
    out = srt[np.arange(vals.shape[0]), idx]
    return np.where(nin > 0, out, 0.0)


def _covariance(image, owner, full, p, cx, cy, rows, nm, hessian, sel=None):
    """Inverse Fisher information (m, 7, 7) and reduced chi^2 of the columns ``sel`` (all)."""
    sel = np.arange(p.shape[0], dtype=np.int64) if sel is None else np.asarray(sel, np.int64)
    n = sel.size
    H = np.zeros((n, 7, 7))
    chi2 = np.zeros(n)
    nvalid = np.zeros(n, dtype=np.int64)
    hessian(image, owner, full, p, cx, cy, *rows, nm.alpha, nm.beta, nm.floor, sel, H, chi2,
            nvalid)
    lone = H[:, 3, 3] <= 0  # a column that owns no pixel: background not identifiable
    H[lone, 3, :] = 0.0
    H[lone, :, 3] = 0.0
    H[lone, 3, 3] = 1.0
    C = np.full((n, 7, 7), np.nan)
    good = np.isfinite(H).all(axis=(1, 2)) & (np.linalg.det(H) > 0) if n else np.zeros(0, bool)
    if good.any():
        C[good] = np.linalg.inv(H[good])
    return C, chi2 / np.maximum(nvalid - 7, 1)


def _noise_from_fit(image, owner, full, p, cx, cy, win, nm, hessian, max_columns=120):
    """Noise model from the residuals of (a subset of) the current fit.

    Squared residuals are divided by ``1 - leverage``: a fitted model
    follows the noise at high-leverage pixels (the column peaks), so raw
    residuals would underestimate the variance there.
    """
    from causalspy.atoms import _kernels as kn

    n = p.shape[0]
    sel = np.arange(n) if n <= max_columns else np.linspace(0, n - 1, max_columns).astype(np.int64)
    C, _ = _covariance(image, owner, full, p, cx, cy, win.rows_inner, nm, hessian, sel)
    # _covariance used the columns' own rendered neighbours: fine, full covers all columns
    C = np.nan_to_num(C)
    K = win.size
    mu = np.full((sel.size, K), np.nan)
    r2 = np.zeros((sel.size, K))
    lev = np.zeros((sel.size, K))
    kn.pixel_stats(image, owner, full, p, cx, cy, *win.rows_inner, nm.alpha, nm.beta, nm.floor, C,
                   sel.astype(np.int64), mu, r2, lev)
    valid = np.isfinite(mu) & (lev < 0.9)
    r2 = np.where(valid, r2 / np.where(valid, 1.0 - lev, 1.0), 0.0)
    return estimate_noise_model_from_residuals(mu[valid], r2[valid])


def refine_com(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    sigma: float | np.ndarray,
    *,
    radius: int | None = None,
    noise: NoiseModel | None = None,
    n_iter: int = 20,
    tol: float = 1e-4,
    neighbours: np.ndarray | None = None,
    max_shift: float | None = None,
) -> dict:
    """Iterated Gaussian-weighted centre of mass of every column.

    Parameters
    ----------
    image : (M, N) float array
        Image with bright columns.
    x, y : (n,) arrays
        Starting positions (px).
    sigma : float or (n,) array
        Column width (px); the weighting window has the same width.
    radius : int, optional
        Half-size of the window; default ``ceil(3 * sigma)``.
    noise : NoiseModel, optional
        Used for the error propagation (errors are NaN without it).
    neighbours : (n, 7) array, optional
        Gaussian parameters of the same columns (``GaussianFit.params``): each
        column's centre of mass is then taken on the image minus all *other*
        columns' models, so bright neighbours do not pull weak columns.
    max_shift : float, optional
        Columns that move further than this (px) get NaN (default ``2 * sigma``).

    Returns
    -------
    dict
        ``x``, ``y``, ``x_err``, ``y_err``, ``background``, ``intensity``.

    Notes
    -----
    The estimate solves :math:`\\sum_k w_k (x_k - \\hat x)(f_k - b) = 0` with
    a Gaussian window :math:`w_k` centred on :math:`\\hat x`, so a
    symmetric column on a flat background ``b`` gives its exact centre
    (a plain centre of mass in a fixed window is pulled to the window's
    centre). Errors by implicit differentiation:
    :math:`\\operatorname{var}\\hat x = \\sum_k w_k^2 (x_k-\\hat x)^2 \\operatorname{var} f_k / F'^2`.
    """
    image = np.asarray(image, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).copy()
    y = np.asarray(y, dtype=np.float64).copy()
    n = x.size
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n,)).copy()
    if radius is None:
        radius = int(np.ceil(3.0 * float(np.median(sig)))) if n else 3
    radius = max(2, int(radius))
    if max_shift is None:
        max_shift = 2.0 * float(np.median(sig)) if n else 1.0
    x_start, y_start = x.copy(), y.copy()
    model = None
    if neighbours is not None:
        neighbours = np.asarray(neighbours, dtype=np.float64)
        model = render_gaussians(image.shape, neighbours, radius).ravel()
    flat = image.ravel()
    out = {k: np.full(n, np.nan) for k in ("x", "y", "x_err", "y_err", "background", "intensity")}
    for s in range(0, n, _CHUNK):
        sl = slice(s, min(n, s + _CHUNK))
        xs, ys, sg = x[sl].copy(), y[sl].copy(), sig[sl, None]
        pt = _Patches(image.shape, xs, ys, radius)
        D = pt.take(flat)
        if model is not None:
            # image minus the other columns: subtract everything, add this column back
            q = neighbours[sl]
            dxq = pt.X - q[:, _X, None]
            dyq = pt.Y - q[:, _Y, None]
            own = q[:, _A, None] * np.exp(-0.5 * (q[:, _QA, None] * dxq * dxq
                                                  + 2 * q[:, _QB, None] * dxq * dyq
                                                  + q[:, _QC, None] * dyq * dyq))
            D = D - pt.take(model) + np.where(pt.valid, own, 0.0)
        dvals = np.where(pt.valid, D, np.nan)
        b = np.nanpercentile(dvals, 10, axis=1)
        F = np.where(pt.valid, D - b[:, None], 0.0)
        for _ in range(n_iter):
            dx = pt.X - xs[:, None]
            dy = pt.Y - ys[:, None]
            w = np.exp(-0.5 * (dx * dx + dy * dy) / sg**2) * pt.valid
            wf = w * F
            S = wf.sum(axis=1)
            S = np.where(np.abs(S) > 0, S, np.nan)
            sx = (wf * dx).sum(axis=1) / S
            sy = (wf * dy).sum(axis=1) / S
            # the implicit equation's Newton step (a plain CoM step would stall at half way)
            sxx = (wf * (dx * dx / sg**2 - 1)).sum(axis=1) / S
            syy = (wf * (dy * dy / sg**2 - 1)).sum(axis=1) / S
            stepx = np.clip(-sx / np.where(sxx < -0.05, sxx, -1.0), -1, 1)
            stepy = np.clip(-sy / np.where(syy < -0.05, syy, -1.0), -1, 1)
            stepx = np.nan_to_num(stepx)
            stepy = np.nan_to_num(stepy)
            xs += stepx
            ys += stepy
            if max(np.abs(stepx).max(initial=0), np.abs(stepy).max(initial=0)) < tol:
                break
        dx = pt.X - xs[:, None]
        dy = pt.Y - ys[:, None]
        w = np.exp(-0.5 * (dx * dx + dy * dy) / sg**2) * pt.valid
        if noise is None:
            var = np.full_like(D, np.nan)
        else:
            var = noise.variance(D)
        Fx = (w * F * (dx * dx / sg**2 - 1)).sum(axis=1)
        Fy = (w * F * (dy * dy / sg**2 - 1)).sum(axis=1)
        out["x_err"][sl] = np.sqrt((w * w * dx * dx * var).sum(axis=1)) / np.abs(Fx)
        out["y_err"][sl] = np.sqrt((w * w * dy * dy * var).sum(axis=1)) / np.abs(Fy)
        far = np.hypot(xs - x_start[sl], ys - y_start[sl]) > max_shift
        xs[far] = np.nan
        ys[far] = np.nan
        out["x"][sl], out["y"][sl] = xs, ys
        out["background"][sl] = b
        disk = (dx * dx + dy * dy <= (2.0 * sg) ** 2) * pt.valid
        # flux inside 2 sigma is 1 - exp(-2) of a Gaussian's total
        out["intensity"][sl] = (F * disk).sum(axis=1) / (1 - np.exp(-2.0))
    return out
