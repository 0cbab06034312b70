"""Per column descriptors of MX2 monolayers (MoS2-like, 2H and 1T) from an
:class:`~causalspy.Atoms` table.

Everything is read off the metal lattice: with the reference translations
``t1``, ``t2`` (60 degrees apart, length ``a``) every metal site has six
hollow sites at the metal-chalcogen distance ``a / sqrt(3)``, three of type
1 (``(t1 + t2) / 3`` and its images) and three of type 2
(``2 (t1 + t2) / 3``). In [001] projection a 2H metal has chalcogen columns
on the three hollows of *one* type, a 1T metal on all six; which hollows are
occupied (by a column, or by a vacancy) is the local phase. All neighbour
searches are KD-tree queries over all columns at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from causalspy.descriptors.lattice import cell_indices, fit_lattice, strain_from_cells
from causalspy.descriptors.result import Descriptors
from causalspy.exceptions import InvalidParameterError, NoColumnsFoundError

__all__ = ["hexagonal_descriptors", "UNDETERMINED"]

#: ``phase`` label of a site whose neighbour configuration is neither 2H nor 1T
#: (boundaries, missing columns). Not an empty string: CSV files read "" back as
#: a missing value, and tables must round-trip losslessly.
UNDETERMINED = "undetermined"

#: Neighbours closer than this many metal-chalcogen distances count for ``coordination``.
COORDINATION_RADIUS = 1.2

#: Units of the hexagonal descriptors ("cal" = the image's calibrated length unit).
UNITS = {
    "x": "px", "y": "px", "x_cal": "cal", "y_cal": "cal", "site": "", "hollow": "",
    "sublattice": "", "column_index": "", "cell_i": "", "cell_j": "", "edge": "",
    "intensity": "image units x px^2", "amplitude": "image units", "coordination": "",
    "nn_distance": "cal",
    "exx": "", "eyy": "", "exy": "", "rotation": "rad", "psi3": "", "psi6": "",
    "dopant_z": "", "defect": "", "phase": "", "flag": "",
}

#: Descriptors that are measurements: NaN on flagged rows.
_MEASURED = ("intensity", "amplitude", "coordination", "nn_distance", "exx", "eyy", "exy",
             "rotation", "psi3", "psi6", "dopant_z")


# ----------------------------------------------------------------------------- helpers
def _hexagonal_basis(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two translations as a 60-degree basis, or raise if not triangular.

    A metal translation with a metal-chalcogen vector (``a / sqrt(3)`` at 30
    degrees) is recognised too: the basis is then the longer vector and its
    60-degree turn (:func:`_dense_cosets` labels the sites).
    """
    t1, t2 = np.asarray(vectors, float)
    if np.dot(t1, t2) < 0:  # 120-degree basis -> 60-degree basis
        t2 = t2 + t1
    l1, l2 = np.hypot(*t1), np.hypot(*t2)
    cosang = np.dot(t1, t2) / (l1 * l2) if l1 > 0 and l2 > 0 else 0.0
    angle = float(np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0))))
    ratio = float(max(l1, l2) / max(min(l1, l2), 1e-300))
    if abs(ratio - np.sqrt(3.0)) < 0.1 * np.sqrt(3.0) and abs(angle - 30.0) < 8.0:
        # a metal translation and a metal-chalcogen vector (a / sqrt 3 at 30 degrees):
        # find_atoms' lattice of a mostly-1T image, where every column is on one dense
        # triangular lattice. The metal lattice is the longer vector and its 60-degree turn.
        long = t1 if l1 > l2 else t2
        c, s_ = 0.5, np.sqrt(3.0) / 2
        return long, np.array([c * long[0] - s_ * long[1], s_ * long[0] + c * long[1]])
    if ratio > 1.1 or abs(angle - 60.0) > 8.0:
        a, b = np.asarray(vectors, float)
        raw = float(np.degrees(np.arccos(np.clip(
            np.dot(a, b) / (np.hypot(*a) * np.hypot(*b)), -1.0, 1.0))))
        raise InvalidParameterError(
            "These columns do not look hexagonal: the lattice vectors have lengths "
            f"{np.hypot(*a):.3g} and {np.hypot(*b):.3g} px at {raw:.1f} degrees, but an MX2 "
            "monolayer along [001] needs a triangular metal lattice (two equal translations at "
            "60 or 120 degrees). Use the structure that matches the image (e.g. "
            "structure='perovskite'), or check the lattice vectors found by find_atoms."
        )
    return t1, t2


def _dense_cosets(pos: np.ndarray, bright: np.ndarray, t1: np.ndarray, t2: np.ndarray):
    """Site labels (0 metal, 1 and 2 the two hollows) from positions alone.

    Every site of the monolayer lies on the dense triangular lattice spanned
    by ``v1 = (t1 + t2) / 3`` and ``v2 = (2 t1 - t2) / 3``; with integer
    coordinates ``(m1, m2)`` on it, ``(m1 - m2) mod 3`` tells the three
    cosets apart (metal sites ``i t1 + j t2`` have ``m1 - m2 = 3 j``). The
    metal coset is the brightest. Returns the labels and the refined
    ``t1, t2``.
    """
    from causalspy.descriptors.lattice import fit_lattice

    lat = fit_lattice(pos, (t1 + t2) / 3.0, (2.0 * t1 - t2) / 3.0)
    v = np.array([lat["t1"], lat["t2"]])
    m = np.rint((pos - lat["origin"]) @ np.linalg.inv(v)).astype(np.int64)
    coset = (m[:, 0] - m[:, 1]) % 3
    med = [np.nanmedian(bright[coset == k]) if (coset == k).any() else -np.inf for k in range(3)]
    metal = int(np.argmax(med))
    labels = (coset - metal) % 3
    return labels, v[0] + v[1], 2.0 * v[0] - v[1]


