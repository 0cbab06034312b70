"""Where will the new phase nucleate? Prediction from what is seen before the transition.

The chain, on an ``atomic_series`` (2H → 1T in an MX2 monolayer, say):

1. drift of every frame (:func:`~causalspy.dynamics.estimate_drift`);
2. the drift-corrected mean of the frames before ``before`` →
   :func:`~causalspy.find_atoms` → hexagonal descriptors →
   :func:`site_descriptors`: one row per metal (cell) site with local strain,
   vacancy and dopant density and distance, intensity, coordination and
   their neighbourhood averages;
3. labels from the *later* frames only: the hexagonal descriptors' ``phase``
   of every site in windows of frames after ``before``; a site flips when it
   turns 1T and stays so; a connected 1T region with no earlier 1T site is a
   new nucleus (its sites are the nucleation sites), sites reached later by
   a growing region are censored, not negatives;
4. a penalized hazard (survival) or logistic model (see
   :mod:`causalspy.dynamics._hazard`), validated by spatial block
   cross-validation, with bootstrap intervals, a shuffled-label baseline and
   a causal graph over descriptors and the nucleation label
   (:func:`causalspy.causal.discover`, the label forbidden from causing any
   descriptor).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from causalspy.descriptors.lattice import defect_neighbourhood
from causalspy.dynamics.nucleation_result import NucleationPrediction
from causalspy.exceptions import (
    CausalspyError,
    InvalidImageError,
    InvalidParameterError,
    NoColumnsFoundError,
)

__all__ = ["DESCRIPTORS", "NoTransitionError", "predict_nucleation", "site_descriptors",
           "transition_labels"]

#: Descriptors :func:`site_descriptors` returns, in lattice-parameter units where lengths.
DESCRIPTORS = ("strain", "strain_avg", "vacancy_density", "vacancy_distance", "dopant_density",
               "dopant_distance", "intensity", "intensity_avg", "coordination",
               "coordination_avg")
#: Label column of the causal graph.
LABEL = "nucleation"
#: Fewest usable sites for a prediction.
MIN_SITES = 40
#: Metal sites closer than this (lattice parameters) belong to one connected 1T region.
LINK = 1.5


class NoTransitionError(InvalidImageError):
    """The frames after ``before`` show no phase transition to learn from."""


# ----------------------------------------------------------------------------- descriptors
def _neighbour_pairs(xy: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every pair closer than ``r`` (no self pairs)."""
    if len(xy) < 2:
        return np.zeros(0, int), np.zeros(0, int)
    p = cKDTree(xy).query_pairs(r, output_type="ndarray")
    return np.r_[p[:, 0], p[:, 1]], np.r_[p[:, 1], p[:, 0]]


