"""Compiled one-pass kernel: CoM moments and every virtual detector per pattern.

Each pattern is read once, row by row. The inner loop only adds the row into
a running column-sum array and into the row sum; the moments follow by
separability (``sum_x x * colsum[x]``, ``sum_y y * rowsum[y]``).

Virtual detectors cost almost nothing on top, by summation by parts along
each detector column: with ``C_y[x]`` the column sum over rows ``0..y``,

    sum_y w[y, x] I[y, x] = sum_y (w[y, x] - w[y + 1, x]) C_y[x],

so a detector only needs ``C_y[x]`` at the pixels where its weight changes
down a column (the top and bottom edge of a disk or annulus: a few hundred
"events" per pattern instead of a multiply per pixel). Detectors whose
weights change almost everywhere (smooth, soft-edged weights) are instead
multiplied in the main loop (the first two) or in a loop re-reading the row
from L1 cache. Either way memory traffic is the data once.

Sums run in float32 within a row and over at most ``_FLUSH`` rows (exact
for integer counts, relative error ~1e-7 otherwise), then in float64;
float64 and 32-bit integer data are summed in float64 throughout. Dead
pixels are skipped on the (few) rows that have them.
"""

from __future__ import annotations

import numba
import numpy as np

N_MOMENTS = 5   # total, sum x I, sum y I, sum x^2 I, sum y^2 I
_FLUSH = 16     # rows summed in the fast accumulator before adding into float64
# a detector goes through the event path when its weights change down a column
# at fewer than this fraction of pixels: an event (~5 scalar operations) costs about
# what a dense detector costs on 20 pixels (a vector multiply-add plus its share of
# the per-row reduction); disks and annuli have ~8 R / N^2 events per pixel (2 % on
# a 128^2 detector)
_EVENT_FRACTION = 0.06


def _make_kernel(acc_t, n_dense: int, masked: bool):
    """The kernel for this accumulator type, number of dense detectors, dead pixels or not.

    Separate compiled variants because an unused multiply or branch in the
    inner loop costs a fifth to a half of the throughput.
    """
    fused = n_dense > 0
    extra = n_dense > 2

    # no cache=True: the variants share one source and would overwrite each other's cache
    @numba.njit(parallel=True, fastmath=True)
    def kernel(data, w, masked_rows, mask, evp, evk, evc, n_ev_det, cx, cy
               ):  # pragma: no cover - compiled
        n, ny, nx = data.shape
        nd = w.shape[0]
        out = np.zeros((n, N_MOMENTS + nd + n_ev_det))
        for p in numba.prange(n):
            col = np.zeros(nx)
            cacc = np.zeros(nx, acc_t)
            dacc = np.zeros(max(nd, 2))
            eacc = np.zeros((max(n_ev_det, 1), 4))
            tot = 0.0
            my = 0.0
            syy = 0.0
            for y in range(ny):
                row = data[p, y]
                rs = acc_t(0.0)
                a0 = acc_t(0.0)
                a1 = acc_t(0.0)
                if masked and masked_rows[y]:
                    # slow path, only on rows with dead pixels: skip them entirely
                    # (a NaN times a zero weight would still be NaN)
                    mrow = mask[y]
                    for x in range(nx):
                        if not mrow[x]:
                            v = row[x]
                            rs += v
                            cacc[x] += v
                            for d in range(nd):
                                dacc[d] += w[d, y, x] * v
                elif fused:
                    w0 = w[0, y]
                    w1 = w[1, y]
                    for x in range(nx):
                        v = row[x]
                        rs += v
                        cacc[x] += v
                        a0 += w0[x] * v
                        a1 += w1[x] * v
                    if extra:
                        # further dense detectors in pairs, re-reading the row from L1
                        for d in range(2, nd - 1, 2):
                            wa = w[d, y]
                            wb = w[d + 1, y]
                            b0 = acc_t(0.0)
                            b1 = acc_t(0.0)
                            for x in range(nx):
                                v = row[x]
                                b0 += wa[x] * v
                                b1 += wb[x] * v
                            dacc[d] += b0
                            dacc[d + 1] += b1
                        if nd % 2 == 1:
                            wa = w[nd - 1, y]
                            b0 = acc_t(0.0)
                            for x in range(nx):
                                b0 += wa[x] * row[x]
                            dacc[nd - 1] += b0
                else:
                    for x in range(nx):
                        v = row[x]
                        rs += v
                        cacc[x] += v
                # detector edges on this row: C_y[x] = col[x] + cacc[x]. One loop per
                # row (a loop per detector would mispredict its exit), and four lanes
                # per detector so that consecutive events on one detector do not wait
                # on each other's read-modify-write
                for e in range(evp[y], evp[y + 1]):
                    k = evk[e]              # column << 20 | detector: one load
                    xe = k >> 20
                    eacc[k & 0xFFFFF, e & 3] += evc[e] * (col[xe] + cacc[xe])
                if (y + 1) % _FLUSH == 0:
                    for x in range(nx):
                        col[x] += cacc[x]
                        cacc[x] = 0.0
                dacc[0] += a0
                dacc[1] += a1
                tot += rs
                dy = y - cy
                my += dy * rs
                syy += dy * dy * rs
            mx = 0.0
            sxx = 0.0
            for x in range(nx):
                c = col[x] + cacc[x]
                dx = x - cx
                mx += dx * c
                sxx += dx * dx * c
            o = out[p]
            o[0] = tot
            o[1] = mx
            o[2] = my
            o[3] = sxx
            o[4] = syy
            for d in range(nd):
                o[N_MOMENTS + d] = dacc[d]
            for d in range(n_ev_det):
                o[N_MOMENTS + nd + d] = (eacc[d, 0] + eacc[d, 1]) + (eacc[d, 2] + eacc[d, 3])
        return out

    return kernel


