"""Single-species square lattice, the benchmark image for position precision."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

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
from causalspy.data._render import render_columns
from causalspy.data._truth import GroundTruth
from causalspy.exceptions import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from hyperspy.signals import Signal2D

__all__ = ["square_lattice"]


def square_lattice(
    shape: tuple[int, int] = (540, 540),
    spacing: float = 18.0,
    sigma: float = 3.5,
    counts: float = 1e4,
    background: float = 0.0,
    margin: float | None = None,
    jitter: float = 0.0,
    seed: SeedLike = 0,
    noise: bool = True,
    pixel_size_nm: float = 0.02,
) -> tuple[Signal2D, GroundTruth]:
    """Synthetic image of one species on a square lattice.

    The benchmark image for column-position precision: every column has the
    same width and counts, so the Cramér–Rao bound ``sigma / sqrt(counts)``
    per axis (background-free) applies to all of them. The default settings
    give 30 x 30 = 900 columns.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(height, width)`` in pixels, each >= 8.
    spacing : float
        Lattice spacing in pixels.
    sigma : float
        Gaussian width (standard deviation) of every column in pixels.
    counts : float
        Total expected counts of every column (> 0).
    background : float
        Constant expected counts per pixel (>= 0).
    margin : float, optional
        Distance in pixels from the image border (the outer edge of the outer
        pixels, ``x = -0.5``) to the first row and column of the lattice.
        Default ``spacing / 2``, which centres the lattice in the image when
        the image size is a multiple of ``spacing``. The lattice fills the
        image up to the same margin on the far side.
    jitter : float
        Standard deviation in pixels of an independent random Gaussian
        displacement of every column along x and y, so positions are not on a
        grid. ``0`` puts every column exactly on the lattice.
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`; the same seed gives the
        same image and truth.
    noise : bool
        Draw Poisson counts. ``False`` returns the noise-free expected image.
    pixel_size_nm : float
        Pixel size in nm, written to the axes calibration.

    Returns
    -------
    signal : causalspy.signals.AtomicResolution
        The image (``float64``), signal type ``"atomic_resolution"``, axes
        ``x``/``y`` in nm, generator parameters in
        ``metadata.Sample.causalspy_truth_parameters``.
    truth : GroundTruth
        One row per column with the base columns (``sublattice`` 0, species
        ``"X"``) plus ``x_ideal``, ``y_ideal`` (lattice position before
        jitter) and ``cell_i``, ``cell_j`` (row and column index in the
        lattice).

    Raises
    ------
    InvalidParameterError
        On a bad value of any parameter.

    Examples
    --------
    >>> s, truth = square_lattice(shape=(180, 180), seed=1)
    >>> len(truth.present())
    100
    """
    height, width = check_pair("shape", shape, minimum=8)
    spacing = check_number("spacing", spacing, minimum=1.0)
    sigma = check_number("sigma", sigma, minimum=0.0, strict_min=True)
    counts = check_number("counts", counts, minimum=0.0, strict_min=True)
    background = check_number("background", background, minimum=0.0)
    margin = spacing / 2 if margin is None else check_number("margin", margin, minimum=0.0)
    jitter = check_number("jitter", jitter, minimum=0.0)
    pixel_size_nm = check_number("pixel_size_nm", pixel_size_nm, minimum=0.0, strict_min=True)
    if 2 * margin > min(height, width):
        raise InvalidParameterError(
            f"margin={margin:g} px leaves no room for columns in a {height}x{width} image; "
            f"use a margin below {min(height, width) / 2:g} px."
        )
    rng = make_rng(seed)

    n_x = math.floor((width - 2 * margin) / spacing + 1e-9) + 1
    n_y = math.floor((height - 2 * margin) / spacing + 1e-9) + 1
    cell_i, cell_j = np.meshgrid(np.arange(n_y), np.arange(n_x), indexing="ij")
    cell_i = cell_i.ravel()
    cell_j = cell_j.ravel()
    x_ideal = margin - 0.5 + cell_j * spacing
    y_ideal = margin - 0.5 + cell_i * spacing
    # Always drawn, so the noise realisation does not depend on whether
    # jitter is zero.
    shift = rng.standard_normal((2, cell_i.size)) * jitter
    x = x_ideal + shift[0]
    y = y_ideal + shift[1]

    n = x.size
    table = make_table(
        {
            "x": x,
            "y": y,
            "sublattice": np.zeros(n, dtype=np.int64),
            "species": np.full(n, "X", dtype=object),
            "counts": np.full(n, counts),
            "present": np.ones(n, dtype=bool),
            "sigma": np.full(n, sigma),
            "edge": edge_mask(x, y, sigma, (height, width)),
            "x_ideal": x_ideal,
            "y_ideal": y_ideal,
            "cell_i": cell_i,
            "cell_j": cell_j,
        },
        ["x_ideal", "y_ideal", "cell_i", "cell_j"],
    )
    expected = render_columns((height, width), x, y, counts, sigma, background)
    image = apply_noise(expected, rng, noise)
    params = {
        "generator": "square_lattice",
        "spacing": spacing,
        "sigma": sigma,
        "sigma_px": sigma,
        "counts": counts,
        "background": background,
        "margin": margin,
        "jitter": jitter,
        "seed": seed_param(seed),
        "noise": bool(noise),
        "crb_px_no_background": sigma / math.sqrt(counts),
    }
    title = (
        f"Synthetic square lattice ({n} columns, {counts:g} counts/column, "
        f"sigma {sigma:g} px{', Poisson noise' if noise else ', noise-free'})"
    )
    return finish(image, table, params, pixel_size_nm=pixel_size_nm, title=title)
