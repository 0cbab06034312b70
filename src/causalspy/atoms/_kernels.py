"""Compiled inner loops for the joint Gaussian fit (numba).

Each kernel runs over all columns at once (``prange``: compiled and
multi-threaded, not a Python loop); every column owns the pixels of a
circular window centred on its starting position. Parameter order per
column: ``x, y, A, b, qa, qb, qc`` with the Gaussian
``A exp(-(qa dx^2 + 2 qb dx dy + qc dy^2) / 2)`` on a constant ``b``.
Two builds of each kernel exist: multi-threaded for direct calls and
single-threaded for use inside Dask tasks (which bring their own threads).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

NP = 7


def _jac(A, G, dx, dy, qa, qb, qc, J):
    AG = A * G
    J[0] = AG * (qa * dx + qb * dy)
    J[1] = AG * (qb * dx + qc * dy)
    J[2] = G
    J[3] = 1.0
    J[4] = -0.5 * AG * dx * dx
    J[5] = -AG * dx * dy
    J[6] = -0.5 * AG * dy * dy


def _chol_solve(M, g, out):
    """Solve M out = g for a 7x7 symmetric positive definite M; False if not SPD."""
    L = np.zeros((NP, NP))
    for i in range(NP):
        for j in range(i + 1):
            s = M[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                if s <= 0.0 or not np.isfinite(s):
                    return False
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    z = np.zeros(NP)
    for i in range(NP):
        s = g[i]
        for k in range(i):
            s -= L[i, k] * z[k]
        z[i] = s / L[i, i]
    for i in range(NP - 1, -1, -1):
        s = z[i]
        for k in range(i + 1, NP):
            s -= L[k, i] * out[k]
        out[i] = s / L[i, i]
    return True


def _own_model(p, cx, cy, offy, offx, shape, own):
    """own[i, k] = column i's Gaussian (no background) at its window pixel k."""
    h, w = shape[0], shape[1]
    n = p.shape[0]
    K = offy.shape[0]
    for i in prange(n):
        x0, y0, A = p[i, 0], p[i, 1], p[i, 2]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        for k in range(K):
            Y = cy[i] + offy[k]
            X = cx[i] + offx[k]
            if Y < 0 or Y >= h or X < 0 or X >= w:
                own[i, k] = 0.0
                continue
            dx = X - x0
            dy = Y - y0
            own[i, k] = A * math.exp(-0.5 * (qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy))


def _scatter(full, own, cx, cy, offy, offx):
    """full[...] = sum over columns of their window models ``own``."""
    h, w = full.shape
    full[:, :] = 0.0
    n = own.shape[0]
    K = offy.shape[0]
    for i in range(n):
        for k in range(K):
            Y = cy[i] + offy[k]
            X = cx[i] + offx[k]
            if Y < 0 or Y >= h or X < 0 or X >= w:
                continue
            full[Y, X] += own[i, k]


def _iterate(img, full, own_buf, p, cx, cy, offy, offx, alpha, beta, floor, lam, active, acc, exact):
    """One damped Fisher-scoring (Levenberg-Marquardt) step for every active column."""
    h, w = img.shape
    n = p.shape[0]
    K = offy.shape[0]
    for i in prange(n):
        acc[i] = False
        if not active[i]:
            continue
        x0, y0, A, b = p[i, 0], p[i, 1], p[i, 2], p[i, 3]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        H = np.zeros((NP, NP))
        g = np.zeros(NP)
        J = np.zeros(NP)
        bd = np.empty(K)
        bo = np.empty(K)
        bw = np.zeros(K)
        bn = np.empty(K)
        chi_old = 0.0
        for k in range(K):
            Y = cy[i] + offy[k]
            X = cx[i] + offx[k]
            if Y < 0 or Y >= h or X < 0 or X >= w:
                bw[k] = 0.0
                continue
            dx = X - x0
            dy = Y - y0
            G = math.exp(-0.5 * (qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy))
            own = A * G
            oth = full[Y, X] - own_buf[i, k]
            own_buf[i, k] = own  # neighbours see this column's current model next iteration
            mu = oth + own + b
            var = alpha + beta * mu
            if var < floor:
                var = floor
            wt = 1.0 / var
            d = img[Y, X]
            r = d - mu
            chi_old += wt * r * r
            bd[k] = d
            bo[k] = oth
            bw[k] = wt
            _jac(A, G, dx, dy, qa, qb, qc, J)
            for a in range(NP):
                wa = wt * J[a]
                g[a] += wa * r
                for c in range(a + 1):
                    H[a, c] += wa * J[c]
        for a in range(NP):
            for c in range(a):
                H[c, a] = H[a, c]
        li = lam[i]
        M = np.empty((NP, NP))
        step = np.zeros(NP)
        accepted = False
        # near the optimum (small damping, small step) a Fisher-scoring step is
        # trusted without re-evaluating the model, which halves the cost
        if li < 1e-2 and not exact:
            for a in range(NP):
                for c in range(NP):
                    M[a, c] = H[a, c]
                M[a, a] = H[a, a] * (1.0 + li)
            if _chol_solve(M, g, step):
                small = (abs(step[0]) < 0.1 and abs(step[1]) < 0.1 and abs(step[2]) < 0.05 * A
                         and abs(step[4]) < 0.05 * qa and abs(step[6]) < 0.05 * qc
                         and abs(step[5]) < 0.05 * math.sqrt(qa * qc))
                if small:
                    for a in range(NP):
                        p[i, a] += step[a]
                    lam[i] = max(li * 0.1, 1e-7)
                    acc[i] = True
                    continue
        for _t in range(6):
            for a in range(NP):
                for c in range(NP):
                    M[a, c] = H[a, c]
                M[a, a] = H[a, a] * (1.0 + li)
            if not _chol_solve(M, g, step):
                li *= 10.0
                continue
            nx, ny = x0 + step[0], y0 + step[1]
            nA, nb = A + step[2], b + step[3]
            na, nbq, nc = qa + step[4], qb + step[5], qc + step[6]
            if nA <= 0.0 or na <= 0.0 or nc <= 0.0 or na * nc - nbq * nbq <= 0.0:
                li *= 10.0
                continue
            chi_new = 0.0
            for k in range(K):
                if bw[k] == 0.0:
                    continue
                dx = cx[i] + offx[k] - nx
                dy = cy[i] + offy[k] - ny
                G = math.exp(-0.5 * (na * dx * dx + 2.0 * nbq * dx * dy + nc * dy * dy))
                bn[k] = nA * G
                r = bd[k] - bo[k] - bn[k] - nb
                chi_new += bw[k] * r * r
            if chi_new <= chi_old and np.isfinite(chi_new):
                accepted = True
                break
            li *= 10.0
        if accepted:
            for a in range(NP):
                p[i, a] += step[a]
            lam[i] = max(li * 0.1, 1e-7)
            acc[i] = True
            if exact:
                for k in range(K):
                    if bw[k] != 0.0:
                        own_buf[i, k] = bn[k]
        else:
            lam[i] = li


