"""Shared-width refit of column positions for cell descriptors.

``find_atoms`` fits every column with its own elliptical width, which is right
for finding and classifying columns but costs precision where a weak column
sits in the tails of bright neighbours (a B column between heavy A columns):
the noise of each neighbour's fitted width enters the weak column's model and
its position (measured: B-column RMS error about 1.2x the Cramér–Rao bound at
1e4 counts, 1.02-1.09x after this refit). All columns of one sublattice are
imaged with the same probe, so this module refits the positions with one
width per sublattice, every other column subtracted with that width, and a
pixel-noise model re-estimated from the refit residuals (the noise model of
the first fit is inflated by the misfit of bright columns).

The fit of each column is a weighted Gauss-Newton fit of a pixel-integrated
circular Gaussian plus a constant, parameters ``x, y, N, b``, vectorized over
columns in chunks (separable 1D error functions, no Python loop per column).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import erf

from causalspy.data._render import render_columns

__all__ = ["refit_positions"]

_SQ2 = np.sqrt(2.0)
_SQ2PI = np.sqrt(2.0 * np.pi)
#: Columns per vectorized batch (bounds memory to about chunk * window pixels * 12 floats).
_CHUNK = 2048
#: Columns of the central patch the widths are fitted on.
_PATCH = 400
#: Rounds of the final per-column fit over the sublattices.
_ROUNDS = 2
#: Fraction of the patch (nearest its centre) whose columns set the widths.
_INNER = 0.5


def _profile(p: np.ndarray, c: np.ndarray, s: np.ndarray):
    """Pixel integrals of a 1D Gaussian and their derivatives in the centre and the width."""
    up = (p + 0.5 - c) / s
    um = (p - 0.5 - c) / s
    integ = 0.5 * (erf(up / _SQ2) - erf(um / _SQ2))
    gp = np.exp(-0.5 * up * up) / _SQ2PI
    gm = np.exp(-0.5 * um * um) / _SQ2PI
    return integ, -(gp - gm) / s, -(gp * up - gm * um) / s


class _NoiseModel:
    """Pixel variance ``alpha + beta * mu`` with a positive floor."""

    def __init__(self, alpha: float, beta: float, floor: float):
        self.alpha, self.beta, self.floor = float(alpha), float(beta), float(floor)

    def variance(self, mu):
        return np.maximum(self.alpha + self.beta * mu, self.floor)

    def as_dict(self):
        return {"alpha": self.alpha, "beta": self.beta, "floor": self.floor}


def _fit_noise(mu: np.ndarray, r: np.ndarray, fallback: _NoiseModel) -> _NoiseModel:
    """Affine variance model from squared residuals binned in the model value."""
    if mu.size < 200:
        return fallback
    edges = np.quantile(mu, np.linspace(0, 1, 21))
    k = np.clip(np.searchsorted(edges, mu, side="right") - 1, 0, 19)
    cnt = np.bincount(k, minlength=20)
    ok = cnt > 10
    mb = np.bincount(k, mu, 20)[ok] / cnt[ok]
    vb = np.bincount(k, r * r, 20)[ok] / cnt[ok]
    if len(mb) < 3 or np.ptp(mb) <= 0:
        return fallback
    # relative errors of a variance estimate scale with the variance: weight by 1/v
    A = np.column_stack([np.ones_like(mb), mb]) / vb[:, None]
    alpha, beta = np.linalg.lstsq(A, np.ones_like(vb), rcond=None)[0]
    floor = 1e-3 * float(np.median(vb))
    if np.any(alpha + beta * mb <= floor):
        alpha, beta = float(np.mean(vb)), 0.0
    return _NoiseModel(alpha, beta, floor)


def _fit_columns(img, others, x, y, N, sig, idx, nm, radius, n_iter, max_shift, stats=None,
                 fit_sigma=False, n_err=None):
    """Gauss-Newton fit of columns ``idx`` on ``img - others + own model``.

    ``others`` is the model of all columns (own included); each column's own
    start model is removed from it inside its window. ``fit_sigma``: the
    width is a fifth free parameter (returned as ``sig`` in place of the
    errors' last entry).
    """
    h, w = img.shape
    R = int(np.ceil(radius))
    off = np.arange(-R, R + 1)
    oy, ox = np.meshgrid(off, off, indexing="ij")
    circ = (oy**2 + ox**2 <= radius**2).ravel()
    # window pixels: a disc, as (row offset index, column offset index)
    ky, kx = oy.ravel()[circ] + R, ox.ravel()[circ] + R
    nx, ny, nN = x.copy(), y.copy(), N.copy()
    ex = np.full(len(x), np.nan)
    ey = np.full(len(x), np.nan)
    ok = np.zeros(len(x), bool)
    for s0 in range(0, len(idx), _CHUNK):
        k = idx[s0:s0 + _CHUNK]
        n = len(k)
        px = np.rint(x[k]).astype(np.int64)[:, None] + off  # (n, W)
        py = np.rint(y[k]).astype(np.int64)[:, None] + off
        PX, PY = px[:, kx], py[:, ky]  # (n, P)
        inside = (PX >= 0) & (PX < w) & (PY >= 0) & (PY < h)
        flat = np.clip(PY, 0, h - 1) * w + np.clip(PX, 0, w - 1)
        data = img.ravel()[flat]
        s = sig[k][:, None]
        ix, _, _ = _profile(px, x[k][:, None], s)
        iy, _, _ = _profile(py, y[k][:, None], s)
        rest = others.ravel()[flat] - N[k][:, None] * iy[:, ky] * ix[:, kx]
        b = np.nan_to_num(np.nanpercentile(np.where(inside, data - rest, np.nan), 10, axis=1))
        cxk, cyk, Nk = x[k].copy(), y[k].copy(), np.maximum(N[k], 0.0).copy()
        sk = s[:, 0].copy()
        npar = 5 if fit_sigma else 4
        J = np.ones((n, npar, PX.shape[1]))
        eye = 1e-12 * np.eye(npar)
        for it in range(n_iter + 1):
            ix, dx, dsx = _profile(px, cxk[:, None], sk[:, None])
            iy, dy, dsy = _profile(py, cyk[:, None], sk[:, None])
            ixp, iyp = ix[:, kx], iy[:, ky]
            G = iyp * ixp
            mu = rest + b[:, None] + Nk[:, None] * G
            wgt = np.where(inside, 1.0 / nm.variance(mu), 0.0)
            J[:, 0] = Nk[:, None] * iyp * dx[:, kx]
            J[:, 1] = Nk[:, None] * dy[:, ky] * ixp
            J[:, 2] = G
            if fit_sigma:
                J[:, 4] = Nk[:, None] * (dsy[:, ky] * ixp + iyp * dsx[:, kx])
            Jw = J * wgt[:, None, :]
            H = Jw @ J.transpose(0, 2, 1)
            if it == n_iter:
                break
            g = (Jw @ (data - mu)[:, :, None])[..., 0]
            step = np.linalg.solve(H + eye, g[..., None])[..., 0]
            step[:, :2] = np.clip(np.nan_to_num(step[:, :2]), -1.0, 1.0)
            cxk += step[:, 0]
            cyk += step[:, 1]
            Nk += np.nan_to_num(step[:, 2])
            b += np.nan_to_num(step[:, 3])
            if fit_sigma:
                sk = np.clip(sk + np.clip(np.nan_to_num(step[:, 4]), -0.5, 0.5), 0.3, radius / 2)
        with np.errstate(invalid="ignore"):
            cov = np.linalg.inv(H + eye)
        good = (np.isfinite(cxk) & np.isfinite(cyk) & (Nk > 0)
                & (np.hypot(cxk - x[k], cyk - y[k]) < max_shift))
        if stats is not None:
            sel = inside & good[:, None]
            stats.append((mu[sel], (data - mu)[sel]))
        nx[k] = np.where(good, cxk, x[k])
        ny[k] = np.where(good, cyk, y[k])
        nN[k] = np.where(good, Nk, N[k])
        ex[k] = np.where(good, np.sqrt(np.abs(cov[:, 0, 0])), np.nan)
        ey[k] = np.where(good, np.sqrt(np.abs(cov[:, 1, 1])), np.nan)
        if n_err is not None:
            n_err[k] = np.where(good, np.sqrt(np.abs(cov[:, 2, 2])), np.nan)
        if fit_sigma:
            ey[k] = np.where(good, sk, np.nan)
        ok[k] = good
    return nx, ny, nN, ex, ey, ok


def _joint_widths(img, x, y, N, sig, sub, sublattices, patch, nm, max_shift, n_iter=6):
    """Joint Gauss-Newton fit of a patch: x, y, N per column, one width per sublattice, plane.

    Columns outside the patch (and of other sublattices' widths) are held fixed.
    Returns ``{"sigma": {label: width}, "N": counts, "index": columns}`` (counts of the
    inner columns) or None.
    """
    h, w = img.shape
    n = len(patch)
    labels = [int(v) for v in sublattices]
    gidx = np.array([labels.index(int(v)) if int(v) in labels else -1 for v in sub[patch]],
                    dtype=np.int64)
    if n < 8 or not (gidx >= 0).any():
        return None
    # windows wide enough for a width under-estimated by 30 % (the model must hold the
    # tails of the true columns, else the fit settles on a compromise width)
    R = int(np.ceil(4.5 * sig[patch].max()))
    rest = np.ones(len(x), bool)
    rest[patch] = False
    # columns around the patch are held fixed, but with the current widths (and their
    # counts scaled to keep their peak heights): a wrong width outside biases the edge
    grest = np.array([labels.index(int(v)) if int(v) in labels else -1 for v in sub[rest]],
                     dtype=np.int64)
    near = rest.copy()
    if rest.any():
        d, _ = cKDTree(np.column_stack([x[patch], y[patch]])).query(
            np.column_stack([x[rest], y[rest]]))
        near[rest] = d < R + 5.5 * sig.max()  # every column whose tail reaches a window
    near_g = grest[near[rest]]
    off = np.arange(-R, R + 1)
    oy, ox = np.meshgrid(off, off, indexing="ij")
    disc = (oy**2 + ox**2 <= R**2).ravel()
    ky, kx = oy.ravel()[disc] + R, ox.ravel()[disc] + R
    px0 = np.rint(x[patch]).astype(np.int64)[:, None] + off
    py0 = np.rint(y[patch]).astype(np.int64)[:, None] + off
    PX, PY = px0[:, kx], py0[:, ky]
    inside = (PX >= 0) & (PX < w) & (PY >= 0) & (PY < h)
    flat = np.where(inside, PY * w + PX, -1)
    pix, inv = np.unique(flat[inside], return_inverse=True)
    rowid = np.full(flat.shape, -1)
    rowid[inside] = inv
    m = len(pix)
    data = img.ravel()[pix]
    base = np.zeros(m)
    # the outer part of the patch (``patch`` is sorted by distance from its centre) is a
    # buffer: its columns are free, but only the pixels of the inner columns' windows enter
    # the fit, so the columns held fixed outside (whose counts may be biased) barely reach it
    n_in = max(1, int(_INNER * n))
    r_in = 3.5 * float(np.median(sig[patch]))
    d_in, _ = cKDTree(np.column_stack([x[patch[:n_in]], y[patch[:n_in]]])).query(
        np.column_stack([pix % w, pix // w]).astype(float))
    wpix = (d_in <= r_in).astype(float)
    xs, ys = (pix % w).astype(float), (pix // w).astype(float)
    xs, ys = (xs - xs.mean()) / max(np.ptp(xs), 1.0), (ys - ys.mean()) / max(np.ptp(ys), 1.0)
    cx, cy, cN = x[patch].copy(), y[patch].copy(), np.maximum(N[patch], 0.0).copy()
    widths = np.array([float(np.median(sig[sub == v])) for v in labels])
    own_sig = sig[patch].copy()
    b = np.array([float(np.percentile(data, 5)), 0.0, 0.0])
    nsig = len(labels)
    npar = 3 * n + nsig + 3
    col = np.broadcast_to(np.arange(n)[:, None], inside.shape)[inside]
    rows = rowid[inside]
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    w0 = widths.copy()
    xr, yr, Nr, sr = x[near], y[near], N[near], sig[near]
    for _ in range(n_iter):
        scale_r = np.where(near_g >= 0, widths[np.maximum(near_g, 0)] / w0[np.maximum(near_g, 0)],
                           1.0)
        fixed = render_columns(img.shape, xr, yr, Nr * scale_r**2, sr * scale_r, truncate=5.0)
        base = fixed.ravel()[pix]
        s_col = np.where(gidx >= 0, widths[np.maximum(gidx, 0)], own_sig)[:, None]
        ix, dx, dsx = _profile(px0, cx[:, None], s_col)
        iy, dy, dsy = _profile(py0, cy[:, None], s_col)
        ixp, iyp = ix[:, kx], iy[:, ky]
        G = iyp * ixp
        mu = base + b[0] + b[1] * xs + b[2] * ys
        mu = mu + np.bincount(rows, (cN[:, None] * G)[inside], minlength=m)
        var = nm.variance(mu) / np.maximum(wpix, 1e-12)
        vals = [(cN[:, None] * iyp * dx[:, kx])[inside], (cN[:, None] * dy[:, ky] * ixp)[inside],
                G[inside]]
        cols = [3 * col, 3 * col + 1, 3 * col + 2]
        has = gidx[col] >= 0
        ds = (cN[:, None] * (dsy[:, ky] * ixp + iyp * dsx[:, kx]))[inside]
        vals.append(ds[has])
        cols.append(3 * n + gidx[col][has])
        rr = [rows] * 3 + [rows[has]]
        for k, v in enumerate((np.ones(m), xs, ys)):
            vals.append(v)
            cols.append(np.full(m, 3 * n + nsig + k))
            rr.append(np.arange(m))
        J = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rr), np.concatenate(cols))),
                          shape=(m, npar))
        Jw = J.multiply(1.0 / var[:, None]).tocsr()
        H = (J.T @ Jw).tocsc()
        g = Jw.T @ (data - mu)
        H = H + sp.diags(1e-6 * H.diagonal() + 1e-300, format="csc")
        step = spsolve(H, g)
        if not np.all(np.isfinite(step)):
            return None
        cx += np.clip(step[0:3 * n:3], -1.0, 1.0)
        cy += np.clip(step[1:3 * n:3], -1.0, 1.0)
        cN = np.maximum(cN + step[2:3 * n:3], 0.0)
        widths = np.clip(widths + np.clip(step[3 * n:3 * n + nsig], -0.3, 0.3), 0.3, R / 2)
        b = b + step[3 * n + nsig:]
    moved = np.hypot(cx - x[patch], cy - y[patch])
    if np.median(moved) > max_shift:
        return None
    # the buffer's counts are poorly determined (few of their pixels enter the fit)
    return {"sigma": dict(zip(labels, widths.tolist(), strict=True)), "N": cN[:n_in],
            "index": patch[:n_in]}


def refit_positions(image, table, sublattices, *, invert=False, noise=None, separation=None,
                    n_iter=4):
    """Refit the positions of the columns of ``sublattices`` with one width per sublattice.

    Parameters
    ----------
    image : (h, w) array
        The image the columns were found in (raw, not inverted).
    table : DataFrame
        Atoms table (``x, y, intensity, sigma_major, sigma_minor, sublattice``,
        optionally ``edge, fit_ok``).
    sublattices : sequence of int
        Labels refitted, in this order (weak sublattices last, so they see
        their refitted bright neighbours).
    invert : bool
        Dark columns on a bright background (fit ``max - image``).
    noise : dict, optional
        Starting pixel-noise model ``alpha, beta, floor``; it is re-estimated
        from the residuals of a first pass.
    separation : float, optional
        A fit moving further than ``0.25 * separation`` from its start keeps
        the start position (``ok`` False).

    Returns
    -------
    dict
        ``x, y, x_err, y_err, intensity, intensity_err, ok`` (arrays over the table's rows;
        rows not refitted keep their values, errors NaN), ``sigma`` (width
        per refitted sublattice) and ``noise`` (the re-estimated model).
    """
    img = np.asarray(image, dtype=np.float64)
    if invert:
        img = float(img.max()) - img
    x = table["x"].to_numpy(float).copy()
    y = table["y"].to_numpy(float).copy()
    N = np.nan_to_num(table["intensity"].to_numpy(float), nan=0.0).clip(0.0)
    sub = table["sublattice"].to_numpy()
    if "sigma_major" in table and "sigma_minor" in table:
        sig = np.sqrt(table["sigma_major"].to_numpy(float) * table["sigma_minor"].to_numpy(float))
    else:
        sig = table["sigma"].to_numpy(float)
    good = np.isfinite(sig) & (sig > 0)
    if "fit_ok" in table:
        good &= table["fit_ok"].to_numpy(bool)
    interior = good & ~(table["edge"].to_numpy(bool) if "edge" in table else False)
    fallback = float(np.median(sig[good])) if good.any() else 1.0
    sig = np.where(good, sig, fallback)
    widths = {}
    for s in sublattices:
        m = sub == s
        ref = m & interior if (m & interior).sum() >= 3 else m & good
        widths[int(s)] = float(np.median(sig[ref])) if ref.any() else fallback
        # keep each column's peak height: N = 2 pi A sigma^2
        N[m] *= (widths[int(s)] / sig[m]) ** 2
        sig[m] = widths[int(s)]
    max_shift = 0.25 * float(separation) if separation else 3.0 * fallback
    nm0 = noise or {"alpha": 0.0, "beta": 1.0, "floor": 1e-6}
    nm = _NoiseModel(nm0.get("alpha", 0.0), nm0.get("beta", 1.0), nm0.get("floor", 1e-6))

    def model(xx, yy, NN):
        return render_columns(img.shape, xx, yy, NN, sig, truncate=5.0)

    order = [np.flatnonzero(sub == s) for s in sublattices]

    def noise_from_probe(nm):
        # a pass over (up to 2000 columns of) the last, weakest sublattice gives the
        # residuals the noise model is estimated from
        stats: list = []
        last = order[-1]
        probe = (last[np.linspace(0, len(last) - 1, min(len(last), 2000)).astype(int)]
                 if len(last) else last)
        _fit_columns(img, model(x, y, N), x, y, N, sig, probe, nm,
                     3.5 * sig[probe].max(initial=1.0), n_iter, max_shift, stats=stats)
        if not stats:
            return nm
        return _fit_noise(np.concatenate([a for a, _ in stats]),
                          np.concatenate([b for _, b in stats]), nm)

    nm = noise_from_probe(nm)
    # widths: the first fit's widths are biased where columns overlap strongly (ABF: O
    # columns half a cell from A and B), and a wrong neighbour width pushes a column off
    # its place. One width per sublattice is fitted jointly with the positions and counts
    # of the columns nearest the image centre (every column of that patch at once).
    h, w = img.shape
    d_centre = np.hypot(x - (w - 1) / 2, y - (h - 1) / 2)
    patch = np.argsort(d_centre)[:min(len(x), _PATCH)]
    in_patch = np.zeros(len(x), bool)
    in_patch[patch] = True
    fitted = _joint_widths(img, x, y, N, sig, sub, sublattices, patch, nm, max_shift)
    if fitted is not None:
        for s_ in sublattices:
            m = sub == s_
            new = fitted["sigma"].get(int(s_))
            if new is None or not np.isfinite(new):
                continue
            N[m] *= (new / widths[int(s_)]) ** 2
            widths[int(s_)] = new
            sig[m] = new
        # the first fit's counts may be biased per sublattice (ABF: its local backgrounds
        # take up the overlapping tails): carry the patch's correction to every column
        inner = fitted["index"]
        in_patch[:] = False
        in_patch[inner] = True
        ratio = np.ones(len(x))
        ratio[inner] = fitted["N"] / np.maximum(N[inner], 1e-300)
        for s_ in sublattices:
            m = sub == s_
            mp = m & in_patch & np.isfinite(ratio) & (ratio > 0)
            if mp.sum() >= 3:
                N[m & ~in_patch] *= float(np.median(ratio[mp]))
        N[inner] = fitted["N"]
    nm = noise_from_probe(nm)
    ex = np.full(len(x), np.nan)
    ey = np.full(len(x), np.nan)
    eN = np.full(len(x), np.nan)
    ok = np.zeros(len(x), bool)
    for k in order * _ROUNDS:
        if not len(k):
            continue
        others = model(x, y, N)
        x1, y1, N1, ex1, ey1, ok1 = _fit_columns(img, others, x, y, N, sig, k, nm,
                                                 3.5 * float(sig[k][0]), n_iter, max_shift,
                                                 n_err=eN)
        x[k], y[k], N[k], ex[k], ey[k], ok[k] = x1[k], y1[k], N1[k], ex1[k], ey1[k], ok1[k]
    return {"x": x, "y": y, "x_err": ex, "y_err": ey, "intensity": N, "intensity_err": eN,
            "ok": ok,
            "sigma": widths, "noise": nm.as_dict()}
