"""Compiled inner loops for the joint Gaussian fit (numba).

Each kernel runs over all columns at once (``prange``: compiled, optionally
multi-threaded; no Python loop per column). Every column owns the pixels
of a circular window centred on its (integer) position, stored row by row:
row ``r`` has ``row_len[r]`` pixels at offsets ``(row_dy[r], row_dx0[r] + j)``
and window index ``row_k0[r] + j``; the fit uses the inner disc, whose
pixels in row ``r`` are ``j = row_i0[r] ... row_i0[r] + row_ilen[r] - 1``
(inner index ``row_kk0[r] + j - row_i0[r]``). The outer ring only carries
the column's tail into its neighbours' model.

The Gaussian is evaluated by recurrences (:func:`_render`: five
exponentials per window instead of one per pixel): with ``E(dx)`` the
quadratic exponent, ``G(dx+1) = G(dx) r(dx)`` and ``r(dx+1) = r(dx) exp(-qa)``,
and likewise from row to row.

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


def _chol_solve(M, g, out, L, z):
    """Solve ``M out = g`` for a 7x7 symmetric positive definite ``M``; False if not SPD.

    ``L`` (7, 7) and ``z`` (7,) are scratch arrays.
    """
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


def _render(out, A, x0, y0, qa, qb, qc, cx, cy, row_dy, row_dx0, row_len, row_k0, row_i0,
            row_ilen, inner_only):
    """``out[k]`` = the pixel-integrated Gaussian at window pixel ``k`` (window at cx, cy).

    No exponential per pixel, nor per row: along each row the Gaussian is swept
    out from the window's centre column in both directions by its ratio to the
    next pixel, and the centre column's value and ratio follow from row to
    row by recurrences too (five exponentials per window). ``inner_only``:
    only the inner window's pixels.
    """
    c = math.exp(-qa)
    dxc = cx - x0
    dy = cy + row_dy[0] - y0
    gc = math.exp(-0.5 * (qa * dxc * dxc + 2.0 * qb * dxc * dy + qc * dy * dy))
    v = math.exp(-0.5 * (2.0 * qb * dxc + qc * (2.0 * dy + 1.0)))  # gc(dy + 1) / gc(dy)
    ev = math.exp(-qc)
    rc = math.exp(-0.5 * qa * (2.0 * dxc + 1.0) - qb * dy)  # G(dxc + 1) / G(dxc)
    erc = math.exp(-qb)
    for rr in range(row_dy.shape[0]):
        jc = -row_dx0[rr]  # the centre column's index in the row
        if inner_only:
            jlo = row_i0[rr]
            jhi = jlo + row_ilen[rr]
        else:
            jlo = 0
            jhi = row_len[rr]
        k0 = row_k0[rr]
        G = gc
        r = rc
        for j in range(jc, jhi):
            out[k0 + j] = A * _pix(G, dxc + (j - jc), dy, qa, qb, qc)
            G *= r
            r *= c
        G = gc
        s_ = c / rc  # G(dx - 1) / G(dx)
        for j in range(jc - 1, jlo - 1, -1):
            G *= s_
            s_ *= c
            out[k0 + j] = A * _pix(G, dxc + (j - jc), dy, qa, qb, qc)
        gc *= v
        v *= ev
        rc *= erc
        dy += 1.0


def _own_model(p, cx, cy, row_dy, row_dx0, row_len, row_k0, h, w, own):
    """own[i, k] = column i's Gaussian (no background) at its window pixel k."""
    n = p.shape[0]
    for i in prange(n):
        _render(own[i], p[i, 2], p[i, 0], p[i, 1], p[i, 4], p[i, 5], p[i, 6], cx[i], cy[i],
                row_dy, row_dx0, row_len, row_k0, row_k0, row_k0, False)  # (no inner rows)


