"""Compiled inner loops for the joint Gaussian fit (numba).

Each kernel runs over all columns at once (``prange``: compiled, optionally
multi-threaded; no Python loop per column). Every column owns the pixels
of a circular window centred on its (integer) starting position, stored
row by row: row ``r`` has ``row_len[r]`` pixels at offsets
``(row_dy[r], row_dx0[r] + j)`` and window index ``row_k0[r] + j``.

Along a row the Gaussian is evaluated by recurrence (two exponentials per
row instead of one per pixel): with ``E(dx)`` the quadratic exponent,
``G(dx+1) = G(dx) r(dx)`` and ``r(dx+1) = r(dx) exp(-qa)``.

Parameter order per column: ``x, y, A, b, qa, qb, qc`` for
``A exp(-(qa dx^2 + 2 qb dx dy + qc dy^2) / 2) + b``.
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
    """Solve ``M out = g`` for a 7x7 symmetric positive definite ``M``; False if not SPD."""
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


def _pix(G, dx, dy, qa, qb, qc):
    """Gaussian integrated over the pixel, to second order: a unit box blur adds
    ``(d2/dx2 + d2/dy2) G / 24``, so the fitted widths are the columns' own."""
    gx = qa * dx + qb * dy
    gy = qb * dx + qc * dy
    return G * (1.0 + (gx * gx - qa + gy * gy - qc) / 24.0)


def _row_start(x0, y0, qa, qb, qc, X, Y):
    """Gaussian at the first pixel of a row and the ratio to the next pixel."""
    dx = X - x0
    dy = Y - y0
    G = math.exp(-0.5 * (qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy))
    r = math.exp(-0.5 * (qa * (2.0 * dx + 1.0) + 2.0 * qb * dy))
    return G, r


def _own_model(p, cx, cy, row_dy, row_dx0, row_len, row_k0, h, w, own):
    """own[i, k] = column i's Gaussian (no background) at its window pixel k."""
    n = p.shape[0]
    for i in prange(n):
        x0, y0, A = p[i, 0], p[i, 1], p[i, 2]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        c = math.exp(-qa)
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            X0 = cx[i] + row_dx0[rr]
            G, r = _row_start(x0, y0, qa, qb, qc, X0, Y)
            k0 = row_k0[rr]
            for j in range(row_len[rr]):
                X = X0 + j
                if Y < 0 or Y >= h or X < 0 or X >= w:
                    own[i, k0 + j] = 0.0
                else:
                    own[i, k0 + j] = A * _pix(G, X - x0, Y - y0, qa, qb, qc)
                G *= r
                r *= c


def _voronoi(x, y, cx, cy, row_dy, row_dx0, row_len, owner, best):
    """owner[Y, X] = index of the nearest column among those whose window covers the pixel."""
    h, w = owner.shape
    for i in range(x.shape[0]):
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            if Y < 0 or Y >= h:
                continue
            ddy = Y - y[i]
            X0 = cx[i] + row_dx0[rr]
            for j in range(row_len[rr]):
                X = X0 + j
                if X < 0 or X >= w:
                    continue
                ddx = X - x[i]
                d2 = ddx * ddx + ddy * ddy
                if d2 < best[Y, X]:
                    best[Y, X] = d2
                    owner[Y, X] = i


def _scatter(full, own, cx, cy, row_dy, row_dx0, row_len, row_k0):
    """full[...] = sum over columns of their window models ``own``."""
    h, w = full.shape
    full[:, :] = 0.0
    n = own.shape[0]
    for i in range(n):
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            if Y < 0 or Y >= h:
                continue
            X0 = cx[i] + row_dx0[rr]
            k0 = row_k0[rr]
            for j in range(row_len[rr]):
                X = X0 + j
                if X < 0 or X >= w:
                    continue
                full[Y, X] += own[i, k0 + j]


