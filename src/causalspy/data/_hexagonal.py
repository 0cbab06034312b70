"""Transition-metal dichalcogenide monolayer (MoS2-like) viewed along [001]: 2H, 1T or both."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial import cKDTree

from causalspy.data._common import (
    SeedLike,
    apply_noise,
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

__all__ = ["hexagonal"]

#: No two defects closer than this many lattice parameters (excludes
#: nearest-neighbour sites on both sublattices).
DEFECT_EXCLUSION = 1.05
_EXPONENT = 1.7
#: Named phase layouts (``phase=`` also takes a callable or an image-shaped array).
PHASES = ("2H", "1T", "mixed")


def _phase_map(
    phase: str | Callable[..., Any] | np.ndarray | None,
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
) -> tuple[np.ndarray, str | None, float | None]:
    """True where the cell whose centre is at ``(x, y)`` is 1T.

    Returns the mask, the name stored in the parameters and, for
    ``"mixed"``, the x position (px) of the straight 2H/1T boundary.
    """
    height, width = shape
    if phase is None:
        return np.zeros(x.size, dtype=bool), None, None
    if isinstance(phase, str):
        key = {p.lower(): p for p in PHASES}.get(phase.lower())
        if key is None:
            valid = ", ".join(repr(p) for p in PHASES)
            raise InvalidParameterError(
                f"phase must be None, one of {valid}, a callable f(x, y) or an array of the "
                f"image shape, got {phase!r}."
            )
        if key == "2H":
            return np.zeros(x.size, dtype=bool), key, None
        if key == "1T":
            return np.ones(x.size, dtype=bool), key, None
        boundary = (width - 1) / 2.0
        return x > boundary, key, boundary
    if callable(phase):
        try:
            value = np.asarray(phase(x.copy(), y.copy()))
        except Exception as e:  # noqa: BLE001 - any failure of user code is a bad parameter
            raise InvalidParameterError(
                f"phase(x, y) raised {type(e).__name__}: {e}; it must take pixel coordinate "
                "arrays and return booleans (True = 1T) or '2H'/'1T' labels."
            ) from e
        value = np.broadcast_to(value, x.shape) if value.ndim == 0 else value
        name = "callable"
    else:
        arr = np.asarray(phase)
        if arr.shape != (height, width):
            raise InvalidParameterError(
                f"A phase map array must have the image shape {(height, width)} (rows, columns), "
                f"got {arr.shape}."
            )
        col = np.clip(np.rint(x), 0, width - 1).astype(np.int64)
        row = np.clip(np.rint(y), 0, height - 1).astype(np.int64)
        value = arr[row, col]
        name = "array"
    if value.shape != x.shape:
        raise InvalidParameterError(
            f"phase(x, y) must return one value per site ({x.size}), got shape {value.shape}."
        )
    if value.dtype.kind == "b":
        return value.astype(bool), name, None
    labels = np.char.upper(value.astype(str))
    bad = ~np.isin(labels, ("2H", "1T"))
    if bad.any():
        raise InvalidParameterError(
            "A phase map must hold booleans (True = 1T) or the labels '2H' and '1T', got "
            f"{value[bad][0]!r}."
        )
    return labels == "1T", name, None


def _independent_sites(
    xy: np.ndarray,
    candidate: np.ndarray,
    radius: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Random greedy independent set of candidate sites, in selection order.

    Equivalent to visiting the candidates in random order and keeping each
    one that has no kept site within ``radius`` (random sequential
    adsorption), computed in vectorized rounds: in every round each
    undecided site whose priority is lower than that of all its undecided
    neighbours is kept and its neighbours are discarded.

    Returns
    -------
    numpy.ndarray
        Indices of the kept sites, ordered by their random priority, so any
        prefix is itself a random sequential pick.
    """
    n = xy.shape[0]
    priority = np.empty(n, dtype=np.int64)
    priority[rng.permutation(n)] = np.arange(n)
    state = np.where(candidate, 0, -1).astype(np.int8)  # 0 undecided, 1 kept, -1 out
    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray")
    a = pairs[:, 0] if pairs.size else np.empty(0, dtype=np.int64)
    b = pairs[:, 1] if pairs.size else np.empty(0, dtype=np.int64)
    while np.any(state == 0):
        undecided = state == 0
        live = undecided[a] & undecided[b]
        a, b = a[live], b[live]
        blocked = np.zeros(n, dtype=bool)
        blocked[np.where(priority[a] > priority[b], a, b)] = True
        winners = undecided & ~blocked
        state[winners] = 1
        losers = np.zeros(n, dtype=bool)
        losers[b[winners[a]]] = True
        losers[a[winners[b]]] = True
        state[losers & (state == 0)] = -1
    kept = np.flatnonzero(state == 1)
    return kept[np.argsort(priority[kept])]