_KERNELS: dict = {}


def _kernel(acc_t, n_dense: int, masked: bool):
    key = (np.dtype(acc_t).name, min(n_dense, 3), masked)
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernel(acc_t, n_dense, masked)
    return _KERNELS[key]


def _events(weights: list[np.ndarray], ny: int, nx: int):
    """Summation-by-parts events of detectors: CSR by row of (x << 20 | detector, coefficient).

    Row ``y`` has events ``evp[y]:evp[y + 1]``.
    """
    ys, xs, ds, cs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], \
        [np.zeros(0)]
    for d, w in enumerate(weights):
        diff = w - np.concatenate([w[1:], np.zeros((1, nx))])
        y, x = np.nonzero(diff)
        ys.append(y)
        xs.append(x)
        ds.append(np.full(len(y), d))
        cs.append(diff[y, x])
    y, x, d, c = (np.concatenate(v) for v in (ys, xs, ds, cs))
    order = np.lexsort((x, y))
    y, x, d, c = y[order], x[order], d[order], c[order]
    evp = np.searchsorted(y, np.arange(ny + 1)).astype(np.int64)
    return evp, (x.astype(np.int64) << 20) | d.astype(np.int64), c.astype(np.float32)


def prepare(det_shape, detectors, mask, center):
    """Kernel arguments for these detectors, dead-pixel mask and centre.

    Returns ``(args, cols)``: ``cols[name]`` is the output column of each detector.
    """
    ny, nx = det_shape
    m = np.zeros((ny, nx), bool) if mask is None else np.asarray(mask, bool)
    keep = ~m
    dense, sparse = [], []
    for d in detectors:
        w = np.asarray(d.weights, np.float64)
        n_edges = np.count_nonzero(np.diff(w, axis=0, append=0.0))
        (sparse if n_edges <= _EVENT_FRACTION * w.size else dense).append((d.name, w))
    # dense detectors multiply in the loop: dead pixels must get zero weight there;
    # the event path reads column sums that already exclude them
    w = (np.stack([wd * keep for _, wd in dense]).astype(np.float32) if dense
         else np.zeros((0, ny, nx), np.float32))
    if len(dense) == 1:   # the fused loop reads two weight rows
        w = np.concatenate([w, np.zeros((1, ny, nx), np.float32)])
    ev = _events([ws for _, ws in sparse], ny, nx)
    cols = {name: N_MOMENTS + k for k, (name, _) in enumerate(dense)}
    cols.update({name: N_MOMENTS + w.shape[0] + k for k, (name, _) in enumerate(sparse)})
    args = (w, m.any(axis=1), m, *ev, len(sparse), float(center[0]), float(center[1]))
    return args, cols


def _acc_type(dtype) -> type:
    """float32 sums for data whose row sums float32 holds well, float64 otherwise."""
    dt = np.dtype(dtype)
    if dt == np.float32 or (dt.kind in "iub" and dt.itemsize <= 2):
        return np.float32
    return np.float64


def moments(block: np.ndarray, args) -> np.ndarray:
    """Run the kernel on a block ``(..., det_y, det_x)``; returns ``(..., n_out)``."""
    shp = block.shape
    flat = block.reshape((-1,) + shp[-2:])
    if flat.dtype == np.float16 or flat.dtype == np.bool_:
        flat = flat.astype(np.float32)
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    w = args[0]
    kern = _kernel(_acc_type(flat.dtype), w.shape[0], bool(args[1].any()))
    if _acc_type(flat.dtype) is np.float64:
        w = w.astype(np.float64)
    out = kern(flat, w, *args[1:])
    return out.reshape(shp[:-2] + (out.shape[-1],))
