"""Per unit cell descriptors of ABO3 perovskites from an :class:`~causalspy.Atoms` table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from causalspy.descriptors._refit import refit_positions
from causalspy.descriptors.lattice import cell_indices, fit_lattice, strain_from_cells
from causalspy.descriptors.result import Descriptors
from causalspy.exceptions import InvalidParameterError, NoColumnsFoundError

__all__ = ["perovskite_descriptors"]

#: Units of the perovskite descriptors ("cal" = the image's calibrated length unit).
UNITS = {
    "x": "px", "y": "px", "dx": "px", "dy": "px", "p_mag": "px", "p_angle": "rad",
    "dx_cal": "cal", "dy_cal": "cal", "p_mag_cal": "cal", "a": "cal", "c": "cal",
    "tetragonality": "", "area": "cal^2", "exx": "", "eyy": "", "exy": "", "rotation": "rad",
    "intensity_A": "image units", "intensity_B": "image units", "x_cal": "cal", "y_cal": "cal",
    "tilt": "deg",
}


def _image_array(image) -> np.ndarray:
    data = getattr(image, "data", image)
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidParameterError(f"image must be a 2D image; got shape {arr.shape}.")
    return arr


def _split_checkerboard(pos, sub, inten, label, basis):
    """Split A and B found as one centred square lattice (similar contrast, e.g. ABF).

    In ``u`` coordinates of the merged lattice, A and B alternate like the
    squares of a checkerboard (parity of ``i + j``); the A lattice vectors are
    ``u1 + u2`` and ``u1 - u2``. The split is accepted only when the two
    parities differ in intensity (A = the stronger), so a one-species square
    lattice is not mistaken for a perovskite. Returns ``(sub, basis, b_label)``
    or None.
    """
    u1, u2 = np.asarray(basis, float)
    l1, l2 = np.hypot(*u1), np.hypot(*u2)
    if abs(l1 - l2) > 0.1 * max(l1, l2) or abs(u1 @ u2) > 0.15 * l1 * l2:
        return None
    m = sub == label
    p = pos[m]
    if len(p) < 8:
        return None
    lat = fit_lattice(p, u1, u2)
    f = (p - lat["origin"]) @ np.linalg.inv(np.array([lat["t1"], lat["t2"]]))
    odd = np.rint(f).astype(np.int64).sum(axis=1) % 2 == 1
    iv = np.nan_to_num(inten[m], nan=np.nanmedian(inten[m]))
    a0, a1 = iv[~odd], iv[odd]
    if min(len(a0), len(a1)) < 4:
        return None

    def se(v):
        return 1.4826 * np.median(np.abs(v - np.median(v))) / np.sqrt(len(v))

    diff = np.median(a1) - np.median(a0)
    if abs(diff) < 6.0 * np.hypot(se(a0), se(a1)):
        return None
    b_is_odd = diff < 0
    b_label = int(sub.max()) + 1
    new = sub.copy()
    idx = np.flatnonzero(m)
    new[idx[odd == b_is_odd]] = b_label
    t1, t2 = lat["t1"] + lat["t2"], lat["t1"] - lat["t2"]
    # t1 the vector closer to +x, t2 closer to +y
    if abs(t1[0]) < abs(t2[0]):
        t1, t2 = t2, t1
    t1 = t1 if t1[0] >= 0 else -t1
    t2 = t2 if t2[1] >= 0 else -t2
    return new, np.array([t1, t2]), b_label


def _cell_corners(pos_a, pos_b, basis, tol):
    """Indices (n, 4) of the A corners (-,-), (+,-), (-,+), (+,+) of each B, and a found mask."""
    tree = cKDTree(pos_a)
    t1, t2 = basis
    idx = np.zeros((len(pos_b), 4), dtype=np.int64)
    found = np.ones(len(pos_b), bool)
    for k, (s1, s2) in enumerate(((-1, -1), (1, -1), (-1, 1), (1, 1))):
        d, j = tree.query(pos_b + 0.5 * s1 * t1 + 0.5 * s2 * t2, distance_upper_bound=tol)
        found &= np.isfinite(d)
        idx[:, k] = np.where(np.isfinite(d), j, 0)
    return idx, found


def _edge_midpoints(corners):
    """Where the four O columns of each cell sit in an untilted cell: (+t1, -t1, +t2, -t2)."""
    return (0.5 * (corners[:, 1] + corners[:, 3]), 0.5 * (corners[:, 0] + corners[:, 2]),
            0.5 * (corners[:, 2] + corners[:, 3]), 0.5 * (corners[:, 0] + corners[:, 1]))


def _o_sites(corners):
    """Unique O sites of the cells (each O column is shared by two cells)."""
    sites = np.concatenate(_edge_midpoints(corners))
    if len(sites) < 2:
        return sites
    pairs = cKDTree(sites).query_pairs(0.1 * np.hypot(*(corners[0, 1] - corners[0, 0])),
                                       output_type="ndarray")
    keep = np.ones(len(sites), bool)
    keep[pairs.max(axis=1)] = False
    return sites[keep]


def _tilt(pos_o, corners, avec, cvec, tol):
    """Rotation (deg) of each cell's O square, from the O columns at the A-cell edge midpoints.

    ``corners`` (n, 4, 2) in the order (-,-), (+,-), (-,+), (+,+) of (t1, t2).
    Returns the tilt and a mask of cells with an O column missing.
    """
    n = len(corners)
    if len(pos_o) == 0:
        return np.full(n, np.nan), np.ones(n, bool)
    tree = cKDTree(pos_o)
    mids = dict(zip(("+1", "-1", "+2", "-2"), _edge_midpoints(corners), strict=True))
    found = {}
    missing = np.zeros(n, bool)
    for k, m in mids.items():
        d, j = tree.query(m, distance_upper_bound=tol)
        ok = np.isfinite(d)
        missing |= ~ok
        found[k] = pos_o[np.where(ok, j, 0)]

    def angle(ref, v):
        return np.arctan2(ref[:, 0] * v[:, 1] - ref[:, 1] * v[:, 0], np.sum(ref * v, axis=1))

    rot1 = angle(avec, found["+1"] - found["-1"])
    rot2 = angle(cvec, found["+2"] - found["-2"])
    return np.degrees(0.5 * (rot1 + rot2)), missing


def _find_b_sublattice(pos_a, sub, positions, basis, tol) -> int | None:
    """The sublattice whose columns sit at the centres of the A cells."""
    tree = cKDTree(pos_a)
    best, best_frac = None, 0.0
    centre = 0.5 * (basis[0] + basis[1])
    for s in np.unique(sub):
        p = positions[sub == s]
        if len(p) < 2:
            continue
        corners = [p + sgn1 * 0.5 * basis[0] + sgn2 * 0.5 * basis[1]
                   for sgn1 in (-1, 1) for sgn2 in (-1, 1)]
        hits = np.mean([np.isfinite(tree.query(c, distance_upper_bound=tol)[0]).mean()
                        for c in corners])
        if hits > best_frac and np.hypot(*centre) > tol:
            best, best_frac = int(s), hits
    return best if best_frac > 0.5 else None


def perovskite_descriptors(
    atoms,
    *,
    a_sublattice: int | None = None,
    b_sublattice: int | None = None,
    reference: str | tuple[float, float, float, float] = "global",
    tol: float | None = None,
    refit: bool | None = None,
    image=None,
    o_sublattice: int | list[int] | None = None,
    find_oxygen: bool | None = None,
) -> Descriptors:
    """Per B-site unit cell descriptors of a perovskite image.

    For every B column, its four A neighbours are the A columns nearest to
    ``B +/- t1/2 +/- t2/2`` (``t1``, ``t2`` the A-lattice translations), so
    the cell is found the same way on any zone axis where B sits at the
    centroid of its A neighbours (e.g. [001] and [110]).

    Parameters
    ----------
    atoms : Atoms
        Columns with sublattices and lattice vectors (from ``find_atoms``).
    a_sublattice, b_sublattice : int, optional
        Sublattice labels of A and B columns. Default: A is the brightest
        sublattice whose translations are the lattice vectors (label 0), B the
        sublattice found at the centres of A cells. When A and B come as one
        centred square lattice (similar contrast, e.g. ABF), they are split by
        position parity, A being the stronger half (``ab_split_by_parity`` in
        the metadata).
    o_sublattice : int or list of int, optional
        Sublattice label(s) whose columns may be pure-O columns for ``tilt``.
        Default: every column that is neither A nor B (unlinked ones
        included). Of these, the columns within ``tol`` of the O sites (the
        midpoints of the A-cell edges) are the O columns.
    find_oxygen : bool, optional
        Fit a column at every O site where none was found (ABF O columns are
        weak and ``find_atoms`` misses many at low dose), during the refit,
        and keep those whose fitted counts exceed 4 times their error.
        Default: True for dark-column images (ABF/BF, ``invert``) and when
        ``find_atoms`` found a quarter of the O sites or more, with
        ``refit``.
    reference : "global" or (x0, x1, y0, y1)
        Reference lattice for strain: a least-squares fit of all A columns,
        or of the A columns inside a pixel box (a region the user names).
    tol : float, optional
        Matching tolerance (px); default ``0.25 * |t1|``.
    refit : bool, optional
        Refit the A and B column positions with one Gaussian width per
        sublattice (every other column subtracted, pixel noise re-estimated)
        before measuring the cells; see Notes. Default: True when the image
        is available (kept by ``find_atoms``, or given as ``image``).
    image : array or HyperSpy signal, optional
        The image the columns were found in, for ``refit`` when the atoms do
        not hold it (e.g. loaded from a file).

    Returns
    -------
    Descriptors
        One row per B column: ``x, y`` (B position, px), ``x_cal, y_cal``;
        ``dx, dy`` (px) the displacement of B from the centroid of its four A
        neighbours (positive along +x, +y of the image; the polarization
        proxy), ``dx_cal, dy_cal`` in calibrated units, ``p_mag``,
        ``p_mag_cal`` and ``p_angle`` (rad, from +x towards +y); local
        lattice parameters ``a`` (along t1) and ``c`` (along t2) in
        calibrated units, ``tetragonality`` (c/a), ``area`` (projected cell
        area); strain ``exx, eyy, exy`` and ``rotation`` (rad) against the
        reference lattice; ``intensity_A`` (mean of the 4 A columns) and
        ``intensity_B``; ``tilt`` (deg), the octahedral rotation about the
        viewing axis: the rotation of the cell's O square (the O columns
        nearest to the midpoints of the A-cell edges) against the A cell, the
        mean of the angles of ``O(+t1) - O(-t1)`` to the ``a`` edge and of
        ``O(+t2) - O(-t2)`` to the ``c`` edge, positive from +x towards +y
        (clockwise on screen); for rigid corner-sharing octahedra it
        alternates in sign from cell to cell (antiphase, a checkerboard), so
        ``abs(tilt)`` is the rotation angle; ``cell_i, cell_j`` (cell grid
        indices), ``flag`` (True: edge cell or missing neighbour; its
        descriptors are NaN) and ``flag_tilt`` (True: an O column is missing,
        e.g. HAADF where O is not visible, or the cell is flagged; ``tilt``
        is NaN).

    Notes
    -----
    ``find_atoms`` fits every column with its own elliptical width. A B
    column sits in the tails of four A columns that are up to ten times
    brighter (Pb vs Ti in HAADF), so the noise of the A widths enters the B
    model and costs B-position precision (up to 1.3x the Cramér–Rao bound at
    1e4 counts); in ABF, where every column overlaps its neighbours, the
    widths come out biased and push the O columns off their places. Every
    column of one sublattice is imaged with the same probe, so ``refit``
    fits one width per sublattice (jointly with positions, counts and a
    background plane, on about 400 columns at the image centre), then each
    A, B and O column again with a pixel-integrated circular Gaussian of its
    sublattice's width plus a constant, all other columns subtracted,
    weighted by a pixel-noise model re-estimated from the residuals (B
    displacement errors 1.00-1.09x the bound, see
    ``benchmarks/bench_descriptors_perovskite.py``). A refit that moves a
    column by more than a quarter of the column separation keeps the
    ``find_atoms`` position. The refit runs on the whole image in memory.

    Raises
    ------
    NoColumnsFoundError
        Too few columns or no lattice.
    InvalidParameterError
        The columns do not form a perovskite (no sublattice at the A-cell
        centres), or the given sublattice labels do not exist.
    """
    t = atoms.to_dataframe()
    if atoms.lattice_vectors is None or "sublattice" not in t:
        raise NoColumnsFoundError(
            "These atoms have no lattice vectors or sublattices (too few columns, or found with "
            "sublattices=False); perovskite cells need both."
        )
    if len(t) < 8:
        raise NoColumnsFoundError(f"{len(t)} columns are too few for perovskite cells.")
    pos = t[["x", "y"]].to_numpy(float)
    sub = t["sublattice"].to_numpy()
    basis = np.asarray(atoms.lattice_vectors, float)
    labels = set(np.unique(sub[sub >= 0]).tolist())
    split = False
    if a_sublattice is None and b_sublattice is None and 0 in labels:
        # A and B of similar contrast (ABF: Z^0.5) come as one centred lattice
        res = _split_checkerboard(pos, sub, t["intensity"].to_numpy(float), 0, basis)
        if res is not None:
            sub, basis, b_sublattice = res
            split = True
            t = t.assign(sublattice=sub)
            labels.add(b_sublattice)
    if a_sublattice is None:
        a_sublattice = 0
    if a_sublattice not in labels:
        raise InvalidParameterError(
            f"a_sublattice={a_sublattice} is not a sublattice of these atoms ({sorted(labels)})."
        )
    tol = 0.25 * float(np.hypot(*basis[0])) if tol is None else float(tol)
    pos_a = pos[sub == a_sublattice]
    if b_sublattice is None:
        others = sub != a_sublattice
        b_sublattice = _find_b_sublattice(pos_a, np.where(others, sub, -1), pos, basis, tol)
        if b_sublattice is None or b_sublattice == -1:
            raise InvalidParameterError(
                "No sublattice sits at the centres of the A cells: these columns do not look like "
                "a perovskite (check the structure, or pass a_sublattice=/b_sublattice=)."
            )
    elif not split and (b_sublattice not in labels or b_sublattice == a_sublattice):
        raise InvalidParameterError(
            f"b_sublattice={b_sublattice} is not another sublattice of these atoms "
            f"({sorted(labels)})."
        )
    if o_sublattice is None:
        o_pool = ~np.isin(sub, [a_sublattice, b_sublattice])
    else:
        o_req = [int(v) for v in np.atleast_1d(o_sublattice)]
        bad = [v for v in o_req if v not in labels or v in (a_sublattice, b_sublattice)]
        if bad:
            raise InvalidParameterError(
                f"o_sublattice={o_sublattice} must name other sublattices of these atoms "
                f"({sorted(labels)}; A = {a_sublattice}, B = {b_sublattice})."
            )
        o_pool = np.isin(sub, o_req)
    # O columns are the candidates (any other sublattice, or unlinked) at the O sites of
    # the cells: midpoints of the A-cell edges. They get one label of their own.
    idx0, found0 = _cell_corners(pos[sub == a_sublattice], pos[sub == b_sublattice], basis, tol)
    sites = _o_sites(pos[sub == a_sublattice][idx0[found0]]) if found0.any() else np.zeros((0, 2))
    o_label = int(max(sub.max(), b_sublattice)) + 1
    is_o = np.zeros(len(t), bool)
    if o_pool.any() and len(sites):
        d, _ = cKDTree(sites).query(pos[o_pool], distance_upper_bound=tol)
        is_o[np.flatnonzero(o_pool)[np.isfinite(d)]] = True
    sub = np.where(is_o, o_label, sub)
    t = t.assign(sublattice=sub)
    o_labels = [o_label] if is_o.any() else []
    refit_info = None
    img = atoms.image if image is None else _image_array(image)
    if refit is None:
        refit = img is not None
    params = atoms.metadata.get("parameters", {})
    inverted = bool(params.get("invert", False))
    n_sites = len(sites)
    if find_oxygen is None:
        # dark-column contrast (ABF/BF) shows O; otherwise only when some O columns were found
        find_oxygen = bool(refit) and n_sites > 0 and (
            inverted or is_o.sum() >= 0.25 * n_sites)
    n_added = 0
    if find_oxygen:
        if not refit:
            raise InvalidParameterError(
                "find_oxygen=True fits the O sites on the image: it needs refit (and the image)."
            )
        empty = (np.ones(len(sites), bool) if not is_o.any() else
                 ~np.isfinite(cKDTree(pos[is_o]).query(sites, distance_upper_bound=tol)[0]))
        new = sites[empty]
        if len(new):
            ref = t[is_o] if is_o.sum() >= 3 else t[sub == b_sublattice]
            rows = pd.DataFrame({
                "x": new[:, 0], "y": new[:, 1],
                "intensity": float(np.nanmedian(ref["intensity"])) * (1.0 if is_o.sum() >= 3
                                                                      else 0.5),
                "sigma_major": float(np.nanmedian(ref["sigma_major"])),
                "sigma_minor": float(np.nanmedian(ref["sigma_minor"])),
                "sublattice": o_label, "fit_ok": True, "_added": True,
            })
            h, w = img.shape
            rad = float(params.get("window_radius", 3.5 * rows["sigma_major"].iloc[0]))
            rows["edge"] = ((new[:, 0] - rad < 0) | (new[:, 1] - rad < 0)
                            | (new[:, 0] + rad > w - 1) | (new[:, 1] + rad > h - 1))
            t = pd.concat([t.assign(_added=False), rows], ignore_index=True)
            sub = t["sublattice"].to_numpy()
            pos = t[["x", "y"]].to_numpy(float)
            o_labels = [o_label]
            n_added = len(new)
    if refit:
        if img is None:
            raise InvalidParameterError(
                "refit=True needs the image: these atoms hold none (pass image=, or refit=False)."
            )
        r = refit_positions(img, t, [a_sublattice, b_sublattice, *o_labels],
                            invert=inverted,
                            noise=atoms.metadata.get("noise_model") or None,
                            separation=params.get("separation"))
        pos = np.column_stack([r["x"], r["y"]])
        t = t.copy()
        t["x"], t["y"] = r["x"], r["y"]
        refit_info = {"sigma_px": r["sigma"], "noise_model": r["noise"],
                      "n_kept_start": int((~r["ok"] & np.isin(
                          sub, [a_sublattice, b_sublattice, *o_labels])).sum())}
        if n_added:
            # a fitted O site is kept only when its column is significant and in place
            added = t["_added"].to_numpy(bool)
            with np.errstate(invalid="ignore", divide="ignore"):
                snr = r["intensity"] / r["intensity_err"]
            drop = added & ~(r["ok"] & (snr > 4.0))
            refit_info["o_sites_fitted"] = int(added.sum())
            refit_info["o_sites_kept"] = int((added & ~drop).sum())
            t = t[~drop].reset_index(drop=True)
            sub, pos = sub[~drop], pos[~drop]
        c0 = atoms.calibration
        for ax in ("x", "y"):
            if f"{ax}_cal" in t:
                t[f"{ax}_cal"] = (float(c0.get(f"{ax}_offset", 0.0))
                                  + float(c0.get(f"{ax}_scale", 1.0)) * t[ax].to_numpy(float))
    bmask = sub == b_sublattice
    pos_b = pos[bmask]
    pos_a = pos[sub == a_sublattice]
    tb = t[bmask].reset_index(drop=True)
    ta = t[sub == a_sublattice].reset_index(drop=True)

    # the four A corners of every B cell (vectorized KD-tree queries)
    t1, t2 = basis
    idx, found = _cell_corners(pos_a, pos_b, basis, tol)
    edge_a = ta["edge"].to_numpy(bool) if "edge" in ta else np.zeros(len(ta), bool)
    # a cell is measured when its B column is not cut by the border and all four
    # A corners exist (edge A columns are fitted with truncated windows: unbiased)
    flag = ~found | (tb["edge"].to_numpy(bool) if "edge" in tb else False)
    corners = pos_a[idx]  # (n, 4, 2): (-,-), (+,-), (-,+), (+,+)
    centroid = corners.mean(axis=1)
    d = pos_b - centroid
    avec = 0.5 * ((corners[:, 1] - corners[:, 0]) + (corners[:, 3] - corners[:, 2]))
    cvec = 0.5 * ((corners[:, 2] - corners[:, 0]) + (corners[:, 3] - corners[:, 1]))
    tilt, tilt_missing = _tilt(pos[np.isin(sub, o_labels)], corners, avec, cvec, tol)
    tilt_missing |= flag
    tilt[tilt_missing] = np.nan
    cal = atoms.calibration
    sx, sy = float(cal.get("x_scale", 1.0)), float(abs(cal.get("y_scale", 1.0)))
    sx = abs(sx)

    def to_cal(v):
        return np.column_stack([v[:, 0] * sx, v[:, 1] * sy])

    a_cal, c_cal = to_cal(avec), to_cal(cvec)
    a_len = np.hypot(*a_cal.T)
    c_len = np.hypot(*c_cal.T)
    area = np.abs(a_cal[:, 0] * c_cal[:, 1] - a_cal[:, 1] * c_cal[:, 0])
    if isinstance(reference, str):
        if reference != "global":
            raise InvalidParameterError(
                f"reference must be 'global' or a pixel box (x0, x1, y0, y1); got {reference!r}."
            )
        lat = fit_lattice(pos_a[~edge_a] if (~edge_a).sum() >= 4 else pos_a, t1, t2)
    else:
        try:
            lat = fit_lattice(pos_a, t1, t2, region=tuple(float(v) for v in reference))
        except ValueError as e:
            raise InvalidParameterError(str(e)) from e
    exx, eyy, exy, rot = strain_from_cells(avec, cvec, lat["t1"], lat["t2"])
    ij = cell_indices(pos_b, lat, offset=(0.5, 0.5))
    dcal = to_cal(d)
    inten = ta["intensity"].to_numpy(float)
    out = pd.DataFrame({
        "x": pos_b[:, 0], "y": pos_b[:, 1],
        "x_cal": tb["x_cal"].to_numpy(float) if "x_cal" in tb else pos_b[:, 0] * sx,
        "y_cal": tb["y_cal"].to_numpy(float) if "y_cal" in tb else pos_b[:, 1] * sy,
        "dx": d[:, 0], "dy": d[:, 1],
        "dx_cal": dcal[:, 0], "dy_cal": dcal[:, 1],
        "p_mag": np.hypot(d[:, 0], d[:, 1]), "p_mag_cal": np.hypot(dcal[:, 0], dcal[:, 1]),
        "p_angle": np.arctan2(d[:, 1], d[:, 0]),
        "a": a_len, "c": c_len, "tetragonality": c_len / a_len, "area": area,
        "exx": exx, "eyy": eyy, "exy": exy, "rotation": rot,
        "intensity_A": inten[idx].mean(axis=1),
        "intensity_B": tb["intensity"].to_numpy(float),
        "tilt": tilt,
        "cell_i": ij[:, 0], "cell_j": ij[:, 1],
        "flag": flag,
        "flag_tilt": tilt_missing,
    })
    measured = [c for c in out.columns if c not in ("x", "y", "x_cal", "y_cal", "cell_i",
                                                     "cell_j", "flag", "flag_tilt")]
    out.loc[flag, measured] = np.nan
    units = {k: (v.replace("cal", cal.get("x_units", "px")) if "cal" in v else v)
             for k, v in UNITS.items()}
    units.update({"cell_i": "", "cell_j": "", "flag": "", "flag_tilt": ""})
    meta = {
        "structure": "perovskite",
        "source": atoms.metadata.get("source", {}),
        "atoms_parameters": atoms.metadata.get("parameters", {}),
        "parameters": {"a_sublattice": int(a_sublattice), "b_sublattice": int(b_sublattice),
                       "reference": reference if isinstance(reference, str) else list(reference),
                       "o_sublattice": None if o_sublattice is None else
                       [int(v) for v in np.atleast_1d(o_sublattice)],
                       "find_oxygen": bool(find_oxygen), "tol": tol, "refit": bool(refit)},
        "sign_convention": "dx, dy: B column minus the centroid of its 4 A neighbours; "
                           "+x = image column index, +y = image row index (downwards)",
        "tilt_convention": "tilt (deg): rotation of the cell's O square against its A cell, "
                           "mean of the O(+t1)-O(-t1) and O(+t2)-O(-t2) directions against the "
                           "a and c edges; positive from +x towards +y (clockwise on screen); "
                           "alternates in sign between neighbouring cells for rigid "
                           "corner-sharing octahedra (antiphase, checkerboard)",
        "ab_split_by_parity": split,
        "o_columns": int((sub == o_label).sum()) if o_labels else 0,
        "o_sites": int(n_sites),
        "o_sites_added": int(refit_info.get("o_sites_kept", 0)) if refit_info else 0,
        "reference_rms_px": lat["rms"],
        "refit": refit_info,
    }
    return Descriptors(out, units=units, calibration=cal, metadata=meta,
                       lattice={"origin": lat["origin"], "t1": lat["t1"], "t2": lat["t2"]},
                       image=atoms.image)
