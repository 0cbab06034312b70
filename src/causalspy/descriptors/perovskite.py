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
}


def _image_array(image) -> np.ndarray:
    data = getattr(image, "data", image)
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidParameterError(f"image must be a 2D image; got shape {arr.shape}.")
    return arr


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
        sublattice found at the centres of A cells.
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
        ``intensity_B``; ``cell_i, cell_j`` (cell grid indices) and ``flag``
        (True: edge cell or missing neighbour; its descriptors are NaN).

    Notes
    -----
    ``find_atoms`` fits every column with its own elliptical width. A B
    column sits in the tails of four A columns that are up to ten times
    brighter (Pb vs Ti in HAADF), so the noise of the A widths enters the B
    model and costs B-position precision (about 1.2x the Cramér–Rao bound at
    1e4 counts). Every column of one sublattice is imaged with the same
    probe, so ``refit`` fits each A, then each B column again with a
    pixel-integrated circular Gaussian of the sublattice's median width plus
    a constant, all other columns subtracted, weighted by a pixel-noise model
    re-estimated from the residuals (1.02-1.09x the bound, see
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
    elif b_sublattice not in labels or b_sublattice == a_sublattice:
        raise InvalidParameterError(
            f"b_sublattice={b_sublattice} is not another sublattice of these atoms "
            f"({sorted(labels)})."
        )
    refit_info = None
    img = atoms.image if image is None else _image_array(image)
    if refit is None:
        refit = img is not None
    if refit:
        if img is None:
            raise InvalidParameterError(
                "refit=True needs the image: these atoms hold none (pass image=, or refit=False)."
            )
        params = atoms.metadata.get("parameters", {})
        r = refit_positions(img, t, [a_sublattice, b_sublattice],
                            invert=bool(params.get("invert", False)),
                            noise=atoms.metadata.get("noise_model") or None,
                            separation=params.get("separation"))
        pos = np.column_stack([r["x"], r["y"]])
        t = t.copy()
        t["x"], t["y"] = r["x"], r["y"]
        refit_info = {"sigma_px": r["sigma"], "noise_model": r["noise"],
                      "n_kept_start": int((~r["ok"] & np.isin(sub, [a_sublattice, b_sublattice])).sum())}
        c0 = atoms.calibration
        for ax in ("x", "y"):
            if f"{ax}_cal" in t:
                t[f"{ax}_cal"] = (float(c0.get(f"{ax}_offset", 0.0))
                                  + float(c0.get(f"{ax}_scale", 1.0)) * t[ax].to_numpy(float))
    bmask = sub == b_sublattice
    pos_b = pos[bmask]
    tb = t[bmask].reset_index(drop=True)
    ta = t[sub == a_sublattice].reset_index(drop=True)

    # the four A corners of every B cell (vectorized KD-tree queries)
    tree = cKDTree(pos_a)
    t1, t2 = basis
    idx = np.empty((len(pos_b), 4), dtype=np.int64)
    found = np.ones(len(pos_b), bool)
    for k, (s1, s2) in enumerate(((-1, -1), (1, -1), (-1, 1), (1, 1))):
        d, j = tree.query(pos_b + 0.5 * s1 * t1 + 0.5 * s2 * t2, distance_upper_bound=tol)
        found &= np.isfinite(d)
        idx[:, k] = np.where(np.isfinite(d), j, 0)
    edge_a = ta["edge"].to_numpy(bool) if "edge" in ta else np.zeros(len(ta), bool)
    # a cell is measured when its B column is not cut by the border and all four
    # A corners exist (edge A columns are fitted with truncated windows: unbiased)
    flag = ~found | (tb["edge"].to_numpy(bool) if "edge" in tb else False)
    corners = pos_a[idx]  # (n, 4, 2): (-,-), (+,-), (-,+), (+,+)
    centroid = corners.mean(axis=1)
    d = pos_b - centroid
    avec = 0.5 * ((corners[:, 1] - corners[:, 0]) + (corners[:, 3] - corners[:, 2]))
    cvec = 0.5 * ((corners[:, 2] - corners[:, 0]) + (corners[:, 3] - corners[:, 1]))
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
        "cell_i": ij[:, 0], "cell_j": ij[:, 1],
        "flag": flag,
    })
    measured = [c for c in out.columns if c not in ("x", "y", "x_cal", "y_cal", "cell_i",
                                                     "cell_j", "flag")]
    out.loc[flag, measured] = np.nan
    units = {k: (v.replace("cal", cal.get("x_units", "px")) if "cal" in v else v)
             for k, v in UNITS.items()}
    units.update({"cell_i": "", "cell_j": "", "flag": ""})
    meta = {
        "structure": "perovskite",
        "source": atoms.metadata.get("source", {}),
        "atoms_parameters": atoms.metadata.get("parameters", {}),
        "parameters": {"a_sublattice": int(a_sublattice), "b_sublattice": int(b_sublattice),
                       "reference": reference if isinstance(reference, str) else list(reference),
                       "tol": tol, "refit": bool(refit)},
        "sign_convention": "dx, dy: B column minus the centroid of its 4 A neighbours; "
                           "+x = image column index, +y = image row index (downwards)",
        "reference_rms_px": lat["rms"],
        "refit": refit_info,
    }
    return Descriptors(out, units=units, calibration=cal, metadata=meta,
                       lattice={"origin": lat["origin"], "t1": lat["t1"], "t2": lat["t2"]},
                       image=atoms.image)