def _neighbour_mean(v: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean of ``v`` over each site's neighbours (NaN values skipped)."""
    n = len(v)
    ok = np.isfinite(v[j])
    s = np.bincount(i[ok], v[j][ok], minlength=n)
    c = np.bincount(i[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def _as_descriptors(source, find_kwargs: dict | None = None):
    from causalspy.atoms.table import Atoms
    from causalspy.descriptors.hexagonal import hexagonal_descriptors
    from causalspy.descriptors.result import Descriptors

    if isinstance(source, Descriptors):
        if source.metadata.get("structure") != "hexagonal":
            raise InvalidParameterError(
                "site_descriptors needs hexagonal descriptors (an MX2 monolayer); got "
                f"{source.metadata.get('structure')!r} ones.")
        return source
    if isinstance(source, Atoms):
        return hexagonal_descriptors(source)
    if hasattr(source, "axes_manager") or isinstance(source, np.ndarray):
        from causalspy.atoms.find import find_atoms

        return hexagonal_descriptors(find_atoms(source, **(find_kwargs or {})))
    raise InvalidParameterError(
        "site_descriptors takes hexagonal Descriptors, Atoms or an image; got "
        f"{type(source).__name__}.")


def site_descriptors(source, *, radius: float = 2.0, max_distance: float = 6.0,
                     find_kwargs: dict | None = None) -> pd.DataFrame:
    """Pre-transition descriptors of every metal (cell) site of an MX2 monolayer.

    Parameters
    ----------
    source : Descriptors, Atoms or image
        Hexagonal descriptors (:func:`causalspy.descriptors.hexagonal_descriptors`),
        the atoms they come from, or an image (found with
        :func:`causalspy.find_atoms`). Not modified.
    radius : float
        Neighbourhood radius in lattice parameters for the densities and
        averages.
    max_distance : float
        Distances to the nearest defect are capped here (lattice parameters):
        a site with no defect in sight is "far", not infinitely far.
    find_kwargs : dict, optional
        Passed to ``find_atoms`` when ``source`` is an image.

    Returns
    -------
    pandas.DataFrame
        One row per metal site (columns and metal vacancies): ``site`` (id),
        ``x``, ``y`` (px), ``phase``, ``defect``, ``flag`` (border or not
        measurable: leave out of models) and the descriptors:

        ================= ====================================================
        strain            local dilatation ``exx + eyy`` of the metal lattice
        strain_avg        its mean over the neighbourhood
        vacancy_density   vacancies (either sublattice) per lattice site within
                          ``radius`` (the site itself excluded)
        vacancy_distance  distance to the nearest vacancy (lattice parameters)
        dopant_density    substitutional dopants per site within ``radius``
        dopant_distance   distance to the nearest dopant (lattice parameters)
        intensity         column amplitude / median metal amplitude (0: vacancy)
        intensity_avg     its neighbourhood mean
        coordination      chalcogen columns around the metal (3 in 2H)
        coordination_avg  its neighbourhood mean
        ================= ====================================================

        ``attrs["a_px"]`` is the lattice parameter in px.

    Notes
    -----
    Neighbourhoods are KD-tree pair queries over all sites at once. A site's
    missing strain (a vacancy) is its neighbours' mean, so models see no NaN
    for interior sites.
    """
    radius = float(radius)
    if not radius > 0 or not max_distance > 0:
        raise InvalidParameterError("radius and max_distance must be > 0 (lattice parameters).")
    d = _as_descriptors(source, find_kwargs)
    t = d.to_dataframe()
    lat = d.lattice or {}
    if "t1" not in lat:
        raise NoColumnsFoundError("These descriptors have no reference lattice.")
    a_px = float(np.hypot(*np.asarray(lat["t1"], float)))
    metal = (t["site"] == "metal").to_numpy()
    if metal.sum() < 4:
        raise NoColumnsFoundError(f"{int(metal.sum())} metal sites are too few.")
    rows_xy = t[["x", "y"]].to_numpy(float)
    lattice_row = t["site"].isin(["metal", "chalcogen"]).to_numpy()
    m = t[metal].reset_index(drop=True)
    xy = m[["x", "y"]].to_numpy(float)
    r_px = radius * a_px
    out = pd.DataFrame({"site": np.arange(len(m), dtype=np.int64), "x": xy[:, 0],
                        "y": xy[:, 1], "phase": m["phase"].astype(str).to_numpy(object),
                        "defect": m["defect"].astype(str).to_numpy(object),
                        "flag": m["flag"].to_numpy(bool)})
    # --- defects: densities (per lattice site within r) and nearest distances
    n_sites = cKDTree(rows_xy[lattice_row]).query_ball_point(xy, r_px, return_length=True) - 1
    for kind in ("vacancy", "dopant"):
        is_k = (t["defect"] == kind).to_numpy() & lattice_row
        cnt, near = defect_neighbourhood(xy, rows_xy[is_k], (m["defect"] == kind).to_numpy(),
                                         r_px, a_px, max_distance)
        out[f"{kind}_density"] = cnt / np.maximum(n_sites, 1)
        out[f"{kind}_distance"] = near
    # --- strain, intensity, coordination and their neighbourhood means
    i, j = _neighbour_pairs(xy, r_px)
    strain = (m["exx"] + m["eyy"]).to_numpy(float)
    amp = m["amplitude"].to_numpy(float)
    if not np.isfinite(amp).any():
        amp = m["intensity"].to_numpy(float)
    ref = np.nanmedian(amp[~out["flag"].to_numpy() & np.isfinite(amp)]) if np.isfinite(
        amp).any() else 1.0
    inten = np.where((m["defect"] == "vacancy").to_numpy(), 0.0, amp / ref)
    coord = m["coordination"].to_numpy(float)
    for name, v in (("strain", strain), ("intensity", inten), ("coordination", coord)):
        avg = _neighbour_mean(v, i, j)
        out[name] = np.where(np.isfinite(v), v, avg)
        out[f"{name}_avg"] = avg
    out = out[["site", "x", "y", "phase", "defect", "flag", *DESCRIPTORS]]
    bad = ~np.isfinite(out[list(DESCRIPTORS)].to_numpy(float)).all(axis=1)
    out.loc[bad, "flag"] = True
    out.attrs["a_px"] = a_px
    out.attrs["radius"] = radius
    return out


# ----------------------------------------------------------------------------- series input
def _series_arrays(series):
    from causalspy.dynamics.drift import _frames, check_series

    check_series(series)
    data, lazy = _frames(series)
    return data, lazy


def _check_frames(before, after, n: int, need_after: bool) -> tuple[int, int]:
    def whole(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if not whole(before):
        raise InvalidParameterError(f"before must be a frame index (int); got {before!r}.")
    before = int(before)
    if not 1 <= before <= n - (1 if need_after else 0):
        raise InvalidParameterError(
            f"before={before} is out of range: the series has {n} frames, and the prediction "
            f"needs at least one frame before it{' and one after it' if need_after else ''} "
            f"(1 <= before <= {n - 1 if need_after else n}).")
    if after is None:
        after = n
    if not whole(after):
        raise InvalidParameterError(f"after must be a frame index (int) or None; got {after!r}.")
    after = int(after)
    if need_after and not before < after <= n:
        raise InvalidParameterError(
            f"after={after} must lie in {before + 1}..{n} (frames before..after-1 give the labels).")
    return before, after


def _mean_frame(data, lazy, frames, drift) -> np.ndarray:
    """Drift-corrected mean of some frames (read one at a time)."""
    from causalspy.dynamics.drift import _frame, _shift_frame

    acc = None
    for k in frames:   # frame loop; the shift is an FFT over the whole frame
        f = _shift_frame(_frame(data, int(k), lazy), *drift[int(k)])
        acc = f.astype(np.float64) if acc is None else acc + f
    return acc / len(frames)


def _common_box(drift: np.ndarray, frames, shape, margin: float) -> tuple[int, int, int, int]:
    """Pixel box (x0, x1, y0, y1) seen in every one of ``frames`` (frame-0 coordinates):
    Fourier shifts wrap around, so pixels outside it hold other frames' borders."""
    d = drift[np.asarray(frames, int)]
    ny, nx = shape
    x0 = int(np.ceil(max(0.0, -d[:, 0].min()) + margin))
    x1 = int(np.floor(min(nx - 1.0, nx - 1 - d[:, 0].max()) - margin))
    y0 = int(np.ceil(max(0.0, -d[:, 1].min()) + margin))
    y1 = int(np.floor(min(ny - 1.0, ny - 1 - d[:, 1].max()) - margin))
    if x1 - x0 < 32 or y1 - y0 < 32:
        raise InvalidImageError(
            f"The frames overlap only over {max(x1 - x0, 0)}x{max(y1 - y0, 0)} px after drift "
            "correction; use fewer frames (after=) or a series with less drift.")
    return x0, x1, y0, y1


def _crop_image(img: np.ndarray, box, series):
    from causalspy.dynamics.series import _as_image

    x0, x1, y0, y1 = box
    return _as_image(np.ascontiguousarray(img[y0:y1 + 1, x0:x1 + 1]), series)


def _phase_at(img, box, series, sites_xy, a_px, find_kwargs) -> np.ndarray:
    """Phase of each site in one (cropped) image: 1 = 1T, 0 = 2H, NaN = not seen."""
    from causalspy.atoms.find import find_atoms
    from causalspy.descriptors.hexagonal import hexagonal_descriptors

    out = np.full(len(sites_xy), np.nan)
    try:
        d = hexagonal_descriptors(find_atoms(_crop_image(img, box, series), **find_kwargs))
    except CausalspyError:
        return out   # nothing recognizable in this window: every site unseen
    t = d.to_dataframe()
    t = t[(t["site"] == "metal").to_numpy() & ~t["flag"].to_numpy(bool)]
    pos = t[["x", "y"]].to_numpy(float) + [box[0], box[2]]
    if len(pos) == 0:
        return out
    dist, j = cKDTree(pos).query(sites_xy, distance_upper_bound=0.35 * a_px)
    ok = np.isfinite(dist)
    ph = t["phase"].to_numpy(object)[np.where(ok, j, 0)]
    out[ok & (ph == "1T")] = 1.0
    out[ok & (ph == "2H")] = 0.0
    return out


def transition_labels(phases: np.ndarray, xy: np.ndarray, a_px: float,
                      usable: np.ndarray | None = None, min_size: int = 1,
                      core_radius: float = 1.2) -> pd.DataFrame:
    """Flip window, nucleus and at-risk interval of every site from its phase over time.

    Parameters
    ----------
    phases : (n_windows, n_sites) array
        1 where the site is 1T, 0 where 2H, NaN where not seen.
    xy : (n_sites, 2) positions (px).
    a_px : float
        Lattice parameter (px); sites closer than 1.5 a are neighbours.
    usable : (n_sites,) bool, optional
        Sites that may carry a label (others still connect regions).
    min_size : int
        Smallest new 1T region counted as a nucleus (1: a single site).
    core_radius : float
        Sites within this many lattice parameters of a new region's centroid
        are its nucleation sites (at least the member nearest to it), whether
        or not their own phase could be read: the nucleus is a place. The
        rest of the region had already grown out of them and is censored.

    Returns
    -------
    pandas.DataFrame
        ``flip_window`` (first window of the lasting 1T state, -1: never),
        ``nucleus`` (id of the nucleus the site belongs to, -1: none),
        ``label`` (1: nucleation site; 0: stayed 2H in every window, a
        control; -1: reached by a growing region first, so censored, or not
        usable), ``event_window`` (window of the
        nucleation, -1: none) and ``last_window`` (last window the site was
        at risk of nucleating: its nucleation window, the window before a
        growing region reached it, or the last window).

    Notes
    -----
    A site *flips* in the first window where it is 1T and the next window
    does not see it as 2H (one-window misreadings do not count). In window
    ``w`` the flipped sites form connected regions (neighbours closer than
    1.5 a); a region with no site flipped before ``w`` is a new nucleus, its
    core its nucleation sites.
    """
    P = np.asarray(phases, float)
    nw, ns = P.shape
    usable = np.ones(ns, bool) if usable is None else np.asarray(usable, bool)
    is1t = P == 1
    nxt2h = np.vstack([P[1:] == 0, np.zeros((1, ns), bool)])
    lasting = is1t & ~nxt2h
    flip = np.where(lasting.any(axis=0), lasting.argmax(axis=0), -1)
    i, j = _neighbour_pairs(xy, LINK * a_px)
    nucleus = np.full(ns, -1, np.int64)
    event = np.full(ns, -1, np.int64)
    nid = 0
    for w in range(nw):   # one connected-components pass per window (a handful)
        on = (flip >= 0) & (flip <= w)
        if not on.any():
            continue
        keep = on[i] & on[j]
        g = coo_matrix((np.ones(keep.sum()), (i[keep], j[keep])), shape=(ns, ns))
        _, comp = connected_components(g, directed=False)
        comp = np.where(on, comp, -1)
        old = np.unique(comp[on & (flip < w)])
        new = np.setdiff1d(np.unique(comp[on & (flip == w)]), old)
        for c in new:   # a few new regions per window
            members = np.flatnonzero(comp == c)
            if len(members) < min_size:
                continue
            # a region seen one window after it formed has grown: its core (around the
            # centroid) is where it nucleated, the rest was reached by growth (censored)
            c0 = xy[members].mean(axis=0)
            dc = np.hypot(*(xy[members] - c0).T)
            # the sites around the centroid, read as 1T or not: the phase read from the
            # image cannot be read at a site with a missing chalcogen or metal, and it
            # places a one-cell region on the metals around its new column, about a lattice
            # parameter off the cell's own metal. Cases made of the readable members only
            # tie the label to the readout: every such case has full coordination
            d_all = np.hypot(*(xy - c0).T)
            core = np.flatnonzero((d_all <= core_radius * a_px) & ((flip < 0) | (flip >= w))
                                  & (nucleus < 0))
            core = np.union1d(core, members[dc <= dc.min() + 1e-9])
            nucleus[core] = nid
            event[core] = w
            nid += 1
    case = (nucleus >= 0) & usable
    label = np.where(case, 1, np.where((flip < 0) & usable, 0, -1))
    last = np.where(case, event, np.where(flip >= 0, flip - 1, nw - 1))
    return pd.DataFrame({"flip_window": flip.astype(np.int64), "nucleus": nucleus,
                         "label": label.astype(np.int64),
                         "event_window": np.where(case, event, -1).astype(np.int64),
                         "last_window": last.astype(np.int64)})


def _windows(before: int, after: int, window: int | None, max_windows: int) -> list[np.ndarray]:
    n = after - before
    if window is None:
        window = max(1, int(np.ceil(n / max_windows)))
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise InvalidParameterError(f"window must be a whole number of frames >= 1; got {window!r}.")
    return [np.arange(s, min(s + window, after)) for s in range(before, after, window)]


def _prepare(series, before, after, *, need_labels: bool, radius, window, max_windows,
             drift, find_kwargs, progress) -> dict:
    """Descriptors (frames < before) and, when asked, labels (frames before..after-1)."""
    from causalspy.dynamics.drift import estimate_drift

    data, lazy = _series_arrays(series)
    n = data.shape[0]
    before, after = _check_frames(before, after, n, need_labels)
    if drift is None:
        drift = estimate_drift(series)
    drift = np.asarray(drift, float)
    if drift.shape != (n, 2):
        raise InvalidParameterError(f"drift must have shape ({n}, 2); got {drift.shape}.")
    wins = _windows(before, after, window, max_windows) if need_labels and after > before else []
    used = np.arange(0, after if wins else before)
    box = _common_box(drift, used, data.shape[1:], margin=1.0)
    pre = _mean_frame(data, lazy, np.arange(before), drift)
    find_kwargs = dict(find_kwargs or {})
    from causalspy.atoms.find import find_atoms
    from causalspy.descriptors.hexagonal import hexagonal_descriptors

    atoms = find_atoms(_crop_image(pre, box, series), **find_kwargs)
    find_kwargs.setdefault("separation", atoms.metadata["parameters"]["separation"])
    desc = hexagonal_descriptors(atoms)
    sites = site_descriptors(desc, radius=radius)
    a_px = sites.attrs["a_px"]
    # a site whose neighbourhood the field of view cuts has biased densities, distances and
    # averages, and the edge is where growth arrives last (or a generator lets nothing
    # nucleate): kept in, such sites let any model "predict" the edge, not nucleation
    bx, by = sites["x"].to_numpy(float), sites["y"].to_numpy(float)
    edge = np.minimum.reduce([bx, by, box[1] - box[0] - bx, box[3] - box[2] - by])
    sites.loc[edge < radius * a_px, "flag"] = True
    sites["x"] += box[0]
    sites["y"] += box[2]
    xy = sites[["x", "y"]].to_numpy(float)
    usable = ~sites["flag"].to_numpy(bool)
    if usable.sum() < MIN_SITES:
        raise NoColumnsFoundError(
            f"Only {int(usable.sum())} lattice sites can be measured in the frames before "
            f"{before} (at least {MIN_SITES} are needed): use a larger field of view or check "
            "that the frames show an MX2 lattice.")
    pre_1t = (sites["phase"] == "1T").to_numpy() & usable
    out = {"sites": sites, "a_px": a_px, "drift": drift, "before": before, "after": after,
           "box": box, "pre": pre, "windows": wins, "n_frames": n, "labels": None,
           "find_kwargs": find_kwargs}
    if not wins:
        return out
    # a site already 1T before the prediction frame means the transition has begun
    if pre_1t.sum() >= 3 and pre_1t.sum() >= 0.02 * usable.sum():
        raise InvalidParameterError(
            f"before={before} is after the transition began: {int(pre_1t.sum())} of "
            f"{int(usable.sum())} sites are already 1T in the frames before it. Choose an "
            "earlier frame: the prediction must use only untransformed frames.")
    phases = np.full((len(wins), len(sites)), np.nan)
    for w, fr in enumerate(wins):   # one atom finding per window of frames
        phases[w] = _phase_at(_mean_frame(data, lazy, fr, drift), box, series, xy, a_px,
                              find_kwargs)
        if progress is not None:
            progress(w + 1, len(wins))
    lab = transition_labels(phases, xy, a_px, usable & ~pre_1t)
    if not (lab["label"] == 1).any():
        seen = np.isfinite(phases).mean()
        raise NoTransitionError(
            f"No phase transition in frames {before}..{after - 1}: no site turns 1T and stays "
            f"1T ({seen:.0%} of site-windows could be read). Nothing to learn nucleation from; "
            "use a series (or a later after=) that contains the transition, or pass train= a "
            "fitted prediction to map probabilities without validation.")
    out["labels"] = lab
    out["phases"] = phases
    return out


# ----------------------------------------------------------------------------- main
def predict_nucleation(series, before: int, after: int | None = None, *,
                       model: str = "hazard", train=None, radius: float = 2.0,
                       window: int | None = None, max_windows: int = 12,
                       n_blocks: tuple[int, int] = (3, 3), C: float = 1.0, n_boot: int = 200,
                       n_shuffle: int = 20, causal: bool = True, causal_boot: int = 20,
                       seed: int = 0, drift=None, find_kwargs: dict | None = None,
                       progress=None):
    """Probability map of where the new phase will nucleate, from frames before it only.

    Parameters
    ----------
    series : AtomicSeries, (n, y, x) array or NucleationPrediction
        The in-situ series (not modified). Lazy series are read frame by frame.
        A previous result of this function stands for its series: its
        descriptors and labels are reused (nothing is recomputed), e.g. to
        validate it again with another model or training set.
    before : int
        First frame *not* used for the prediction: descriptors come from the
        drift-corrected mean of frames ``0 .. before - 1``, which must still
        be untransformed (2H).
    after : int, optional
        Labels (where the transition actually happened) come from frames
        ``before .. after - 1`` (default: to the end).
    model : {"hazard", "logistic"}
        ``"hazard"`` (default): discrete-time hazard (survival) model, sites
        at risk until they nucleate or a growing region reaches them
        (censored). ``"logistic"``: one penalized logistic regression per
        site on "part of a nucleus". Both L2-penalized (scikit-learn).
    train : None, NucleationPrediction(s), series or list of series / (series, before)
        ``None``: spatial block cross-validation on this series (each block
        predicted by a model fitted on the other blocks minus a buffer of
        ``radius``). Results of other series (one or a list): their labelled
        sites are pooled and the model refitted (a single result without
        labels: its fitted model is reused). Series: prepared and labelled
        like this one (same ``before`` unless given as pairs), then pooled.
        With ``train`` given, this series needs no transition (then there is
        no validation; ``before`` may equal the number of frames).
    radius : float
        Neighbourhood radius (lattice parameters) of the descriptors; also the
        buffer between training and held-out blocks, and the band along the
        edge of the analysed region whose sites are left out (the view cuts
        their neighbourhoods).
    window : int, optional
        Frames averaged per label window (default: enough for at most
        ``max_windows`` windows). Averaging beats noise; each window costs
        one atom finding.
    n_blocks : (int, int)
        Spatial cross-validation grid (x, y).
    C : float
        Inverse L2 penalty on the standardized coefficients.
    n_boot : int
        Bootstrap resamples (over spatial tiles of ``2 radius`` lattice
        parameters) for the AUC and coefficient intervals.
    n_shuffle : int
        Refits with descriptors shuffled across sites (the chance baseline).
    causal : bool
        Learn a causal graph over descriptors and the nucleation label
        (DirectLiNGAM with the label in the last tier, ``causal_boot``
        bootstrap resamples for edge confidences).
    seed : int
    drift : (n, 2) array, optional
        Shifts from :func:`~causalspy.dynamics.estimate_drift` (estimated if None).
    find_kwargs : dict, optional
        Passed to :func:`~causalspy.find_atoms`.
    progress : callable, optional
        ``progress(done, total)`` after each label window.

    Returns
    -------
    NucleationPrediction

    Raises
    ------
    InvalidParameterError
        ``before``/``after`` out of range, ``before`` after the transition
        began, unknown model.
    NoTransitionError
        No site turns 1T after ``before`` (and no ``train`` to predict from).
    NoColumnsFoundError
        Too few measurable lattice sites.
    """
    from causalspy.dynamics import _hazard as hz

    if model not in ("hazard", "logistic"):
        raise InvalidParameterError(f"model must be 'hazard' or 'logistic'; got {model!r}.")
    if not (isinstance(C, (int, float)) and C > 0):
        raise InvalidParameterError(f"C must be > 0; got {C!r}.")
    nb = tuple(int(v) for v in np.broadcast_to(np.asarray(n_blocks), (2,)))
    if min(nb) < 1 or nb[0] * nb[1] < 2:
        raise InvalidParameterError(f"n_blocks must give at least 2 blocks; got {n_blocks!r}.")
    rng = np.random.default_rng(seed)
    common = {"radius": radius, "window": window, "max_windows": max_windows,
              "find_kwargs": find_kwargs, "progress": progress}
    own_labels = train is None
    if isinstance(series, NucleationPrediction):
        # descriptors and labels already measured: nothing is recomputed
        prep = _prep_from_result(series)
        if own_labels and prep["labels"] is None:
            raise NoTransitionError(
                "This prediction has no labels (its series had no transition after before=); "
                "give train= to predict it.")
    else:
        n_frames = _series_arrays(series)[0].shape[0]
        # with a model from elsewhere, a series that ends before the transition is fine
        need = own_labels or not (isinstance(before, (int, np.integer)) and before == n_frames)
        try:
            prep = _prepare(series, before, after, need_labels=need, drift=drift, **common)
        except NoTransitionError:
            if own_labels:
                raise
            prep = _prepare(series, before, None, need_labels=False, drift=drift, **common)
    sites = prep["sites"].copy()
    feats = list(DESCRIPTORS)
    usable = ~sites["flag"].to_numpy(bool)
    lab = prep["labels"]
    nw = len(prep["windows"])

    # --- training data
    if own_labels:
        tr = _training_rows(sites, lab, usable)
        n_nuc = int(lab.loc[usable & (lab["label"] == 1).to_numpy(), "nucleus"].nunique())
        if n_nuc < 2:
            raise NoTransitionError(
                f"Only {n_nuc} nucleus forms in frames {prep['before']}..{prep['after'] - 1}: "
                "spatial cross-validation needs at least 2. Use a later after=, a larger field "
                "of view, or train= on other series.")
        train_desc = "spatial block cross-validation on this series"
    else:
        items = list(train) if isinstance(train, (list, tuple)) and not (
            len(train) == 2 and isinstance(train[1], (int, np.integer))) else [train]
        preds = [it for it in items if isinstance(it, NucleationPrediction)]
        if preds and len(preds) != len(items):
            raise InvalidParameterError(
                "train= takes either NucleationPrediction results or series, not a mix.")
        if preds:
            labelled = [_prep_from_result(r) for r in preds]
            labelled = [q for q in labelled if q["labels"] is not None]
            if labelled:
                tr = _pool([_training_rows(q["sites"], q["labels"],
                                           ~q["sites"]["flag"].to_numpy(bool))
                            for q in labelled])
                train_desc = (f"{len(labelled)} other labelled series (refitted)"
                              if len(labelled) > 1 else "another labelled series (refitted)")
            elif len(preds) == 1:
                tr = None
                fitted = preds[0].model
                train_desc = "a previous prediction's fitted model"
            else:
                raise InvalidParameterError(
                    "None of the train= predictions has labels to fit on; pass one of them "
                    "alone to reuse its fitted model.")
        else:
            tr = _pool([_training_rows(q["sites"], q["labels"],
                                       ~q["sites"]["flag"].to_numpy(bool))
                        for q in _prepare_many(items, before, common)])
            train_desc = f"{tr['n_series']} other series"

    # --- fit on all training data, predict this series
    if tr is not None:
        fitted = hz.fit_model(model, tr["X"], tr["y"], tr["event"], tr["last"], tr["nw"], feats, C)
    X = sites[feats].to_numpy(float)
    prob = np.full(len(sites), np.nan)
    Xu = X[usable]
    # horizon of the map: this series' label windows, else those the model was fitted on
    horizon = nw or max(len(fitted.baseline), 1)
    prob[usable] = fitted.predict(Xu, horizon if fitted.kind == "hazard" else None)
    fold = np.full(len(sites), -1, np.int64)
    xy = sites[["x", "y"]].to_numpy(float)
    a_px = prep["a_px"]
    buffer = radius * a_px
    if own_labels:
        blocks = hz.spatial_blocks(xy[usable], nb)
        oof = hz.cross_validate(model, Xu, tr["y"], tr["event"], tr["last"], nw, feats,
                                xy[usable], blocks, buffer, C)
        prob[usable] = oof
        fold[usable] = blocks

    sites["probability"] = prob
    sites["fold"] = fold
    if lab is not None:
        for c in ("label", "nucleus", "flip_window", "event_window", "last_window"):
            sites[c] = lab[c].to_numpy()
        sites.loc[~usable, "label"] = -1
    else:
        for c in ("label", "nucleus", "flip_window", "event_window", "last_window"):
            sites[c] = -1

    # --- validation against where nucleation actually happened
    validation = {"validated": lab is not None, "training": train_desc}
    if lab is not None:
        # each nucleation site against the sites still at risk (2H, not yet reached by a
        # growing region) in the window its nucleus formed: the incident/dynamic AUC of
        # survival analysis, 0.5 in expectation for a score unrelated to the hazard however
        # growth thins the risk sets. The cumulative AUC (nucleation sites against the
        # sites still 2H at the end, censored ones left out) is kept for reference: growth
        # removes the neighbours of nuclei from its controls, and with a hazard that
        # varies smoothly over space those are the high-risk sites, so it reads high
        y = sites["label"].to_numpy()[usable]
        ev = sites["event_window"].to_numpy()[usable]
        last = sites["last_window"].to_numpy()[usable]
        p = prob[usable]
        # each nucleus's sites are resampled together, in the tile of its centre: they
        # are one event, and a core split over tiles would count as several
        nid = sites["nucleus"].to_numpy()[usable]
        txy = xy[usable].copy()
        case = y == 1
        if case.any():
            cen = pd.DataFrame(txy[case]).groupby(nid[case]).transform("mean").to_numpy()
            txy[case] = cen
        tid = hz.tiles(txy, 2 * radius * a_px)
        a = hz.auc_incident(y, ev, last, p)
        a_cum = hz.auc(y, p)
        a_all = hz.auc((y == 1).astype(int), p)
        if own_labels:
            boots = hz.bootstrap_cv_auc(model, Xu, y, ev, last, nw, feats, xy[usable], blocks,
                                        buffer, C, tid, n_boot, rng)
        else:   # a model fitted elsewhere: only the sites vary
            boots = hz.tile_bootstrap_auc(y, p, tid, n_boot, rng, ev, last)
        lo, hi = (np.percentile(boots, [2.5, 97.5]) if len(boots) else (np.nan, np.nan))
        if own_labels:
            sh = hz.shuffled_baseline(model, Xu, y, ev, last, nw, feats, xy[usable], blocks,
                                      buffer, C, n_shuffle, rng)
        else:
            sh = np.array([hz.auc_incident(y, ev, last, p[rng.permutation(len(p))])
                           for _ in range(n_shuffle)])
        nuc = sites[sites["label"] == 1].groupby("nucleus")[["x", "y"]].mean().to_numpy()
        k = max(1, int(len(nuc)))
        hit, chance = hz.top_k(p, xy[usable], nuc, k, 1.0 * a_px)
        validation.update({
            "auc": a, "auc_low": float(lo), "auc_high": float(hi),
            "shuffled_auc_mean": float(np.mean(sh)) if len(sh) else np.nan,
            "shuffled_auc_low": float(np.percentile(sh, 2.5)) if len(sh) else np.nan,
            "shuffled_auc_high": float(np.percentile(sh, 97.5)) if len(sh) else np.nan,
            "p_value": float((1 + np.sum(sh >= a)) / (1 + len(sh))) if len(sh) else np.nan,
            "top_k": k, "top_k_hit_rate": hit, "top_k_chance": chance,
            "auc_cumulative": a_cum, "auc_all_sites": a_all,
            "n_sites": int(usable.sum()), "n_nucleation_sites": int((y == 1).sum()),
            "n_controls": int((y == 0).sum()), "n_censored": int((y < 0).sum()),
            "n_nuclei": int(len(nuc)), "n_windows": nw,
            "frames_per_window": int(len(prep["windows"][0])) if nw else 0,
            "n_boot": int(n_boot), "n_shuffle": int(n_shuffle),
        })
        validation["predictable"] = bool(np.isfinite(lo) and lo > 0.5)

    # --- drivers: bootstrap coefficients and the causal graph
    drivers, graph = _drivers(model, fitted, tr, feats, radius, a_px, n_boot, C, rng, causal,
                              causal_boot, seed)
    meta = {"before": prep["before"], "after": prep["after"], "model": model,
            "windows": [[int(w[0]), int(w[-1])] for w in prep["windows"]],
            "a_px": a_px, "radius": radius, "n_blocks": list(nb), "C": float(C), "seed": seed,
            "box": list(prep["box"]), "drift": prep["drift"].tolist(),
            "n_frames": prep["n_frames"], "shape": [int(v) for v in prep["pre"].shape],
            "training": train_desc}
    return NucleationPrediction(sites, validation=validation, drivers=drivers, graph=graph,
                                model=fitted, metadata=meta, image=prep["pre"])


def _training_rows(sites, lab, usable) -> dict:
    X = sites[list(DESCRIPTORS)].to_numpy(float)[usable]
    return {"X": X, "y": lab["label"].to_numpy()[usable],
            "event": lab["event_window"].to_numpy()[usable],
            "last": lab["last_window"].to_numpy()[usable],
            "nw": int(lab["last_window"].max()) + 1, "n_series": 1,
            "xy": sites[["x", "y"]].to_numpy(float)[usable]}


def _prepare_many(items, before, common) -> list[dict]:
    out = []
    for it in items:   # one preparation per training series
        srs, b = (it if isinstance(it, tuple) else (it, before))
        out.append(_prepare(srs, b, None, need_labels=True, drift=None, **common))
    return out


def _pool(parts: list[dict]) -> dict:
    """Training rows of several series as one set (sites of different series never
    share a spatial tile: they are moved far apart)."""
    nw = max(p["nw"] for p in parts)
    return {"X": np.vstack([p["X"] for p in parts]), "y": np.concatenate([p["y"] for p in parts]),
            "event": np.concatenate([p["event"] for p in parts]),
            "last": np.concatenate([p["last"] for p in parts]), "nw": nw,
            "n_series": len(parts),
            "xy": np.vstack([p["xy"] + [1e7 * k, 0] for k, p in enumerate(parts)])}


LABEL_COLUMNS = ("label", "nucleus", "flip_window", "event_window", "last_window")


def _prep_from_result(res) -> dict:
    """What :func:`_prepare` returns, from a :class:`NucleationPrediction`."""
    m = res.metadata
    base = ["site", "x", "y", "phase", "defect", "flag", *DESCRIPTORS]
    sites = res.sites[base].copy()
    sites.attrs.update({"a_px": float(m["a_px"]), "radius": float(m["radius"])})
    lab = None
    if res.validation.get("validated") and (res.sites["label"] == 1).any():
        lab = res.sites[list(LABEL_COLUMNS)].copy()
    wins = [np.arange(a, b + 1) for a, b in m.get("windows", [])]
    return {"sites": sites, "a_px": float(m["a_px"]), "drift": np.asarray(m["drift"], float),
            "before": int(m["before"]), "after": int(m["after"]), "box": tuple(m["box"]),
            "pre": res.image if res.image is not None else np.zeros(m["shape"]),
            "windows": wins, "n_frames": int(m["n_frames"]), "labels": lab}


def _drivers(model, fitted, tr, feats, radius, a_px, n_boot, C, rng, causal, causal_boot, seed):
    from causalspy.dynamics import _hazard as hz

    coef = fitted.coef
    df = pd.DataFrame({"descriptor": feats, "coef": coef, "odds_ratio": np.exp(coef)})
    if tr is None:
        for c in ("coef_low", "coef_high", "p_sign"):
            df[c] = np.nan
        df["effect"] = "unknown (model reused)"
        return df, None
    tid = hz.tiles(tr["xy"], 2 * radius * a_px)
    B = hz.bootstrap_coefficients(model, tr["X"], tr["y"], tr["event"], tr["last"], tr["nw"],
                                  feats, tid, n_boot, C, rng)
    # simultaneous 95 % intervals (Bonferroni over the descriptors): an "effect" is a claim
    # about each of them, and ten separate 95 % intervals make a false one every other run
    alpha = 0.05 / len(feats)
    lo, hi = np.percentile(B, [50 * alpha, 100 - 50 * alpha], axis=0)
    df["coef_low"], df["coef_high"] = lo, hi
    df["p_sign"] = np.where(coef >= 0, (B > 0).mean(0), (B < 0).mean(0))
    df["effect"] = np.where(lo > 0, "raises", np.where(hi < 0, "lowers", "no evidence"))
    graph = None
    df["graph_edge"] = False
    df["graph_confidence"] = np.nan
    if causal:
        graph = _causal_graph(tr, feats, causal_boot, seed)
        if graph is not None:
            e = graph.edges
            into = e[(e["target"] == LABEL) & (e["type"] == "directed")]
            conf = dict(zip(into["source"], into["confidence"], strict=True))
            df["graph_edge"] = df["descriptor"].isin(conf)
            df["graph_confidence"] = df["descriptor"].map(conf).astype(float)
    return df.sort_values("coef", key=np.abs, ascending=False).reset_index(drop=True), graph


def _causal_graph(tr, feats, n_boot, seed):
    """DirectLiNGAM over the descriptors and the label, the label in the last tier."""
    import warnings

    from causalspy.causal import Prior, discover

    # nucleation sites against sites that stayed untransformed (censored ones left out)
    keep_rows = tr["y"] >= 0
    tab = pd.DataFrame(tr["X"][keep_rows], columns=feats)
    tab[LABEL] = (tr["y"][keep_rows] == 1).astype(float)
    keep = [c for c in feats if np.nanstd(tab[c]) > 0]
    tab = tab[[*keep, LABEL]]
    # the label happened after the descriptors were seen: it cannot cause them
    prior = Prior(tiers=[keep, [LABEL]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return discover(tab, method="lingam", prior=prior, bootstrap=int(n_boot), seed=seed)
        except CausalspyError:
            return None