def _iterate(img, owner, bvals, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0, inner,
             alpha,
             beta, floor, lam, active, acc, fix_pos, max_step):
    """One damped Fisher-scoring (Levenberg-Marquardt) step for every active column.

    ``full`` is the sum of all window models ``own_buf``; the column's own
    accepted model is written back to ``own_buf`` so the next iteration's
    neighbours see it (block Jacobi).
    """
    h, w = img.shape
    n = p.shape[0]
    K = own_buf.shape[1]
    for i in prange(n):
        acc[i] = False
        if not active[i]:
            continue
        x0, y0, A, b = p[i, 0], p[i, 1], p[i, 2], p[i, 3]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        c = math.exp(-qa)
        H = np.zeros((NP, NP))
        g = np.zeros(NP)
        bd = np.empty(K)
        bo = np.empty(K)
        bw = np.zeros(K)
        bn = np.empty(K)
        bb = np.empty(K)
        bown = np.zeros(K, dtype=np.bool_)
        bin_ = np.zeros(K, dtype=np.bool_)
        chi_old = 0.0
        h00 = 0.0
        h10 = 0.0
        h11 = 0.0
        h20 = 0.0
        h21 = 0.0
        h22 = 0.0
        h30 = 0.0
        h31 = 0.0
        h32 = 0.0
        h33 = 0.0
        h40 = 0.0
        h41 = 0.0
        h42 = 0.0
        h43 = 0.0
        h44 = 0.0
        h50 = 0.0
        h51 = 0.0
        h52 = 0.0
        h53 = 0.0
        h54 = 0.0
        h55 = 0.0
        h60 = 0.0
        h61 = 0.0
        h62 = 0.0
        h63 = 0.0
        h64 = 0.0
        h65 = 0.0
        h66 = 0.0
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        g3 = 0.0
        g4 = 0.0
        g5 = 0.0
        g6 = 0.0
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            X0 = cx[i] + row_dx0[rr]
            G, r = _row_start(x0, y0, qa, qb, qc, X0, Y)
            k0 = row_k0[rr]
            dy = Y - y0
            for j in range(row_len[rr]):
                X = X0 + j
                k = k0 + j
                Gk = G
                G *= r
                r *= c
                inside = not (Y < 0 or Y >= h or X < 0 or X >= w)
                bin_[k] = inside
                if not inside or not inner[k]:
                    # outside the image, or in the outer ring that only carries the
                    # column's tail for its neighbours' model
                    bw[k] = 0.0
                    continue
                dx = X - x0
                Gk = _pix(Gk, dx, dy, qa, qb, qc)
                own = A * Gk
                oth = full[Y, X] - own_buf[i, k]
                # background: piecewise constant on Voronoi cells (each pixel takes
                # the background of its nearest column) - one consistent model
                o = owner[Y, X]
                if o == i:
                    j3 = 1.0
                    bgv = b
                else:
                    j3 = 0.0
                    bgv = bvals[o]
                mu = oth + own + bgv
                var = alpha + beta * mu
                if var < floor:
                    var = floor
                wt = 1.0 / var
                d = img[Y, X]
                res = d - mu
                chi_old += wt * res * res
                bd[k] = d
                bo[k] = oth
                bw[k] = wt
                bb[k] = bgv
                bown[k] = o == i
                AG = A * Gk
                j0 = AG * (qa * dx + qb * dy)
                j1 = AG * (qb * dx + qc * dy)
                j2 = Gk
                j4 = -0.5 * AG * dx * dx
                j5 = -AG * dx * dy
                j6 = -0.5 * AG * dy * dy
                w0 = wt * j0
                g0 += w0 * res
                h00 += w0 * j0
                w1 = wt * j1
                g1 += w1 * res
                h10 += w1 * j0
                h11 += w1 * j1
                w2 = wt * j2
                g2 += w2 * res
                h20 += w2 * j0
                h21 += w2 * j1
                h22 += w2 * j2
                w3 = wt * j3
                g3 += w3 * res
                h30 += w3 * j0
                h31 += w3 * j1
                h32 += w3 * j2
                h33 += w3 * j3
                w4 = wt * j4
                g4 += w4 * res
                h40 += w4 * j0
                h41 += w4 * j1
                h42 += w4 * j2
                h43 += w4 * j3
                h44 += w4 * j4
                w5 = wt * j5
                g5 += w5 * res
                h50 += w5 * j0
                h51 += w5 * j1
                h52 += w5 * j2
                h53 += w5 * j3
                h54 += w5 * j4
                h55 += w5 * j5
                w6 = wt * j6
                g6 += w6 * res
                h60 += w6 * j0
                h61 += w6 * j1
                h62 += w6 * j2
                h63 += w6 * j3
                h64 += w6 * j4
                h65 += w6 * j5
                h66 += w6 * j6
        H[0, 0] = h00
        H[1, 0] = h10
        H[0, 1] = h10
        H[1, 1] = h11
        H[2, 0] = h20
        H[0, 2] = h20
        H[2, 1] = h21
        H[1, 2] = h21
        H[2, 2] = h22
        H[3, 0] = h30
        H[0, 3] = h30
        H[3, 1] = h31
        H[1, 3] = h31
        H[3, 2] = h32
        H[2, 3] = h32
        H[3, 3] = h33
        H[4, 0] = h40
        H[0, 4] = h40
        H[4, 1] = h41
        H[1, 4] = h41
        H[4, 2] = h42
        H[2, 4] = h42
        H[4, 3] = h43
        H[3, 4] = h43
        H[4, 4] = h44
        H[5, 0] = h50
        H[0, 5] = h50
        H[5, 1] = h51
        H[1, 5] = h51
        H[5, 2] = h52
        H[2, 5] = h52
        H[5, 3] = h53
        H[3, 5] = h53
        H[5, 4] = h54
        H[4, 5] = h54
        H[5, 5] = h55
        H[6, 0] = h60
        H[0, 6] = h60
        H[6, 1] = h61
        H[1, 6] = h61
        H[6, 2] = h62
        H[2, 6] = h62
        H[6, 3] = h63
        H[3, 6] = h63
        H[6, 4] = h64
        H[4, 6] = h64
        H[6, 5] = h65
        H[5, 6] = h65
        H[6, 6] = h66
        g[0] = g0
        g[1] = g1
        g[2] = g2
        g[3] = g3
        g[4] = g4
        g[5] = g5
        g[6] = g6
        if fix_pos:
            # shape, amplitude and background only: bright columns settle before
            # weak neighbours are allowed to move
            for a in range(NP):
                H[0, a] = 0.0
                H[a, 0] = 0.0
                H[1, a] = 0.0
                H[a, 1] = 0.0
            H[0, 0] = 1.0
            H[1, 1] = 1.0
            g[0] = 0.0
            g[1] = 0.0
        if H[3, 3] <= 0.0:
            for a in range(NP):
                H[3, a] = 0.0
                H[a, 3] = 0.0
            H[3, 3] = 1.0
            g[3] = 0.0
        li = lam[i]
        M = np.empty((NP, NP))
        step = np.zeros(NP)
        accepted = False
        for _t in range(8):
            for a in range(NP):
                for cc in range(NP):
                    M[a, cc] = H[a, cc]
                M[a, a] = H[a, a] * (1.0 + li)
            if not _chol_solve(M, g, step):
                li *= 10.0
                continue
            sh = math.sqrt(step[0] * step[0] + step[1] * step[1])
            if sh > max_step:  # trust region on the position
                li *= 10.0
                continue
            if (li < 1e-4 and abs(step[0]) < 0.02 and abs(step[1]) < 0.02
                    and abs(step[2]) < 0.01 * A and abs(step[4]) < 0.01 * qa
                    and abs(step[6]) < 0.01 * qc and abs(step[5]) < 0.01 * math.sqrt(qa * qc)):
                # a tiny step close to the optimum: trust Fisher scoring without
                # re-evaluating the model (neighbours see the pre-step model, which
                # differs by less than the step)
                for a in range(NP):
                    p[i, a] += step[a]
                lam[i] = max(li * 0.1, 1e-7)
                acc[i] = True
                break
            nx, ny = x0 + step[0], y0 + step[1]
            nA, nb = A + step[2], b + step[3]
            na, nbq, nc = qa + step[4], qb + step[5], qc + step[6]
            if nA <= 0.0 or na <= 0.0 or nc <= 0.0 or na * nc - nbq * nbq <= 0.0:
                li *= 10.0
                continue
            cn = math.exp(-na)
            chi_new = 0.0
            for rr in range(row_dy.shape[0]):
                Y = cy[i] + row_dy[rr]
                X0 = cx[i] + row_dx0[rr]
                G, r = _row_start(nx, ny, na, nbq, nc, X0, Y)
                k0 = row_k0[rr]
                for j in range(row_len[rr]):
                    k = k0 + j
                    Gk = G
                    G *= r
                    r *= cn
                    if not bin_[k]:
                        continue
                    Gk = _pix(Gk, X0 + j - nx, Y - ny, na, nbq, nc)
                    bn[k] = nA * Gk
                    if bw[k] == 0.0:
                        continue
                    res = bd[k] - bo[k] - bn[k] - (nb if bown[k] else bb[k])
                    chi_new += bw[k] * res * res
            if chi_new <= chi_old and np.isfinite(chi_new):
                accepted = True
                break
            li *= 10.0
        if accepted:
            for a in range(NP):
                p[i, a] += step[a]
            lam[i] = max(li * 0.1, 1e-7)
            acc[i] = True
            for k in range(K):
                if bin_[k]:
                    own_buf[i, k] = bn[k]
        else:
            lam[i] = li


