"""``find_atoms``: detection, refinement, sublattices, as one call.

Large and lazy images are processed in overlapping tiles (Dask tasks for
lazy signals, so the same code runs on a ``dask.distributed`` cluster).
Global quantities (dark/bright columns, separation, noise model, column
width) are estimated once from a central crop, so every tile makes the
same decisions; each tile keeps only the columns whose detected peak lies
in its core, so no column is found twice.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from causalspy._version import __version__
from causalspy.atoms._input import ImageInput, as_image_input, check_image
from causalspy.atoms.detect import (
    check_separation,
    column_filter,
    columns_are_dark,
    detect_columns,
    estimate_noise,
    estimate_separation,
    filter_noise_gain,
    local_floor,
)
from causalspy.atoms.refine import NoiseModel, refine_com, refine_gaussian, render_gaussians
from causalspy.atoms.sublattice import analyse_lattice, flag_dopants, intensity_classes
from causalspy.atoms.table import Atoms
from causalspy.exceptions import InvalidImageError, InvalidParameterError, NoColumnsFoundError

__all__ = ["find_atoms"]

#: Images with more pixels than this are processed in tiles.
TILE_THRESHOLD = 2048 * 2048
#: Core size of a tile (px).
TILE_CORE = 1024
#: Width of the local floor in the residual passes, in column separations.
RESIDUAL_FLOOR = 3.0
#: Residual passes (look for missed columns, refit).
RESIDUAL_PASSES = 3
#: A residual peak this many times over the detection threshold is kept when its fit fails.
STRONG_RESIDUAL = 2.0
#: Radius of the fitting windows, in column widths. Larger than ``refine_gaussian``'s
#: default (3): a column found here may be weak and next to bright ones (ABF O columns at
#: 2000 counts), and its free widths need the extra ring of pixels to stay stable (with
#: 3-width windows, the low-dose ABF tilt test kept a tilt for 86 % of the cells, not 95 %).
WINDOW_SIGMAS = 3.5
#: Columns in the quick fit that sets the column width and the noise model.
GLOBAL_FIT_COLUMNS = 1000


@dataclass
class _Settings:
    invert: bool
    offset: float  # used when inverting: work = offset - data
    separation: float
    scale: float
    noise_px: float
    sigma0: float
    radius: float
    noise_model: NoiseModel | str
    threshold: float | None
    threshold_abs: float
    nsigma: float
    refine: str


def find_atoms(
    image,
    separation: float | None = None,
    refine: Literal["gaussian", "com", "none"] = "gaussian",
    invert: bool | None = None,
    *,
    threshold: float | None = None,
    nsigma: float = 6.0,
    sigma: float | None = None,
    noise: Literal["auto", "poisson"] = "auto",
    edge: Literal["keep", "drop"] = "keep",
    sublattices: bool = True,
    dopant_threshold: float = 5.0,
    tile: int | None = None,
    progress=None,
) -> Atoms:
    """Find every atomic column in an image and refine its position.

    Parameters
    ----------
    image : HyperSpy Signal2D, NumPy or Dask array
        A single 2D image (HAADF, ABF, BF, ...). Lazy signals are processed
        in Dask tiles. The input is never modified.
    separation : float, optional
        Smallest distance between columns (px). Estimated from the image's
        autocorrelation when not given.
    refine : {"gaussian", "com", "none"}
        ``"gaussian"``: joint maximum-likelihood fit of elliptical 2D
        Gaussians (position, widths, rotation, amplitude, background) with
        Fisher-information errors; ``"com"``: iterated Gaussian-weighted
        centre of mass with propagated errors; ``"none"``: detected peak
        positions (parabolic sub-pixel interpolation), no errors.
    invert : bool, optional
        True for dark columns on a bright background (ABF, BF); None decides
        from the image's intensity histogram.
    threshold : float, optional
        Discard candidates whose filter response is below this fraction of
        the 90th percentile of all responses (e.g. 0.2 to ignore weak
        contamination peaks). Default: noise-based only.
    nsigma : float
        Detection threshold in units of the filtered noise.
    sigma : float, optional
        Starting column width (px); estimated when not given.
    noise : {"auto", "poisson"}
        Pixel noise model for the fit: ``"auto"`` fits
        ``var = alpha + beta * mean`` to the residuals (right for counts and
        for scaled or offset data); ``"poisson"`` when pixels are counts.
    edge : {"keep", "drop"}
        Columns whose fitting window is cut by the image border are kept and
        flagged (``edge`` column), or dropped.
    sublattices : bool
        Split columns into sublattices, intensity classes and find dopants
        and vacancies.
    dopant_threshold : float
        Robust z-score within a sublattice above which a column is flagged
        as a dopant candidate.
    tile : int, optional
        Tile core size (px) for large images; default 1024 for images over
        2048x2048 pixels and for lazy signals.
    progress : callable, optional
        Called as ``progress(done, total)`` as the work advances (tiles, or
        stages of a single image); an exception raised from it aborts the call.

    Returns
    -------
    Atoms
        See :class:`causalspy.Atoms` for the table's columns.

    Raises
    ------
    InvalidImageError
        NaN/inf pixels, constant image, wrong dimensionality, complex data,
        image too small.
    InvalidParameterError
        Impossible separation or options.
    NoColumnsFoundError
        No columns (or no periodic contrast when the separation must be estimated).

    Examples
    --------
    >>> from causalspy.data import perovskite
    >>> s, truth = perovskite(cells=(8, 8), seed=1)
    >>> atoms = s.find_atoms()
    >>> len(atoms) == int(truth.present().shape[0])
    True
    """
    if refine not in ("gaussian", "com", "none"):
        raise InvalidParameterError(f"refine must be 'gaussian', 'com' or 'none'; got {refine!r}.")
    if edge not in ("keep", "drop"):
        raise InvalidParameterError(f"edge must be 'keep' or 'drop'; got {edge!r}.")
    if noise not in ("auto", "poisson"):
        raise InvalidParameterError(f"noise must be 'auto' or 'poisson'; got {noise!r}.")
    if not np.isfinite(nsigma) or nsigma <= 0:
        raise InvalidParameterError(f"nsigma must be a positive number; got {nsigma}.")
    if separation is not None and (not np.isscalar(separation) or not np.isfinite(separation)
                                   or separation <= 0):
        raise InvalidParameterError(
            f"separation must be a positive number of pixels; got {separation!r}."
        )
    inp = as_image_input(image)
    shape = tuple(int(v) for v in inp.data.shape)
    tiled = inp.lazy or (tile is not None) or (shape[0] * shape[1] > TILE_THRESHOLD)
    crop = _central(inp.data, TILE_CORE * 3 // 2)
    check_image(crop)
    def report(done, total):
        if progress is not None:
            progress(done, total)

    report(0, 3)
    settings = _global_settings(crop, separation, invert, threshold, nsigma, sigma, noise, refine)
    if tiled:
        core = int(tile or TILE_CORE)
        table = _find_tiled(inp, settings, core, shape, report)
    else:
        report(1, 3)
        data = inp.data
        if data is not crop:
            check_image(data)
        table = _find_block(data, settings, parallel=True)
    report(2, 3)
    if len(table) == 0:
        raise NoColumnsFoundError(
            "No columns found. Check the image shows atomic columns, give separation= (px), "
            "set invert=True for dark columns, or lower nsigma."
        )
    table = _drop_duplicates(table, settings.separation)
    table["edge"] = _edge_flags(table, shape, settings.radius)
    if edge == "drop":
        table = table[~table["edge"]].reset_index(drop=True)
        if len(table) == 0:
            raise NoColumnsFoundError("Every column touches the image border; use edge='keep'.")
    vac = None
    vectors = None
    notes: list[str] = []
    if sublattices:
        res = analyse_lattice(table["x"].to_numpy(), table["y"].to_numpy(),
                              table["intensity"].to_numpy(), settings.separation, shape)
        table["sublattice"] = res.sublattice
        vac, vectors, notes = res.vacancies, res.vectors, list(res.notes)
        labels, ncomp, means = intensity_classes(table["intensity"].to_numpy())
        table["intensity_class"] = labels
        z, dop = flag_dopants(table["intensity"].to_numpy(), table["sublattice"].to_numpy(),
                              dopant_threshold)
        table["dopant_z"] = z
        table["dopant"] = dop
        notes.append(f"intensity classes (Gaussian mixture, BIC): {ncomp}")
    else:
        table["sublattice"] = 0
        table["intensity_class"] = 0
        table["dopant_z"] = np.nan
        table["dopant"] = False
    table = _order_columns(table)
    meta = {
        "software": f"causalspy {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": dict(inp.source, shape=list(shape)),
        "parameters": {
            "separation": settings.separation,
            "separation_estimated": separation is None,
            "refine": refine,
            "invert": settings.invert,
            "threshold": threshold,
            "nsigma": nsigma,
            "sigma_start": settings.sigma0,
            "window_radius": settings.radius,
            "noise": noise,
            "edge": edge,
            "dopant_threshold": dopant_threshold,
            "tiled": bool(tiled),
        },
        "noise_model": settings.noise_model.as_dict()
        if isinstance(settings.noise_model, NoiseModel) else settings.noise_model,
        "notes": notes,
    }
    report(3, 3)
    keep_image = None if inp.lazy or tiled else inp.data
    return Atoms(table, calibration=inp.calibration, metadata=meta, vacancies=vac,
                 lattice_vectors=vectors, image=keep_image)


# ---------------------------------------------------------------------------- helpers
def _central(data, size: int) -> np.ndarray:
    h, w = data.shape
    y0 = max(0, (h - size) // 2)
    x0 = max(0, (w - size) // 2)
    crop = data[y0 : y0 + size, x0 : x0 + size]
    return np.asarray(crop, dtype=np.float64)


def _global_settings(crop, separation, invert, threshold, nsigma, sigma, noise, refine) -> _Settings:
    dark = columns_are_dark(crop) if invert is None else bool(invert)
    offset = float(crop.max()) if dark else 0.0
    work = offset - crop if dark else crop
    if separation is None:
        separation = estimate_separation(work)
    separation = float(separation)
    check_separation(separation, crop.shape)
    scale = max(0.8, separation / 6.0)
    noise_px = estimate_noise(work)
    if noise_px <= 0:
        noise_px = 1e-12 * (float(np.ptp(work)) or 1.0)
    peaks, prom = detect_columns(work, separation, scale=scale, threshold=None,
                                 noise=noise_px, nsigma=nsigma)
    # a relative threshold is fixed once, on the central crop, so tiles agree
    thr_abs = float(threshold * np.percentile(prom, 90)) if threshold is not None and len(prom) else 0.0
    st = _Settings(dark, offset, separation, scale, noise_px, 0.0, 0.0, noise, threshold, thr_abs,
                   nsigma, refine)
    if threshold is not None:
        peaks = peaks[prom >= thr_abs]
    if len(peaks) == 0:
        raise NoColumnsFoundError(
            "No columns found. Check the image shows atomic columns, give separation= (px), "
            "set invert=True for dark columns, or lower nsigma."
        )
    # column width and noise model from a quick fit of the (at most GLOBAL_FIT_COLUMNS)
    # columns nearest the crop's centre: one contiguous patch, so each column is fitted
    # jointly with its neighbours. Columns picked all over the crop have unfitted
    # neighbours whose tails inflate the residuals (2H MoS2, 11 px: 40 % of such fits
    # failed, and the noise model came out as var = 149 - 0.56 mu for Poisson counts)
    h, w = crop.shape
    near = np.argsort(np.hypot(peaks[:, 0] - 0.5 * (h - 1), peaks[:, 1] - 0.5 * (w - 1)),
                      kind="stable")
    sel = peaks[np.sort(near[:GLOBAL_FIT_COLUMNS])]
    s0 = sigma if sigma is not None else separation / 5.0
    fit = refine_gaussian(work, sel[:, 1].astype(float), sel[:, 0].astype(float), s0,
                          radius=min(3.5 * s0, 0.75 * separation), noise=noise, max_iter=15)
    good = fit.ok & np.isfinite(fit.sigma)
    if sigma is None:
        sg = float(np.median(fit.sigma[good])) if good.any() else s0
        # a width beyond half the separation means the fit latched onto background
        sigma = float(np.clip(sg, 0.5, 0.5 * separation))
    st.sigma0 = float(sigma)
    st.radius = max(2.0, WINDOW_SIGMAS * st.sigma0)
    st.noise_model = fit.noise if noise == "auto" else "poisson"
    return st


def _subpixel(resp: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parabolic interpolation of the filter response around each integer peak."""
    h, w = resp.shape
    r, c = peaks[:, 0], peaks[:, 1]
    rm, rp = np.clip(r - 1, 0, h - 1), np.clip(r + 1, 0, h - 1)
    cm, cp = np.clip(c - 1, 0, w - 1), np.clip(c + 1, 0, w - 1)
    f0 = resp[r, c]

    def off(a, b):
        den = a - 2 * f0 + b
        with np.errstate(divide="ignore", invalid="ignore"):
            o = np.where(den < 0, 0.5 * (a - b) / den, 0.0)
        return np.clip(np.nan_to_num(o), -0.5, 0.5)

    return c + off(resp[r, cm], resp[r, cp]), r + off(resp[rm, c], resp[rp, c])


