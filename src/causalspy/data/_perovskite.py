"""ABO3 perovskite viewed along [001] with polar B-site displacements."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from causalspy.data._common import (
    SeedLike,
    apply_noise,
    check_choice,
    check_number,
    check_pair,
    edge_mask,
    finish,
    make_rng,
    make_table,
    seed_param,
)
from causalspy.data._elements import atomic_number
from causalspy.data._render import render_columns
from causalspy.data._truth import GroundTruth
from causalspy.exceptions import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from hyperspy.signals import Signal2D

__all__ = ["perovskite"]

DOMAINS = ("none", "180", "90", "mixed")
CONTRASTS = ("haadf", "abf")
#: Exponent n of the Z^n column-intensity law for each contrast.
CONTRAST_EXPONENT = {"haadf": 1.7, "abf": 0.5}


def _wall_distance(u: np.ndarray, span: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Domain index and distance to the nearest wall for walls at ``k * width``.

    Walls sit at every multiple of ``width`` strictly inside ``(0, span)``.
    """
    walls = width * np.arange(1, math.ceil(span / width) + 1)
    walls = walls[walls < span - 1e-9]
    index = np.floor(u / width).astype(np.int64)
    if walls.size == 0:
        return index, np.full(u.shape, np.inf)
    return index, np.abs(u[:, None] - walls[None, :]).min(axis=1)


def _profile(dist: np.ndarray, wall_width: float) -> np.ndarray:
    """``tanh`` wall profile: 0 on a wall, -> 1 far from it (width = ``wall_width``)."""
    if wall_width == 0:
        return np.ones_like(dist)
    return np.tanh(dist / (wall_width / 2))