def _hessian(img, owner, full, p, cx, cy, row_dy, row_dx0, row_len, row_k0, inner, alpha, beta,
             floor,
             sel, Hout, chi2, nvalid):
    """Undamped Fisher information and chi^2 of every column at the current fit."""
    h, w = img.shape
    for s_ in prange(sel.shape[0]):
        i = sel[s_]
        x0, y0, A = p[i, 0], p[i, 1], p[i, 2]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        c = math.exp(-qa)
        c2 = 0.0
        m = 0
        h00 = 0.0
        h10 = 0.0
        h11 = 0.0
        h20 = 0.0
        h21 = 0.0
        h22 = 0.0
        h30 = 0.0
        h31 = 0.0
        h32 = 0.0
        h33 = 0.0
        h40 = 0.0
        h41 = 0.0
        h42 = 0.0
        h43 = 0.0
        h44 = 0.0
        h50 = 0.0
        h51 = 0.0
        h52 = 0.0
        h53 = 0.0
        h54 = 0.0
        h55 = 0.0
        h60 = 0.0
        h61 = 0.0
        h62 = 0.0
        h63 = 0.0
        h64 = 0.0
        h65 = 0.0
        h66 = 0.0
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            X0 = cx[i] + row_dx0[rr]
            G, r = _row_start(x0, y0, qa, qb, qc, X0, Y)
            dy = Y - y0
            for j in range(row_len[rr]):
                X = X0 + j
                Gk = G
                G *= r
                r *= c
                if Y < 0 or Y >= h or X < 0 or X >= w or not inner[row_k0[rr] + j]:
                    continue
                dx = X - x0
                Gk = _pix(Gk, dx, dy, qa, qb, qc)
                o = owner[Y, X]
                j3 = 1.0 if o == i else 0.0
                mu = full[Y, X] + p[o, 3]
                var = alpha + beta * mu
                if var < floor:
                    var = floor
                wt = 1.0 / var
                res = img[Y, X] - mu
                c2 += wt * res * res
                m += 1
                AG = A * Gk
                j0 = AG * (qa * dx + qb * dy)
                j1 = AG * (qb * dx + qc * dy)
                j2 = Gk
                j4 = -0.5 * AG * dx * dx
                j5 = -AG * dx * dy
                j6 = -0.5 * AG * dy * dy
                w0 = wt * j0
                h00 += w0 * j0
                w1 = wt * j1
                h10 += w1 * j0
                h11 += w1 * j1
                w2 = wt * j2
                h20 += w2 * j0
                h21 += w2 * j1
                h22 += w2 * j2
                w3 = wt * j3
                h30 += w3 * j0
                h31 += w3 * j1
                h32 += w3 * j2
                h33 += w3 * j3
                w4 = wt * j4
                h40 += w4 * j0
                h41 += w4 * j1
                h42 += w4 * j2
                h43 += w4 * j3
                h44 += w4 * j4
                w5 = wt * j5
                h50 += w5 * j0
                h51 += w5 * j1
                h52 += w5 * j2
                h53 += w5 * j3
                h54 += w5 * j4
                h55 += w5 * j5
                w6 = wt * j6
                h60 += w6 * j0
                h61 += w6 * j1
                h62 += w6 * j2
                h63 += w6 * j3
                h64 += w6 * j4
                h65 += w6 * j5
                h66 += w6 * j6
        Hout[s_, 0, 0] = h00
        Hout[s_, 1, 0] = h10
        Hout[s_, 0, 1] = h10
        Hout[s_, 1, 1] = h11
        Hout[s_, 2, 0] = h20
        Hout[s_, 0, 2] = h20
        Hout[s_, 2, 1] = h21
        Hout[s_, 1, 2] = h21
        Hout[s_, 2, 2] = h22
        Hout[s_, 3, 0] = h30
        Hout[s_, 0, 3] = h30
        Hout[s_, 3, 1] = h31
        Hout[s_, 1, 3] = h31
        Hout[s_, 3, 2] = h32
        Hout[s_, 2, 3] = h32
        Hout[s_, 3, 3] = h33
        Hout[s_, 4, 0] = h40
        Hout[s_, 0, 4] = h40
        Hout[s_, 4, 1] = h41
        Hout[s_, 1, 4] = h41
        Hout[s_, 4, 2] = h42
        Hout[s_, 2, 4] = h42
        Hout[s_, 4, 3] = h43
        Hout[s_, 3, 4] = h43
        Hout[s_, 4, 4] = h44
        Hout[s_, 5, 0] = h50
        Hout[s_, 0, 5] = h50
        Hout[s_, 5, 1] = h51
        Hout[s_, 1, 5] = h51
        Hout[s_, 5, 2] = h52
        Hout[s_, 2, 5] = h52
        Hout[s_, 5, 3] = h53
        Hout[s_, 3, 5] = h53
        Hout[s_, 5, 4] = h54
        Hout[s_, 4, 5] = h54
        Hout[s_, 5, 5] = h55
        Hout[s_, 6, 0] = h60
        Hout[s_, 0, 6] = h60
        Hout[s_, 6, 1] = h61
        Hout[s_, 1, 6] = h61
        Hout[s_, 6, 2] = h62
        Hout[s_, 2, 6] = h62
        Hout[s_, 6, 3] = h63
        Hout[s_, 3, 6] = h63
        Hout[s_, 6, 4] = h64
        Hout[s_, 4, 6] = h64
        Hout[s_, 6, 5] = h65
        Hout[s_, 5, 6] = h65
        Hout[s_, 6, 6] = h66
        chi2[s_] = c2
        nvalid[s_] = m