def _find_block(data, st: _Settings, *, parallel: bool, core=None) -> pd.DataFrame:
    """Detect and refine the columns of one image (or tile).

    ``core`` = (y0, y1, x0, x1) in block coordinates: keep only columns
    whose detected peak lies inside it.
    """
    data = np.asarray(data, dtype=np.float64)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise InvalidImageError(
            f"The image has {bad} NaN or infinite pixel(s). Crop them away, or replace them "
            "(e.g. s.data = np.nan_to_num(s.data, nan=np.nanmedian(s.data))) before finding atoms."
        )
    work = st.offset - data if st.invert else data
    peaks, prom = detect_columns(work, st.separation, scale=st.scale, threshold=None,
                                 noise=st.noise_px, nsigma=st.nsigma)
    if st.threshold is not None and len(peaks):
        keep = prom >= st.threshold_abs
        peaks = peaks[keep]
    if len(peaks) == 0:
        return _empty_table()
    x0, y0 = _subpixel(column_filter(work, st.scale), peaks)
    # a first joint fit, then look for columns hidden in the tails of brighter
    # ones (a weak column next to a heavy dopant is no maximum of the smoothed
    # image, but is one of the residual image)
    max_shift = 0.25 * st.separation
    fit = refine_gaussian(work, x0, y0, st.sigma0, radius=st.radius, noise=st.noise_model,
                          parallel=parallel, max_shift=max_shift)
    for _pass in range(RESIDUAL_PASSES):
        model = render_gaussians(work.shape, fit.params[fit.ok], fit.radius)
        resid = work - model
        # residual noise follows the local signal level (Poisson noise is larger on
        # bright columns), so misfit wings of a heavy column are not new columns
        mu = column_filter(model, st.scale) + np.median(fit.background)
        noise_map = np.sqrt(fit.noise.variance(mu))
        # the fitted columns are gone from the residual: a floor three separations wide
        # follows its background, where one separation (right on the image) would sit on
        # the tails of the missed columns themselves when they are close-packed (1T
        # chalcogens: two thirds of the sites)
        new_noise = np.maximum(noise_map, st.noise_px)
        new, new_prom = detect_columns(resid, st.separation, scale=st.scale, threshold=None,
                                       noise=new_noise, nsigma=st.nsigma,
                                       floor_size=RESIDUAL_FLOOR * st.separation)
        # how far each residual peak clears the detection threshold
        new_snr = new_prom / (new_noise[new[:, 0], new[:, 1]] * filter_noise_gain(st.scale)
                              * st.nsigma) if len(new) else new_prom
        if len(new) == 0:
            break
        # a hidden column is a full separation from the others
        d, _ = cKDTree(np.column_stack([fit.x, fit.y])).query(new[:, ::-1].astype(float))
        new, new_snr = new[d > 0.7 * st.separation], new_snr[d > 0.7 * st.separation]
        if st.threshold is not None and len(new):
            sm = column_filter(work, st.scale)
            above = (sm - local_floor(sm, st.separation))[new[:, 0], new[:, 1]] >= st.threshold_abs
            new, new_snr = new[above], new_snr[above]
        if len(new) == 0:
            break
        nx, ny = _subpixel(column_filter(resid, st.scale), new)
        n_old = len(peaks)
        cand_peaks = np.concatenate([peaks, new])
        x0 = np.concatenate([fit.x, nx])
        y0 = np.concatenate([fit.y, ny])
        cand = refine_gaussian(work, x0, y0, st.sigma0, radius=st.radius, noise=st.noise_model,
                               parallel=parallel, max_shift=max_shift)
        # keep a new column only if the joint fit finds it significant and in place
        # (the residual peak already passed the detection test; this catches
        # fits that collapse or wander off). A peak twice over the detection threshold
        # is a column even when its fit fails: weak columns close-packed between bright
        # ones (1T chalcogens, 3.4 widths apart) often do not converge in the joint fit,
        # and are kept at their detected position (fit_ok False). The test is given the
        # neighbours' fits, like the residual detection itself (the table's intensity
        # error also has the neighbours' parameters as nuisance parameters, and is
        # larger for a weak column between bright ones)
        a_err = cand.intensity_err_local[n_old:]
        signif = (cand.ok[n_old:] & (cand.intensity[n_old:] > 2.0 * a_err)) | (
            ~cand.ok[n_old:] & (new_snr >= STRONG_RESIDUAL))
        if not signif.any():
            break
        keep = np.concatenate([np.ones(n_old, dtype=bool), signif])
        peaks = cand_peaks[keep]
        if signif.all():
            fit = cand
        else:
            fit = refine_gaussian(work, x0[keep], y0[keep], st.sigma0, radius=st.radius,
                                  noise=st.noise_model, parallel=parallel, max_shift=max_shift)
        x0, y0 = x0[keep], y0[keep]
    owned = np.ones(len(peaks), dtype=bool)
    if core is not None:
        cy0, cy1, cx0, cx1 = core
        owned = (peaks[:, 0] >= cy0) & (peaks[:, 0] < cy1) & (peaks[:, 1] >= cx0) & (peaks[:, 1] < cx1)
    n = len(peaks)
    out = {
        "x": x0, "y": y0,
        "x_err": np.full(n, np.nan), "y_err": np.full(n, np.nan),
        "sigma": np.full(n, st.sigma0), "sigma_major": np.full(n, st.sigma0),
        "sigma_minor": np.full(n, st.sigma0), "rotation": np.zeros(n),
        "amplitude": np.full(n, np.nan), "background": np.full(n, np.nan),
        "intensity": np.full(n, np.nan), "intensity_err": np.full(n, np.nan),
        "fit_ok": np.ones(n, dtype=bool), "chi2": np.full(n, np.nan),
    }
    if st.refine == "gaussian":
        f = fit
        out.update(x=f.x, y=f.y, x_err=f.x_err, y_err=f.y_err, sigma=f.sigma,
                   sigma_major=f.sigma_major, sigma_minor=f.sigma_minor, rotation=f.rotation,
                   amplitude=f.amplitude, background=f.background, intensity=f.intensity,
                   intensity_err=f.intensity_err, fit_ok=f.ok, chi2=f.chi2)
    else:
        # the Gaussian fit served detection; positions come from the chosen estimator
        # centre of mass of each column with its fitted neighbours subtracted, so
        # a weak column is not pulled towards a bright neighbour
        nm = fit.noise
        c = refine_com(work, x0, y0, st.sigma0, radius=st.radius, noise=nm,
                       neighbours=fit.params)
        if st.refine == "com":
            ok = np.isfinite(c["x"]) & np.isfinite(c["y"])
            out.update(x=np.where(ok, c["x"], x0), y=np.where(ok, c["y"], y0),
                       x_err=c["x_err"], y_err=c["y_err"], fit_ok=ok)
        else:
            sx, sy = _subpixel(column_filter(work, st.scale), peaks)
            out.update(x=sx, y=sy)
        out.update(background=c["background"], intensity=c["intensity"])
        out["amplitude"] = c["intensity"] / (2 * np.pi * st.sigma0**2)
    table = pd.DataFrame(out)
    return table[owned].reset_index(drop=True)


