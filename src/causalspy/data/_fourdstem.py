"""Synthetic 4D-STEM scans with a known deflection field, descan and scan rotation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalspy.exceptions import InvalidParameterError

__all__ = ["FourDTruth", "fourd_stem"]


@dataclass
class FourDTruth:
    """Ground truth of :func:`fourd_stem`.

    Attributes
    ----------
    potential : ndarray
        ``(scan_y, scan_x)`` projected potential (arbitrary units, max 1).
    field_x, field_y : ndarray
        True deflection in the *scan* frame (detector px): ``strength * grad(potential)``.
    charge : ndarray
        ``-div(field)``, proportional to the projected charge density.
    descan_x, descan_y : ndarray
        Descan shift added in the detector frame (detector px).
    rotation : float
        Scan-to-detector rotation (rad). flip : bool, detector transposed.
    center : (float, float)
        Undeflected disk centre (x, y) on the detector.
    disk_radius : float
        Bright-field disk radius (detector px).
    counts : float
        Expected counts per pattern.
    positions : ndarray
        ``(n, 2)`` atom positions (x, y) in scan px.
    """

    potential: np.ndarray
    field_x: np.ndarray
    field_y: np.ndarray
    charge: np.ndarray
    descan_x: np.ndarray
    descan_y: np.ndarray
    rotation: float
    flip: bool
    center: tuple[float, float]
    disk_radius: float
    counts: float
    positions: np.ndarray


def _potential(scan_shape, spacing, width, seed):
    """Gaussian atoms on a slightly disordered square lattice and their gradient."""
    rng = np.random.default_rng(seed)
    ny, nx = scan_shape
    gx = np.arange(spacing / 2, nx + spacing, spacing)
    gy = np.arange(spacing / 2, ny + spacing, spacing)
    px, py = np.meshgrid(gx, gy)
    pos = np.stack([px.ravel(), py.ravel()], 1) + rng.normal(0, 0.05 * spacing, (px.size, 2))
    amp = rng.uniform(0.6, 1.0, len(pos))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    phi = np.zeros(scan_shape)
    dphx = np.zeros(scan_shape)
    dphy = np.zeros(scan_shape)
    for (x0, y0), a in zip(pos, amp, strict=True):   # a few hundred atoms: setup only
        g = a * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * width ** 2))
        phi += g
        dphx += -g * (xx - x0) / width ** 2
        dphy += -g * (yy - y0) / width ** 2
    lap = np.zeros(scan_shape)
    for (x0, y0), a in zip(pos, amp, strict=True):
        r2 = (xx - x0) ** 2 + (yy - y0) ** 2
        g = a * np.exp(-r2 / (2 * width ** 2))
        lap += g * (r2 / width ** 4 - 2 / width ** 2)
    return phi, dphx, dphy, lap, pos


def _render_block(ux, uy, det_shape, center, radius, counts, halo, potential, rng):
    """Expected patterns for a block of scan positions (float32), then Poisson noise."""
    ky = np.arange(det_shape[0], dtype=np.float32)[None, :, None]
    kx = np.arange(det_shape[1], dtype=np.float32)[None, None, :]
    cx = (center[0] + ux).astype(np.float32).ravel()[:, None, None]
    cy = (center[1] + uy).astype(np.float32).ravel()[:, None, None]
    r = np.sqrt((kx - cx) ** 2 + (ky - cy) ** 2)
    disk = np.clip(radius - r + 0.5, 0.0, 1.0)
    # diffuse high-angle scattering, stronger on atoms (what an ADF detector sees)
    ring = np.exp(-((r - 2.0 * radius) ** 2) / (2 * (0.4 * radius) ** 2))
    h = (halo * potential.ravel()[:, None, None]).astype(np.float32)
    pat = (disk / disk.sum(axis=(1, 2), keepdims=True) * (1 - h)
           + ring / ring.sum(axis=(1, 2), keepdims=True) * h)
    lam = pat * np.float32(counts)
    if rng is None:
        return lam.reshape(ux.shape + tuple(det_shape))
    return rng.poisson(lam).astype(np.float32).reshape(ux.shape + tuple(det_shape))


def fourd_stem(scan_shape: tuple[int, int] = (48, 48), detector_shape: tuple[int, int] = (48, 48),
               disk_radius: float = 8.0, max_shift: float = 1.0, spacing: float = 8.0,
               atom_width: float = 1.6, counts: float = 1e5, descan: float = 1.0,
               rotation_deg: float = 25.0, flip: bool = False, halo: float = 0.05,
               noise: bool = True, lazy: bool = False, chunks: int = 16,
               scan_scale_nm: float = 0.02, seed: int = 0):
    """A synthetic 4D-STEM scan whose disk shifts follow a known potential gradient.

    The scan crosses a lattice of Gaussian "atoms" of projected potential
    ``phi``. Each pattern is a uniform bright-field disk of radius
    ``disk_radius`` (soft-edged at the pixel scale) plus a weak diffuse ring
    (fraction ``halo``, stronger on atoms) that moves with it. The disk is
    deflected by ``strength * grad(phi)`` (scaled so the largest shift is
    ``max_shift`` detector px) rotated into the detector frame by
    ``rotation_deg`` (and transposed if ``flip``), plus a linear descan of
    up to ``descan`` px across the scan. Poisson noise at ``counts`` per
    pattern.

    Parameters
    ----------
    lazy : bool
        Return a lazy signal whose patterns are generated chunk by chunk
        (``chunks`` scan rows/columns per block), so scans larger than memory
        can be made; noise is seeded per block (same data every compute).

    Returns
    -------
    signal : Diffraction4D (or its Lazy twin)
        ``(scan_y, scan_x | det_y, det_x)`` float32 counts, scan axes in nm.
    truth : FourDTruth
    """
    if min(scan_shape) < 3 or min(detector_shape) < 8:
        raise InvalidParameterError("fourd_stem needs a scan of at least 3x3 and a detector of "
                                    "at least 8x8 px.")
    if disk_radius * 3.0 > min(detector_shape) / 2:
        # the ring at 2 radii must stay on the detector with margin
        raise InvalidParameterError(
            f"disk_radius={disk_radius} is too large for a {detector_shape} detector "
            f"(need <= {min(detector_shape) / 6:.1f}).")
    import dask.array as da

    from causalspy.signals.diffraction_4d import Diffraction4D

    rng = np.random.default_rng(seed)
    phi, gx, gy, lap, pos = _potential(scan_shape, spacing, atom_width, rng.integers(2 ** 31))
    pmax = phi.max()
    phi, gx, gy, lap = phi / pmax, gx / pmax, gy / pmax, lap / pmax
    strength = max_shift / max(np.hypot(gx, gy).max(), 1e-12)
    fx, fy = strength * gx, strength * gy
    charge = -strength * lap
    th = np.deg2rad(rotation_deg)
    # analysis rotates detector -> scan as f = R(th) P u; so u = P R(-th) f
    c, s = np.cos(-th), np.sin(-th)
    ux, uy = c * fx - s * fy, s * fx + c * fy
    if flip:
        ux, uy = uy, ux
    ny, nx = scan_shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    dsx = descan * (0.3 + 0.7 * xx / max(nx - 1, 1) - 0.2 * yy / max(ny - 1, 1))
    dsy = descan * (-0.4 + 0.1 * xx / max(nx - 1, 1) + 0.6 * yy / max(ny - 1, 1))
    ux_tot, uy_tot = ux + dsx, uy + dsy
    center = ((detector_shape[1] - 1) / 2.0, (detector_shape[0] - 1) / 2.0)
    det = tuple(int(v) for v in detector_shape)
    if lazy:
        ch = (min(chunks, ny), min(chunks, nx))
        base = da.zeros(scan_shape + det, chunks=ch + det, dtype=np.float32)

        def block(b, block_info=None):
            loc = block_info[0]["array-location"]
            sl = (slice(*loc[0]), slice(*loc[1]))
            brng = (np.random.default_rng([seed, loc[0][0], loc[1][0]]) if noise else None)
            return _render_block(ux_tot[sl], uy_tot[sl], det, center, disk_radius, counts, halo,
                                 phi[sl], brng)

        data = base.map_blocks(block, dtype=np.float32)
        sig = Diffraction4D(data).as_lazy()
        sig.data = data
    else:
        data = _render_block(ux_tot, uy_tot, det, center, disk_radius, counts, halo, phi,
                             rng if noise else None)
        sig = Diffraction4D(data)
    for k, ax in enumerate(sig.axes_manager.navigation_axes):
        ax.name, ax.units, ax.scale = ("x", "y")[k], "nm", scan_scale_nm
    for k, ax in enumerate(sig.axes_manager.signal_axes):
        ax.name, ax.units = ("kx", "ky")[k], "px"
    sig.metadata.General.title = "synthetic 4D-STEM"
    truth = FourDTruth(potential=phi, field_x=fx, field_y=fy, charge=charge, descan_x=dsx,
                       descan_y=dsy, rotation=float(th), flip=bool(flip), center=center,
                       disk_radius=float(disk_radius), counts=float(counts), positions=pos)
    return sig, truth