def _pixel_stats(img, owner, full, p, cx, cy, row_dy, row_dx0, row_len, row_k0, inner, alpha,
                 beta,
                 floor, C, sel, mu_out, r2_out, lev_out):
    """Model, squared residual and leverage of every window pixel of the columns ``sel``."""
    h, w = img.shape
    for s in prange(sel.shape[0]):
        i = sel[s]
        x0, y0, A = p[i, 0], p[i, 1], p[i, 2]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        c = math.exp(-qa)
        J = np.zeros(NP)
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            X0 = cx[i] + row_dx0[rr]
            G, r = _row_start(x0, y0, qa, qb, qc, X0, Y)
            k0 = row_k0[rr]
            dy = Y - y0
            for j in range(row_len[rr]):
                X = X0 + j
                k = k0 + j
                Gk = G
                G *= r
                r *= c
                if Y < 0 or Y >= h or X < 0 or X >= w or not inner[k]:
                    mu_out[s, k] = np.nan
                    continue
                dx = X - x0
                Gk = _pix(Gk, dx, dy, qa, qb, qc)
                o = owner[Y, X]
                j3 = 1.0 if o == i else 0.0
                mu = full[Y, X] + p[o, 3]
                var = alpha + beta * mu
                if var < floor:
                    var = floor
                _jac(A, Gk, dx, dy, qa, qb, qc, J)
                J[3] = j3
                lv = 0.0
                for a in range(NP):
                    for cc in range(NP):
                        lv += J[a] * C[s, a, cc] * J[cc]
                res = img[Y, X] - mu
                mu_out[s, k] = mu
                r2_out[s, k] = res * res
                lev_out[s, k] = lv / var


# no "nnan"/"ninf": the kernels test for non-finite values
_opts = dict(cache=True, fastmath={"contract", "reassoc", "arcp", "nsz", "afn"}, nogil=True)
_jac = njit(inline="always", **_opts)(_jac)
_row_start = njit(inline="always", **_opts)(_row_start)
_pix = njit(inline="always", **_opts)(_pix)
_chol_solve = njit(**_opts)(_chol_solve)
# numba's on-disk cache does not tell a parallel from a serial build of the same
# function, so only the multi-threaded builds are cached; the single-threaded ones
# (used inside Dask tasks) compile once per process
_ser_opts = dict(_opts, cache=False)
own_model_par = njit(parallel=True, **_opts)(_own_model)
own_model_ser = njit(**_ser_opts)(_own_model)
scatter = njit(**_opts)(_scatter)
voronoi = njit(**_opts)(_voronoi)
iterate_par = njit(parallel=True, **_opts)(_iterate)
iterate_ser = njit(**_ser_opts)(_iterate)
hessian_par = njit(parallel=True, **_opts)(_hessian)
hessian_ser = njit(**_ser_opts)(_hessian)
pixel_stats = njit(**_opts)(_pixel_stats)