def _empty_table() -> pd.DataFrame:
    cols = ["x", "y", "x_err", "y_err", "sigma", "sigma_major", "sigma_minor", "rotation",
            "amplitude", "background", "intensity", "intensity_err", "fit_ok", "chi2"]
    t = pd.DataFrame({c: np.zeros(0) for c in cols})
    t["fit_ok"] = t["fit_ok"].astype(bool)
    return t


def _tiles(shape, core: int, margin: int):
    h, w = shape
    for y0 in range(0, h, core):
        for x0 in range(0, w, core):
            y1, x1 = min(h, y0 + core), min(w, x0 + core)
            by0, bx0 = max(0, y0 - margin), max(0, x0 - margin)
            by1, bx1 = min(h, y1 + margin), min(w, x1 + margin)
            yield (by0, by1, bx0, bx1), (y0 - by0, y1 - by0, x0 - bx0, x1 - bx0)


def _process_tile(block, st, core, origin):
    t = _find_block(block, st, parallel=False, core=core)
    t["x"] += origin[1]
    t["y"] += origin[0]
    return t


def _find_tiled(inp: ImageInput, st: _Settings, core: int, shape, report=None) -> pd.DataFrame:
    margin = int(np.ceil(2 * st.separation + st.radius + 4 * st.scale))
    if inp.lazy:
        import dask

        tasks = []
        for (by0, by1, bx0, bx1), c in _tiles(shape, core, margin):
            block = inp.data[by0:by1, bx0:bx1]
            tasks.append(dask.delayed(_process_tile)(block, st, c, (by0, bx0)))
        parts = dask.compute(*tasks)
    else:
        parts = []
        tiles = list(_tiles(shape, core, margin))
        for k, ((by0, by1, bx0, bx1), c) in enumerate(tiles):
            block = inp.data[by0:by1, bx0:bx1]
            t = _find_block(block, st, parallel=True, core=c)
            t["x"] += bx0
            t["y"] += by0
            parts.append(t)
            if report is not None:
                report(k + 1, len(tiles) + 1)
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else _empty_table()