def _voronoi(x, y, cx, cy, row_dy, row_dx0, row_len, owner, best, order, bstart):
    """owner[Y, X] = index of the nearest column among those whose window covers the pixel.

    Parallel over bands of columns like :func:`_step`.
    """
    nb = bstart.shape[0] - 1
    for bb in prange((nb + 1) // 2):
        _voronoi_band(2 * bb, x, y, cx, cy, row_dy, row_dx0, row_len, owner, best, order, bstart)
    for bb in prange(nb // 2):
        _voronoi_band(2 * bb + 1, x, y, cx, cy, row_dy, row_dx0, row_len, owner, best, order,
                      bstart)


def _voronoi_band(band, x, y, cx, cy, row_dy, row_dx0, row_len, owner, best, order, bstart):
    h, w = owner.shape
    for idx in range(bstart[band], bstart[band + 1]):
        i = order[idx]
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            if Y < 0 or Y >= h:
                continue
            ddy = Y - y[i]
            X0 = cx[i] + row_dx0[rr]
            for j in range(max(0, -X0), min(row_len[rr], w - X0)):
                X = X0 + j
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


def _step_band(band, img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0, row_i0,
               row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active, order, bstart, fix_pos,
               max_step, do_step, acc, Hout, chi2, nvalid, start, max_shift, tol_mv, rev_thr,
               last_step, omega, nrev, conv, moved, flag):
    """:func:`_step` for the columns of one band."""
    h, w = img.shape
    K = ofx.shape[0]
    KW = own_buf.shape[1]
    nrow = row_dy.shape[0]
    nxt = np.empty(KW)
    wts = np.empty(K)
    tt = np.empty(K)
    dd = np.empty(K)
    ow = np.empty(K)
    mi = np.empty(K)
    va = np.empty(K)
    H = np.empty((NP, NP))
    g = np.empty(NP)
    M = np.empty((NP, NP))
    step = np.zeros(NP)
    L = np.zeros((NP, NP))
    z = np.zeros(NP)
    for s_ in range(bstart[band], bstart[band + 1]):
        i = order[s_]
        if not active[i]:
            continue
        acc[i] = False
        flag[i] = 0
        moved[i] = 0.0
        x0, y0, A, b = p[i, 0], p[i, 1], p[i, 2], p[i, 3]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        cxi = cx[i]
        cyi = cy[i]
        m = 0.0
        # gather: data minus everything but this column's Gaussian and background
        for rr in range(nrow):
            nin = row_ilen[rr]
            if nin == 0:
                continue
            Y = cyi + row_dy[rr]
            kk0 = row_kk0[rr]
            k0 = row_k0[rr] + row_i0[rr]
            X0 = cxi + row_dx0[rr] + row_i0[rr]
            if Y < 0 or Y >= h or X0 < 0 or X0 + nin > w:
                for j in range(nin):
                    X = X0 + j
                    kk = kk0 + j
                    if Y < 0 or Y >= h or X < 0 or X >= w:
                        tt[kk] = 0.0
                        dd[kk] = 0.0
                        ow[kk] = 0.0
                        mi[kk] = 0.0
                        va[kk] = 0.0
                        continue
                    o = owner[Y, X]
                    ob = own_buf[i, k0 + j]
                    d = img[Y, X]
                    if o == i or o < 0:  # (a pixel in no cell: its own)
                        mi[kk] = 1.0
                        tt[kk] = d - (full[Y, X] - ob)
                    else:
                        mi[kk] = 0.0
                        tt[kk] = d - (full[Y, X] - ob) - p[o, 3]
                    dd[kk] = d
                    ow[kk] = ob
                    va[kk] = 1.0
                    m += 1.0
            else:
                for j in range(nin):
                    X = X0 + j
                    kk = kk0 + j
                    o = owner[Y, X]
                    ob = own_buf[i, k0 + j]
                    d = img[Y, X]
                    if o == i or o < 0:  # (a pixel in no cell: its own)
                        mi[kk] = 1.0
                        tt[kk] = d - (full[Y, X] - ob)
                    else:
                        mi[kk] = 0.0
                        tt[kk] = d - (full[Y, X] - ob) - p[o, 3]
                    dd[kk] = d
                    ow[kk] = ob
                    va[kk] = 1.0
                m += nin
        # normal equations from moments. Every Jacobian entry but the background's
        # is the column's model times a polynomial of degree <= 2 in (dx, dy), so J^T W J
        # and J^T W r need only the weighted moments sum u dx^p dy^q (p + q <= 4) of
        # u = w own^2, and (p + q <= 2) of w own mk and w own res. Along a window row
        # dy is fixed: a branch-free loop accumulates 14 sums per pixel in dx alone,
        # and the rows are combined with the powers of dy.
        ddx = cxi - x0
        ddy = cyi - y0
        iA = 1.0 / A
        c2 = 0.0
        h33 = 0.0
        g3 = 0.0
        s00 = s10 = s20 = s30 = s40 = 0.0
        s01 = s11 = s21 = s31 = 0.0
        s02 = s12 = s22 = 0.0
        s03 = s13 = 0.0
        s04 = 0.0
        t00 = t10 = t20 = t01 = t11 = t02 = 0.0
        e00 = e10 = e20 = e01 = e11 = e02 = 0.0
        for rr in range(nrow):
            nin = row_ilen[rr]
            if nin == 0:
                continue
            kk0 = row_kk0[rr]
            dy = ofy[kk0] + ddy
            a0 = a1 = a2 = a3 = a4 = 0.0
            b0 = b1 = b2 = 0.0
            f0 = f1 = f2 = 0.0
            for kk in range(kk0, kk0 + nin):
                dx = ofx[kk] + ddx
                own = ow[kk]
                mk = mi[kk]
                res = tt[kk] - own - mk * b
                var = alpha + beta * (dd[kk] - res)
                var = max(var, floor)
                wt = va[kk] / var
                wts[kk] = wt
                wr = wt * res
                c2 += wr * res
                wm = wt * mk
                h33 += wm
                g3 += wm * res
                wo = wt * own
                u = wo * own
                dx2 = dx * dx
                a0 += u
                a1 += u * dx
                a2 += u * dx2
                a3 += u * dx2 * dx
                a4 += u * dx2 * dx2
                cm = wo * mk
                b0 += cm
                b1 += cm * dx
                b2 += cm * dx2
                er = wo * res
                f0 += er
                f1 += er * dx
                f2 += er * dx2
            dy2 = dy * dy
            s00 += a0
            s10 += a1
            s20 += a2
            s30 += a3
            s40 += a4
            s01 += a0 * dy
            s11 += a1 * dy
            s21 += a2 * dy
            s31 += a3 * dy
            s02 += a0 * dy2
            s12 += a1 * dy2
            s22 += a2 * dy2
            s03 += a0 * dy2 * dy
            s13 += a1 * dy2 * dy
            s04 += a0 * dy2 * dy2
            t00 += b0
            t10 += b1
            t20 += b2
            t01 += b0 * dy
            t11 += b1 * dy
            t02 += b0 * dy2
            e00 += f0
            e10 += f1
            e20 += f2
            e01 += f0 * dy
            e11 += f1 * dy
            e02 += f0 * dy2
        # J0 = own (qa dx + qb dy), J1 = own (qb dx + qc dy), J2 = own / A, J3 = mk,
        # J4 = -own dx^2 / 2, J5 = -own dx dy, J6 = -own dy^2 / 2
        H[0, 0] = qa * qa * s20 + 2.0 * qa * qb * s11 + qb * qb * s02
        H[1, 0] = qa * qb * s20 + (qa * qc + qb * qb) * s11 + qb * qc * s02
        H[1, 1] = qb * qb * s20 + 2.0 * qb * qc * s11 + qc * qc * s02
        H[2, 0] = iA * (qa * s10 + qb * s01)
        H[2, 1] = iA * (qb * s10 + qc * s01)
        H[2, 2] = iA * iA * s00
        H[3, 0] = qa * t10 + qb * t01
        H[3, 1] = qb * t10 + qc * t01
        H[3, 2] = iA * t00
        H[3, 3] = h33
        H[4, 0] = -0.5 * (qa * s30 + qb * s21)
        H[4, 1] = -0.5 * (qb * s30 + qc * s21)
        H[4, 2] = -0.5 * iA * s20
        H[4, 3] = -0.5 * t20
        H[4, 4] = 0.25 * s40
        H[5, 0] = -(qa * s21 + qb * s12)
        H[5, 1] = -(qb * s21 + qc * s12)
        H[5, 2] = -iA * s11
        H[5, 3] = -t11
        H[5, 4] = 0.5 * s31
        H[5, 5] = s22
        H[6, 0] = -0.5 * (qa * s12 + qb * s03)
        H[6, 1] = -0.5 * (qb * s12 + qc * s03)
        H[6, 2] = -0.5 * iA * s02
        H[6, 3] = -0.5 * t02
        H[6, 4] = 0.25 * s22
        H[6, 5] = 0.5 * s13
        H[6, 6] = 0.25 * s04
        for a in range(NP):
            for cc in range(a):
                H[cc, a] = H[a, cc]
        g[0] = qa * e10 + qb * e01
        g[1] = qb * e10 + qc * e01
        g[2] = iA * e00
        g[3] = g3
        g[4] = -0.5 * e20
        g[5] = -e11
        g[6] = -0.5 * e02
        for a in range(NP):
            for cc in range(NP):
                Hout[i, a, cc] = H[a, cc]
        chi2[i] = c2
        nvalid[i] = m
        if not do_step:
            continue
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
        if H[3, 3] <= 0.0:  # owns no pixel: background not identifiable
            for a in range(NP):
                H[3, a] = 0.0
                H[a, 3] = 0.0
            H[3, 3] = 1.0
            g[3] = 0.0
        li = lam[i]
        accepted = False
        chg = 0
        for _t in range(8):
            for a in range(NP):
                for cc in range(NP):
                    M[a, cc] = H[a, cc]
                M[a, a] = H[a, a] * (1.0 + li)
            if not _chol_solve(M, g, step, L, z):
                li *= 10.0
                continue
            sh = math.sqrt(step[0] * step[0] + step[1] * step[1])
            if sh > max_step:  # trust region on the position: shorten the step
                f = max_step / sh
                for a in range(NP):
                    step[a] *= f
                sh = max_step
            # relaxation against oscillation (committed only if the step is accepted)
            ls0 = last_step[i, 0]
            ls1 = last_step[i, 1]
            nr = 0
            if (rev_thr >= 0.0 and step[0] * ls0 + step[1] * ls1 < 0.0 and sh > rev_thr
                    and sh > 0.3 * math.sqrt(ls0 * ls0 + ls1 * ls1)):
                nr = nrev[i] + 1
            om = omega[i]
            if nr >= 2:
                om = max(0.5 * om, 0.1)
            else:
                om = min(1.5 * om, 1.0)
            if om < 1.0:
                for a in range(NP):
                    step[a] *= om
            tiny = (li < 1e-4 and abs(step[0]) < 0.02 and abs(step[1]) < 0.02
                    and abs(step[2]) < 0.01 * A and abs(step[4]) < 0.01 * qa
                    and abs(step[6]) < 0.01 * qc and abs(step[5]) < 0.01 * math.sqrt(qa * qc))
            nx, ny = x0 + step[0], y0 + step[1]
            nA, nb = A + step[2], b + step[3]
            na, nbq, nc = qa + step[4], qb + step[5], qc + step[6]
            if nA <= 0.0 or na <= 0.0 or nc <= 0.0 or na * nc - nbq * nbq <= 0.0:
                li *= 10.0
                continue
            if tiny:
                # a tiny step close to the optimum is trusted (Fisher scoring): only
                # the inner window's model is refreshed; the outer ring keeps its
                # tail (it moved by far less than the noise), in own_buf and full alike
                _render(nxt, nA, nx, ny, na, nbq, nc, cxi, cyi, row_dy, row_dx0, row_len, row_k0,
                        row_i0, row_ilen, True)
                accepted = True
                chg = 1
                break
            # the new model over the whole window, and chi^2 over the inner pixels
            # (with the current weights: one Fisher-scoring step)
            _render(nxt, nA, nx, ny, na, nbq, nc, cxi, cyi, row_dy, row_dx0, row_len, row_k0,
                    row_i0, row_ilen, False)
            chi_new = 0.0
            for rr in range(nrow):
                k0 = row_k0[rr] + row_i0[rr]
                kk0 = row_kk0[rr]
                for j in range(row_ilen[rr]):
                    kk = kk0 + j
                    res = tt[kk] - nxt[k0 + j] - mi[kk] * nb
                    chi_new += wts[kk] * res * res
            if chi_new <= c2 and np.isfinite(chi_new):
                accepted = True
                chg = 2
                break
            li *= 10.0
        if accepted:
            # the new model into full and own_buf (inner window only after a tiny step)
            for rr in range(nrow):
                Y = cyi + row_dy[rr]
                if chg == 2:
                    a0 = 0
                    ln = row_len[rr]
                else:
                    a0 = row_i0[rr]
                    ln = row_ilen[rr]
                k0 = row_k0[rr] + a0
                if Y >= 0 and Y < h:
                    X0 = cxi + row_dx0[rr] + a0
                    for j in range(max(0, -X0), min(ln, w - X0)):
                        full[Y, X0 + j] += nxt[k0 + j] - own_buf[i, k0 + j]
                for j in range(ln):
                    own_buf[i, k0 + j] = nxt[k0 + j]
            for a in range(NP):
                p[i, a] += step[a]
            lam[i] = max(li * 0.1, 1e-7)
            acc[i] = True
            nrev[i] = nr
            omega[i] = om
            last_step[i, 0] = step[0]
            last_step[i, 1] = step[1]
            moved[i] = sh  # the full (unrelaxed) step: a relaxed one is small without
            # the column being at its optimum
            conv[i] = sh < tol_mv
            dsx = p[i, 0] - start[i, 0]
            dsy = p[i, 1] - start[i, 1]
            fin = True
            for a in range(NP):
                fin = fin and np.isfinite(p[i, a])
            if not fin or dsx * dsx + dsy * dsy > max_shift * max_shift:
                flag[i] = 1
            elif abs(p[i, 0] - cxi) > 0.75 or abs(p[i, 1] - cyi) > 0.75:
                flag[i] = 2
        else:
            lam[i] = li
            conv[i] = li > 1e6  # no better point nearby




def _step(img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0, row_i0,
          row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active, order, bstart, fix_pos,
          max_step, do_step, acc, Hout, chi2, nvalid, start, max_shift, tol_mv, rev_thr,
          last_step, omega, nrev, conv, moved, flag):
    """One damped Fisher-scoring (Levenberg-Marquardt) step of the ``active`` columns.

    Every column sees the current model of all others (``full`` minus its own
    window model ``own_buf``), and its accepted model goes into ``full`` and
    ``own_buf`` at once (Gauss-Seidel). Columns come in horizontal bands
    (``order``, ``bstart``) taller than a window, so bands of one parity share
    no pixel and run in parallel; within a band the order is fixed, so the
    result does not depend on the number of threads. The inner window's pixels are
    first gathered into contiguous scratch arrays, so the normal equations
    are one branch-free, vectorizable loop. The Fisher matrix, chi^2 and the
    number of pixels at the current parameters go to ``Hout``, ``chi2`` and
    ``nvalid``. With ``do_step`` the step is taken, its length (before
    relaxation) goes to ``moved``; ``conv`` is set when an accepted step is shorter than
    ``tol_mv`` (px). ``flag`` is 1 for a column that left ``max_shift`` of
    its ``start`` or is not finite, 2 for one that moved 0.75 px away from
    its window centre.

    Joint steps can oscillate when neighbours overlap strongly: a column whose
    step (longer than ``rev_thr``) reverses the last one twice in a row gets
    a smaller relaxation factor ``omega`` (one reversal is a Newton
    overshoot being corrected).
    """
    nb = bstart.shape[0] - 1
    # (two loops: numba skipped the second pass of a prange nested in a loop)
    for bb in prange((nb + 1) // 2):
        _step_band(2 * bb, img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0, row_i0,
                   row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active, order, bstart, fix_pos,
                   max_step, do_step, acc, Hout, chi2, nvalid, start, max_shift, tol_mv, rev_thr,
                   last_step, omega, nrev, conv, moved, flag)
    for bb in prange(nb // 2):
        _step_band(2 * bb + 1, img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0, row_i0,
                   row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active, order, bstart, fix_pos,
                   max_step, do_step, acc, Hout, chi2, nvalid, start, max_shift, tol_mv, rev_thr,
                   last_step, omega, nrev, conv, moved, flag)


def _step_one_thread(img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0,
                     row_i0, row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active, order,
                     bstart, fix_pos, max_step, do_step, acc, Hout, chi2, nvalid, start,
                     max_shift, tol_mv, rev_thr, last_step, omega, nrev, conv, moved, flag):
    """:func:`_step` on one thread, in the same band order (so the same result).

    A function of its own, so that numba's on-disk cache keeps it apart from
    the parallel build of :func:`_step`: used for a handful of active columns
    (where waking the worker threads costs more than the work) and in Dask tasks.
    """
    nb = bstart.shape[0] - 1
    for bb in range((nb + 1) // 2):
        _step_band(2 * bb, img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0,
                   row_i0, row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active, order,
                   bstart, fix_pos, max_step, do_step, acc, Hout, chi2, nvalid, start, max_shift,
                   tol_mv, rev_thr, last_step, omega, nrev, conv, moved, flag)
    for bb in range(nb // 2):
        _step_band(2 * bb + 1, img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len,
                   row_k0, row_i0, row_ilen, row_kk0, ofx, ofy, alpha, beta, floor, lam, active,
                   order, bstart, fix_pos, max_step, do_step, acc, Hout, chi2, nvalid, start,
                   max_shift, tol_mv, rev_thr, last_step, omega, nrev, conv, moved, flag)


def _own_model_one_thread(p, cx, cy, row_dy, row_dx0, row_len, row_k0, h, w, own):
    """:func:`_own_model` on one thread (a function of its own for the on-disk cache)."""
    for i in range(p.shape[0]):
        _render(own[i], p[i, 2], p[i, 0], p[i, 1], p[i, 4], p[i, 5], p[i, 6], cx[i], cy[i],
                row_dy, row_dx0, row_len, row_k0, row_k0, row_k0, False)


def _scatter_add(full, own, cx, cy, row_dy, row_dx0, row_len, row_k0, sel, sign):
    """full += sign * window models ``own[s]`` of the columns ``sel[s]`` (windows at cx, cy)."""
    h, w = full.shape
    for s in range(sel.shape[0]):
        i = sel[s]
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            if Y < 0 or Y >= h:
                continue
            X0 = cx[i] + row_dx0[rr]
            k0 = row_k0[rr]
            j0 = max(0, -X0)
            j1 = min(row_len[rr], w - X0)
            for j in range(j0, j1):
                full[Y, X0 + j] += sign * own[s, k0 + j]


def _cross_fisher(img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0,
                  row_i0, row_ilen, alpha, beta, floor, pi, pj, F):
    """``F[q] = sum w J_i J_j^T`` over the pixels in both inner windows of the pair
    ``(pi[q], pj[q])``: the Fisher information shared by two overlapping columns."""
    h, w = img.shape
    R = -row_dy[0]
    nrow = row_dy.shape[0]
    for q in prange(pi.shape[0]):
        i = pi[q]
        j = pj[q]
        Fq = np.zeros((NP, NP))
        Ji = np.empty(NP)
        Jj = np.empty(NP)
        xi, yi, Ai, qai, qbi, qci = p[i, 0], p[i, 1], p[i, 2], p[i, 4], p[i, 5], p[i, 6]
        xj, yj, Aj, qaj, qbj, qcj = p[j, 0], p[j, 1], p[j, 2], p[j, 4], p[j, 5], p[j, 6]
        for rr in range(nrow):
            Y = cy[i] + row_dy[rr]
            rj = Y - cy[j] + R
            if Y < 0 or Y >= h or rj < 0 or rj >= nrow or row_ilen[rr] == 0 or row_ilen[rj] == 0:
                continue
            ai = cx[i] + row_dx0[rr] + row_i0[rr]
            aj = cx[j] + row_dx0[rj] + row_i0[rj]
            xa = max(max(ai, aj), 0)
            xb = min(min(ai + row_ilen[rr], aj + row_ilen[rj]), w)
            dyi = Y - yi
            dyj = Y - yj
            for X in range(xa, xb):
                oi = own_buf[i, row_k0[rr] + X - cx[i] - row_dx0[rr]]
                oj = own_buf[j, row_k0[rj] + X - cx[j] - row_dx0[rj]]
                o = owner[Y, X]
                mu = full[Y, X] + p[o if o >= 0 else i, 3]
                wt = 1.0 / max(alpha + beta * mu, floor)
                dxi = X - xi
                dxj = X - xj
                Ji[0] = oi * (qai * dxi + qbi * dyi)
                Ji[1] = oi * (qbi * dxi + qci * dyi)
                Ji[2] = oi / Ai
                Ji[3] = 1.0 if o == i else 0.0
                Ji[4] = -0.5 * oi * dxi * dxi
                Ji[5] = -oi * dxi * dyi
                Ji[6] = -0.5 * oi * dyi * dyi
                Jj[0] = oj * (qaj * dxj + qbj * dyj)
                Jj[1] = oj * (qbj * dxj + qcj * dyj)
                Jj[2] = oj / Aj
                Jj[3] = 1.0 if o == j else 0.0
                Jj[4] = -0.5 * oj * dxj * dxj
                Jj[5] = -oj * dxj * dyj
                Jj[6] = -0.5 * oj * dyj * dyj
                for a in range(NP):
                    wa = wt * Ji[a]
                    for cc in range(NP):
                        Fq[a, cc] += wa * Jj[cc]
        for a in range(NP):
            for cc in range(NP):
                F[q, a, cc] = Fq[a, cc]


def _pixel_stats(img, owner, full, own_buf, p, cx, cy, row_dy, row_dx0, row_len, row_k0, row_i0,
                 row_ilen, row_kk0, alpha, beta, floor, C, sel, mu_out, r2_out, lev_out):
    """Model, squared residual and leverage of every inner-window pixel of the columns ``sel``
    (NaN model outside the image)."""
    h, w = img.shape
    for s in prange(sel.shape[0]):
        i = sel[s]
        x0, y0, A = p[i, 0], p[i, 1], p[i, 2]
        qa, qb, qc = p[i, 4], p[i, 5], p[i, 6]
        iA = 1.0 / A
        for rr in range(row_dy.shape[0]):
            Y = cy[i] + row_dy[rr]
            dy = Y - y0
            X0 = cx[i] + row_dx0[rr] + row_i0[rr]
            k0 = row_k0[rr] + row_i0[rr]
            kk0 = row_kk0[rr]
            for j in range(row_ilen[rr]):
                X = X0 + j
                kk = kk0 + j
                if Y < 0 or Y >= h or X < 0 or X >= w:
                    mu_out[s, kk] = np.nan
                    continue
                dx = X - x0
                own = own_buf[i, k0 + j]
                o = owner[Y, X]
                j3 = 1.0
                if o >= 0 and o != i:
                    j3 = 0.0
                else:
                    o = i
                mu = full[Y, X] + p[o, 3]
                var = max(alpha + beta * mu, floor)
                j0 = own * (qa * dx + qb * dy)
                j1 = own * (qb * dx + qc * dy)
                j2 = own * iA
                j4 = -0.5 * own * dx * dx
                j5 = -own * dx * dy
                j6 = -0.5 * own * dy * dy
                jv = (j0, j1, j2, j3, j4, j5, j6)
                lv = 0.0
                for a in range(NP):
                    ja = jv[a]
                    lv += ja * ja * C[s, a, a]
                    for cc in range(a):
                        lv += 2.0 * ja * jv[cc] * C[s, a, cc]
                res = img[Y, X] - mu
                mu_out[s, kk] = mu
                r2_out[s, kk] = res * res
                lev_out[s, kk] = lv / var


def _inv_spd(H, C, fail):
    """``C[i] = inv(H[i])`` for a stack of 7x7 Fisher matrices, by Cholesky.

    A matrix with ``H[3, 3] <= 0`` (a column that owns no pixel) has its
    background taken out (unit diagonal). ``fail[i]`` is set where the
    matrix is not numerically positive definite (``C[i]`` is then NaN).
    """
    n = H.shape[0]
    M = np.empty((NP, NP))
    L = np.zeros((NP, NP))
    Li = np.zeros((NP, NP))
    for i in range(n):
        lone = H[i, 3, 3] <= 0.0
        for a in range(NP):
            for b in range(NP):
                v = H[i, a, b]
                if lone and (a == 3 or b == 3):
                    v = 1.0 if a == b else 0.0
                M[a, b] = v
        ok = True
        for a in range(NP):
            for b in range(a + 1):
                t = M[a, b]
                for k in range(b):
                    t -= L[a, k] * L[b, k]
                if a == b:
                    if not (t > 0.0) or not np.isfinite(t):
                        ok = False
                        break
                    L[a, a] = math.sqrt(t)
                else:
                    L[a, b] = t / L[b, b]
            if not ok:
                break
        fail[i] = not ok
        if not ok:
            for a in range(NP):
                for b in range(NP):
                    C[i, a, b] = np.nan
            continue
        # inverse of the lower triangle, then C = Li^T Li
        for a in range(NP):
            Li[a, a] = 1.0 / L[a, a]
            for b in range(a):
                t = 0.0
                for k in range(b, a):
                    t -= L[a, k] * Li[k, b]
                Li[a, b] = t / L[a, a]
            for b in range(a + 1, NP):
                Li[a, b] = 0.0
        for a in range(NP):
            for b in range(a + 1):
                t = 0.0
                for k in range(a, NP):
                    t += Li[k, a] * Li[k, b]
                C[i, a, b] = t
                C[i, b, a] = t


def _schur_subtract(Heff, F, C0, pi, pj):
    """``Heff[pi] -= F C0[pj] F^T`` and ``Heff[pj] -= F^T C0[pi] F`` for every pair."""
    T = np.empty((NP, NP))
    for q in range(pi.shape[0]):
        i = pi[q]
        j = pj[q]
        # T = F C0[j]; Heff[i] -= T F^T
        for a in range(NP):
            for b in range(NP):
                t = 0.0
                for k in range(NP):
                    t += F[q, a, k] * C0[j, k, b]
                T[a, b] = t
        for a in range(NP):
            for b in range(NP):
                t = 0.0
                for k in range(NP):
                    t += T[a, k] * F[q, b, k]
                Heff[i, a, b] -= t
        # T = F^T C0[i]; Heff[j] -= T F
        for a in range(NP):
            for b in range(NP):
                t = 0.0
                for k in range(NP):
                    t += F[q, k, a] * C0[i, k, b]
                T[a, b] = t
        for a in range(NP):
            for b in range(NP):
                t = 0.0
                for k in range(NP):
                    t += T[a, k] * F[q, k, b]
                Heff[j, a, b] -= t


# no "nnan"/"ninf": the kernels test for non-finite values
_opts = dict(cache=True, fastmath={"contract", "reassoc", "arcp", "nsz", "afn"}, nogil=True,
             error_model="numpy")
_jac = njit(inline="always", **_opts)(_jac)
_pix = njit(inline="always", **_opts)(_pix)
_render = njit(**_opts)(_render)
_chol_solve = njit(**_opts)(_chol_solve)
_step_band = njit(**_opts)(_step_band)
_voronoi_band = njit(**_opts)(_voronoi_band)
# numba's on-disk cache does not tell a parallel from a serial build of the same
# function, so only the multi-threaded builds are cached; the single-threaded ones
# (used inside Dask tasks) compile once per process
_ser_opts = dict(_opts, cache=False)
own_model_par = njit(parallel=True, **_opts)(_own_model)
own_model_ser = njit(**_opts)(_own_model_one_thread)
scatter = njit(**_opts)(_scatter)
scatter_add = njit(**_opts)(_scatter_add)
voronoi_par = njit(parallel=True, **_opts)(_voronoi)
voronoi_ser = njit(**_ser_opts)(_voronoi)
step_par = njit(parallel=True, **_opts)(_step)
step_ser = njit(**_opts)(_step_one_thread)
pixel_stats = njit(**_ser_opts)(_pixel_stats)
pixel_stats_par = njit(parallel=True, **_opts)(_pixel_stats)
inv_spd = njit(**_opts)(_inv_spd)
schur_subtract = njit(**_opts)(_schur_subtract)
cross_fisher = njit(parallel=True, **_opts)(_cross_fisher)