def _offsets(t1: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same-site neighbour vectors (6, 2) and hollow offsets from a metal (6, 2).

    Hollows 0-2 are of type 1 (images of ``(t1 + t2) / 3``), 3-5 of type 2
    (images of ``2 (t1 + t2) / 3``).
    """
    same = np.array([t1, t2, t2 - t1, -t1, -t2, t1 - t2])
    h = np.array([t1 + t2, t2 - 2 * t1, t1 - 2 * t2,
                  -(t1 + t2), 2 * t2 - t1, 2 * t1 - t2]) / 3.0
    return same, h


def _query(tree: cKDTree | None, pts: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest tree point within ``tol`` of each point: (found, index)."""
    if tree is None or tree.n == 0 or len(pts) == 0:
        return np.zeros(len(pts), bool), np.zeros(len(pts), np.int64)
    d, j = tree.query(pts, distance_upper_bound=tol)
    ok = np.isfinite(d)
    return ok, np.where(ok, j, 0)


def _cluster(points: np.ndarray, tol: float) -> tuple[np.ndarray, int]:
    """Group points closer than ``tol`` (connected components): labels, number."""
    n = len(points)
    if n == 0:
        return np.zeros(0, np.int64), 0
    pairs = cKDTree(points).query_pairs(tol, output_type="ndarray")
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    nc, lab = connected_components(g, directed=False)
    return lab.astype(np.int64), int(nc)


def _inside(p: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    x0, x1, y0, y1 = bounds
    return (p[..., 0] >= x0) & (p[..., 0] <= x1) & (p[..., 1] >= y0) & (p[..., 1] <= y1)


def _robust_stats(v: np.ndarray) -> tuple[float, float]:
    med = float(np.median(v))
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    if mad <= 0:
        mad = float(np.std(v)) or 1.0
    return med, mad


def _dopant_z(intensity, site, phase, usable) -> np.ndarray:
    """Robust z-score of the intensity within (site, phase) groups.

    Rows of undetermined phase (and chalcogen columns whose metals disagree
    on the phase, as at a 2H/1T boundary where a column may hold one atom
    or two) are scored against each phase group of their site and keep the
    smallest ``|z|`` (the group they fit best); a site without any phase
    group of 5 usable columns is scored as one group.
    """
    z = np.full(len(intensity), np.nan)
    for s in np.unique(site[usable]):
        on = usable & (site == s)
        stats = {}
        for ph in ("2H", "1T"):
            m = on & (phase == ph)
            if m.sum() >= 5:
                stats[ph] = _robust_stats(intensity[m])
        if not stats:
            if on.sum() >= 5:
                med, mad = _robust_stats(intensity[on])
                z[on] = (intensity[on] - med) / mad
            continue
        for ph, (med, mad) in stats.items():
            m = on & (phase == ph)
            z[m] = (intensity[m] - med) / mad
        rest = on & ~np.isin(phase, list(stats))
        if rest.any():
            cand = np.array([(intensity[rest] - med) / mad for med, mad in stats.values()])
            best = np.argmin(np.abs(cand), axis=0)
            z[rest] = cand[best, np.arange(cand.shape[1])]
    return z


def _majority(votes_2h: np.ndarray, votes_1t: np.ndarray) -> np.ndarray:
    return np.where(votes_2h > votes_1t, "2H",
                    np.where(votes_1t > votes_2h, "1T", UNDETERMINED)).astype(object)


def _image_bounds(atoms, pos: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Region where lattice sites are observable: the image minus ``margin``, or
    (image size unknown) the bounding box of the columns."""
    shape = None
    if atoms.image is not None and np.ndim(atoms.image) == 2:
        shape = np.shape(atoms.image)
    else:
        src = atoms.metadata.get("source", {}) if isinstance(atoms.metadata, dict) else {}
        if isinstance(src, dict) and src.get("shape") is not None and len(src["shape"]) == 2:
            shape = tuple(int(v) for v in src["shape"])
    if shape is not None:
        h, w = shape
        return (-0.5 + margin, w - 0.5 - margin, -0.5 + margin, h - 0.5 - margin)
    return (pos[:, 0].min(), pos[:, 0].max(), pos[:, 1].min(), pos[:, 1].max())


def _local_strain(pos, tree, tol, same, ref_same, scale):
    """Least-squares deformation gradient of each column from its same-site neighbours.

    ``F = (sum_k d_k r_k^T)(sum_k r_k r_k^T)^-1`` over the neighbours found
    (measured vectors ``d_k``, reference vectors ``r_k``), in calibrated
    coordinates. Returns ``F`` (n, 2, 2), the neighbour count and the
    measured neighbour vectors (n, 6, 2; NaN where missing).
    """
    n = len(pos)
    found = np.zeros((n, len(same)), bool)
    d = np.full((n, len(same), 2), np.nan)
    for k, r in enumerate(same):
        ok, j = _query(tree, pos + r, tol)
        found[:, k] = ok
        d[ok, k] = (tree.data[j[ok]] - pos[ok]) * scale
    R = ref_same * scale  # (6, 2) calibrated reference vectors
    dm = np.where(found[..., None], d, 0.0)
    A = np.einsum("nki,kj->nij", dm, R)
    B = np.einsum("nk,ki,kj->nij", found.astype(float), R, R)
    nfound = found.sum(axis=1)
    good = nfound >= 3
    F = np.full((n, 2, 2), np.nan)
    if good.any():
        F[good] = A[good] @ np.linalg.inv(B[good])
    return F, nfound, d


def _psi(vectors: np.ndarray, order: int, minimum: int) -> np.ndarray:
    """``|mean_k exp(i order theta_k)|`` over the finite rows of ``vectors`` (n, k, 2)."""
    ok = np.isfinite(vectors[..., 0])
    theta = np.arctan2(np.where(ok, vectors[..., 1], 0.0), np.where(ok, vectors[..., 0], 1.0))
    z = np.where(ok, np.exp(1j * order * theta), 0.0).sum(axis=1)
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.abs(z) / cnt
    return np.where(cnt >= minimum, out, np.nan)


def _unlike_neighbours(centres, tree, pts, radius, k):
    """Vectors (n, k, 2; NaN where missing) to the tree points within ``radius``."""
    n = len(centres)
    vec = np.full((n, k, 2), np.nan)
    if tree is None or tree.n == 0 or n == 0:
        return vec
    d, j = tree.query(centres, k=k, distance_upper_bound=radius)
    ok = np.isfinite(d)
    jj = np.where(ok, j, 0)
    v = pts[jj] - centres[:, None, :]
    vec[ok] = v[ok]
    return vec


def _check_number(name, value, minimum, strict=True):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)) and np.isfinite(value) and (
        value > minimum if strict else value >= minimum)
    if not ok:
        raise InvalidParameterError(
            f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}; got {value!r}."
        )
    return float(value)


def _reference(reference, pos_m, edge_m, t1, t2):
    """Reference lattice (origin, t1, t2 in px) for the strain."""
    interior = pos_m[~edge_m] if (~edge_m).sum() >= 4 else pos_m
    if isinstance(reference, str):
        if reference != "global":
            raise InvalidParameterError(
                "reference must be 'global', a pixel box (x0, x1, y0, y1) or a 2x2 array of "
                f"reference translations (px); got {reference!r}."
            )
        return fit_lattice(interior, t1, t2), "global"
    try:
        arr = np.asarray(reference, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.shape == (2, 2) and np.isfinite(arr).all():
        try:
            r1, r2 = _hexagonal_basis(arr)
        except InvalidParameterError:
            raise InvalidParameterError(
                "The reference translations must be two equal vectors (px) at 60 or 120 "
                f"degrees, one per row; got {arr.tolist()}."
            ) from None
        glob = fit_lattice(interior, t1, t2)
        # align the given translations with the fitted ones (same order and signs)
        cands = np.array([r1, r2, r2 - r1, -r1, -r2, r1 - r2])
        a1 = cands[np.argmin(np.hypot(*(cands - glob["t1"]).T))]
        a2 = cands[np.argmin(np.hypot(*(cands - glob["t2"]).T))]
        return {"origin": glob["origin"], "t1": a1, "t2": a2, "rms": np.nan}, arr.tolist()
    if arr is not None and arr.shape == (4,) and np.isfinite(arr).all():
        try:
            return fit_lattice(pos_m, t1, t2, region=tuple(arr.tolist())), arr.tolist()
        except ValueError as e:
            raise InvalidParameterError(str(e)) from e
    raise InvalidParameterError(
        "reference must be 'global', a pixel box (x0, x1, y0, y1) or a 2x2 array of reference "
        f"translations (px); got {reference!r}."
    )


# ----------------------------------------------------------------------------- main

#: An empty hollow fitted on the image is kept as a chalcogen column when its amplitude is
#: this many standard errors above zero ...
_SITE_SNR = 5.0
#: ... and above this fraction of the single-atom chalcogen amplitude (half the median
#: chalcogen column, which may hold two atoms, or 1/20 of the metal columns when no
#: chalcogen column was found): model errors, not shot noise, limit a fit on a residual.
_SITE_FRACTION = 0.5


#: Sites per band of the linear fit (memory: about 600 window pixels per site).
_BAND_SITES = 4000


def _linear_amplitudes(img, xy, sig, background):
    """Peak heights of Gaussians at fixed positions and widths: one weighted linear fit.

    All columns at once (sparse design matrix, a disk of 4 widths each), so
    overlapping neighbours share their pixels instead of biasing each other;
    large images go in bands of sites with a halo of two window radii (a core
    site's pixels see every column that reaches them). The pixel variance
    ``alpha + beta * model`` is fitted to the residuals of a first,
    Poisson-weighted pass (the image need not be in counts). Returns amplitudes
    and their standard errors (from the diagonal of the normal matrix).
    """
    r = int(np.ceil(4.0 * float(np.max(sig))))
    n = len(xy)
    if n <= _BAND_SITES:
        return _linear_amplitudes_band(img, xy, sig, background, r)[:2]
    amp = np.full(n, np.nan)
    err = np.full(n, np.nan)
    order = np.argsort(xy[:, 1], kind="stable")
    starts = list(range(0, n, _BAND_SITES))
    mid = starts[len(starts) // 2]
    nm = None  # one noise model for the image, fitted on the middle band
    for start in [mid] + [b for b in starts if b != mid]:
        core = order[start:start + _BAND_SITES]
        y0, y1 = xy[core[0], 1], xy[core[-1], 1]
        ext = np.flatnonzero((xy[:, 1] >= y0 - 2 * r) & (xy[:, 1] <= y1 + 2 * r))
        a, e, nm = _linear_amplitudes_band(img, xy[ext], sig[ext], background, r, nm)
        pos = np.searchsorted(ext, core)
        amp[core], err[core] = a[pos], e[pos]
    return amp, err


def _linear_amplitudes_band(img, xy, sig, background, r, nm=None):
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.linalg import cg, spsolve

    from causalspy.descriptors._hexfit_kernels import pair_products, render, site_sums
    from causalspy.descriptors._refit import _fit_noise, _NoiseModel

    h, w = img.shape
    n = len(xy)
    oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
    disk = ox ** 2 + oy ** 2 <= r * r
    ox, oy = ox[disk].astype(np.int64), oy[disk].astype(np.int64)
    cx = np.rint(xy[:, 0]).astype(np.int64)
    cy = np.rint(xy[:, 1]).astype(np.int64)
    y0 = max(int(cy.min()) - r, 0)
    y1 = min(int(cy.max()) + r + 1, h)  # the band's rows of pixels
    cy = cy - y0
    fx, fy = xy[:, 0].astype(np.float64), xy[:, 1] - y0
    sig = np.asarray(sig, np.float64)
    data = np.ascontiguousarray(img[y0:y1], dtype=np.float64) - background
    scale = max(float(np.median(np.abs(data))), 1e-12)
    var = np.maximum(np.abs(data), scale)  # Poisson-like first pass
    # windows overlap only when their centres are closer than 2 r
    pairs = cKDTree(np.column_stack([cx, cy]).astype(float)).query_pairs(
        2.0 * r + 1e-6, output_type="ndarray")
    pi, pj = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    idx = np.arange(n)
    amp = None
    for it in range(2):
        inv_var = 1.0 / var
        diag, rhs = site_sums(cx, cy, fx, fy, sig, oy, ox, inv_var, data)
        off = pair_products(cx, cy, fx, fy, sig, oy, ox, inv_var, r, pi, pj)
        G = coo_matrix((np.r_[off, off, diag], (np.r_[pi, pj, idx], np.r_[pj, pi, idx])),
                       shape=(n, n)).tocsr()
        # G is symmetric positive definite and nearly diagonal (windows overlap in their
        # tails): Jacobi-preconditioned conjugate gradients, exact LU as the fallback
        amp, info = cg(G, rhs, x0=amp, rtol=1e-12, maxiter=500,
                       M=diags(1.0 / diag))
        if info != 0:
            amp = spsolve(G.tocsc(), rhs)
        amp = np.asarray(amp, float)
        model, used = render(data.shape, cx, cy, fx, fy, sig, oy, ox, amp)
        if it == 0 and nm is None:
            nm = _fit_noise(model[used], (data - model)[used],
                            _NoiseModel(0.0, 1.0, 1e-6 * scale))
        var = nm.variance(model)
    with np.errstate(divide="ignore"):
        err = 1.0 / np.sqrt(diag)
    return amp, err, nm


def _fit_empty_hollows(atoms, t, pos, is_metal, is_chalc, pos_m, hollow_off, bounds, tol):
    """Fit the image at hollow sites of the metal lattice where no column was found.

    Close-packed single-atom chalcogen columns (1T: six around each metal, about
    3.4 column widths from it at a 0.17 a probe) are often missed by peak finding,
    and the phase and the vacancies are read off the hollows. Every column and
    every empty hollow gets its peak height from one linear fit at fixed positions
    and one width per site (the median of the metal, and of the chalcogen, columns); an
    empty hollow is kept as a chalcogen column (at its lattice position) when clearly
    occupied. Returns the table with the kept sites appended and every column's
    ``amplitude`` from that fit (one estimator for the dopant z-scores), and the
    number of sites fitted and kept.
    """
    hp = (pos_m[:, None, :] + hollow_off[None]).reshape(-1, 2)
    hp = hp[_inside(hp, bounds)]
    lab, nc = _cluster(hp, tol)
    if nc == 0:
        return t, 0, 0
    cnt = np.maximum(np.bincount(lab, minlength=nc), 1)
    sites = np.column_stack([np.bincount(lab, hp[:, 0], nc), np.bincount(lab, hp[:, 1], nc)])
    sites = sites / cnt[:, None]
    taken, _ = _query(cKDTree(pos), sites, tol)  # any column takes a site
    new = sites[~taken]
    params = atoms.metadata.get("parameters", {}) if isinstance(atoms.metadata, dict) else {}
    img = np.asarray(atoms.image, dtype=np.float64)
    if params.get("invert", False):
        img = float(img.max()) - img
    if "sigma_major" in t and "sigma_minor" in t:
        sig = np.sqrt(t["sigma_major"].to_numpy(float) * t["sigma_minor"].to_numpy(float))
    elif "sigma" in t:
        sig = t["sigma"].to_numpy(float)
    else:
        sig = np.full(len(t), 0.17 * np.sqrt(3.0) * float(np.hypot(*hollow_off[0])))
    good = np.isfinite(sig) & (sig > 0)
    if not (is_metal & good).any():
        return t, 0, 0
    sig_m = float(np.median(sig[is_metal & good]))
    sig_x = float(np.median(sig[is_chalc & good])) if (is_chalc & good).sum() >= 3 else sig_m
    # one width per site (the probe): single-column widths scatter with their free
    # backgrounds (W columns from 3.0 to 4.1 px at a 3.4 px probe; a Mo next to a vacancy
    # at 2.5 px reads as a light dopant), and a wrong tail of a bright column shows up on
    # its empty neighbours
    sig_all = np.r_[np.where(is_metal, sig_m, sig_x), np.full(len(new), sig_x)]
    background = (float(np.nanmedian(t["background"])) if "background" in t
                  and np.isfinite(t["background"]).any() else float(np.percentile(img, 5)))
    amp, err = _linear_amplitudes(img, np.vstack([pos, new]), sig_all, background)
    n0 = len(t)
    a_x = amp[:n0][is_chalc]
    ref = (0.5 * float(np.median(a_x)) if len(a_x) >= 3
           else 0.05 * float(np.median(amp[:n0][is_metal])))
    a_new, e_new = amp[n0:], err[n0:]
    keep = (a_new > _SITE_SNR * e_new) & (a_new > _SITE_FRACTION * ref)
    n_kept = int(keep.sum())
    rows = pd.DataFrame({"x": new[keep, 0], "y": new[keep, 1]})
    cal = atoms.calibration
    for ax in ("x", "y"):
        if f"{ax}_cal" in t:
            rows[f"{ax}_cal"] = (float(cal.get(f"{ax}_offset", 0.0))
                                 + float(cal.get(f"{ax}_scale", 1.0)) * rows[ax].to_numpy())
    rows["sublattice"] = int(t["sublattice"].max()) + 1
    rows["fit_ok"] = True
    rows["edge"] = False  # inside the observable region by construction
    rows["intensity"] = 2.0 * np.pi * sig_x ** 2 * a_new[keep]
    out = pd.concat([t, rows], ignore_index=True) if n_kept else t.copy()
    # every column's peak height from the one fit: dopant z-scores compare like with like
    out["amplitude"] = np.r_[amp[:n0], a_new[keep]]
    return out, len(new), n_kept


def hexagonal_descriptors(
    atoms,
    *,
    metal_sublattice: int | None = None,
    chalcogen_sublattice: int | list[int] | None = None,
    z_threshold: float = 5.0,
    tol: float | None = None,
    reference="global",
    measure: str = "amplitude",
    find_chalcogens: bool | None = None,
) -> Descriptors:
    """Per column descriptors of an MX2 monolayer (MoS2-like) seen along [001].

    One row per column (metal or chalcogen) plus one row per vacancy (a
    lattice site with no column, at its expected position). Works for 2H
    (trigonal prismatic: 3 chalcogen columns around each metal), 1T
    (octahedral: 6 single-atom chalcogen columns around each metal) and
    images where both coexist.

    Parameters
    ----------
    atoms : Atoms
        Columns with sublattices and lattice vectors (from ``find_atoms``).
    metal_sublattice : int, optional
        Sublattice label of the metal columns. Default: the sublattice with
        the brightest median column intensity (right for MoS2, WS2, WSe2;
        give it where a chalcogen pair outshines the metal, e.g. 2H-MoSe2).
    chalcogen_sublattice : int or list of int, optional
        Label(s) of the chalcogen columns. Default: every column that is not
        a metal column (unassigned columns, label -1, included): each is
        placed on a hollow site of the metal lattice by geometry, so the
        1T-only chalcogen sublattice needs no label of its own. Columns in
        neither group get ``site = "other"`` and are flagged.
    z_threshold : float
        A column is a substitutional dopant when the robust z-score of its
        brightness within its site and phase, ``|dopant_z|``, exceeds this.
    tol : float, optional
        Matching tolerance for lattice sites (px); default ``0.3 a / sqrt(3)``
        (``a`` the metal lattice parameter).
    reference : "global", (x0, x1, y0, y1) or (2, 2) array
        Reference lattice for the strain: a least-squares fit of all
        metal columns, of the metal columns inside a pixel box (a region the
        user names), or two known translations (px, one per row).
    measure : {"amplitude", "intensity"}
        Column brightness scored by ``dopant_z``: the fitted peak height
        (``amplitude``, default) or the integrated intensity. Both scale with
        the column's Z-contrast; with column widths and backgrounds fitted
        per column the integrated intensity scatters several times more
        (on 2H-MoS2 at 1e4 counts the S2 host columns reach ``|z|`` 5.7 and
        Se-doped ones start at 11, against 3.4 and 44 for the amplitude).
        Tables without an ``amplitude`` column use the intensity.
    find_chalcogens : bool, optional
        Fit the image at every hollow site of the metal lattice where no
        column was found (one weighted linear fit of all peak heights at
        fixed positions) and add the clearly occupied ones as chalcogen
        columns at their lattice positions (``column_index`` -1): more than
        5 standard errors above zero and above half a single-atom
        chalcogen. Every column's ``amplitude`` then comes from that fit,
        with one probe width per site (one estimator for the dopant
        z-scores; free single-column widths and backgrounds scatter). Close-packed single-atom 1T
        chalcogen columns are often missed by peak finding, and the phase is
        read off the hollows. Default: True when the atoms hold their image.

    Returns
    -------
    Descriptors
        Columns of the table:

        =============== ==========================================================
        x, y            column centre, or expected site of a vacancy (px)
        x_cal, y_cal    calibrated position
        site            "metal", "chalcogen" (or "other": not on the lattice)
        hollow          0 metal site; 1 or 2: chalcogen on a hollow of type 1
                        (``(t1 + t2) / 3``) or 2 (``2 (t1 + t2) / 3``) of the
                        reference lattice; -1 not on a lattice site
        sublattice      the atoms' sublattice label (vacancies: the label of
                        their site's columns)
        column_index    row of the column in the atoms table (-1: vacancy, or
                        a chalcogen column fitted at a hollow site, see
                        ``find_chalcogens``)
        cell_i, cell_j  lattice indices of metal sites (-1 for other rows)
        intensity       integrated column intensity (NaN for vacancies)
        amplitude       fitted peak height above background (NaN for vacancies;
                        with the image, see ``find_chalcogens``)
        coordination    number of unlike-site columns (chalcogen around a metal,
                        metal around a chalcogen) within 1.2 ``a / sqrt(3)``:
                        3 for 2H metals, 6 for 1T metals, 3 for chalcogens
        nn_distance     mean calibrated distance to those neighbours
        exx, eyy, exy,  small strain and rotation (rad, from +x towards +y) of
        rotation        the local triangular lattice of same-site neighbours
                        against the reference lattice (at least 3 neighbours)
        psi3            ``|<exp(3 i theta)>|`` over the unlike-site neighbours:
                        1 for a 2H metal, 0 for a 1T metal, 1 for chalcogens
        psi6            ``|<exp(6 i theta)>|`` over the same-site neighbours
        dopant_z        robust z-score of ``measure`` within site and phase
        defect          "none", "dopant" (``|dopant_z| > z_threshold``: a
                        heavier or lighter column; on a 2H chalcogen site a
                        negative z is often a column missing one of its two
                        atoms) or "vacancy" (no column)
        phase           "2H", "1T" or "undetermined" (boundary, missing columns)
        edge            the column's fitting window is cut by the image border
        flag            True: edge column, a neighbour site outside the image,
                        or not on a lattice site; its measured values are NaN
        =============== ==========================================================

    Raises
    ------
    NoColumnsFoundError
        No sublattices or lattice vectors, or too few columns.
    InvalidParameterError
        The columns do not form a hexagonal MX2 lattice (e.g. a perovskite),
        or a parameter is out of range.

    Notes
    -----
    The reference translations are the least-squares fit of the metal
    columns, reduced to a 60-degree basis ``t1, t2``. Around each metal
    site ``m`` the hollows are ``m + h_k`` with ``h = (t1 + t2) / 3,
    (t2 - 2 t1) / 3, (t1 - 2 t2) / 3`` (type 1) and their negatives (type
    2). Each hollow is *occupied* when a chalcogen column lies within
    ``tol`` of it. An empty hollow is a chalcogen vacancy when at least two
    of the metals around it have both other hollows of the same type
    occupied (the site belongs to a filled set); an empty metal site
    predicted by at least two metal neighbours is a metal vacancy. With
    vacancies counted as sites, a metal is 2H when the hollows of one type
    are all filled and those of the other all empty, 1T when all six are
    filled, undetermined otherwise; a hollow outside the image is not
    counted. A chalcogen site takes the majority phase of its metals.

    Local strain: the deformation gradient ``F`` that best maps the
    reference neighbour vectors ``r_k`` onto the measured ones ``d_k``
    (least squares over the neighbours found,
    ``F = (sum d_k r_k^T)(sum r_k r_k^T)^-1``), in calibrated coordinates;
    ``e = (F + F^T) / 2 - I`` and ``rotation = (F_yx - F_xy) / 2``, as in
    :func:`causalspy.descriptors.lattice.strain_from_cells`.

    Examples
    --------
    >>> from causalspy.data import hexagonal
    >>> s, truth = hexagonal(cells=(8, 8), seed=0)
    >>> d = hexagonal_descriptors(s.find_atoms())
    >>> sorted(d["site"].unique())
    ['chalcogen', 'metal']
    """
    t = atoms.to_dataframe()
    if atoms.lattice_vectors is None or "sublattice" not in t:
        raise NoColumnsFoundError(
            "These atoms have no lattice vectors or sublattices (too few columns, or found with "
            "sublattices=False); hexagonal descriptors need both."
        )
    if len(t) < 8:
        raise NoColumnsFoundError(f"{len(t)} columns are too few for a hexagonal lattice.")
    z_threshold = _check_number("z_threshold", z_threshold, 0.0)
    t1, t2 = _hexagonal_basis(np.asarray(atoms.lattice_vectors, float))
    a_px = float(np.hypot(*t1))
    d_mx = a_px / np.sqrt(3.0)
    tol_given = tol
    tol = 0.3 * d_mx if tol is None else _check_number("tol", tol, 0.0)
    if tol >= 0.5 * d_mx:
        raise InvalidParameterError(
            f"tol={tol:g} px is too large: it must stay below half the metal-chalcogen distance "
            f"({0.5 * d_mx:.3g} px) so neighbouring sites are not confused."
        )

    pos = t[["x", "y"]].to_numpy(float)
    sub = t["sublattice"].to_numpy().astype(np.int64)
    inten = t["intensity"].to_numpy(float) if "intensity" in t else np.full(len(t), np.nan)
    amp = t["amplitude"].to_numpy(float) if "amplitude" in t else np.full(len(t), np.nan)
    if measure not in ("amplitude", "intensity"):
        raise InvalidParameterError(
            f"measure must be 'amplitude' or 'intensity'; got {measure!r}."
        )
    if measure == "amplitude" and not np.isfinite(amp).any():
        measure = "intensity"
    bright = amp if measure == "amplitude" else inten
    edge = t["edge"].to_numpy(bool) if "edge" in t else np.zeros(len(t), bool)
    labels = sorted(set(np.unique(sub[sub >= 0]).tolist()))
    raw = np.asarray(atoms.lattice_vectors, float)
    dense = abs(np.hypot(*raw[0]) - np.hypot(*raw[1])) > 0.2 * a_px
    d_nn = float(np.median(cKDTree(pos).query(pos, k=2)[0][:, 1]))
    on_dense = len(labels) < 2 and abs(d_nn - a_px) < 0.15 * a_px
    if (dense or on_dense) and metal_sublattice is None and chalcogen_sublattice is None:
        # find_atoms took the dense triangular lattice of a (mostly) 1T image, where metal
        # and both hollows are all occupied, for one sublattice: label the sites by position.
        # Its translations are then a / sqrt(3) (or one of them a metal translation, which
        # _hexagonal_basis recognised): the metal lattice is the sqrt(3) x sqrt(3) one.
        if on_dense and not dense:
            t1, t2 = t1 + t2, 2.0 * t2 - t1
        sub2, u1, u2 = _dense_cosets(pos, np.where(np.isfinite(bright), bright, inten), t1, t2)
        if len(np.unique(sub2)) >= 2:
            sub, t1, t2 = sub2, u1, u2
            labels = sorted(np.unique(sub).tolist())
            a_px = float(np.hypot(*t1))
            d_mx = a_px / np.sqrt(3.0)
            tol = 0.3 * d_mx if tol_given is None else tol
    if len(labels) < 2 and metal_sublattice is None:
        raise InvalidParameterError(
            f"These atoms have {len(labels)} sublattice(s); an MX2 monolayer needs metal and "
            "chalcogen columns on different sublattices. Check find_atoms' result, or pass "
            "metal_sublattice=."
        )
    if metal_sublattice is None:
        med = [np.nanmedian(bright[sub == s]) if np.isfinite(bright[sub == s]).any() else -np.inf
               for s in labels]
        metal_sublattice = labels[int(np.argmax(med))]
    elif metal_sublattice not in labels:
        raise InvalidParameterError(
            f"metal_sublattice={metal_sublattice!r} is not a sublattice of these atoms ({labels})."
        )
    is_metal = sub == metal_sublattice
    if chalcogen_sublattice is None:
        is_chalc = ~is_metal
        chalc_labels = None
    else:
        chalc_labels = sorted({int(v) for v in np.atleast_1d(chalcogen_sublattice)})
        bad = [v for v in chalc_labels if v not in labels and v != -1]
        if bad or metal_sublattice in chalc_labels:
            raise InvalidParameterError(
                f"chalcogen_sublattice={chalcogen_sublattice!r} must name sublattices of these "
                f"atoms ({labels}) other than the metal one ({metal_sublattice})."
            )
        is_chalc = np.isin(sub, chalc_labels)
    if is_metal.sum() < 4:
        raise NoColumnsFoundError(f"{int(is_metal.sum())} metal columns are too few for a lattice.")

    cal = atoms.calibration
    sx, sy = abs(float(cal.get("x_scale", 1.0))), abs(float(cal.get("y_scale", 1.0)))
    scale = np.array([sx, sy])
    units_len = cal.get("x_units", "px")

    # reference lattice of the metal columns, as a 60-degree basis
    pos_m = pos[is_metal]
    lat = fit_lattice(pos_m[~edge[is_metal]] if (~edge[is_metal]).sum() >= 4 else pos_m, t1, t2)
    t1, t2 = _hexagonal_basis(np.array([lat["t1"], lat["t2"]]))
    same_off, hollow_off = _offsets(t1, t2)
    d_mx = float(np.hypot(*t1)) / np.sqrt(3.0)
    radius = COORDINATION_RADIUS * d_mx
    margin = 0.5 * d_mx
    bounds = _image_bounds(atoms, pos, margin)

    # the metal columns must form the triangular lattice themselves
    tree_m = cKDTree(pos_m)
    ok_nb, _ = _query(tree_m, pos_m + t1, tol)
    ok_nb2, _ = _query(tree_m, pos_m + t2, tol)
    if np.mean(ok_nb | ok_nb2) < 0.5:
        raise InvalidParameterError(
            "These columns do not look hexagonal: the metal sublattice "
            f"({metal_sublattice}) does not repeat along the lattice vectors. Check "
            "metal_sublattice= and the structure."
        )

    if find_chalcogens is None:
        find_chalcogens = atoms.image is not None and np.ndim(atoms.image) == 2
    elif find_chalcogens and (atoms.image is None or np.ndim(atoms.image) != 2):
        raise InvalidParameterError(
            "find_chalcogens=True fits the hollow sites on the image, but these atoms hold "
            "none (find_atoms keeps it; an Atoms table loaded from a file does not)."
        )
    n_fitted = n_added = 0
    if find_chalcogens:
        t, n_fitted, n_added = _fit_empty_hollows(atoms, t, pos, is_metal, is_chalc, pos_m,
                                                  hollow_off, bounds, tol)
        if n_added or "amplitude" in t:
            pos = t[["x", "y"]].to_numpy(float)
            sub = t["sublattice"].to_numpy().astype(np.int64)
            inten = t["intensity"].to_numpy(float)
            amp = t["amplitude"].to_numpy(float) if "amplitude" in t else np.full(len(t), np.nan)
            bright = amp if measure == "amplitude" else inten
            edge = t["edge"].to_numpy(bool) if "edge" in t else np.zeros(len(t), bool)
            is_chalc = np.r_[is_chalc, np.ones(n_added, bool)]
            is_metal = np.r_[is_metal, np.zeros(n_added, bool)]

    # --- chalcogen columns on the hollows of their nearest metal
    pos_c_all = pos[is_chalc]
    hollow = np.where(is_metal, 0, -1).astype(np.int64)
    if len(pos_c_all):
        dnn, jnn = tree_m.query(pos_c_all, distance_upper_bound=1.5 * d_mx)
        near = np.isfinite(dnn)
        rel = pos_c_all - pos_m[np.where(near, jnn, 0)]
        dist = np.hypot(*(rel[:, None, :] - hollow_off[None]).transpose(2, 0, 1))
        k = np.argmin(dist, axis=1)
        on = near & (dist[np.arange(len(k)), k] < tol)
        hol = np.where(on, np.where(k < 3, 1, 2), -1)
        hollow[is_chalc] = hol
        if np.mean(on) < 0.5:
            raise InvalidParameterError(
                f"These columns do not look hexagonal: only {np.mean(on):.0%} of the non-metal "
                "columns sit on the hollow sites of the metal lattice (an MX2 monolayer along "
                "[001] has them all there). Check metal_sublattice= and the structure."
            )
    is_x = is_chalc & (hollow > 0)  # chalcogen columns on a hollow site
    tree_all = cKDTree(pos)
    pos_x = pos[is_x]
    tree_x = cKDTree(pos_x) if len(pos_x) else None

    # --- metal vacancies: empty metal sites predicted by >= 2 metal neighbours
    pred = (pos_m[:, None, :] + same_off[None]).reshape(-1, 2)
    ok, _ = _query(tree_all, pred, 1.5 * tol)
    cand = pred[~ok & _inside(pred, bounds)]
    lab, nc = _cluster(cand, tol)
    cnt = np.bincount(lab, minlength=nc)
    vm = np.column_stack([np.bincount(lab, cand[:, 0], nc), np.bincount(lab, cand[:, 1], nc)])
    vm = (vm / np.maximum(cnt, 1)[:, None])[cnt >= 2]
    n_vm = len(vm)

    # --- hollows of every metal site (columns and vacancies)
    msite = np.vstack([pos_m, vm])
    nmet = len(msite)
    hp = msite[:, None, :] + hollow_off[None]  # (nmet, 6, 2)
    occ, occ_j = _query(tree_x, hp.reshape(-1, 2), tol)
    occ, occ_j = occ.reshape(nmet, 6), occ_j.reshape(nmet, 6)
    known = _inside(hp, bounds)
    # empty hollows inside the image: chalcogen vacancy when >= 2 of its metals
    # have both other hollows of the same type occupied
    occ1 = occ[:, :3].sum(axis=1)
    occ2 = occ[:, 3:].sum(axis=1)
    others = np.where(np.arange(6)[None] < 3, occ1[:, None], occ2[:, None])  # empty -> others
    expects = ~occ & known & (others == 2)
    empty = ~occ & known
    ei, ek = np.nonzero(empty)
    lab, nc = _cluster(hp[ei, ek], tol)  # one cluster per empty hollow site
    cnt = np.maximum(np.bincount(lab, minlength=nc), 1)
    is_vx = np.bincount(lab, expects[ei, ek].astype(float), nc) >= 2
    vx = np.column_stack([np.bincount(lab, hp[ei, ek, 0], nc),
                          np.bincount(lab, hp[ei, ek, 1], nc)]) / cnt[:, None]
    vx_type2 = np.bincount(lab, (ek >= 3).astype(float), nc) / cnt > 0.5
    vx_pos = vx[is_vx]
    vx_hollow = np.where(vx_type2, 2, 1)[is_vx].astype(np.int64)
    # hollows filled by a column or a vacancy
    filled = occ.copy()
    filled[ei, ek] = is_vx[lab]

    # --- phase of each metal site from its hollow configuration
    f1, f2 = (filled & known)[:, :3].sum(1), (filled & known)[:, 3:].sum(1)
    k1, k2 = known[:, :3].sum(1), known[:, 3:].sum(1)
    is_2h = ((f1 == k1) & (k1 >= 2) & (f2 == 0)) | ((f2 == k2) & (k2 >= 2) & (f1 == 0))
    is_1t = (f1 == k1) & (f2 == k2) & (k1 >= 1) & (k2 >= 1) & (k1 + k2 >= 4)
    phase_m = np.where(is_2h, "2H", np.where(is_1t, "1T", UNDETERMINED)).astype(object)
    # chalcogen columns: majority phase of the metals whose hollows they fill
    vote2 = np.zeros(len(pos_x))
    vote1 = np.zeros(len(pos_x))
    mi, mk = np.nonzero(occ)
    np.add.at(vote2, occ_j[mi, mk], phase_m[mi] == "2H")
    np.add.at(vote1, occ_j[mi, mk], phase_m[mi] == "1T")
    phase_x = _majority(vote2, vote1)
    nvote = np.bincount(occ_j[mi, mk], minlength=len(pos_x))
    # unanimous (>= 2 metals) phase: used to score dopants (see _dopant_z)
    sure_x = (nvote >= 2) & ((vote2 == nvote) | (vote1 == nvote))
    # chalcogen vacancies: majority phase of the metals predicting them
    sel = is_vx[lab]
    vac_id = (np.cumsum(is_vx) - 1)[lab[sel]]
    phase_vx = _majority(
        np.bincount(vac_id, (phase_m[ei[sel]] == "2H").astype(float), len(vx_pos)),
        np.bincount(vac_id, (phase_m[ei[sel]] == "1T").astype(float), len(vx_pos)))

    # --- assemble rows: columns, then metal vacancies, then chalcogen vacancies
    n_col = len(t)
    n_vx = len(vx_pos)
    rows_pos = np.vstack([pos, vm, vx_pos])
    n = len(rows_pos)
    is_vac = np.r_[np.zeros(n_col, bool), np.ones(n_vm + n_vx, bool)]
    site = np.full(n, "other", dtype=object)
    site[:n_col][is_metal] = "metal"
    site[:n_col][is_x] = "chalcogen"
    site[n_col:n_col + n_vm] = "metal"
    site[n_col + n_vm:] = "chalcogen"
    hol = np.r_[hollow, np.zeros(n_vm, np.int64), vx_hollow.astype(np.int64)]
    phase = np.full(n, UNDETERMINED, dtype=object)
    phase_cols = np.full(n_col, UNDETERMINED, dtype=object)
    phase_cols[np.flatnonzero(is_metal)] = phase_m[: len(pos_m)]
    phase_cols[np.flatnonzero(is_x)] = phase_x
    phase[:n_col] = phase_cols
    phase[n_col:n_col + n_vm] = phase_m[len(pos_m):]
    phase[n_col + n_vm:] = phase_vx
    sure = np.zeros(n, bool)
    sure[:n_col][np.flatnonzero(is_x)] = sure_x
    sure[:n_col][is_metal] = True
    sublab = np.r_[sub, np.full(n_vm, metal_sublattice), np.full(n_vx, -1)].astype(np.int64)
    for h in (1, 2):  # a chalcogen vacancy gets the usual label of its hollow's columns
        lbl = sub[is_x & (hollow == h)]
        if lbl.size:
            usual = np.bincount(lbl - lbl.min()).argmax() + lbl.min()
            sublab[n_col + n_vm:][vx_hollow == h] = usual
    is_m_row = site == "metal"
    is_x_row = site == "chalcogen"

    # --- border: a neighbour site of the row falls outside the observable region
    border = np.zeros(n, bool)
    border[is_m_row] = ~_inside(rows_pos[is_m_row][:, None, :] + hollow_off[None], bounds).all(1)
    for h, offs in ((1, hollow_off[:3]), (2, hollow_off[3:])):
        m = is_x_row & (hol == h)
        border[m] = ~_inside(rows_pos[m][:, None, :] - offs[None], bounds).all(1)
    edge_row = np.r_[edge, np.zeros(n_vm + n_vx, bool)]
    flag = edge_row | border | (site == "other")

    # --- coordination, nn distance, psi3 (unlike-site neighbours)
    unlike = np.full((n, 6, 2), np.nan)
    if is_m_row.any():
        unlike[is_m_row] = _unlike_neighbours(rows_pos[is_m_row], tree_x, pos_x, radius, 6)
    if is_x_row.any():
        unlike[is_x_row] = _unlike_neighbours(rows_pos[is_x_row], tree_m, pos_m, radius, 6)
    unlike_cal = unlike * scale
    found_u = np.isfinite(unlike[..., 0])
    coordination = found_u.sum(axis=1).astype(float)
    dist_u = np.where(found_u, np.hypot(unlike_cal[..., 0], unlike_cal[..., 1]), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn_distance = np.where(coordination > 0, dist_u.sum(axis=1) / coordination, np.nan)
    psi3 = _psi(unlike_cal, 3, 2)

    # --- local strain and psi6 (same-site neighbours)
    ref, ref_param = _reference(reference, pos_m, edge[is_metal], t1, t2)
    ref_same = _offsets(np.asarray(ref["t1"], float), np.asarray(ref["t2"], float))[0]
    F = np.full((n, 2, 2), np.nan)
    same_vec = np.full((n, 6, 2), np.nan)
    for m, tree in ((is_m_row & ~is_vac, tree_m), (is_x_row & ~is_vac, tree_x)):
        if m.any() and tree is not None:
            F[m], _, same_vec[m] = _local_strain(rows_pos[m], tree, tol, same_off, ref_same,
                                                 scale)
    psi6 = _psi(same_vec, 6, 3)
    r1 = np.asarray(ref["t1"], float) * scale
    r2 = np.asarray(ref["t2"], float) * scale
    exx, eyy, exy, rot = strain_from_cells(np.einsum("nij,j->ni", F, r1),
                                           np.einsum("nij,j->ni", F, r2), r1, r2)

    # --- dopants: robust z within site and phase
    intensity = np.r_[inten, np.full(n_vm + n_vx, np.nan)]
    amplitude = np.r_[amp, np.full(n_vm + n_vx, np.nan)]
    # a column whose Gaussian fit failed (find_atoms keeps weak close-packed columns it
    # detects clearly but cannot fit) has no measured brightness: not scored
    fit_ok = t["fit_ok"].to_numpy(bool) if "fit_ok" in t else np.ones(len(t), bool)
    brightness = np.r_[np.where(fit_ok, bright, np.nan), np.full(n_vm + n_vx, np.nan)]
    usable = ~flag & ~is_vac & np.isfinite(brightness) & (is_m_row | is_x_row)
    dz = _dopant_z(brightness, site, np.where(sure, phase, UNDETERMINED), usable)
    defect = np.where(is_vac, "vacancy",
                      np.where(np.abs(np.nan_to_num(dz)) > z_threshold, "dopant", "none"))

    # --- table
    cidx = np.full((n, 2), -1, np.int64)
    if is_m_row.any():
        cidx[is_m_row] = cell_indices(rows_pos[is_m_row],
                                      {"origin": lat["origin"], "t1": t1, "t2": t2})
    x_cal = cal.get("x_offset", 0.0) + cal.get("x_scale", 1.0) * rows_pos[:, 0]
    y_cal = cal.get("y_offset", 0.0) + cal.get("y_scale", 1.0) * rows_pos[:, 1]
    if "x_cal" in t and "y_cal" in t:
        x_cal[:n_col] = t["x_cal"].to_numpy(float)
        y_cal[:n_col] = t["y_cal"].to_numpy(float)
    out = pd.DataFrame({
        "x": rows_pos[:, 0], "y": rows_pos[:, 1], "x_cal": x_cal, "y_cal": y_cal,
        "site": site, "hollow": hol, "sublattice": sublab,
        "column_index": np.r_[np.where(np.arange(n_col) < n_col - n_added, np.arange(n_col), -1),
                              np.full(n_vm + n_vx, -1)].astype(np.int64),
        "cell_i": cidx[:, 0], "cell_j": cidx[:, 1],
        "intensity": intensity, "amplitude": amplitude, "coordination": coordination,
        "nn_distance": nn_distance,
        "exx": exx, "eyy": eyy, "exy": exy, "rotation": rot, "psi3": psi3, "psi6": psi6,
        "dopant_z": dz, "defect": defect.astype(object), "phase": phase,
        "edge": edge_row, "flag": flag,
    })
    # nothing is measured at a vacancy but its coordination
    out.loc[is_vac, [c for c in _MEASURED if c != "coordination"]] = np.nan
    out.loc[flag, list(_MEASURED)] = np.nan
    units = {k: (v.replace("cal", units_len) if "cal" in v else v) for k, v in UNITS.items()}
    counts = {f"{s}_{d}": int(((out["site"] == s) & (out["defect"] == d)).sum())
              for s in ("metal", "chalcogen") for d in ("dopant", "vacancy")}
    meta = {
        "structure": "hexagonal",
        "source": atoms.metadata.get("source", {}),
        "atoms_parameters": atoms.metadata.get("parameters", {}),
        "parameters": {
            "metal_sublattice": int(metal_sublattice),
            "chalcogen_sublattice": chalc_labels,
            "z_threshold": z_threshold, "measure": measure, "tol": tol, "reference": ref_param,
            "coordination_radius_px": radius, "border_margin_px": margin,
        },
        "metal_chalcogen_distance_px": d_mx,
        "reference_rms_px": ref["rms"],
        "defects": counts,
        "chalcogen_sites_fitted": n_fitted,
        "chalcogen_sites_added": n_added,
        "phase_counts": {p: int((out["phase"] == p).sum()) for p in ("2H", "1T", UNDETERMINED)},
        "notes": [
            "vacancies: empty lattice sites predicted from the metal lattice (atoms.vacancies "
            "is not used); chalcogen vacancies only where the neighbour configuration says the "
            "hollow should be filled",
            f"dopant_z: robust z-score of the {measure} within (site, phase); recomputed, not "
            "the atoms' dopant_z",
        ],
    }
    return Descriptors(out, units=units, calibration=cal, metadata=meta,
                       lattice={"origin": ref["origin"], "t1": ref["t1"], "t2": ref["t2"]},
                       image=atoms.image)
