"""Synthetic in-situ series: a 2H → 1T transition in an MX2 monolayer with a known nucleation hazard."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from causalspy.data._common import check_number, make_rng, seed_param
from causalspy.data._elements import atomic_number
from causalspy.data._hexagonal import _EXPONENT, hexagonal
from causalspy.data._render import render_columns
from causalspy.descriptors.lattice import defect_neighbourhood
from causalspy.exceptions import InvalidParameterError

__all__ = ["HAZARD_DESCRIPTORS", "InsituSeries", "InsituTruth", "insitu_series"]

#: Pre-transition descriptors of a metal site the hazard may depend on (lengths in
#: lattice parameters; the same definitions as
#: :func:`causalspy.dynamics.nucleation.site_descriptors`).
HAZARD_DESCRIPTORS = ("strain", "vacancy_density", "vacancy_distance", "dopant_density",
                      "dopant_distance")
#: Window half-width (sigmas) used to render frames: loses < 1e-5 of a column's flux.
_TRUNCATE = 5.0


@dataclass
class InsituTruth:
    """Ground truth of :func:`insitu_series`.

    All positions are pixels in the *undrifted frame-0* coordinates (``x`` =
    column index, ``y`` = row index, origin at the centre of pixel
    ``[0, 0]``); a site at ``(x, y)`` is seen in frame ``k`` at
    ``(x + drift[k, 0], y + drift[k, 1])``. Times are seconds
    (``frame * frame_time``).

    Attributes
    ----------
    sites : pandas.DataFrame
        One row per metal (cell) site visible in at least one frame: ``site``
        (id, the row number), ``x``, ``y``, ``n1``, ``n2`` (cell indices),
        ``sublattice`` (0), ``kind`` (``"metal"``), ``species``, ``defect``
        (``"none"``, ``"dopant"``, ``"vacancy"``: of the metal column),
        ``in_frame0`` (inside frame 0), ``candidate`` (may nucleate: inside
        every frame with a margin), every descriptor of
        :data:`HAZARD_DESCRIPTORS` and its standardized value ``z_<name>``,
        ``hazard`` (per frame), ``nucleation_time`` (s: when the site's cell
        turns 1T, by nucleation or by a growing region; ``inf`` if not within
        the series), ``transition_frame`` (first frame showing it 1T, -1 if
        never), ``octahedral_frame`` (first frame in which all six chalcogen
        neighbours of the metal are in the 1T arrangement, which needs the
        neighbouring cells too: when a phase label measured on the image,
        e.g. :func:`~causalspy.descriptors.hexagonal_descriptors`, can call it
        1T; -1 if never) and ``nucleated_first`` (True for the nucleus sites).
    nuclei : pandas.DataFrame
        ``site``, ``x``, ``y``, ``time`` (s), ``frame`` (first frame showing
        the nucleus), in order of nucleation.
    drift : numpy.ndarray
        ``(n_frames, 2)`` true shift ``(dx, dy)`` of frame ``k`` relative to
        frame 0, px (the sign convention of
        :func:`causalspy.dynamics.estimate_drift`).
    phase : numpy.ndarray
        ``(n_frames, n_sites)`` strings ``"2H"``/``"1T"``: each site's phase in
        each frame (rows follow ``sites``).
    first_transition_frame : int or None
        First frame in which any site is 1T (None: no transition in the series).
    columns : pandas.DataFrame
        Every atomic column that exists in some frame: ``column`` (id),
        ``cell`` (the metal site id of its cell, -1 when that metal site is
        never visible), ``kind`` (``"metal"``, ``"chalcogen"`` at
        ``(a1 + a2) / 3`` or ``"chalcogen_1T"`` at ``2 (a1 + a2) / 3``, only
        occupied once its cell is 1T), ``x``, ``y``, ``sigma``.
    hops : pandas.DataFrame
        Chalcogen vacancy hops: ``frame`` (first frame of the new state),
        ``column_from`` (the column that empties), ``column_to`` (the
        vacancy that fills).
    params : dict
        Every parameter of the call, defaults resolved, plus ``h0``,
        ``pixel_size_nm``, ``descriptor_mean``/``descriptor_std`` (of the
        standardization) and ``shape``.
    """

    sites: pd.DataFrame
    nuclei: pd.DataFrame
    drift: np.ndarray
    phase: np.ndarray
    first_transition_frame: int | None
    columns: pd.DataFrame
    hops: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.drift.shape[0])

    def is_1t(self) -> np.ndarray:
        """``(n_frames, n_sites)`` booleans: True where a site is 1T."""
        return self.phase == "1T"

    def columns_at(self, frame: int) -> pd.DataFrame:
        """Every column in ``frame`` with its drifted position and state.

        Returns
        -------
        pandas.DataFrame
            ``columns`` plus ``frame``, ``x``/``y`` in that frame's pixels
            (``x0``/``y0``: frame-0 coordinates), ``counts`` (expected),
            ``present`` (occupied), ``species``, ``phase`` of its cell and
            ``visible`` (centre inside the frame).
        """
        k = int(frame)
        if not 0 <= k < self.n_frames:
            raise InvalidParameterError(f"frame must be in 0..{self.n_frames - 1}, got {frame}.")
        counts, species, phase = _column_state(self._state, k)
        c = self.columns.copy()
        c.insert(1, "frame", k)
        c = c.rename(columns={"x": "x0", "y": "y0"})
        c["x"] = c["x0"] + self.drift[k, 0]
        c["y"] = c["y0"] + self.drift[k, 1]
        c["counts"] = counts
        c["present"] = counts > 0
        c["species"] = species
        c["phase"] = phase
        h, w = self.params["shape"]
        c["visible"] = ((c["x"] >= -0.5) & (c["x"] <= w - 0.5) & (c["y"] >= -0.5)
                        & (c["y"] <= h - 0.5))
        return c


@dataclass
class InsituSeries:
    """What :func:`insitu_series` returns: ``signal`` and ``truth`` (also unpackable)."""

    signal: Any
    truth: InsituTruth

    def __iter__(self) -> Iterator[Any]:
        return iter((self.signal, self.truth))


def _strain_field(rng: np.random.Generator, amplitude: float, length_px: float,
                  n_modes: int = 8):
    """A smooth random irrotational displacement ``u = grad psi`` and its dilatation.

    ``psi = sum_m c_m cos(k_m . r + phi_m)`` with ``|k_m| = 2 pi / length``,
    so ``div u = -sum_m c_m |k_m|^2 cos(...)``; the ``c_m`` make the
    dilatation's standard deviation over space equal ``amplitude``.
    """
    ang = rng.uniform(0, np.pi, n_modes)
    kmag = 2 * np.pi / length_px
    k = kmag * np.column_stack([np.cos(ang), np.sin(ang)])
    phi = rng.uniform(0, 2 * np.pi, n_modes)
    w = rng.normal(size=n_modes)
    # each cosine has variance 1/2 over space: std(div u) = kmag^2 |c| / sqrt(2)
    c = amplitude * math.sqrt(2.0) * w / (np.linalg.norm(w) * kmag ** 2) if amplitude else 0 * w

    def field_at(x: np.ndarray, y: np.ndarray):
        arg = np.outer(x, k[:, 0]) + np.outer(y, k[:, 1]) + phi
        s, co = np.sin(arg), np.cos(arg)
        ux = -(s * (c * k[:, 0])).sum(axis=1)
        uy = -(s * (c * k[:, 1])).sum(axis=1)
        dil = -(co * (c * kmag ** 2)).sum(axis=1)
        return ux, uy, dil

    return field_at


def _site_descriptors(xy_metal, lattice_xy, is_vac, is_dop, metal_lattice_idx, dil, a_px,
                      radius, max_distance):
    """Descriptors of the metal sites from the initial (2H) structure, vectorized."""
    r_px = radius * a_px
    tree = cKDTree(lattice_xy)
    n_sites = tree.query_ball_point(xy_metal, r_px, return_length=True) - 1
    out = {"strain": dil}
    for kind, mask in (("vacancy", is_vac), ("dopant", is_dop)):
        cnt, near = defect_neighbourhood(xy_metal, lattice_xy[mask], mask[metal_lattice_idx],
                                         r_px, a_px, max_distance)
        out[f"{kind}_density"] = cnt / np.maximum(n_sites, 1)
        out[f"{kind}_distance"] = near
    return out


def _check_hazard(hazard: Mapping[str, float] | None) -> dict[str, float]:
    if hazard is None:
        return {}
    if not isinstance(hazard, Mapping):
        raise InvalidParameterError(
            "hazard must be a dict {descriptor: beta}, e.g. {'vacancy_density': 1.5}, or None; "
            f"got {type(hazard).__name__}.")
    out = {}
    for name, beta in hazard.items():
        if name not in HAZARD_DESCRIPTORS:
            raise InvalidParameterError(
                f"Unknown hazard descriptor {name!r}; choose from {', '.join(HAZARD_DESCRIPTORS)}.")
        b = float(beta)
        if not math.isfinite(b):
            raise InvalidParameterError(f"hazard[{name!r}] must be a finite number, got {beta!r}.")
        out[name] = b
    return out


def _column_state(st: dict[str, Any], k: int):
    """Expected counts, species and cell phase of every column in frame ``k``."""
    is1t = st["switch"][st["col_cell"]] <= k     # per column: its cell is 1T
    chal = st["chal_state"][k][st["col_cell"]]   # 0 host X2, 1 doped, 2 vacant
    kind = st["col_kind"]
    cpx = st["counts_x"]                          # (host pair, doped pair, single host, single dopant)
    counts = np.where(kind == 0, st["metal_counts"], 0.0)
    species = np.where(kind == 0, st["metal_species"], "vacancy").astype(object)
    h1 = kind == 1
    pair = np.where(chal == 0, cpx[0], np.where(chal == 1, cpx[1], 0.0))
    single1 = np.where(chal == 0, cpx[2], np.where(chal == 1, cpx[3], 0.0))
    counts = np.where(h1, np.where(is1t, single1, pair), counts)
    h2 = kind == 2
    single2 = np.where(chal == 2, 0.0, cpx[2])   # the doped cell keeps its dopant at hollow 1
    counts = np.where(h2, np.where(is1t, single2, 0.0), counts)
    names = st["names"]
    sp1 = np.where(is1t, np.where(chal == 0, names[2], names[3]),
                   np.where(chal == 0, names[0], names[1]))
    species = np.where(h1 & (chal != 2), sp1, species)
    species = np.where(h2 & is1t & (chal != 2), names[2], species)
    phase = np.where(is1t, "1T", "2H").astype(object)
    return counts, species, phase


def _render(st: dict[str, Any], k: int) -> np.ndarray:
    """Frame ``k``: expected image and Poisson counts from its own seed (order-free)."""
    counts, _, _ = _column_state(st, k)
    x = st["col_x"] + st["drift"][k, 0]
    y = st["col_y"] + st["drift"][k, 1]
    lam = render_columns(st["shape"], x, y, counts, st["sigma"], st["background"],
                         truncate=_TRUNCATE)
    if st["noise"]:
        rng = np.random.default_rng([st["seed_int"], k])
        lam = rng.poisson(lam)
    return lam.astype(np.float32)


def insitu_series(
    n_frames: int = 40,
    shape: tuple[int, int] = (256, 256),
    a_px: float = 20.0,
    a_nm: float = 0.316,
    counts: float = 1e4,
    background: float = 1.0,
    sigma_px: float | None = None,
    dopant_fraction: float = 0.02,
    vacancy_fraction: float = 0.03,
    strain: float = 0.02,
    strain_length: float = 6.0,
    hazard: Mapping[str, float] | None = None,
    h0: float | None = None,
    n_nuclei: int = 3,
    transition_start: int | None = None,
    growth_speed: float = 0.5,
    min_separation: float = 4.0,
    drift_per_frame: tuple[float, float] = (0.3, -0.2),
    drift_jitter: float = 0.15,
    hops: int = 0,
    frame_time: float = 1.0,
    descriptor_radius: float = 2.0,
    max_distance: float = 6.0,
    noise: bool = True,
    lazy: bool = False,
    seed: int = 0,
) -> InsituSeries:
    """A drifting, noisy in-situ HAADF series of a 2H → 1T transition with known nuclei.

    The structure is :func:`causalspy.data.hexagonal` (a 2H MX2 monolayer
    with substitutional dopants and vacancies on both sublattices), extended
    beyond the field of view so drift never shows an empty border, and
    deformed by a smooth random displacement field ``u = grad psi`` (local
    dilatation ``div u`` with standard deviation ``strain`` and correlation
    length ``strain_length`` lattice parameters).

    **Descriptors and hazard.** For every metal (cell) site the generator
    computes, from the initial structure, the descriptors of
    :data:`HAZARD_DESCRIPTORS` with the definitions of
    :func:`causalspy.dynamics.nucleation.site_descriptors`: ``strain`` (the
    dilatation ``exx + eyy``), ``vacancy_density`` and ``dopant_density``
    (defects on either sublattice per lattice site within
    ``descriptor_radius`` lattice parameters, the site itself excluded), and
    ``vacancy_distance``/``dopant_distance`` (to the nearest other defect, in
    lattice parameters, capped at ``max_distance``). With ``z_k`` the
    descriptors standardized over the candidate sites, the hazard per frame is

    .. math:: h_i = h_0 \\exp\\Big(\\sum_k \\beta_k z_{ik}\\Big)

    with ``hazard = {name: beta_k}``; ``None`` or ``{}`` makes every site
    equally likely (no descriptor predicts anything).

    **Nucleation and growth.** From ``transition_start`` every candidate site
    carries an exponential clock of rate ``h_i`` (competing risks); the
    earliest clocks nucleate, up to ``n_nuclei`` events, skipping a site that
    is within ``min_separation`` lattice parameters of an earlier nucleus or
    already covered by a growing 1T region at its time. Each nucleus grows as
    a disc of radius ``growth_speed * (t - t_nucleus)`` lattice parameters;
    a cell whose centre is inside turns 1T: its chalcogen column at
    ``(a1 + a2) / 3`` loses one atom to a new column at ``2 (a1 + a2) / 3``
    (as in :func:`~causalspy.data.hexagonal` with ``phase="1T"``; a doped
    X-X' column keeps X' and puts X on the new site; a vacancy stays empty).

    **Frames.** Frame ``k`` (time ``k * frame_time``) shows the structure
    moved by ``drift[k]`` (a linear drift plus a Gaussian random walk, both
    sub-pixel per frame), rendered as pixel-integrated Gaussians plus
    Poisson noise drawn from ``default_rng([seed, k])``, so each frame is
    reproducible on its own (the lazy series renders frames on demand).
    With ``hops > 0`` that many single-atom events happen: a chalcogen column
    next to a chalcogen vacancy (both in 2H cells, in view) jumps into it.

    Parameters
    ----------
    n_frames : int
        Frames (>= 2).
    shape : tuple of int
        Frame size ``(height, width)`` in px (each >= 4 ``a_px``).
    a_px, a_nm : float
        Lattice parameter in px and nm (pixel size ``a_nm / a_px``).
    counts : float
        Expected counts of a metal column per frame (the dose).
    background : float
        Expected counts per pixel added everywhere.
    sigma_px : float, optional
        Column width; default ``0.125 * a_px`` (sharp enough for the single-atom
        1T chalcogen columns to be found and the phase labelled per frame).
    dopant_fraction, vacancy_fraction : float
        As in :func:`~causalspy.data.hexagonal`, per sublattice.
    strain : float
        Standard deviation of the dilatation (0 for none).
    strain_length : float
        Wavelength of the strain field's modes, lattice parameters.
    hazard : dict, optional
        ``{descriptor: beta}``, descriptors from :data:`HAZARD_DESCRIPTORS`.
    h0 : float, optional
        Baseline hazard per site per frame. Default: ``n_nuclei / (W * sum_i
        exp(beta . z_i))`` with ``W = max(1, (n_frames - transition_start) /
        3)``, so about ``n_nuclei`` nuclei appear within ``W`` frames.
    n_nuclei : int
        Most nucleation events (>= 1).
    transition_start : int, optional
        Frame index from which sites may nucleate; default ``n_frames // 3``.
        The frames before it show the pure 2H structure.
    growth_speed : float
        Radial growth of each 1T region, lattice parameters per frame (> 0).
    min_separation : float
        No nucleus within this many lattice parameters of an earlier one.
    drift_per_frame : tuple of float
        Linear drift ``(dx, dy)`` px per frame.
    drift_jitter : float
        Standard deviation (px) of the random-walk step per frame.
    hops : int
        Chalcogen vacancy hops (single-atom events): at most this many, fewer
        when no chalcogen vacancy in view has a full 2H neighbour at the time.
    frame_time : float
        Seconds between frames (the time axis scale).
    descriptor_radius, max_distance : float
        Neighbourhood radius and distance cap of the descriptors, lattice
        parameters.
    noise : bool
        Poisson noise (False: the expected images).
    lazy : bool
        Return a lazy signal whose frames are rendered when computed (memory
        bounded by a frame, for long or large series).
    seed : int
        Seed of everything (structure, strain, drift, clocks, hops, noise).

    Returns
    -------
    InsituSeries
        ``.signal``: an ``atomic_series`` signal ``(time | y, x)``, time in s,
        image axes in nm, float32 counts; ``.truth``: :class:`InsituTruth`.
        Unpacks as ``signal, truth = insitu_series(...)``.

    Raises
    ------
    InvalidParameterError
        On a bad value of any parameter or an unknown hazard descriptor.

    Examples
    --------
    >>> s, truth = insitu_series(n_frames=12, shape=(128, 128), hazard={"vacancy_density": 2.0},
    ...                          n_nuclei=2, seed=1)
    >>> s.data.shape
    (12, 128, 128)
    >>> int(truth.sites["nucleated_first"].sum()) <= 2
    True
    """
    n_frames = int(check_number("n_frames", n_frames, minimum=2))
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"shape must be (height, width) in px, got {shape!r}.") from None
    a_px = check_number("a_px", a_px, minimum=4.0)
    if min(height, width) < 4 * a_px:
        raise InvalidParameterError(
            f"Frames of {height}x{width} px hold fewer than 4 lattice parameters of {a_px:g} px; "
            "enlarge shape or lower a_px.")
    a_nm = check_number("a_nm", a_nm, minimum=0.0, strict_min=True)
    counts = check_number("counts", counts, minimum=0.0, strict_min=True)
    background = check_number("background", background, minimum=0.0)
    # narrower than hexagonal's 0.17 a: find_atoms then separates the single-atom 1T
    # chalcogen columns from the metal ones reliably (phase labels need them)
    sigma = 0.125 * a_px if sigma_px is None else check_number("sigma_px", sigma_px, minimum=0.0,
                                                              strict_min=True)
    strain = check_number("strain", strain, minimum=0.0, maximum=0.2)
    strain_length = check_number("strain_length", strain_length, minimum=1.0)
    beta = _check_hazard(hazard)
    n_nuclei = int(check_number("n_nuclei", n_nuclei, minimum=1))
    if transition_start is None:
        transition_start = n_frames // 3
    transition_start = int(check_number("transition_start", transition_start, minimum=0,
                                        maximum=n_frames - 1))
    growth_speed = check_number("growth_speed", growth_speed, minimum=0.0, strict_min=True)
    min_separation = check_number("min_separation", min_separation, minimum=0.0)
    drift_jitter = check_number("drift_jitter", drift_jitter, minimum=0.0)
    hops = int(check_number("hops", hops, minimum=0))
    frame_time = check_number("frame_time", frame_time, minimum=0.0, strict_min=True)
    descriptor_radius = check_number("descriptor_radius", descriptor_radius, minimum=0.0,
                                     strict_min=True)
    max_distance = check_number("max_distance", max_distance, minimum=0.0, strict_min=True)
    try:
        dpf = np.asarray(drift_per_frame, float).reshape(2)
    except ValueError:
        raise InvalidParameterError("drift_per_frame must be a pair (dx, dy) in px.") from None
    rng = make_rng(seed)
    seed_int = int(rng.integers(2 ** 62))

    # --- drift: linear + random walk; the lattice extends past the view by the largest drift
    steps = dpf + rng.normal(0.0, drift_jitter, (n_frames - 1, 2))
    drift = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
    pad = float(np.abs(drift).max()) + 2.0 * a_px + _TRUNCATE * sigma
    row = a_px * math.sqrt(3.0) / 2
    cells = (int(math.ceil((height + 2 * pad) / row)) + 1,
             int(math.ceil((width + 2 * pad) / a_px)) + 1)
    _, t0 = hexagonal(cells=cells, a_nm=a_nm, a_px=a_px, counts=counts, background=0.0,
                      sigma_px=sigma, dopant_fraction=dopant_fraction,
                      vacancy_fraction=vacancy_fraction, seed=int(rng.integers(2 ** 31)),
                      noise=False, phase=None)
    p = t0.params
    big_h, big_w = p["shape"]
    off_x, off_y = (big_w - width) / 2.0, (big_h - height) / 2.0
    ox, oy = p["origin_px"]
    col = t0.columns
    metal_cols = col[col["site"] == "metal"]
    chal_cols = col[col["site"] == "chalcogen"]

    # --- cells: every (n1, n2) with a metal or chalcogen column; centre = the 2H X column
    keys = pd.concat([metal_cols[["n1", "n2"]], chal_cols[["n1", "n2"]]]).drop_duplicates()
    keys = keys.sort_values(["n2", "n1"]).reset_index(drop=True)
    n1 = keys["n1"].to_numpy(np.int64)
    n2 = keys["n2"].to_numpy(np.int64)
    n_cells = len(keys)
    cell_of = {(a, b): i for i, (a, b) in enumerate(zip(n1.tolist(), n2.tolist(), strict=True))}
    ideal_mx = ox + n1 * a_px + n2 * a_px / 2 - off_x
    ideal_my = oy + n2 * row - off_y
    disp = _strain_field(rng, strain, strain_length * a_px)

    def place(x, y):
        ux, uy, dil = disp(x, y)
        return x + ux, y + uy, dil

    mx, my, dil_m = place(ideal_mx, ideal_my)
    cx, cy, _ = place(ideal_mx + a_px / 2, ideal_my + row / 3)   # 2H chalcogen column
    tx, ty, _ = place(ideal_mx + a_px, ideal_my + 2 * row / 3)    # its 1T partner site
    m_idx = np.array([cell_of[k] for k in zip(metal_cols["n1"].tolist(),
                                                metal_cols["n2"].tolist(), strict=True)])
    c_idx = np.array([cell_of[k] for k in zip(chal_cols["n1"].tolist(),
                                                chal_cols["n2"].tolist(), strict=True)])
    has_m = np.zeros(n_cells, bool)
    has_m[m_idx] = True
    has_c = np.zeros(n_cells, bool)
    has_c[c_idx] = True
    m_def = np.full(n_cells, "none", object)
    m_def[m_idx] = metal_cols["defect"].to_numpy()
    m_sp = np.full(n_cells, "vacancy", object)
    m_sp[m_idx] = metal_cols["species"].to_numpy()
    m_counts = np.zeros(n_cells)
    m_counts[m_idx] = metal_cols["counts"].to_numpy(float)
    c_def = np.full(n_cells, "none", object)
    c_def[c_idx] = chal_cols["defect"].to_numpy()
    chal0 = np.where(c_def == "vacancy", 2, np.where(c_def == "dopant", 1, 0)).astype(np.int8)

    # --- which metal sites are reported (seen in some frame) and which may nucleate
    lo_x, hi_x = drift[:, 0].min(), drift[:, 0].max()
    lo_y, hi_y = drift[:, 1].min(), drift[:, 1].max()
    seen = has_m & (mx + hi_x >= -0.5) & (mx + lo_x <= width - 0.5) & (my + hi_y >= -0.5) & (
        my + lo_y <= height - 0.5)
    margin = 1.5 * a_px
    always = (mx + lo_x >= margin) & (mx + hi_x <= width - 1 - margin) & (
        my + lo_y >= margin) & (my + hi_y <= height - 1 - margin)
    candidate = seen & always
    if candidate.sum() < n_nuclei:
        raise InvalidParameterError(
            f"Only {int(candidate.sum())} sites stay in view in every frame, fewer than n_nuclei "
            f"= {n_nuclei}; enlarge shape or lower the drift.")
    in0 = (mx >= -0.5) & (mx <= width - 0.5) & (my >= -0.5) & (my <= height - 0.5)

    # --- descriptors from the initial structure (metal + 2H chalcogen lattice sites)
    lat_xy = np.vstack([np.column_stack([mx[has_m], my[has_m]]),
                        np.column_stack([cx[has_c], cy[has_c]])])
    lat_vac = np.r_[m_def[has_m] == "vacancy", c_def[has_c] == "vacancy"]
    lat_dop = np.r_[m_def[has_m] == "dopant", c_def[has_c] == "dopant"]
    site_cells = np.flatnonzero(seen)
    pos_in_lat = np.cumsum(has_m) - 1            # metal cell -> its row in lat_xy
    desc = _site_descriptors(np.column_stack([mx[site_cells], my[site_cells]]), lat_xy,
                             lat_vac, lat_dop, pos_in_lat[site_cells], dil_m[site_cells], a_px,
                             descriptor_radius, max_distance)
    cand_s = candidate[site_cells]
    mean = {k: float(np.mean(desc[k][cand_s])) for k in HAZARD_DESCRIPTORS}
    std = {k: float(np.std(desc[k][cand_s])) for k in HAZARD_DESCRIPTORS}
    z = {k: (desc[k] - mean[k]) / std[k] if std[k] > 0 else np.zeros_like(desc[k])
         for k in HAZARD_DESCRIPTORS}
    lin = np.zeros(len(site_cells))
    for k, b in beta.items():
        lin += b * z[k]
    rel = np.exp(lin)
    window = max(1.0, (n_frames - transition_start) / 3.0)
    if h0 is None:
        h0 = n_nuclei / (window * rel[cand_s].sum())
    h0 = check_number("h0", h0, minimum=0.0, strict_min=True)
    hz = h0 * rel

    # --- competing exponential clocks, accepted in time order (one pass per nucleus)
    ci = np.flatnonzero(cand_s)
    clock = transition_start + rng.exponential(size=ci.size) / hz[ci]
    order = ci[np.argsort(clock)]
    t_sorted = np.sort(clock)
    sx, sy = mx[site_cells], my[site_cells]
    ok = np.ones(order.size, bool)
    nuc_s, nuc_t = [], []
    while len(nuc_s) < n_nuclei and ok.any():   # loop over nuclei (a few), vectorized over sites
        j = int(np.argmax(ok))
        s_j, t_j = order[j], t_sorted[j]
        if t_j > n_frames - 1:
            break
        nuc_s.append(int(s_j))
        nuc_t.append(float(t_j))
        d = np.hypot(sx[order] - sx[s_j], sy[order] - sy[s_j]) / a_px
        ok &= (d > min_separation) & (d > growth_speed * (t_sorted - t_j))
        ok[: j + 1] = False
    nuc_s_arr = np.asarray(nuc_s, np.int64)
    nuc_t_arr = np.asarray(nuc_t, float)
    # switch time of every cell: first nucleus disc reaching its centre
    switch = np.full(n_cells, np.inf)
    if nuc_s:
        ncx = cx[site_cells[nuc_s_arr]]
        ncy = cy[site_cells[nuc_s_arr]]
        dd = np.hypot(cx[:, None] - ncx[None], cy[:, None] - ncy[None]) / a_px
        switch = (nuc_t_arr[None] + dd / growth_speed).min(axis=1)
        switch[site_cells[nuc_s_arr]] = nuc_t_arr
    switch[switch > n_frames - 1] = np.inf
    frames = np.arange(n_frames)

    # --- chalcogen state per frame (hops change it from their frame on)
    chal_state = np.repeat(chal0[None], n_frames, axis=0)
    hop_rows = []
    if hops:
        hop_frames = np.sort(rng.choice(np.arange(1, n_frames), size=min(hops, n_frames - 1),
                                        replace=False))
        view_c = has_c & (cx + lo_x >= margin) & (cx + hi_x <= width - 1 - margin) & (
            cy + lo_y >= margin) & (cy + hi_y <= height - 1 - margin)
        pairs = cKDTree(np.column_stack([cx, cy])).query_pairs(1.1 * a_px, output_type="ndarray")
        pairs = pairs[view_c[pairs[:, 0]] & view_c[pairs[:, 1]]]
        for f in hop_frames:   # a few events; each is vectorized over the candidate pairs
            st = chal_state[f]
            two_h = switch > f
            pp = pairs[two_h[pairs[:, 0]] & two_h[pairs[:, 1]]]
            va, vb = st[pp[:, 0]] == 2, st[pp[:, 1]] == 2
            pp = np.r_[pp[va & ~vb][:, ::-1], pp[vb & ~va]]   # (full, vacant)
            if not len(pp):
                continue
            src, dst = pp[rng.integers(len(pp))]
            chal_state[f:, dst] = chal_state[f, src]
            chal_state[f:, src] = 2
            hop_rows.append((int(f), int(src), int(dst)))

    # --- columns: metal, 2H chalcogen, latent 1T chalcogen (cells with a chalcogen site)
    col_cell = np.r_[np.flatnonzero(has_m), np.flatnonzero(has_c), np.flatnonzero(has_c)]
    col_kind = np.r_[np.zeros(has_m.sum(), np.int8), np.ones(has_c.sum(), np.int8),
                     np.full(has_c.sum(), 2, np.int8)]
    col_x = np.r_[mx[has_m], cx[has_c], tx[has_c]]
    col_y = np.r_[my[has_m], cy[has_c], ty[has_c]]
    metal_name, chal_name = p["metal"], p["chalcogen"]
    dop_x = p["dopant"][1]
    zr_x = (atomic_number(chal_name, "chalcogen") / atomic_number(metal_name, "metal")) ** _EXPONENT
    zr_d = (atomic_number(dop_x, "dopant") / atomic_number(metal_name, "metal")) ** _EXPONENT
    state = {
        "switch": switch, "col_cell": col_cell, "col_kind": col_kind,
        "chal_state": chal_state, "metal_counts": m_counts[col_cell],
        "metal_species": m_sp[col_cell],
        "counts_x": counts * np.array([2 * zr_x, zr_x + zr_d, zr_x, zr_d]),
        "names": np.array([f"{chal_name}2", f"{chal_name}{dop_x}", chal_name, dop_x], object),
        "col_x": col_x, "col_y": col_y, "drift": drift, "shape": (height, width),
        "sigma": sigma, "background": background, "noise": bool(noise), "seed_int": seed_int,
    }
    # columns that are never inside any frame are dropped (they never render)
    vis = (col_x + hi_x >= -_TRUNCATE * sigma) & (col_x + lo_x <= width - 0.5 + _TRUNCATE * sigma) & (
        col_y + hi_y >= -_TRUNCATE * sigma) & (col_y + lo_y <= height - 0.5 + _TRUNCATE * sigma)
    for key in ("col_cell", "col_kind", "metal_counts", "metal_species", "col_x", "col_y"):
        state[key] = state[key][vis]

    # --- truth tables
    site_id = np.full(n_cells, -1, np.int64)
    site_id[site_cells] = np.arange(len(site_cells))
    t_switch = switch[site_cells]
    # a metal's six chalcogen neighbours are all in the 1T arrangement once its own cell and
    # the cells at -a1, -a2, -a1-a2 have switched (their 1T columns are its type-2 hollows):
    # what a phase label measured from an image can see
    grid = np.full((n1.max() - n1.min() + 3, n2.max() - n2.min() + 3), -1, np.int64)
    g1, g2 = n1 - n1.min() + 1, n2 - n2.min() + 1
    grid[g1, g2] = np.arange(n_cells)
    sw_pad = np.r_[switch, np.inf]             # index -1: a cell outside the lattice
    sc = site_cells
    octa = np.max([sw_pad[grid[g1[sc] - d1, g2[sc] - d2]]
                   for d1, d2 in ((0, 0), (1, 0), (0, 1), (1, 1))], axis=0)
    octa_frame = np.where(np.isfinite(octa), np.ceil(octa - 1e-9), -1).astype(np.int64)
    tr_frame = np.where(np.isfinite(t_switch), np.ceil(t_switch - 1e-9), -1).astype(np.int64)
    is_nuc = np.zeros(len(site_cells), bool)
    is_nuc[nuc_s_arr] = True
    sites = pd.DataFrame({
        "site": np.arange(len(site_cells), dtype=np.int64),
        "x": mx[site_cells], "y": my[site_cells],
        "n1": n1[site_cells], "n2": n2[site_cells],
        "sublattice": np.zeros(len(site_cells), np.int64),
        "kind": "metal", "species": m_sp[site_cells], "defect": m_def[site_cells],
        "in_frame0": in0[site_cells], "candidate": cand_s,
        **{k: desc[k] for k in HAZARD_DESCRIPTORS},
        **{f"z_{k}": z[k] for k in HAZARD_DESCRIPTORS},
        "hazard": hz,
        "nucleation_time": t_switch * frame_time,
        "transition_frame": tr_frame,
        "octahedral_frame": octa_frame,
        "nucleated_first": is_nuc,
    })
    nuclei = pd.DataFrame({"site": nuc_s_arr, "x": sx[nuc_s_arr], "y": sy[nuc_s_arr],
                           "time": nuc_t_arr * frame_time,
                           "frame": np.ceil(nuc_t_arr - 1e-9).astype(np.int64)})
    phase = np.where(t_switch[None, :] <= frames[:, None], "1T", "2H")
    first = int(tr_frame[tr_frame >= 0].min()) if (tr_frame >= 0).any() else None
    kind_names = np.array(["metal", "chalcogen", "chalcogen_1T"], object)
    columns = pd.DataFrame({"column": np.arange(int(vis.sum()), dtype=np.int64),
                            "cell": site_id[state["col_cell"]],
                            "kind": kind_names[state["col_kind"]],
                            "x": state["col_x"], "y": state["col_y"],
                            "sigma": np.full(int(vis.sum()), sigma)})
    # hops in column ids (the 2H chalcogen column of each cell)
    chal_col = np.full(n_cells, -1, np.int64)
    h1 = state["col_kind"] == 1
    chal_col[state["col_cell"][h1]] = np.flatnonzero(h1)
    hop_df = pd.DataFrame([(f, chal_col[s_], chal_col[d_]) for f, s_, d_ in hop_rows],
                          columns=["frame", "column_from", "column_to"], dtype=np.int64)
    pixel_nm = a_nm / a_px
    params = {
        "generator": "insitu_series", "n_frames": n_frames, "shape": [height, width],
        "a_px": a_px, "a_nm": a_nm, "counts": counts, "background": background,
        "sigma_px": sigma, "dopant_fraction": dopant_fraction,
        "vacancy_fraction": vacancy_fraction, "strain": strain, "strain_length": strain_length,
        "hazard": dict(beta), "h0": float(h0), "n_nuclei": n_nuclei,
        "transition_start": transition_start, "growth_speed": growth_speed,
        "min_separation": min_separation, "drift_per_frame": dpf.tolist(),
        "drift_jitter": drift_jitter, "hops": hops, "frame_time": frame_time,
        "descriptor_radius": descriptor_radius, "max_distance": max_distance,
        "noise": bool(noise), "lazy": bool(lazy), "seed": seed_param(seed),
        "pixel_size_nm": pixel_nm, "descriptor_mean": mean, "descriptor_std": std,
        "metal": metal_name, "chalcogen": chal_name, "dopant": list(p["dopant"]),
    }
    truth = InsituTruth(sites=sites, nuclei=nuclei, drift=drift, phase=phase,
                        first_transition_frame=first, columns=columns, hops=hop_df,
                        params=params, _state=state)
    signal = _make_signal(state, n_frames, lazy, frame_time, pixel_nm, params)
    return InsituSeries(signal=signal, truth=truth)


def _make_signal(state, n_frames, lazy, frame_time, pixel_nm, params):
    from causalspy.data._common import _plain

    h, w = state["shape"]
    if lazy:
        import dask.array as da

        from causalspy.signals.atomic_series import LazyAtomicSeries

        def block(block_info=None):
            k = block_info[None]["chunk-location"][0]
            return _render(state, k)[None]

        data = da.map_blocks(block, dtype=np.float32, chunks=((1,) * n_frames, (h,), (w,)),
                             meta=np.empty((0, 0, 0), np.float32))
        s = LazyAtomicSeries(data)
    else:
        from causalspy.signals.atomic_series import AtomicSeries

        data = np.empty((n_frames, h, w), np.float32)
        for k in range(n_frames):   # one vectorized render per frame
            data[k] = _render(state, k)
        s = AtomicSeries(data)
    t_ax = s.axes_manager.navigation_axes[0]
    t_ax.name, t_ax.units, t_ax.scale, t_ax.offset = "time", "s", float(frame_time), 0.0
    for ax, name in zip(s.axes_manager.signal_axes, ("x", "y"), strict=True):
        ax.name, ax.units, ax.scale, ax.offset = name, "nm", float(pixel_nm), 0.0
    s.metadata.General.title = "Synthetic in-situ 2H -> 1T series"
    s.metadata.set_item("Signal.quantity", "Intensity (counts)")
    p = _plain({k: v for k, v in params.items() if k != "hazard"})
    p["hazard"] = {str(k): float(v) for k, v in params["hazard"].items()}
    s.metadata.set_item("Sample.causalspy_truth_parameters", p)
    return s