def _hessian(img, full, p, cx, cy, offy, offx, alpha, beta, floor, Hout, chi2, nvalid):
    """Undamped Fisher information and chi^2 of every column at the current fit."""
    h, w = img.shape
    n = p.shape[0]
    K = offy.shape[0]
    for i in prange(n):
        x0, y0, A, b = p[i, 0], p[i, 1], p[i, 2], p[i, 3]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        J = np.zeros(NP)
        c2 = 0.0
        m = 0
        for a in range(NP):
            for c in range(NP):
                Hout[i, a, c] = 0.0
        for k in range(K):
            Y = cy[i] + offy[k]
            X = cx[i] + offx[k]
            if Y < 0 or Y >= h or X < 0 or X >= w:
                continue
            dx = X - x0
            dy = Y - y0
            G = math.exp(-0.5 * (qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy))
            mu = full[Y, X] + b
            var = alpha + beta * mu
            if var < floor:
                var = floor
            wt = 1.0 / var
            r = img[Y, X] - mu
            c2 += wt * r * r
            m += 1
            _jac(A, G, dx, dy, qa, qb, qc, J)
            for a in range(NP):
                wa = wt * J[a]
                for c in range(a + 1):
                    Hout[i, a, c] += wa * J[c]
        for a in range(NP):
            for c in range(a):
                Hout[i, c, a] = Hout[i, a, c]
        chi2[i] = c2
        nvalid[i] = m


def _pixel_stats(img, full, p, cx, cy, offy, offx, alpha, beta, floor, C, sel, mu_out, r2_out, lev_out):
    """Model, squared residual and leverage of every pixel of the columns ``sel``."""
    h, w = img.shape
    K = offy.shape[0]
    for s in prange(sel.shape[0]):
        i = sel[s]
        x0, y0, A, b = p[i, 0], p[i, 1], p[i, 2], p[i, 3]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        J = np.zeros(NP)
        for k in range(K):
            Y = cy[i] + offy[k]
            X = cx[i] + offx[k]
            if Y < 0 or Y >= h or X < 0 or X >= w:
                mu_out[s, k] = np.nan
                continue
            dx = X - x0
            dy = Y - y0
            G = math.exp(-0.5 * (qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy))
            mu = full[Y, X] + b
            var = alpha + beta * mu
            if var < floor:
                var = floor
            _jac(A, G, dx, dy, qa, qb, qc, J)
            lv = 0.0
            for a in range(NP):
                for c in range(NP):
                    lv += J[a] * C[s, a, c] * J[c]
            r = img[Y, X] - mu
            mu_out[s, k] = mu
            r2_out[s, k] = r * r
            lev_out[s, k] = lv / var


_opts = dict(cache=True, fastmath=True, nogil=True)
_jac = njit(inline="always", **_opts)(_jac)
_chol_solve = njit(**_opts)(_chol_solve)
own_model_par = njit(parallel=True, **_opts)(_own_model)
own_model_ser = njit(**_opts)(_own_model)
scatter = njit(**_opts)(_scatter)
iterate_par = njit(parallel=True, **_opts)(_iterate)
iterate_ser = njit(**_opts)(_iterate)
hessian_par = njit(parallel=True, **_opts)(_hessian)
hessian_ser = njit(**_opts)(_hessian)
pixel_stats = njit(**_opts)(_pixel_stats)