def _stripes_180(
    xc: np.ndarray, span: float, width: float, wall_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit polarization (ux, uy) and domain id of 180-degree stripes along x."""
    index, dist = _wall_distance(xc, span, width)
    sign = np.where(index % 2 == 0, 1.0, -1.0)
    uy = sign * _profile(dist, wall_width)
    return np.zeros_like(uy), uy, index


def _stripes_90(
    xc: np.ndarray, yc: np.ndarray, span_x: float, span_y: float, width: float, wall_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit polarization and domain id of 90-degree (+x / +y) stripes with 45-degree walls."""
    u = (xc + yc) / math.sqrt(2.0)
    index, dist = _wall_distance(u, (span_x + span_y) / math.sqrt(2.0), width)
    sign = np.where(index % 2 == 0, 1.0, -1.0)
    weight_x = 0.5 + 0.5 * sign * _profile(dist, wall_width)
    theta = (1.0 - weight_x) * (math.pi / 2)
    return np.cos(theta), np.sin(theta), index


def _polarization(
    domains: str, xc: np.ndarray, yc: np.ndarray, nx: int, ny: int, width: float, wall: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polarization direction (|u| = 1 away from walls) and domain id per B cell."""
    if domains == "none":
        return np.zeros_like(xc), np.ones_like(xc), np.zeros(xc.shape, dtype=np.int64)
    if domains == "180":
        return _stripes_180(xc, nx, width, wall)
    if domains == "90":
        return _stripes_90(xc, yc, nx, ny, width, wall)
    # "mixed": 180-degree stripes on the left half, 90-degree on the right.
    half = nx // 2
    left = xc < half
    ux = np.empty_like(xc)
    uy = np.empty_like(xc)
    dom = np.empty(xc.shape, dtype=np.int64)
    ux[left], uy[left], dom[left] = _stripes_180(xc[left], half, width, wall)
    ux[~left], uy[~left], d90 = _stripes_90(xc[~left] - half, yc[~left], nx - half, ny, width, wall)
    dom[~left] = d90 + (int(dom[left].max()) + 1 if left.any() else 0)
    return ux, uy, dom


def perovskite(
    cells: tuple[int, int] = (20, 20),
    cell_px: float = 24.0,
    a_nm: float = 0.4,
    counts: float = 1e4,
    background: float = 1.0,
    sigma_px: float | None = None,
    displacement_pm: float = 20.0,
    domains: str | None = "180",
    a_site_disorder: float = 0.0,
    oxygen: bool = False,
    contrast: str = "haadf",
    seed: SeedLike = 0,
    noise: bool = True,
    species: tuple[str, str, str] = ("Pb", "Ti", "O"),
    *,
    a_site_substituent: str | None = None,
    domain_width: float | None = None,
    wall_width: float = 1.0,
    strain_gradient: float = 0.0,
    tilt_deg: float = 0.0,
    tilt_boundary: bool = False,
) -> tuple[Signal2D, GroundTruth]:
    """Synthetic ABO3 perovskite viewed along [001] with ferroelectric domains.

    A columns sit at the unit-cell corners ``(j, i) * cell_px + origin``
    (``x``, ``y``), B columns at the cell centres ``(j + 0.5, i + 0.5) *
    cell_px + origin`` shifted by the polar displacement, and (with
    ``oxygen=True``) pure-O columns at ``(j + 0.5, i)`` and ``(j, i + 0.5)``.
    The image is ``cells * cell_px`` pixels and ``origin`` centres the
    lattice in it. Column intensities follow the Z-contrast law
    ``counts * (Z / Z_A) ** n`` with ``n = 1.7`` for HAADF and ``0.5`` for ABF.

    Parameters
    ----------
    cells : tuple of int
        Number of unit cells ``(rows along y, columns along x)``, each >= 2.
    cell_px : float
        Unit-cell size in pixels (>= 4).
    a_nm : float
        Lattice parameter in nm; the pixel size is ``a_nm / cell_px``.
    counts : float
        Total expected counts of an A column of ``species[0]`` (> 0).
    background : float
        HAADF: constant expected counts per pixel (>= 0). ABF: added to the
        bright level (see Notes).
    sigma_px : float, optional
        Gaussian width of every column in pixels; default ``0.15 * cell_px``.
    displacement_pm : float
        Magnitude of the B-site displacement (polarization proxy) in pm, >= 0.
    domains : {"none", "180", "90", "mixed"}
        Domain pattern of the B-site displacement:

        - ``"none"``: uniform, along +y.
        - ``"180"``: stripes alternating along x between +y and -y
          polarization (walls parallel to y, i.e. neutral 180-degree walls).
        - ``"90"``: stripes alternating between +x and +y polarization,
          separated by 45-degree walls (lines ``x + y = const``) across which
          the polarization rotates.
        - ``"mixed"``: the left half of the cells has ``"180"`` stripes, the
          right half ``"90"`` stripes (with an abrupt boundary between them).

        Walls have a ``tanh`` profile of width ``wall_width`` cells.
    a_site_disorder : float
        Fraction in [0, 1] of A sites whose species is replaced by
        ``a_site_substituent`` (composition disorder with its own Z contrast).
    oxygen : bool
        Include the pure-O columns (weak in HAADF). Always ``True`` for ABF.
    contrast : {"haadf", "abf"}
        ``"haadf"``: bright columns, intensity proportional to ``Z ** 1.7``.
        ``"abf"``: dark columns on a bright background, column depth
        proportional to ``Z ** 0.5``, every column (O included) visible.
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.
    noise : bool
        Draw Poisson counts. ``False`` returns the noise-free expected image.
    species : tuple of str
        Elements ``(A, B, O)``, e.g. ``("Sr", "Ti", "O")``; each must be in
        :data:`causalspy.data.Z`.
    a_site_substituent : str, optional
        Second A species for ``a_site_disorder``. Default ``"Sr"`` when A is
        Pb or Ba, else ``"Ba"``.
    domain_width : float, optional
        Domain width in cells (measured perpendicular to the walls). Default
        ``max(1, round(cells[1] / 4))``.
    wall_width : float
        Domain-wall width in cells (>= 0; 0 gives sharp walls).
    strain_gradient : float
        Total change of the normal strain ``exx`` across the image width: every
        column is displaced by ``u_x = g (x - x_c)^2 / (2 W)``, so the local
        strain is ``exx(x) = g (x - x_c) / W`` (zero at the centre, ``+/- g/2``
        at the edges). The true value per site is in the ``exx`` truth column.
    tilt_deg : float
        Octahedral rotation about the viewing axis (degrees, magnitude, in
        [0, 30)): the four O columns around each B rotate rigidly by
        ``phi(i, j) = s tilt_deg (-1) ** (i + j)`` (positive from +x towards
        +y of the image, i.e. clockwise on screen), in-phase along the beam
        (Glazer a0a0c+ seen along [001]: the O columns stay sharp) and
        antiphase in the plane (corner-sharing octahedra rotate in opposite
        senses, a checkerboard). Each pure-O column is shared by two B cells
        and moves perpendicular to their B-B line by
        ``cell_px / 4 * (tan(phi_1) - tan(phi_2))``, so in a perfect
        checkerboard the O-O line of a cell turns by exactly ``phi``.
        Visible with ``oxygen=True`` or ``contrast="abf"``.
    tilt_boundary : bool
        Flip the checkerboard (``s = -1``) on the right half of the cells
        (``j >= cells[1] // 2``): an antiphase boundary of the tilt pattern.
        The O columns on it are frustrated (their two B cells rotate the same
        way) and stay in place: the O-O line across the boundary turns by
        about ``phi / 2``, so the cells on either side turn by about
        ``3 phi / 4``. The
        true rotation of every cell's O square is in the ``tilt`` truth
        column.

    Returns
    -------
    signal : causalspy.signals.AtomicResolution
        The image (``float64``) with axes ``x``/``y`` in nm and the generator
        parameters in ``metadata.Sample.causalspy_truth_parameters``.
    truth : GroundTruth
        One row per site with the base columns (sublattice 0 = A, 1 = B,
        2 = O) plus ``dx``, ``dy`` (true B displacement in pixels, 0 for A
        and O), ``domain`` (domain id of B cells, -1 for A and O),
        ``cell_i``, ``cell_j`` (row and column index of the unit cell),
        ``exx`` and ``tilt`` (B cells: the rotation in degrees of the
        O-O lines of the cell's four O columns, the mean of the
        ``O(+x) - O(-x)`` and ``O(+y) - O(-y)`` directions against the
        lattice; NaN for A and O).

    Raises
    ------
    InvalidParameterError
        On a bad value of any parameter (unknown element, domain pattern or
        contrast, negative counts, fewer than 2 cells, ...).

    Notes
    -----
    For ABF the expected image is ``bright_level - sum(columns)`` with
    ``bright_level = 1.25 * max(sum(columns)) + background``, so it stays
    positive and Poisson noise still applies. ``truth.columns["counts"]`` is
    then the integrated intensity a column removes from the bright level, and
    ``bright_level`` is stored in the parameters.

    Examples
    --------
    >>> s, truth = perovskite(cells=(4, 4), domains="none", noise=False)
    >>> truth.columns.groupby("sublattice").size().tolist()
    [16, 16]
    """
    ny, nx = check_pair("cells", cells, minimum=2)
    cell_px = check_number("cell_px", cell_px, minimum=4.0)
    a_nm = check_number("a_nm", a_nm, minimum=0.0, strict_min=True)
    counts = check_number("counts", counts, minimum=0.0, strict_min=True)
    background = check_number("background", background, minimum=0.0)
    sigma = (
        0.15 * cell_px
        if sigma_px is None
        else check_number("sigma_px", sigma_px, minimum=0.0, strict_min=True)
    )
    displacement_pm = check_number("displacement_pm", displacement_pm, minimum=0.0)
    domains = check_choice("domains", "none" if domains is None else domains, DOMAINS)
    contrast = check_choice("contrast", contrast, CONTRASTS)
    a_site_disorder = check_number("a_site_disorder", a_site_disorder, minimum=0.0, maximum=1.0)
    wall_width = check_number("wall_width", wall_width, minimum=0.0)
    width_cells = (
        float(max(1, round(nx / 4)))
        if domain_width is None
        else check_number("domain_width", domain_width, minimum=0.0, strict_min=True)
    )
    if isinstance(species, str) or len(tuple(species)) != 3:
        raise InvalidParameterError(
            f"species must be a tuple of three element symbols (A, B, O), got {species!r}."
        )
    sp_a, sp_b, sp_o = species
    z_a = atomic_number(sp_a, "species[0] (A site)")
    z_b = atomic_number(sp_b, "species[1] (B site)")
    z_o = atomic_number(sp_o, "species[2] (anion)")
    if a_site_substituent is None:
        a_site_substituent = "Sr" if sp_a in ("Pb", "Ba") else "Ba"
    z_a2 = atomic_number(a_site_substituent, "a_site_substituent")
    oxygen = bool(oxygen) or contrast == "abf"
    exponent = CONTRAST_EXPONENT[contrast]
    rng = make_rng(seed)

    pixel_size_nm = a_nm / cell_px
    displacement_px = displacement_pm * 1e-3 / pixel_size_nm
    height = int(round(ny * cell_px))
    width = int(round(nx * cell_px))
    # Centre the pattern spanning [0, (n - 0.5) * cell_px] in [-0.5, size - 0.5].
    ox = (width - (nx - 0.5) * cell_px) / 2 - 0.5
    oy = (height - (ny - 0.5) * cell_px) / 2 - 0.5

    def level(z: int) -> float:
        return counts * (z / z_a) ** exponent

    ci, cj = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    ci = ci.ravel()
    cj = cj.ravel()
    n = ci.size

    # A sites, with composition disorder.
    a_species = np.full(n, sp_a, dtype=object)
    a_counts = np.full(n, level(z_a))
    n_sub = int(round(a_site_disorder * n))
    if n_sub:
        sub = rng.choice(n, size=n_sub, replace=False)
        a_species[sub] = a_site_substituent
        a_counts[sub] = level(z_a2)

    # B sites, displaced.
    ux, uy, dom = _polarization(domains, cj + 0.5, ci + 0.5, nx, ny, width_cells, wall_width)
    dx = displacement_px * ux
    dy = displacement_px * uy

    parts = [
        {
            "x": ox + cj * cell_px,
            "y": oy + ci * cell_px,
            "sublattice": 0,
            "species": a_species,
            "counts": a_counts,
            "dx": 0.0,
            "dy": 0.0,
            "domain": -1,
            "cell_i": ci,
            "cell_j": cj,
        },
        {
            "x": ox + (cj + 0.5) * cell_px + dx,
            "y": oy + (ci + 0.5) * cell_px + dy,
            "sublattice": 1,
            "species": sp_b,
            "counts": level(z_b),
            "dx": dx,
            "dy": dy,
            "domain": dom,
            "cell_i": ci,
            "cell_j": cj,
        },
    ]
    # octahedral rotation: checkerboard of phi over the cells (optionally flipped on the
    # right half), O columns moved perpendicular to the B-B line they sit on
    tilt_deg = check_number("tilt_deg", tilt_deg, minimum=0.0, maximum=29.999)

    def tan_phi(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        sign = np.where((i + j) % 2 == 0, 1.0, -1.0)
        if tilt_boundary:
            sign = np.where(j >= nx // 2, -sign, sign)
        return np.tan(np.radians(tilt_deg)) * sign

    # O at (j + 0.5, i): between B(i - 1, j) above and B(i, j) below, moves along x
    o_v_dx = cell_px / 4 * (tan_phi(ci, cj) - tan_phi(ci - 1, cj))
    # O at (j, i + 0.5): between B(i, j - 1) left and B(i, j) right, moves along y
    o_h_dy = cell_px / 4 * (tan_phi(ci, cj - 1) - tan_phi(ci, cj))
    # the same for the O columns of the next row / column (the cell's other two)
    o_v_dx_next = cell_px / 4 * (tan_phi(ci + 1, cj) - tan_phi(ci, cj))
    o_h_dy_next = cell_px / 4 * (tan_phi(ci, cj) - tan_phi(ci, cj + 1))
    rot_x = np.arctan2(o_h_dy_next - o_h_dy, cell_px)  # O(+x) - O(-x) against +x
    rot_y = np.arctan2(-(o_v_dx_next - o_v_dx), cell_px)  # O(+y) - O(-y) against +y
    parts[0]["tilt"] = np.nan
    parts[1]["tilt"] = np.degrees(0.5 * (rot_x + rot_y))
    if oxygen:
        for fx, fy, ddx, ddy in ((0.5, 0.0, o_v_dx, 0.0), (0.0, 0.5, 0.0, o_h_dy)):
            parts.append(
                {
                    "x": ox + (cj + fx) * cell_px + ddx,
                    "y": oy + (ci + fy) * cell_px + ddy,
                    "sublattice": 2,
                    "species": sp_o,
                    "counts": level(z_o),
                    "dx": 0.0,
                    "dy": 0.0,
                    "domain": -1,
                    "cell_i": ci,
                    "cell_j": cj,
                    "tilt": np.nan,
                }
            )
    keys = list(parts[0])
    data = {
        k: np.concatenate([np.broadcast_to(np.asarray(p[k]), (n,)) for p in parts]) for k in keys
    }
    # a known strain gradient: exx grows linearly along x (zero at the centre)
    g = check_number("strain_gradient", strain_gradient, minimum=-0.5, maximum=0.5)
    xc = (width - 1) / 2
    x_undeformed = data["x"].astype(float)
    data["exx"] = g * (x_undeformed - xc) / width
    if g:
        data["x"] = x_undeformed + g * (x_undeformed - xc) ** 2 / (2 * width)
    total = data["x"].size
    data["present"] = np.ones(total, dtype=bool)
    data["sigma"] = np.full(total, sigma)
    data["edge"] = edge_mask(data["x"], data["y"], sigma, (height, width))
    table = make_table(data, ["dx", "dy", "domain", "cell_i", "cell_j", "exx", "tilt"])
    table = table.astype({"domain": np.int64, "cell_i": np.int64, "cell_j": np.int64})

    shape = (height, width)
    params = {
        "generator": "perovskite",
        "cells": [ny, nx],
        "cell_px": cell_px,
        "a_nm": a_nm,
        "counts": counts,
        "background": background,
        "sigma_px": sigma,
        "displacement_pm": displacement_pm,
        "displacement_px": displacement_px,
        "domains": domains,
        "domain_width_cells": width_cells,
        "wall_width_cells": wall_width,
        "strain_gradient": g,
        "tilt_deg": tilt_deg,
        "tilt_boundary": bool(tilt_boundary),
        "tilt_convention": "deg, rotation of the O square from +x towards +y (clockwise on "
        "screen); checkerboard (-1)**(cell_i + cell_j), flipped for cell_j >= cells[1] // 2 "
        "with tilt_boundary",
        "a_site_disorder": a_site_disorder,
        "a_site_substituent": a_site_substituent,
        "n_a_substituted": n_sub,
        "oxygen": oxygen,
        "contrast": contrast,
        "contrast_exponent": exponent,
        "species": [sp_a, sp_b, sp_o],
        "counts_per_species": {
            s: level(atomic_number(s))
            for s in dict.fromkeys([sp_a, a_site_substituent, sp_b, sp_o])
        },
        "origin_px": [ox, oy],
        "seed": seed_param(seed),
        "noise": bool(noise),
    }
    if contrast == "haadf":
        expected = render_columns(shape, table["x"], table["y"], table["counts"], sigma, background)
    else:
        dips = render_columns(shape, table["x"], table["y"], table["counts"], sigma)
        bright = 1.25 * float(dips.max()) + background
        expected = bright - dips
        params["bright_level"] = bright
    image = apply_noise(expected, rng, noise)
    title = (
        f"Synthetic {sp_a}{sp_b}{sp_o}3 [001] {contrast.upper()} "
        f"({domains} domains, {displacement_pm:g} pm B-site displacement"
        f"{f', {a_site_disorder:.0%} {a_site_substituent} on A' if n_sub else ''})"
    )
    return finish(image, table, params, pixel_size_nm=pixel_size_nm, title=title)