def _drop_duplicates(table: pd.DataFrame, separation: float) -> pd.DataFrame:
    """Two fits that ended on the same column: keep the brighter one."""
    if len(table) < 2:
        return table
    pos = table[["x", "y"]].to_numpy()
    pairs = cKDTree(pos).query_pairs(0.3 * separation, output_type="ndarray")
    if len(pairs) == 0:
        return table
    inten = np.nan_to_num(table["intensity"].to_numpy(), nan=-np.inf)
    drop = np.where(inten[pairs[:, 0]] >= inten[pairs[:, 1]], pairs[:, 1], pairs[:, 0])
    keep = np.ones(len(table), dtype=bool)
    keep[np.unique(drop)] = False
    return table[keep].reset_index(drop=True)


def _edge_flags(table: pd.DataFrame, shape, radius: float) -> np.ndarray:
    h, w = shape
    x, y = table["x"].to_numpy(), table["y"].to_numpy()
    r = np.ceil(radius)
    return (x - r < 0) | (y - r < 0) | (x + r > w - 1) | (y + r > h - 1)


def _order_columns(table: pd.DataFrame) -> pd.DataFrame:
    order = ["x", "y", "x_err", "y_err", "sigma", "sigma_major", "sigma_minor", "rotation",
             "amplitude", "background", "intensity", "intensity_err", "sublattice",
             "intensity_class", "dopant_z", "dopant", "edge", "fit_ok", "chi2"]
    rest = [c for c in table.columns if c not in order]
    t = table[[c for c in order if c in table.columns] + rest].copy()
    for c in ("sublattice", "intensity_class"):
        t[c] = t[c].astype(np.int64)
    for c in ("dopant", "edge", "fit_ok"):
        t[c] = t[c].astype(bool)
    return t
