"""Compiled one-pass kernel: CoM moments and every virtual detector per pattern.

Each pattern is read once, row by row. A row's sum and its running column
sums give the zeroth, first and second moments by separability
(``sum_x x * colsum[x]``, no per-pixel coordinate multiply), and the first
two virtual detectors are weighted sums in the same loop; further detectors
re-read the row from L1 cache, so memory traffic is the data once. Dead
pixels are skipped on the (few) rows that have them.
"""

from __future__ import annotations

import numba
import numpy as np

N_MOMENTS = 5   # total, sum x I, sum y I, sum x^2 I, sum y^2 I


def _make_kernel(fused: bool, masked: bool, extra: bool):
    """The kernel, with the first two detectors fused into the main loop or not.

    Compiled variants (with/without fused detectors, with/without dead
    pixels) because an unused multiply or branch in the inner loop costs a
    fifth to a half of the throughput.
    """

    # no cache=True: the variants share one source and would overwrite each other's cache
    @numba.njit(parallel=True, fastmath=True)
    def kernel(data, w, masked_rows, mask, cx, cy):  # pragma: no cover - compiled
        n, ny, nx = data.shape
        nd = w.shape[0]
        out = np.zeros((n, N_MOMENTS + nd))
        xs = np.arange(nx) - cx
        for p in numba.prange(n):
            col = np.zeros(nx)
            dacc = np.zeros(max(nd, 2))
            tot = 0.0
            my = 0.0
            syy = 0.0
            d0 = 0.0
            d1 = 0.0
            for y in range(ny):
                row = data[p, y]
                rs = 0.0
                a0 = 0.0
                a1 = 0.0
                if masked and masked_rows[y]:
                    # slow path, only on rows with dead pixels: skip them entirely
                    # (a NaN times a zero weight would still be NaN)
                    mrow = mask[y]
                    for x in range(nx):
                        if not mrow[x]:
                            v = row[x]
                            rs += v
                            col[x] += v
                            for d in range(nd):
                                dacc[d] += w[d, y, x] * v
                elif fused:
                    w0 = w[0, y]
                    w1 = w[1, y]
                    for x in range(nx):
                        v = row[x]
                        rs += v
                        col[x] += v
                        a0 += w0[x] * v
                        a1 += w1[x] * v
                    if extra:
                        # further detectors in pairs, re-reading the row from L1
                        for d in range(2, nd - 1, 2):
                            wa = w[d, y]
                            wb = w[d + 1, y]
                            b0 = 0.0
                            b1 = 0.0
                            for x in range(nx):
                                v = row[x]
                                b0 += wa[x] * v
                                b1 += wb[x] * v
                            dacc[d] += b0
                            dacc[d + 1] += b1
                        if nd % 2 == 1:
                            wa = w[nd - 1, y]
                            b0 = 0.0
                            for x in range(nx):
                                b0 += wa[x] * row[x]
                            dacc[nd - 1] += b0
                else:
                    for x in range(nx):
                        v = row[x]
                        rs += v
                        col[x] += v
                d0 += a0
                d1 += a1
                tot += rs
                dy = y - cy
                my += dy * rs
                syy += dy * dy * rs
            mx = 0.0
            sxx = 0.0
            for x in range(nx):
                mx += xs[x] * col[x]
                sxx += xs[x] * xs[x] * col[x]
            o = out[p]
            o[0] = tot
            o[1] = mx
            o[2] = my
            o[3] = sxx
            o[4] = syy
            dacc[0] += d0
            dacc[1] += d1
            for d in range(nd):
                o[N_MOMENTS + d] = dacc[d]
        return out

    return kernel


_KERNELS = {(f, m, e): _make_kernel(f, m, e) for f in (True, False) for m in (True, False)
            for e in (True, False)}


def prepare(det_shape, detectors, mask, center):
    """Kernel arguments for these detectors, dead-pixel mask and centre.

    Returns ``(args, cols)``: ``cols[name]`` is the output column of each detector.
    """
    ny, nx = det_shape
    m = np.zeros((ny, nx), bool) if mask is None else np.asarray(mask, bool)
    keep = ~m
    if detectors:
        w = np.stack([np.asarray(d.weights, np.float64) * keep for d in detectors])
    else:
        w = np.zeros((0, ny, nx))
    if len(detectors) == 1:   # the fused loop reads two weight rows
        w = np.concatenate([w, np.zeros((1, ny, nx))])
    cols = {d.name: N_MOMENTS + k for k, d in enumerate(detectors)}
    return (w, m.any(axis=1), m, float(center[0]), float(center[1])), cols


def moments(block: np.ndarray, args) -> np.ndarray:
    """Run the kernel on a block ``(..., det_y, det_x)``; returns ``(..., n_out)``."""
    shp = block.shape
    flat = block.reshape((-1,) + shp[-2:])
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    nd = args[0].shape[0]
    out = _KERNELS[(nd > 0, bool(args[1].any()), nd > 2)](flat, *args)
    return out.reshape(shp[:-2] + (out.shape[-1],))