def hexagonal(
    cells: tuple[int, int] = (20, 20),
    a_nm: float = 0.316,
    a_px: float = 20.0,
    counts: float = 1e4,
    background: float = 1.0,
    sigma_px: float | None = None,
    metal: str = "Mo",
    chalcogen: str = "S",
    dopant: tuple[str, str] = ("W", "Se"),
    dopant_fraction: float = 0.02,
    vacancy_fraction: float = 0.02,
    seed: SeedLike = 0,
    noise: bool = True,
    *,
    defect_exclusion: float = DEFECT_EXCLUSION,
    phase: str | Callable[..., Any] | np.ndarray | None = None,
) -> tuple[Signal2D, GroundTruth]:
    """Synthetic MX2 monolayer (MoS2-like) HAADF image with point defects, 2H or 1T.

    A triangular Bravais lattice with vectors ``a1 = (a_px, 0)`` and
    ``a2 = (a_px / 2, a_px * sqrt(3) / 2)`` in pixels (``x``, ``y``), a metal
    column at ``(0, 0)`` of every cell. In a 2H cell (trigonal prismatic)
    the cell's two chalcogen atoms sit on top of each other, one column at
    ``(a1 + a2) / 3``; in a 1T cell (octahedral) the bottom chalcogen moves
    to ``2 (a1 + a2) / 3``, giving two single-atom columns, so each metal
    sees 3 chalcogen columns in 2H and 6 in 1T. Sites cover the whole
    rectangular image of ``round(cells[0] * a_px * sqrt(3) / 2)`` x
    ``round(cells[1] * a_px)`` pixels; only sites inside the image are kept.
    HAADF Z-contrast: metal column ``counts``, chalcogen column
    ``counts * n * (Z_X / Z_M) ** 1.7`` with ``n`` = 2 atoms (2H) or 1 (1T).

    Parameters
    ----------
    cells : tuple of int
        Image size in lattice rows (along y, ``a_px * sqrt(3) / 2`` each) and
        lattice parameters (along x), each >= 2.
    a_nm : float
        Lattice parameter in nm; the pixel size is ``a_nm / a_px``.
    a_px : float
        Lattice parameter in pixels (>= 4).
    counts : float
        Total expected counts of a ``metal`` column (> 0).
    background : float
        Constant expected counts per pixel (>= 0).
    sigma_px : float, optional
        Gaussian width of every column in pixels; default ``0.17 * a_px``.
    metal, chalcogen : str
        Element symbols of the host, e.g. ``"Mo"`` and ``"S"``.
    dopant : tuple of str
        Substitutional dopants ``(metal-site dopant, chalcogen-site dopant)``.
    dopant_fraction : float
        Fraction in [0, 1] of metal sites that become ``dopant[0]``, and of
        chalcogen sites in which one of the two atoms becomes ``dopant[1]``.
    vacancy_fraction : float
        Fraction in [0, 1] of chalcogen sites that lose both atoms, and of
        metal sites that are empty (``present`` False, ``counts`` 0).
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.
    noise : bool
        Draw Poisson counts. ``False`` returns the noise-free expected image.
    defect_exclusion : float
        No two defects (dopants or vacancies, either sublattice) are placed
        closer than ``defect_exclusion * a_px``; the default 1.05 keeps
        defects off neighbouring sites so each is cleanly resolvable. Defects
        are also kept off ``edge`` sites.
    phase : {None, "2H", "1T", "mixed"}, callable or array, optional
        Polytype of each cell. None (default) and ``"2H"``: all 2H;
        ``"1T"``: all 1T; ``"mixed"``: the cells whose centre
        ``(a1 + a2) / 3`` lies right of the vertical image centre line
        ``x = (width - 1) / 2`` are 1T, the others 2H (a straight boundary,
        stored as ``phase_boundary_x_px`` in the parameters). A callable
        ``f(x, y)`` gets the cell-centre pixel coordinates (arrays) and
        returns booleans (True = 1T) or ``"2H"``/``"1T"`` labels; an array
        of the image shape is read at the pixel nearest to each cell centre.

    Returns
    -------
    signal : causalspy.signals.AtomicResolution
        The image (``float64``) with axes ``x``/``y`` in nm and the generator
        parameters in ``metadata.Sample.causalspy_truth_parameters``.
    truth : GroundTruth
        One row per site (vacancies included) with the base columns
        (sublattice 0 = metal, 1 = chalcogen; ``species`` e.g. ``"Mo"``,
        ``"W"``, ``"S2"``, ``"SSe"``, in 1T cells ``"S"``, ``"Se"``, or
        ``"vacancy"``) plus ``site`` (``"metal"``/``"chalcogen"``), ``defect``
        (``"none"``, ``"dopant"``, ``"vacancy"``), ``n_atoms`` (atoms in the
        column), ``n1``, ``n2`` (lattice-vector indices of the cell),
        ``hollow`` (0 metal site, 1 chalcogen at ``(a1 + a2) / 3``, 2 at
        ``2 (a1 + a2) / 3``) and ``phase`` (``"2H"``/``"1T"``, the cell's).
        With the default ``phase=None`` the image and every other column are
        exactly those of a 2H-only call.

    Raises
    ------
    InvalidParameterError
        On a bad value of any parameter, or when the defects cannot be kept
        apart (fractions too high).

    Examples
    --------
    >>> s, truth = hexagonal(cells=(6, 6), vacancy_fraction=0.0, dopant_fraction=0.0)
    >>> sorted(truth.columns["site"].unique())
    ['chalcogen', 'metal']
    >>> s, truth = hexagonal(cells=(6, 6), phase="mixed", noise=False)
    >>> truth.columns.groupby("phase")["hollow"].max().to_dict()
    {'1T': 2, '2H': 1}
    """
    ny, nx = check_pair("cells", cells, minimum=2)
    a_nm = check_number("a_nm", a_nm, minimum=0.0, strict_min=True)
    a_px = check_number("a_px", a_px, minimum=4.0)
    counts = check_number("counts", counts, minimum=0.0, strict_min=True)
    background = check_number("background", background, minimum=0.0)
    sigma = (
        0.17 * a_px
        if sigma_px is None
        else check_number("sigma_px", sigma_px, minimum=0.0, strict_min=True)
    )
    dopant_fraction = check_number("dopant_fraction", dopant_fraction, minimum=0.0, maximum=1.0)
    vacancy_fraction = check_number("vacancy_fraction", vacancy_fraction, minimum=0.0, maximum=1.0)
    if dopant_fraction + vacancy_fraction > 1.0:
        raise InvalidParameterError(
            "dopant_fraction + vacancy_fraction must be <= 1, got "
            f"{dopant_fraction:g} + {vacancy_fraction:g}."
        )
    defect_exclusion = check_number("defect_exclusion", defect_exclusion, minimum=0.0)
    if isinstance(dopant, str) or len(tuple(dopant)) != 2:
        raise InvalidParameterError(
            "dopant must be a pair of element symbols (metal-site dopant, chalcogen-site "
            f"dopant), e.g. ('W', 'Se'), got {dopant!r}."
        )
    dop_m, dop_x = dopant
    z_m = atomic_number(metal, "metal")
    z_x = atomic_number(chalcogen, "chalcogen")
    z_dm = atomic_number(dop_m, "dopant[0] (metal site)")
    z_dx = atomic_number(dop_x, "dopant[1] (chalcogen site)")
    rng = make_rng(seed)

    pixel_size_nm = a_nm / a_px
    row = a_px * math.sqrt(3.0) / 2
    height = int(round(ny * row))
    width = int(round(nx * a_px))
    # Centre the rows (metal row 0 ... chalcogen row ny - 1) vertically and
    # put every column a_px / 4 from the left/right borders.
    ox = (width - nx * a_px) / 2 + a_px / 4 - 0.5
    oy = (height - (ny - 2.0 / 3.0) * row) / 2 - 0.5

    n2, n1 = np.meshgrid(
        np.arange(-2, ny + 3), np.arange(-(ny + 4) // 2 - 3, nx + 4), indexing="ij"
    )
    n1 = n1.ravel()
    n2 = n2.ravel()
    xm = ox + n1 * a_px + n2 * a_px / 2
    ym = oy + n2 * row
    # Phase of each cell, read at its centre (a1 + a2) / 3 (the 2H chalcogen column).
    cell_1t, phase_name, boundary = _phase_map(phase, xm + a_px / 2, ym + row / 3,
                                               (height, width))
    x = np.concatenate([xm, xm + a_px / 2, xm[cell_1t] + a_px])
    y = np.concatenate([ym, ym + row / 3, ym[cell_1t] + 2 * row / 3])
    k1t = int(cell_1t.sum())
    sub = np.concatenate([np.repeat(np.array([0, 1], dtype=np.int64), n1.size),
                          np.ones(k1t, dtype=np.int64)])
    hollow = np.concatenate([np.zeros(n1.size, np.int64), np.ones(n1.size, np.int64),
                             np.full(k1t, 2, np.int64)])
    is_1t = np.concatenate([cell_1t, cell_1t, np.ones(k1t, dtype=bool)])
    n1 = np.concatenate([n1, n1, n1[cell_1t]])
    n2 = np.concatenate([n2, n2, n2[cell_1t]])
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    x, y, sub, n1, n2 = x[inside], y[inside], sub[inside], n1[inside], n2[inside]
    hollow, is_1t = hollow[inside], is_1t[inside]
    edge = edge_mask(x, y, sigma, (height, width))
    is_metal = sub == 0
    n_metal = int(is_metal.sum())
    n_chalc = int((~is_metal).sum())

    # Defects: exact numbers per sublattice, spread so none are neighbours.
    quota = {
        ("metal", "dopant"): int(round(dopant_fraction * n_metal)),
        ("metal", "vacancy"): int(round(vacancy_fraction * n_metal)),
        ("chalcogen", "dopant"): int(round(dopant_fraction * n_chalc)),
        ("chalcogen", "vacancy"): int(round(vacancy_fraction * n_chalc)),
    }
    defect = np.full(x.size, "none", dtype=object)
    if any(quota.values()):
        order = _independent_sites(np.column_stack([x, y]), ~edge, defect_exclusion * a_px, rng)
        for site, on_site in (("metal", is_metal), ("chalcogen", ~is_metal)):
            chosen = order[on_site[order]]
            k_dop = quota[(site, "dopant")]
            k_vac = quota[(site, "vacancy")]
            if chosen.size < k_dop + k_vac:
                raise InvalidParameterError(
                    f"Cannot place {k_dop + k_vac} {site}-site defects with no two on "
                    f"neighbouring sites (at most {chosen.size} fit in this image); lower "
                    "dopant_fraction + vacancy_fraction or defect_exclusion."
                )
            defect[chosen[:k_dop]] = "dopant"
            defect[chosen[k_dop : k_dop + k_vac]] = "vacancy"

    is_dop = defect == "dopant"
    is_vac = defect == "vacancy"
    host_x = 2 * (z_x / z_m) ** _EXPONENT
    doped_x = ((z_x / z_m) ** _EXPONENT) + (z_dx / z_m) ** _EXPONENT
    single_x = (z_x / z_m) ** _EXPONENT  # 1T: one chalcogen atom per column
    single_dx = (z_dx / z_m) ** _EXPONENT
    x1t = ~is_metal & is_1t
    counts_col = np.where(is_metal, 1.0, host_x)
    counts_col = np.where(is_metal & is_dop, (z_dm / z_m) ** _EXPONENT, counts_col)
    counts_col = np.where(~is_metal & is_dop, doped_x, counts_col)
    counts_col = np.where(x1t, np.where(is_dop, single_dx, single_x), counts_col)
    counts_col = np.where(is_vac, 0.0, counts * counts_col)
    species = np.where(is_metal, metal, f"{chalcogen}2").astype(object)
    species[is_metal & is_dop] = dop_m
    species[~is_metal & is_dop] = f"{chalcogen}{dop_x}"
    species[x1t] = chalcogen
    species[x1t & is_dop] = dop_x
    species[is_vac] = "vacancy"
    n_atoms = np.where(is_metal, 1, np.where(x1t, 1, 2))
    n_atoms[is_vac] = 0

    table = make_table(
        {
            "x": x,
            "y": y,
            "sublattice": sub,
            "species": species,
            "counts": counts_col,
            "present": ~is_vac,
            "sigma": np.full(x.size, sigma),
            "edge": edge,
            "site": np.where(is_metal, "metal", "chalcogen").astype(object),
            "defect": defect,
            "n_atoms": n_atoms.astype(np.int64),
            "n1": n1.astype(np.int64),
            "n2": n2.astype(np.int64),
            "hollow": hollow,
            "phase": np.where(is_1t, "1T", "2H").astype(object),
        },
        ["site", "defect", "n_atoms", "n1", "n2", "hollow", "phase"],
    )
    expected = render_columns((height, width), x, y, counts_col, sigma, background)
    image = apply_noise(expected, rng, noise)
    params = {
        "generator": "hexagonal",
        "cells": [ny, nx],
        "a_nm": a_nm,
        "a_px": a_px,
        "counts": counts,
        "background": background,
        "sigma_px": sigma,
        "metal": metal,
        "chalcogen": chalcogen,
        "dopant": [dop_m, dop_x],
        "dopant_fraction": dopant_fraction,
        "vacancy_fraction": vacancy_fraction,
        "defect_exclusion": defect_exclusion,
        "n_defects": {f"{s}_{d}": k for (s, d), k in quota.items()},
        "counts_per_species": {
            metal: counts,
            dop_m: counts * (z_dm / z_m) ** _EXPONENT,
            f"{chalcogen}2": counts * host_x,
            f"{chalcogen}{dop_x}": counts * doped_x,
            **({chalcogen: counts * single_x, dop_x: counts * single_dx} if k1t else {}),
        },
        "phase": phase_name,
        "phase_boundary_x_px": boundary,
        "n_cells_1T": k1t,
        "origin_px": [ox, oy],
        "seed": seed_param(seed),
        "noise": bool(noise),
    }
    polytype = "2H" if not k1t else ("1T" if k1t == cell_1t.size else "2H/1T")
    title = (
        f"Synthetic {polytype}-{metal}{chalcogen}2 monolayer [001] HAADF "
        f"({dopant_fraction:.1%} {dop_m}/{dop_x} dopants, {vacancy_fraction:.1%} vacancies)"
    )
    return finish(image, table, params, pixel_size_nm=pixel_size_nm, title=title)
