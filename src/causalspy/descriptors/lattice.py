"""Reference lattices, cell indices and local strain (vectorized over cells)."""

from __future__ import annotations

import numpy as np

__all__ = ["fit_lattice", "cell_indices", "strain_from_cells"]


def fit_lattice(pos: np.ndarray, t1: np.ndarray, t2: np.ndarray, *, n_iter: int = 3,
                region: tuple[float, float, float, float] | None = None) -> dict:
    """Least-squares lattice ``pos ~ origin + i t1 + j t2`` through the given columns.

    Parameters
    ----------
    pos : (n, 2) array
        Positions (px) of one sublattice.
    t1, t2 : (2,) arrays
        Approximate primitive translations (px).
    region : (x0, x1, y0, y1), optional
        Fit only columns inside this pixel box (a reference region the user
        names); the lattice is then extrapolated over the whole image.

    Returns
    -------
    dict
        ``origin``, ``t1``, ``t2`` (px) and the RMS residual ``rms`` (px).
    """
    pos = np.asarray(pos, float)
    sel = np.ones(len(pos), bool)
    if region is not None:
        x0, x1, y0, y1 = region
        sel = (pos[:, 0] >= x0) & (pos[:, 0] <= x1) & (pos[:, 1] >= y0) & (pos[:, 1] <= y1)
        if sel.sum() < 4:
            raise ValueError(f"The reference region {region} holds {int(sel.sum())} columns; "
                             "at least 4 are needed.")
    p = pos[sel]
    centre = np.median(p, axis=0)
    origin = p[np.argmin(np.hypot(*(p - centre).T))]
    B = np.array([t1, t2], float)
    rms = np.nan
    for _ in range(n_iter):
        f = (p - origin) @ np.linalg.inv(B)
        ij = np.rint(f)
        # refit origin, t1, t2 by linear least squares
        A = np.column_stack([np.ones(len(p)), ij])
        coef, *_ = np.linalg.lstsq(A, p, rcond=None)
        origin, B = coef[0], coef[1:]
        rms = float(np.sqrt(np.mean(np.sum((A @ coef - p) ** 2, axis=1))))
    return {"origin": origin, "t1": B[0], "t2": B[1], "rms": rms}


def cell_indices(pos: np.ndarray, lattice: dict, offset=(0.0, 0.0)) -> np.ndarray:
    """Integer lattice indices ``(i, j)`` of positions, shifted to start at 0."""
    B = np.array([lattice["t1"], lattice["t2"]], float)
    f = (np.asarray(pos, float) - np.asarray(lattice["origin"], float)) @ np.linalg.inv(B)
    ij = np.rint(f - np.asarray(offset)).astype(np.int64)
    if len(ij):
        ij -= ij.min(axis=0)
    return ij


def strain_from_cells(avec: np.ndarray, cvec: np.ndarray, t1: np.ndarray, t2: np.ndarray):
    """Small-strain tensor and rotation of each cell against the reference lattice.

    The deformation gradient maps the reference cell onto the local one,
    ``F [t1 t2] = [a c]``; strain ``e = (F + F^T)/2 - I`` and rotation
    ``w = (F_yx - F_xy) / 2`` (rad, positive from +x towards +y).

    Returns
    -------
    exx, eyy, exy, rotation : arrays
    """
    M = np.stack([avec, cvec], axis=-1)  # (n, 2, 2) columns a, c
    R = np.stack([t1, t2], axis=-1)
    F = M @ np.linalg.inv(R)
    exx = F[:, 0, 0] - 1.0
    eyy = F[:, 1, 1] - 1.0
    exy = 0.5 * (F[:, 0, 1] + F[:, 1, 0])
    rot = 0.5 * (F[:, 1, 0] - F[:, 0, 1])
    return exx, eyy, exy, rot


def defect_neighbourhood(xy: np.ndarray, defects: np.ndarray, is_self: np.ndarray,
                         r_px: float, a_px: float, max_distance: float):
    """Defects within ``r_px`` of each site and the nearest one's distance (in ``a_px``).

    ``is_self`` marks sites that are themselves a defect of this kind: they do
    not count themselves, and their nearest defect is the next one. Distances
    are capped at ``max_distance`` lattice constants (also when there is none).
    Two KD-tree queries, no loop over sites.
    """
    from scipy.spatial import cKDTree

    if len(defects) == 0:
        return np.zeros(len(xy)), np.full(len(xy), float(max_distance))
    tree = cKDTree(defects)
    count = tree.query_ball_point(xy, r_px, return_length=True) - is_self
    k = min(2, len(defects))
    dist, _ = tree.query(xy, k=k, distance_upper_bound=max_distance * a_px)
    dist = dist.reshape(len(xy), k)
    near = np.where(is_self & (k > 1), dist[:, -1], dist[:, 0])
    near = np.where(is_self & (k == 1), np.inf, near)
    return count, np.minimum(near / a_px, max_distance)
