"""Compiled normal equations of the fixed-position peak-height fit (hexagonal descriptors).

Every site's window is the disk of radius ``r`` around its rounded centre; the normal
matrix ``G = M^T W M`` only couples sites closer than ``2 r``, so it is built pair by
pair (KD-tree pairs, parallel over pairs) instead of by a sparse-sparse product.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_opts = dict(cache=True, nogil=True, error_model="numpy")


@njit(parallel=True, **_opts)
def pair_products(cx, cy, fx, fy, sig, oy, ox, inv_var, r, pi, pj):  # pragma: no cover
    """``sum_p g_i(p) g_j(p) / v(p)`` for each pair (i, j) of sites."""
    h, w = inv_var.shape
    out = np.zeros(len(pi))
    r2 = r * r
    for q in prange(len(pi)):
        i, j = pi[q], pj[q]
        si, sj = 0.5 / (sig[i] * sig[i]), 0.5 / (sig[j] * sig[j])
        acc = 0.0
        for t in range(len(ox)):
            X = cx[i] + ox[t]
            Y = cy[i] + oy[t]
            if X < 0 or X >= w or Y < 0 or Y >= h:
                continue
            dxj = X - cx[j]
            dyj = Y - cy[j]
            if dxj * dxj + dyj * dyj > r2:
                continue
            ax, ay = X - fx[i], Y - fy[i]
            bx, by = X - fx[j], Y - fy[j]
            acc += (math.exp(-(ax * ax + ay * ay) * si - (bx * bx + by * by) * sj)
                    * inv_var[Y, X])
        out[q] = acc
    return out


@njit(parallel=True, **_opts)
def site_sums(cx, cy, fx, fy, sig, oy, ox, inv_var, data):  # pragma: no cover
    """Per site: ``sum g^2 / v`` (the diagonal) and ``sum g d / v`` (the right-hand side)."""
    h, w = inv_var.shape
    n = len(cx)
    diag = np.zeros(n)
    rhs = np.zeros(n)
    for i in prange(n):
        s = 0.5 / (sig[i] * sig[i])
        a = 0.0
        b = 0.0
        for t in range(len(ox)):
            X = cx[i] + ox[t]
            Y = cy[i] + oy[t]
            if X < 0 or X >= w or Y < 0 or Y >= h:
                continue
            ax, ay = X - fx[i], Y - fy[i]
            g = math.exp(-(ax * ax + ay * ay) * s)
            a += g * g * inv_var[Y, X]
            b += g * data[Y, X] * inv_var[Y, X]
        diag[i] = a
        rhs[i] = b
    return diag, rhs


@njit(**_opts)
def render(shape, cx, cy, fx, fy, sig, oy, ox, amp):  # pragma: no cover
    """The model image ``sum_k a_k g_k`` over the windows, and the mask of covered pixels."""
    h, w = shape
    out = np.zeros((h, w))
    used = np.zeros((h, w), np.bool_)
    for i in range(len(cx)):
        s = 0.5 / (sig[i] * sig[i])
        for t in range(len(ox)):
            X = cx[i] + ox[t]
            Y = cy[i] + oy[t]
            if X < 0 or X >= w or Y < 0 or Y >= h:
                continue
            ax, ay = X - fx[i], Y - fy[i]
            out[Y, X] += amp[i] * math.exp(-(ax * ax + ay * ay) * s)
            used[Y, X] = True
    return out, used
