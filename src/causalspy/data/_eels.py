"""Synthetic EELS spectrum image on the cells of a perovskite image, with a causal model.

The structural image is :func:`causalspy.data.render_perovskite` of a sample
of a small structural causal model in which the Ti L2,3 edge shift (a valence
proxy) either *drives* the cell volume and the B-site displacement
(``direction="electronic_to_structure"``) or *follows* them
(``"structure_to_electronic"``). The spectrum image is acquired "later", on a
coarser scan with its own rotation and a drift offset, together with a
simultaneous ADF image; every spectrum is that of the cell (Voronoi region of
its B column) under the probe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from causalspy.data._common import (
    SeedLike,
    check_choice,
    check_number,
    check_pair,
    make_rng,
    seed_param,
)
from causalspy.data._render import render_columns
from causalspy.data.scm import SCMGroundTruth, SCMSample, _check_noise, _Node, _simulate
from causalspy.exceptions import InvalidParameterError

__all__ = ["DIRECTIONS", "EELSTruth", "SpectrumImageSample", "eels_spectrum_image",
           "valence_model"]

#: The two causal variants of :func:`eels_spectrum_image`.
DIRECTIONS = ("electronic_to_structure", "structure_to_electronic")

#: Ti L3 and L2 onsets (eV), as in the exspy edge database.
TI_L3, TI_L2 = 456.0, 462.0
V0 = 0.1521  # nm^2: (0.39 nm)^2, projected cell area of the reference
E_P0 = 28.0  # eV: bulk plasmon energy of the reference cell


def valence_model(direction: str = "electronic_to_structure", n: int = 400,
                  seed: SeedLike = 0, noise: str = "uniform") -> SCMSample:
    """Per-cell causal model linking the Ti valence (edge shift) to the structure.

    ============== ====== ===================================================================
    column         unit   equation (``e_*``: independent noise)
    ============== ====== ===================================================================
    edge_shift     eV     electronic_to_structure: ``e_S`` (root, sd 0.17);
                          structure_to_electronic: ``-60 (volume - V0) + 0.03 (p_mag - 20)
                          + e_S``
    volume         nm^2   electronic_to_structure: ``V0 - 0.012 edge_shift + e_V``;
                          structure_to_electronic: ``V0 + e_V`` (root)
    p_mag          pm     electronic_to_structure: ``20 + 18 edge_shift + e_P``;
                          structure_to_electronic: ``20 + e_P`` (root)
    l3_l2          ""     ``0.80 - 0.25 edge_shift + e_R`` (white-line ratio follows the
                          valence)
    plasmon        eV     ``E_P0 - 0.5 E_P0 (volume - V0) / V0 + e_E`` (free-electron
                          plasmon: E_p ~ sqrt(n) ~ V^-1/2)
    intensity_A    counts ``1e4 + e_A`` (A-site composition disorder, independent)
    ============== ====== ===================================================================

    ``V0 = 0.1521 nm^2`` ((0.39 nm)^2), ``E_P0 = 28 eV``. A positive
    ``edge_shift`` is an oxidized (Ti4+-like) cell: in the first variant
    reduction (negative shift) expands the cell and lowers the polar
    displacement; in the second the strain state sets the valence. Every
    edge explains about half the variance of its effect.

    Parameters
    ----------
    direction : {"electronic_to_structure", "structure_to_electronic"}
    n : int
        Number of cells.
    seed : int, numpy.random.Generator or None
    noise : {"uniform", "laplace", "exponential", "gaussian"}
        Distribution of the noise terms (non-Gaussian for LiNGAM).

    Returns
    -------
    SCMSample
    """
    direction = check_choice("direction", direction, DIRECTIONS)
    noise = _check_noise(noise)
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise InvalidParameterError(f"n must be an integer >= 2, got {n!r}.")
    rng = make_rng(seed)
    if direction == "electronic_to_structure":
        nodes = [
            _Node("intensity_A", 1e4, 800.0, "laplace", "counts"),
            _Node("edge_shift", 0.0, 0.17, noise, "eV"),
            _Node("volume", V0, 0.002, noise, "nm^2"),
            _Node("p_mag", 20.0, 3.0, noise, "pm"),
            _Node("l3_l2", 0.80, 0.04, noise, ""),
            _Node("plasmon", E_P0 + 0.5 * E_P0, 0.25, noise, "eV"),
        ]
        weights = {("edge_shift", "volume"): -0.012, ("edge_shift", "p_mag"): 18.0,
                   ("edge_shift", "l3_l2"): -0.25, ("volume", "plasmon"): -0.5 * E_P0 / V0}
    else:
        nodes = [
            _Node("intensity_A", 1e4, 800.0, "laplace", "counts"),
            _Node("volume", V0, 0.0028, noise, "nm^2"),
            _Node("p_mag", 20.0, 4.0, noise, "pm"),
            _Node("edge_shift", 60.0 * V0 - 0.03 * 20.0, 0.12, noise, "eV"),
            _Node("l3_l2", 0.80, 0.04, noise, ""),
            _Node("plasmon", E_P0 + 0.5 * E_P0, 0.25, noise, "eV"),
        ]
        weights = {("volume", "edge_shift"): -60.0, ("p_mag", "edge_shift"): 0.03,
                   ("edge_shift", "l3_l2"): -0.25, ("volume", "plasmon"): -0.5 * E_P0 / V0}
    return _simulate(
        int(n), rng, nodes, weights,
        columns=["intensity_A", "edge_shift", "volume", "p_mag", "l3_l2", "plasmon"],
        description=(
            "Ti valence and structure per cell: "
            + ("edge_shift (valence) -> volume and p_mag" if direction == DIRECTIONS[0]
               else "volume and p_mag -> edge_shift (valence)")
            + "; edge_shift -> l3_l2; volume -> plasmon; intensity_A independent. "
            f"{noise} noise."),
        params={"model": "valence_model", "direction": direction, "n": int(n),
                "seed": seed_param(seed), "noise": noise},
    )


@dataclass
class EELSTruth:
    """Ground truth of :func:`eels_spectrum_image`.

    Attributes
    ----------
    cells : pandas.DataFrame
        One row per unit cell (B column) of the structural image, as
        :class:`~causalspy.data.SCMGroundTruth` ``cells`` (true ``x, y`` in
        HAADF px, ``unit``, ``row``, geometry, and the sample's columns, NaN
        on filler cells), plus the spectral parameters every cell was
        rendered with: ``edge_shift_true`` (eV), ``l3_l2_true``,
        ``plasmon_true`` (plasmon energy of the loss function, eV) and
        ``plasmon_peak_true`` (the energy of its maximum, what a peak
        position measures).
    sample : SCMSample
        The causal model sample (true edges and weights).
    structure : SCMGroundTruth
        Truth of the structural (HAADF) image.
    transform : ndarray
        ``(2, 3)`` affine map from spectrum-image pixels ``(u, v, 1)`` (u =
        scan column, v = scan row) to HAADF pixels ``(x, y)``.
    cell_index : ndarray
        ``(scan_y, scan_x)`` row of ``cells`` whose spectrum each scan pixel
        carries.
    maps : dict
        True per-pixel maps (``edge_shift``, ``l3_l2``, ``plasmon``,
        ``plasmon_peak``, ``background_a``, ``background_r``).
    params : dict
        Every generator parameter with defaults resolved.
    """

    cells: pd.DataFrame
    sample: SCMSample
    structure: SCMGroundTruth
    transform: np.ndarray
    cell_index: np.ndarray
    maps: dict = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpectrumImageSample:
    """What :func:`eels_spectrum_image` returns: the signals and their truth.

    Attributes
    ----------
    haadf : causalspy.signals.AtomicResolution
        The structural image (x, y in nm).
    core_loss : exspy.signals.EELSSpectrum
        Ti L2,3 core-loss spectrum image, ``(scan_y, scan_x | energy)``.
    low_loss : exspy.signals.EELSSpectrum
        Low-loss spectrum image (zero-loss peak and plasmon) on the same scan.
    adf : hyperspy.signals.Signal2D
        The ADF image acquired simultaneously with the spectra (same scan).
    truth : EELSTruth
    """

    haadf: Any
    core_loss: Any
    low_loss: Any
    adf: Any
    truth: EELSTruth

    def __iter__(self):
        """Unpack as ``haadf, core_loss, low_loss, adf, truth``."""
        return iter((self.haadf, self.core_loss, self.low_loss, self.adf, self.truth))


def _step(e: np.ndarray, onset: np.ndarray, width: float) -> np.ndarray:
    """A smooth edge step from 0 to 1 at ``onset``."""
    return 0.5 + np.arctan((e - onset) / width) / np.pi


def _gauss(e: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((e - centre) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _loss_function(e: np.ndarray, ep: np.ndarray, gamma: float) -> np.ndarray:
    """Drude energy-loss function ``Im(-1/eps)`` (unnormalized), zero below 0."""
    e = np.maximum(e, 0.0)
    return e * gamma * ep**2 / ((e**2 - ep**2) ** 2 + (e * gamma) ** 2)


def _plasmon_peak(ep: np.ndarray, gamma: float) -> np.ndarray:
    """Energy of the maximum of the Drude loss function (solved on a fine grid)."""
    grid = ep[:, None] + np.linspace(-3.0, 1.0, 4001)[None, :]
    k = np.argmax(_loss_function(grid, ep[:, None], gamma), axis=1)
    return grid[np.arange(len(ep)), k]


def _spectrum_axes(s, scale_nm: float, energy: tuple[float, float], title: str,
                   signal_type: str):
    """Calibrate a (scan_y, scan_x | energy) signal and give it an EELS type when possible."""
    ax_x, ax_y = s.axes_manager.navigation_axes
    for ax, name in ((ax_x, "x"), (ax_y, "y")):
        ax.name, ax.scale, ax.offset, ax.units = name, scale_nm, 0.0, "nm"
    e_ax = s.axes_manager.signal_axes[0]
    e_ax.name, e_ax.offset, e_ax.scale, e_ax.units = "Energy loss", energy[0], energy[1], "eV"
    s.metadata.General.title = title
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
    s.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", 25.0)
    s.metadata.set_item("Acquisition_instrument.TEM.Detector.EELS.collection_angle", 50.0)
    s.metadata.set_item("Signal.quantity", "Counts")
    try:  # exspy's EELSSpectrum when exspy is installed; a plain Signal1D otherwise
        s.set_signal_type(signal_type)
    except Exception:  # pragma: no cover - exspy missing
        pass
    return s


def eels_spectrum_image(
    direction: str = "electronic_to_structure",
    cells: tuple[int, int] = (40, 40),
    seed: SeedLike = 0,
    *,
    cell_px: float = 12.0,
    si_pixel: float = 2.0,
    rotation_deg: float = 7.0,
    drift_px: tuple[float, float] = (5.3, -3.7),
    coverage: float = 0.85,
    dispersion: float = 0.25,
    core_range: tuple[float, float] = (420.0, 485.0),
    low_range: tuple[float, float] = (-5.0, 50.0),
    low_dispersion: float = 0.25,
    dose: float = 1.0,
    adf_counts: float = 2e3,
    noise: str = "uniform",
    poisson: bool = True,
    lazy: bool = False,
) -> SpectrumImageSample:
    """A perovskite HAADF image and an EELS spectrum image of the same cells.

    The per-cell descriptors follow :func:`valence_model` (in the chosen
    ``direction``); the structural ones (cell area, B-site displacement,
    A-column intensity) are rendered into the HAADF image by
    :func:`~causalspy.data.render_perovskite`, the electronic ones into the
    spectra:

    - core loss (``core_range``, ``dispersion`` eV/channel): a power-law
      background ``A E^-r`` (``A`` and ``r`` vary smoothly over the field, as
      with a thickness gradient) plus the Ti L2,3 edge, arctan steps of
      heights 2:1 at ``456 + edge_shift`` and ``462 + edge_shift`` eV and
      Gaussian white lines 1.5 eV above them whose areas have the ratio
      ``l3_l2``;
    - low loss (``low_range``): a zero-loss peak and a Drude plasmon of
      energy ``plasmon`` (width 5 eV, ``t/lambda = 0.3``);
    - the simultaneous ADF: the same columns rendered on the scan grid.

    The spectrum image scan has pixels ``si_pixel`` times larger than the
    HAADF's, is rotated by ``rotation_deg`` and offset by ``drift_px`` (HAADF
    px) from the centre of the HAADF field of view, and covers ``coverage``
    of it. Every scan pixel carries the spectrum of the cell whose B column
    is nearest (its Voronoi region); filler cells (see
    :func:`~causalspy.data.render_perovskite`) take the sample means.
    Counts are Poisson (``poisson=True``); ``dose`` scales all spectral
    counts (1: about 3000 background and 600 white-line counts per channel
    near the edge).

    Parameters
    ----------
    direction : {"electronic_to_structure", "structure_to_electronic"}
    cells : tuple of int
        Unit cells (rows, columns) of the structural image.
    seed : int, numpy.random.Generator or None
    cell_px : float
        Cell size in HAADF pixels.
    si_pixel : float
        Spectrum-image pixel size / HAADF pixel size (>= 0.5).
    rotation_deg : float
        Scan rotation of the spectrum image relative to the HAADF (degrees).
    drift_px : tuple of float
        Offset (x, y) of the spectrum-image centre from the HAADF centre (px).
    coverage : float
        Fraction (0.2-1) of the HAADF field the rotated scan spans.
    dispersion, low_dispersion : float
        eV per channel of the core- and low-loss spectra.
    core_range, low_range : tuple of float
        Energy ranges (eV).
    dose : float
        Scales the spectral counts (> 0).
    adf_counts : float
        Counts of an A column in the simultaneous ADF image.
    noise : str
        Noise distribution of the causal model (see :func:`valence_model`).
    poisson : bool
        Draw Poisson counts (False: expected values).
    lazy : bool
        Return the spectrum images as lazy (Dask) signals.

    Returns
    -------
    SpectrumImageSample
        ``haadf, core_loss, low_loss, adf, truth`` (unpackable in this order).

    Examples
    --------
    >>> haadf, core, low, adf, truth = eels_spectrum_image(cells=(8, 8), poisson=False)
    >>> core.axes_manager.signal_axes[0].units
    'eV'
    """
    from hyperspy.signals import Signal1D, Signal2D

    from causalspy.data.scm import render_perovskite

    direction = check_choice("direction", direction, DIRECTIONS)
    ny, nx = check_pair("cells", cells, minimum=4)
    cell_px = check_number("cell_px", cell_px, minimum=6.0)
    si_pixel = check_number("si_pixel", si_pixel, minimum=0.5, maximum=8.0)
    rot = math.radians(check_number("rotation_deg", rotation_deg, minimum=-180, maximum=180))
    coverage = check_number("coverage", coverage, minimum=0.2, maximum=1.0)
    dose = check_number("dose", dose, minimum=0.0, strict_min=True)
    adf_counts = check_number("adf_counts", adf_counts, minimum=0.0, strict_min=True)
    dispersion = check_number("dispersion", dispersion, minimum=0.01, maximum=5.0)
    low_dispersion = check_number("low_dispersion", low_dispersion, minimum=0.01, maximum=5.0)
    try:
        drift = np.array([float(v) for v in drift_px])
        assert drift.shape == (2,) and np.all(np.isfinite(drift))
    except (TypeError, ValueError, AssertionError):
        raise InvalidParameterError(f"drift_px must be a pair (dx, dy) of numbers, got "
                                    f"{drift_px!r}.") from None
    lo_c, hi_c = (float(v) for v in core_range)
    if not (lo_c < TI_L3 - 15 and hi_c > TI_L2 + 10):
        raise InvalidParameterError(
            f"core_range must span the Ti L2,3 edge with room for the background fit: "
            f"start below {TI_L3 - 15:g} eV and end above {TI_L2 + 10:g} eV; got {core_range!r}.")
    lo_l, hi_l = (float(v) for v in low_range)
    if not (lo_l < -1 and hi_l > E_P0 + 12):
        raise InvalidParameterError(
            f"low_range must include the zero-loss peak and the plasmon: start below -1 eV and "
            f"end above {E_P0 + 12:g} eV; got {low_range!r}.")
    rng = make_rng(seed)
    n_units = ((ny + 1) // 2) * ((nx + 1) // 2)
    sample = valence_model(direction, n=max(n_units, 2), seed=rng, noise=noise)
    haadf, struct = render_perovskite(sample, cells=(ny, nx), seed=rng, cell_px=cell_px,
                                      noise=poisson)
    h, w = haadf.data.shape
    px_nm = float(haadf.axes_manager.signal_axes[0].scale)

    # ---- scan geometry: SI pixel (u, v) -> HAADF pixel (x, y)
    c, s_ = math.cos(rot), math.sin(rot)
    lin = si_pixel * np.array([[c, -s_], [s_, c]])
    n_scan = int(coverage * (min(h, w) - 2 * np.abs(drift).max()) / (si_pixel * (abs(c) + abs(s_))))
    if n_scan < 8:
        raise InvalidParameterError(
            f"The spectrum image would have only {n_scan}x{n_scan} pixels: use more cells, a "
            "smaller si_pixel or drift, or a larger coverage.")
    centre_ref = np.array([(w - 1) / 2, (h - 1) / 2]) + drift
    centre_si = np.array([(n_scan - 1) / 2, (n_scan - 1) / 2])
    transform = np.column_stack([lin, centre_ref - lin @ centre_si])
    vv, uu = np.mgrid[0:n_scan, 0:n_scan].astype(float)
    xy = np.stack([uu.ravel(), vv.ravel()], 1) @ lin.T + transform[:, 2]

    # ---- which cell each scan pixel sees (Voronoi of the B columns)
    from scipy.spatial import cKDTree

    tab = struct.cells
    _, cell_of = cKDTree(tab[["x", "y"]].to_numpy()).query(xy)
    unit = tab["unit"].to_numpy(bool)
    means = sample.data.iloc[:n_units].mean()
    par = {}
    for name in ("edge_shift", "l3_l2", "plasmon"):
        v = tab[name].to_numpy(float).copy()
        v[~unit] = means[name]
        par[name] = v
    gamma = 5.0
    par["plasmon_peak"] = _plasmon_peak(par["plasmon"], gamma)
    cells_out = tab.copy()
    for name in ("edge_shift", "l3_l2", "plasmon", "plasmon_peak"):
        cells_out[f"{name}_true"] = par[name]

    # ---- smooth thickness-like variation of the background
    fx = (xy[:, 0] / max(w - 1, 1)) - 0.5
    fy = (xy[:, 1] / max(h - 1, 1)) - 0.5
    bg_a = 1.0 + 0.15 * fx - 0.1 * fy
    bg_r = 3.0 + 0.15 * fy

    # ---- core loss, in counts per channel (vectorized over pixels x channels)
    e_core = np.arange(lo_c, hi_c, dispersion)
    e = e_core[None, :]
    shift = par["edge_shift"][cell_of][:, None]
    ratio = par["l3_l2"][cell_of][:, None]
    bg = 1.5e4 * bg_a[:, None] * (e / 430.0) ** (-bg_r[:, None])
    jump = 2.0e3 * (e / TI_L3) ** -1.5 * (2 / 3 * _step(e, TI_L3 + shift, 0.5)
                                         + 1 / 3 * _step(e, TI_L2 + shift, 0.5))
    white = 8.0e3 * (ratio / (1 + ratio) * _gauss(e, TI_L3 + 1.5 + shift, 0.5)
                     + 1 / (1 + ratio) * _gauss(e, TI_L2 + 1.5 + shift, 0.7))
    core = (bg + jump + white) * (dispersion * dose)
    del bg, jump, white
    # ---- low loss
    e_low = np.arange(lo_l, hi_l, low_dispersion)
    el = e_low[None, :]
    ep = par["plasmon"][cell_of][:, None]
    zlp = 2.0e5 * _gauss(el, np.zeros((1, 1)), 0.35)
    fine = np.linspace(0.01, 150, 15000)
    norm = np.trapezoid(_loss_function(fine[None, :], par["plasmon"][:, None], gamma), fine, axis=1)
    plas = 0.3 * 2.0e5 * _loss_function(el, ep, gamma) / norm[cell_of][:, None]
    low = (zlp + plas) * (low_dispersion * dose)
    del zlp, plas
    if poisson:
        core = rng.poisson(core).astype(np.float32)
        low = rng.poisson(low).astype(np.float32)
    else:
        core, low = core.astype(np.float32), low.astype(np.float32)

    # ---- simultaneous ADF on the scan grid: the same columns in scan coordinates
    cols = struct.columns
    inv = np.linalg.inv(lin)
    uv = (cols[["x", "y"]].to_numpy() - transform[:, 2]) @ inv.T
    adf_counts_col = cols["counts"].to_numpy() / cols["counts"].max() * adf_counts
    adf = render_columns((n_scan, n_scan), uv[:, 0], uv[:, 1], adf_counts_col,
                         cols["sigma"].to_numpy() / si_pixel, background=0.02 * adf_counts)
    if poisson:
        adf = rng.poisson(adf).astype(np.float64)

    scale_nm = px_nm * si_pixel
    core_s = _spectrum_axes(Signal1D(core.reshape(n_scan, n_scan, -1)), scale_nm,
                            (float(e_core[0]), dispersion), "Synthetic Ti L2,3 spectrum image",
                            "EELS")
    low_s = _spectrum_axes(Signal1D(low.reshape(n_scan, n_scan, -1)), scale_nm,
                           (float(e_low[0]), low_dispersion), "Synthetic low-loss spectrum image",
                           "EELS")
    adf_s = Signal2D(adf)
    for ax, name in zip(adf_s.axes_manager.signal_axes, ("x", "y"), strict=True):
        ax.name, ax.scale, ax.offset, ax.units = name, scale_nm, 0.0, "nm"
    adf_s.metadata.General.title = "Simultaneous ADF"
    if lazy:
        core_s = core_s.as_lazy()
        low_s = low_s.as_lazy()

    params = {
        "generator": "eels_spectrum_image", "direction": direction, "cells": [ny, nx],
        "seed": seed_param(seed), "cell_px": cell_px, "si_pixel": si_pixel,
        "rotation_deg": float(rotation_deg), "drift_px": drift.tolist(), "coverage": coverage,
        "scan_shape": [n_scan, n_scan], "dispersion": dispersion,
        "core_range": [lo_c, hi_c], "low_range": [lo_l, hi_l],
        "low_dispersion": low_dispersion, "dose": dose, "adf_counts": adf_counts,
        "noise": noise, "poisson": bool(poisson), "haadf_pixel_nm": px_nm,
        "si_pixel_nm": scale_nm, "plasmon_width_eV": gamma, "edges_eV": [TI_L3, TI_L2],
    }
    for sig in (core_s, low_s, adf_s):
        sig.metadata.set_item("Sample.causalspy_truth_parameters", params)
    shape = (n_scan, n_scan)
    truth = EELSTruth(
        cells=cells_out, sample=struct.sample, structure=struct, transform=transform,
        cell_index=cell_of.reshape(shape),
        maps={"edge_shift": par["edge_shift"][cell_of].reshape(shape),
              "l3_l2": par["l3_l2"][cell_of].reshape(shape),
              "plasmon": par["plasmon"][cell_of].reshape(shape),
              "plasmon_peak": par["plasmon_peak"][cell_of].reshape(shape),
              "background_a": (1.5e4 * bg_a * dispersion * dose).reshape(shape),
              "background_r": bg_r.reshape(shape)},
        params=params)
    return SpectrumImageSample(haadf, core_s, low_s, adf_s, truth)
