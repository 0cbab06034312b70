"""4D-STEM: centre of mass, DPC, virtual detectors and pattern decomposition.

Everything per scan position that is *linear* in the diffraction pattern
(total counts, the first and second moments that give the centre of mass and
its Poisson error, and every virtual detector) comes from one compiled kernel
(:mod:`causalspy.multimodal._fourd_kernels`) that reads each pattern exactly
once at close to memory bandwidth: column and row sums give the moments, and
disk/annulus/mask detectors are read off the running column sums at their
edges (summation by parts), so adding detectors costs almost nothing. The
kernel maps onto Dask chunks of the scan unchanged, so in-memory, lazy (out of
core) and ``dask.distributed`` data go through the same code in one pass.

Conventions
-----------
- Detector pixel coordinates: ``kx`` is the detector column index, ``ky`` the
  row index, origin at the centre of detector pixel ``[0, 0]``.
- ``com_x``, ``com_y``: centre of mass of each pattern in detector pixels,
  relative to ``center`` (the mean pattern's centre of mass by default).
- ``dpc_x``, ``dpc_y``: the centre-of-mass shift after descan correction,
  rotated into the *scan* frame (x along scan columns, y along scan rows).
  Electrons are deflected towards positive potential, so the shift is
  proportional to the gradient of the projected potential,
  ``dpc = c * grad(phi)`` with ``c > 0`` (and to minus the in-plane field).
- ``potential``: ``phi`` recovered from ``dpc`` by Fourier integration (up to
  the constant ``c`` and an additive offset), ``charge``: ``-div(dpc)``,
  proportional to the projected charge density (Poisson's equation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from causalspy.exceptions import InvalidImageError, InvalidParameterError

__all__ = [
    "Detector",
    "DPCResult",
    "annular_detector",
    "bad_pixel_mask",
    "check_4d",
    "center_of_mass",
    "dpc",
    "fourd_descriptor_maps",
    "decomposition_loadings",
    "integrate_gradient",
    "maps_signal",
    "rotation_from_curl",
    "virtual_images",
]


# --------------------------------------------------------------------------- input
def _data_of(s):
    """The array behind a signal (numpy or dask) and whether it is lazy."""
    data = s.data if hasattr(s, "axes_manager") else s
    lazy = type(data).__module__.startswith("dask")
    return data, lazy


def check_4d(s) -> None:
    """Raise a clear error unless ``s`` is a real 4D-STEM dataset.

    A 4D-STEM dataset has two navigation (scan) axes and two signal
    (detector) axes; numpy arrays are read as ``(scan_y, scan_x, det_y, det_x)``.
    """
    data, _ = _data_of(s)
    if hasattr(s, "axes_manager"):
        nav, sig = s.axes_manager.navigation_dimension, s.axes_manager.signal_dimension
        if sig != 2 or nav != 2:
            raise InvalidImageError(
                f"4D-STEM needs 2 scan (navigation) and 2 detector (signal) axes; this signal has "
                f"{nav} navigation and {sig} signal axes (shape {tuple(data.shape)}). Use "
                "s.transpose(signal_axes=[...]) or load the file with its 4D shape.")
    elif np.ndim(data) != 4:
        raise InvalidImageError(
            f"4D-STEM needs a 4D array (scan_y, scan_x, det_y, det_x); got shape "
            f"{tuple(np.shape(data))}.")
    dt = np.dtype(data.dtype)
    if dt.kind == "c":
        raise InvalidImageError("4D-STEM data are complex; pass the intensities (e.g. abs(x)**2).")
    if dt.kind not in "fiub":
        raise InvalidImageError(f"4D-STEM data must be numeric, not {dt}.")
    if min(data.shape[-2:]) < 4:
        raise InvalidImageError(f"The detector ({data.shape[-2]}x{data.shape[-1]} px) is too small.")


# ------------------------------------------------------------------------ detectors
@dataclass
class Detector:
    """A virtual detector: a weight per detector pixel (1 inside, 0 outside).

    Attributes
    ----------
    name : str
        Name of the image it makes (a descriptor name).
    weights : ndarray
        ``(det_y, det_x)`` weights; any real values (e.g. a soft-edged mask).
    """

    name: str
    weights: np.ndarray


def annular_detector(name: str, shape: tuple[int, int], center: tuple[float, float],
                     inner: float, outer: float) -> Detector:
    """An annulus ``inner <= r < outer`` (detector px) around ``center`` (x, y).

    ``inner=0`` gives a disk (bright field).
    """
    if not (0 <= inner < outer):
        raise InvalidParameterError(f"Detector {name!r}: need 0 <= inner < outer, got "
                                    f"inner={inner}, outer={outer}.")
    ky, kx = np.mgrid[0:shape[0], 0:shape[1]]
    r = np.hypot(kx - center[0], ky - center[1])
    return Detector(name, ((r >= inner) & (r < outer)).astype(np.float32))


def _bright_field_radius(mean_pattern: np.ndarray, center: tuple[float, float]) -> float:
    """Radius of the bright-field disk: where the azimuthal mean drops to half."""
    ky, kx = np.indices(mean_pattern.shape)
    r = np.hypot(kx - center[0], ky - center[1])
    rb = np.round(r).astype(int)
    prof = np.bincount(rb.ravel(), mean_pattern.ravel()) / np.maximum(np.bincount(rb.ravel()), 1)
    top = prof[: max(2, int(rb.max() * 0.1) + 1)].mean()
    below = np.nonzero(prof < 0.5 * top)[0]
    below = below[below > 0]
    return float(below[0]) if below.size else float(rb.max())


def _default_detectors(mean_pattern, center) -> list[Detector]:
    """Virtual BF (inside the disk) and ADF (1.2-3 disk radii, clipped to the detector)."""
    shape = mean_pattern.shape
    rbf = _bright_field_radius(mean_pattern, center)
    rmax = float(min(center[0], center[1], shape[1] - 1 - center[0], shape[0] - 1 - center[1]))
    inner = min(1.2 * rbf, 0.8 * rmax)
    outer = max(inner + 1.0, min(3.0 * rbf, rmax))
    return [annular_detector("vbf", shape, center, 0.0, rbf),
            annular_detector("vadf", shape, center, inner, outer)]


# --------------------------------------------------------------------- one pass
def _moments_block(block: np.ndarray, args) -> np.ndarray:
    """Moments and detector sums of one block of patterns: ``(..., n_out)``."""
    from causalspy.multimodal._fourd_kernels import moments

    block = np.asarray(block)
    out = moments(block, args)
    if not np.all(np.isfinite(out)):
        # only on failure: find the pixels to name them
        bad = ~np.all(np.isfinite(block.reshape((-1,) + block.shape[-2:])), axis=0)
        raise InvalidImageError(
            f"Some patterns have NaN or inf at detector pixel(s) (det_y, det_x): "
            f"{_pixel_list(bad)}; pass mask=causalspy.multimodal.bad_pixel_mask(s) (or your own "
            "bool array, True on pixels to exclude).")
    return out


def _moments(s, detectors: list[Detector], mask, center, scheduler=None):
    """CoM moments and every detector of every pattern, reading the data once.

    Returns the ``(scan_y, scan_x, n_out)`` array and the column of each detector.
    """
    from causalspy.multimodal._fourd_kernels import prepare

    data, lazy = _data_of(s)
    args, cols = prepare(data.shape[-2:], detectors, mask, center)
    if not lazy:
        return _moments_block(np.asarray(data), args), cols
    import dask.array as da

    d = data
    if d.chunks[-2] != (d.shape[-2],) or d.chunks[-1] != (d.shape[-1],):
        d = d.rechunk({d.ndim - 2: -1, d.ndim - 1: -1})
    n_out = _moments_block(np.zeros((1,) + tuple(d.shape[-2:]), np.float32), args).shape[-1]
    out = da.map_blocks(_moments_block, d, args, drop_axis=[d.ndim - 1],
                        chunks=d.chunks[:-2] + ((n_out,),), dtype=np.float64)
    res = out.compute(scheduler=scheduler) if scheduler else out.compute()
    return np.asarray(res), cols


def _sample(s, scheduler=None, max_patterns: int = 256) -> np.ndarray:
    """About ``max_patterns`` patterns spread over the scan, ``(n, det_y, det_x)``, data dtype.

    In-memory data: a strided grid of scan positions. Lazy data: whole Dask
    chunks spread over the scan (a strided grid would touch, and so read or
    generate, every chunk), subsampled if one chunk holds more patterns.
    """
    data, lazy = _data_of(s)
    det = tuple(data.shape[-2:])
    ny, nx = data.shape[-4], data.shape[-3]
    if not lazy:
        step = max(1, int(np.ceil(np.sqrt(ny * nx / max_patterns))))
        return np.asarray(data[..., ::step, ::step, :, :]).reshape((-1,) + det)
    import dask.array as da

    cy, cx = data.chunks[-4], data.chunks[-3]
    oy, ox = np.cumsum((0,) + cy), np.cumsum((0,) + cx)
    n_blocks = len(cy) * len(cx)
    k = int(min(n_blocks, max(1, np.ceil(max_patterns / (max(cy) * max(cx))))))
    blocks = np.unique(np.linspace(0, n_blocks - 1, k).round().astype(int))
    parts = []
    for b in blocks:
        by, bx = divmod(int(b), len(cx))
        blk = data[..., oy[by]:oy[by + 1], ox[bx]:ox[bx + 1], :, :].reshape((-1,) + det)
        parts.append(blk[:: max(1, int(np.ceil(blk.shape[0] / max_patterns)))])
    sub = da.concatenate(parts)
    sub = sub.compute(scheduler=scheduler) if scheduler else sub.compute()
    return np.asarray(sub)


def _pixel_list(mask: np.ndarray, n: int = 5) -> str:
    pts = [tuple(int(v) for v in p) for p in np.argwhere(mask)[:n]]
    more = f" and {int(mask.sum()) - n} more" if mask.sum() > n else ""
    return ", ".join(str(p) for p in pts) + more


def _dead_pixels(mean: np.ndarray, n_patterns: int) -> np.ndarray:
    """Pixels that read zero in every sampled pattern where their neighbours predict counts.

    A working pixel expecting ``lam`` counts per pattern reads zero in all ``n``
    sampled patterns with probability ``exp(-n * lam)``; flag it when the median
    of its 8 neighbours makes that below ``exp(-20)``.
    """
    from scipy import ndimage

    fp = np.ones((3, 3), bool)
    fp[1, 1] = False
    nb = ndimage.median_filter(np.nan_to_num(mean), footprint=fp, mode="nearest")
    return (mean == 0) & (nb * n_patterns > 20.0)


def bad_pixel_mask(s, hot: float = 5.0, max_patterns: int = 1024, scheduler=None) -> np.ndarray:
    """Dead, hot and NaN/inf detector pixels, from a strided sample of the patterns.

    Parameters
    ----------
    s : 4D-STEM data (signal or array), eager or lazy.
    hot : float
        A pixel is hot when its mean exceeds ``hot`` times the largest of its 8
        neighbours (and is beyond Poisson noise: z > 8); disk edges never do.
    max_patterns : int
        Patterns sampled (strided over the scan); the data are not read in full.

    Returns
    -------
    mask : ndarray of bool
        ``(det_y, det_x)``, True on bad pixels; pass it as ``mask=`` to
        :func:`dpc`, :func:`center_of_mass`, :func:`virtual_images` or
        :func:`fourd_descriptor_maps`.

    Notes
    -----
    Dead: zero in every sampled pattern while the neighbours' median predicts
    enough counts that a working pixel would read zero there with probability
    below ``exp(-20)``.
    """
    from scipy import ndimage

    check_4d(s)
    sub = _sample(s, scheduler, max_patterns)
    fin = np.isfinite(sub)
    bad = ~np.all(fin, axis=0)
    mean = np.where(fin, sub, 0).sum(axis=0, dtype=np.float64) / np.maximum(fin.sum(axis=0), 1)
    fp = np.ones((3, 3), bool)
    fp[1, 1] = False
    nbmax = ndimage.maximum_filter(mean, footprint=fp, mode="nearest")
    n = sub.shape[0]
    z = (mean - nbmax) / np.sqrt(np.maximum(nbmax, 1.0 / n) / n)
    hot_px = (mean > hot * nbmax) & (z > 8.0)
    return bad | _dead_pixels(mean, n) | hot_px


def _mean_pattern(s, scheduler=None, max_patterns: int = 256, mask=None) -> np.ndarray:
    """Mean pattern over a strided subset of at most ~``max_patterns`` scan positions.

    Only the detector geometry (centre, disk radius) comes from it, so a
    sample suffices and the full data are still read only once (by the
    moment pass). Unmasked NaN/inf pixels raise an error naming them; dead
    pixels (zero in every sampled pattern where the neighbours see counts)
    give a warning naming them.
    """
    sub = _sample(s, scheduler, max_patterns)
    m = sub.mean(axis=0, dtype=np.float64)
    if mask is not None:
        m = np.where(np.asarray(mask, bool), 0.0, m)
    if not np.all(np.isfinite(m)):
        bad = ~np.isfinite(m)
        raise InvalidImageError(
            f"{int(bad.sum())} detector pixel(s) are NaN or inf (det_y, det_x): "
            f"{_pixel_list(bad)}; pass mask=causalspy.multimodal.bad_pixel_mask(s) (or your "
            "own bool array, True on pixels to exclude).")
    if mask is None:
        dead = _dead_pixels(m, sub.shape[0])
        if dead.any():
            import warnings

            warnings.warn(
                f"{int(dead.sum())} detector pixel(s) read zero in all {sub.shape[0]} sampled "
                f"patterns although their neighbours see counts (dead?), (det_y, det_x): "
                f"{_pixel_list(dead)}; they bias the centre of mass. Pass "
                "mask=causalspy.multimodal.bad_pixel_mask(s) to exclude them.",
                UserWarning, stacklevel=3)
    return m


def center_of_mass(s, mask: np.ndarray | None = None, center: tuple[float, float] | None = None,
                   scheduler=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre of mass of every pattern (one pass over the data).

    Parameters
    ----------
    s : Diffraction4D, hyperspy Signal2D or ndarray
        4D-STEM data ``(scan_y, scan_x, det_y, det_x)``, eager or lazy.
    mask : ndarray of bool, optional
        ``(det_y, det_x)``, True on pixels to exclude (dead, hot, beam stop).
    center : (float, float), optional
        Detector origin (x, y) for the returned shifts; default: the centre of
        mass of the mean pattern.
    scheduler : optional
        Dask scheduler for lazy data (default: the active one, e.g. a
        ``dask.distributed`` client).

    Returns
    -------
    com_x, com_y, total : ndarray
        ``(scan_y, scan_x)`` shifts (detector px) and total counts.
    """
    check_4d(s)
    if center is None:
        center = _centroid(_mean_pattern(s, scheduler, mask=mask), mask)
    m, _ = _moments(s, [], mask, center, scheduler)
    return _com_from_moments(m)


def _com_from_moments(m: np.ndarray):
    """CoM (relative to the kernel's centre) and totals from the moment columns."""
    total = m[..., 0]
    if np.any(total <= 0):
        raise InvalidImageError(
            f"{int(np.sum(total <= 0))} pattern(s) have no counts inside the detector mask; "
            "the centre of mass is undefined there.")
    return m[..., 1] / total, m[..., 2] / total, total


def virtual_images(s, detectors: list[Detector] | None = None, mask: np.ndarray | None = None,
                   scheduler=None) -> dict[str, np.ndarray]:
    """Virtual detector images, all computed in one pass.

    With ``detectors=None`` a virtual bright field (``vbf``, the direct disk)
    and annular dark field (``vadf``) are placed from the mean pattern.
    """
    check_4d(s)
    data, _ = _data_of(s)
    if detectors is None:
        mean = _mean_pattern(s, scheduler, mask=mask)
        c = _centroid(mean, mask)
        detectors = _default_detectors(mean, c)
    _check_detectors(detectors, data.shape[-2:])
    m, cols = _moments(s, detectors, mask, (0.0, 0.0), scheduler)
    return {d.name: m[..., cols[d.name]] for d in detectors}


def _centroid(pattern: np.ndarray, mask) -> tuple[float, float]:
    p = np.where(np.asarray(mask, bool), 0.0, pattern) if mask is not None else pattern
    ky, kx = np.indices(p.shape)
    t = p.sum()
    if t <= 0:
        raise InvalidImageError("The mean diffraction pattern has no counts.")
    return float((kx * p).sum() / t), float((ky * p).sum() / t)


def _check_detectors(detectors, shape):
    names = [d.name for d in detectors]
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"Virtual detector names must be unique, got {names}.")
    for d in detectors:
        if np.shape(d.weights) != tuple(shape):
            raise InvalidParameterError(
                f"Detector {d.name!r} has shape {np.shape(d.weights)}, the detector is "
                f"{tuple(shape)}.")


# ---------------------------------------------------------------------------- DPC
def _plane_fit(img: np.ndarray) -> np.ndarray:
    """Least-squares plane ``a + b*x + c*y`` over the scan, evaluated on it."""
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    a = np.stack([np.ones(img.size), xx.ravel(), yy.ravel()], axis=1)
    ok = np.isfinite(img.ravel())
    coef, *_ = np.linalg.lstsq(a[ok], img.ravel()[ok], rcond=None)
    return (a @ coef).reshape(img.shape)


def _rotate(cx, cy, theta: float, flip: bool):
    if flip:
        cx, cy = cy, cx
    c, s = np.cos(theta), np.sin(theta)
    return c * cx - s * cy, s * cx + c * cy


def _curl_div(fx, fy):
    dfy_dx = np.gradient(fy, axis=1)
    dfx_dy = np.gradient(fx, axis=0)
    return dfy_dx - dfx_dy, np.gradient(fx, axis=1) + np.gradient(fy, axis=0)


def rotation_from_curl(cx: np.ndarray, cy: np.ndarray, reference: np.ndarray | None = None
                       ) -> tuple[float, bool]:
    """Scan-detector rotation (rad) and flip that make the CoM field curl-free.

    The field of a projected potential is a gradient, so the right rotation
    minimises the summed squared curl. The curl is linear in
    ``(cos theta, sin theta)``, so the minimum is the smallest eigenvector of a
    2x2 matrix (no grid search). It leaves a 180 degree ambiguity, resolved by
    ``reference`` (e.g. an ADF image: atoms, bright in ADF, are sources of
    positive charge, so ``-div(field)`` should correlate positively with it);
    without a reference the solution with ``theta`` in ``(-90, 90]`` degrees
    is returned. Both handednesses (``flip``) are tried; the lower curl wins.
    """
    best = None
    for flip in (False, True):
        ax, ay = (cy, cx) if flip else (cx, cy)
        c1, _ = _curl_div(ax, ay)            # curl at theta = 0
        c2, _ = _curl_div(-ay, ax)           # curl at theta = 90 degrees
        v1, v2 = c1[1:-1, 1:-1].ravel(), c2[1:-1, 1:-1].ravel()
        # elementwise sums, not BLAS dot products: right after the kernel's thread pool,
        # OpenBLAS threads spinning up against it made three dots cost 0.2 s
        v12 = float(np.sum(v1 * v2))
        m = np.array([[np.sum(v1 * v1), v12], [v12, np.sum(v2 * v2)]])
        evals, evecs = np.linalg.eigh(m)
        th = float(np.arctan2(evecs[1, 0], evecs[0, 0]))
        # relative residual curl, comparable between the two handednesses
        _, d1 = _curl_div(*_rotate(cx, cy, th, flip))
        score = evals[0] / max(np.sum(d1[1:-1, 1:-1] ** 2), 1e-300)
        if best is None or score < best[0]:
            best = (score, th, flip)
    _, theta, flip = best
    theta = (theta + np.pi / 2) % np.pi - np.pi / 2   # into [-90, 90)
    if reference is not None:
        fx, fy = _rotate(cx, cy, theta, flip)
        charge = -_curl_div(fx, fy)[1]
        r = np.corrcoef(charge[1:-1, 1:-1].ravel(), np.asarray(reference)[1:-1, 1:-1].ravel())[0, 1]
        if np.isfinite(r) and r < 0:
            theta += np.pi
    return float(theta), bool(flip)


def integrate_gradient(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Potential ``phi`` with ``grad(phi) ~ (gx, gy)`` by Fourier integration.

    The least-squares solution on a periodic extension (mirrored to avoid
    edge artefacts); the mean is set to zero.
    """
    ny, nx = gx.shape
    ex = np.concatenate([np.concatenate([gx, -gx[:, ::-1]], 1),
                         np.concatenate([gx[::-1], -gx[::-1, ::-1]], 1)], 0)
    ey = np.concatenate([np.concatenate([gy, gy[:, ::-1]], 1),
                         np.concatenate([-gy[::-1], -gy[::-1, ::-1]], 1)], 0)
    kx = 2j * np.pi * np.fft.fftfreq(2 * nx)[None, :]
    ky = 2j * np.pi * np.fft.fftfreq(2 * ny)[:, None]
    den = kx * np.conj(kx) + ky * np.conj(ky)
    den[0, 0] = 1.0
    phi_hat = (np.conj(kx) * np.fft.fft2(ex) + np.conj(ky) * np.fft.fft2(ey)) / den
    phi_hat[0, 0] = 0.0
    phi = np.real(np.fft.ifft2(phi_hat))[:ny, :nx]
    return phi - phi.mean()


@dataclass
class DPCResult:
    """Centre of mass, DPC field and derived maps of a 4D-STEM scan.

    All maps are ``(scan_y, scan_x)``. ``rotation`` (rad) and ``flip`` map
    detector to scan directions; ``descan_x``/``descan_y`` are the removed
    descan shifts (detector px); ``com_noise`` is the CoM standard error per
    scan position expected from Poisson statistics (detector px).
    """

    com_x: np.ndarray
    com_y: np.ndarray
    dpc_x: np.ndarray
    dpc_y: np.ndarray
    charge: np.ndarray
    potential: np.ndarray
    total: np.ndarray
    rotation: float
    flip: bool
    descan_x: np.ndarray
    descan_y: np.ndarray
    com_noise: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    center: tuple[float, float] = (0.0, 0.0)

    def maps(self) -> dict[str, np.ndarray]:
        """All maps by descriptor name."""
        out = {"com_x": self.com_x, "com_y": self.com_y, "dpc_x": self.dpc_x,
               "dpc_y": self.dpc_y, "dpc_magnitude": np.hypot(self.dpc_x, self.dpc_y),
               "charge": self.charge, "potential": self.potential, "total": self.total}
        out.update(self.images)
        return out


def dpc(s, mask: np.ndarray | None = None, detectors: list[Detector] | None = None,
        descan: Literal["plane", "none"] | np.ndarray | tuple = "plane",
        rotation: float | Literal["auto"] = "auto", flip: bool | None = None,
        center: tuple[float, float] | None = None, scheduler=None) -> DPCResult:
    """Centre of mass, DPC field, charge and potential plus virtual images (one pass).

    Parameters
    ----------
    s : 4D-STEM data (signal or array), eager or lazy.
    mask : ndarray of bool, optional
        True on detector pixels to exclude (dead/hot pixels).
    detectors : list of Detector, optional
        Virtual detectors to compute in the same pass; default ``vbf`` and ``vadf``.
    descan : {"plane", "none"} or (com_x, com_y) reference
        ``"plane"`` removes a least-squares plane over the scan from each CoM
        component (the descan of a linear scan; it also removes a genuinely
        uniform field gradient, as every plane-based correction does);
        ``(ref_x, ref_y)`` subtracts a vacuum reference scan's CoM maps.
    rotation : float or "auto"
        Scan-detector rotation (rad); ``"auto"`` finds it from the curl, with
        the 180 degree ambiguity resolved by the virtual ADF image.
    flip : bool, optional
        Detector transposed relative to the scan; found with the rotation when
        ``None`` and ``rotation="auto"``, else ``False``.
    center : (x, y), optional
        Detector origin; default the mean pattern's centre of mass.
    """
    check_4d(s)
    data, _ = _data_of(s)
    det_shape = data.shape[-2:]
    mean = _mean_pattern(s, scheduler, mask=mask)
    if center is None:
        center = _centroid(mean, mask)
    if detectors is None:
        detectors = _default_detectors(np.where(mask, 0, mean) if mask is not None else mean,
                                       center)
    _check_detectors(detectors, det_shape)
    # second moments come from the same pass: they give the Poisson CoM noise
    m, cols = _moments(s, detectors, mask, center, scheduler)
    cx, cy, total = _com_from_moments(m)
    images = {d.name: m[..., cols[d.name]] for d in detectors}
    sxx = m[..., 3] / total - cx ** 2
    syy = m[..., 4] / total - cy ** 2
    com_noise = np.sqrt(np.maximum(0.5 * (sxx + syy), 0) / total)
    if min(cx.shape) < 3:
        raise InvalidImageError(f"DPC needs a scan of at least 3x3 positions, got {cx.shape}.")
    if isinstance(descan, str):
        if descan == "plane":
            bx, by = _plane_fit(cx), _plane_fit(cy)
        elif descan == "none":
            bx, by = np.zeros_like(cx), np.zeros_like(cy)
        else:
            raise InvalidParameterError(f"descan must be 'plane', 'none' or reference maps, "
                                        f"not {descan!r}.")
    else:
        bx, by = (np.asarray(v, float) for v in descan)
        if bx.shape != cx.shape or by.shape != cy.shape:
            raise InvalidParameterError(f"Descan reference maps must have the scan shape {cx.shape}.")
    ux, uy = cx - bx, cy - by
    ref = images.get("vadf")
    if rotation == "auto":
        theta, fl = rotation_from_curl(ux, uy, reference=ref)
        if flip is not None:
            fl = bool(flip)
    else:
        theta, fl = float(rotation), bool(flip)
    fx, fy = _rotate(ux, uy, theta, fl)
    charge = -_curl_div(fx, fy)[1]
    phi = integrate_gradient(fx, fy)
    return DPCResult(com_x=cx, com_y=cy, dpc_x=fx, dpc_y=fy, charge=charge, potential=phi,
                     total=total, rotation=theta, flip=fl, descan_x=bx, descan_y=by,
                     com_noise=com_noise, images=images, center=tuple(center))


# --------------------------------------------------------------------- to maps
_UNITS = {"com_x": "px", "com_y": "px", "dpc_x": "px", "dpc_y": "px", "dpc_magnitude": "px",
          "charge": "a.u.", "potential": "a.u.", "total": "counts"}


def maps_signal(maps: dict[str, np.ndarray], scan_axes=None, units: dict | None = None,
                title: str = "4D-STEM descriptor maps"):
    """A ``descriptor_maps`` signal from named ``(scan_y, scan_x)`` maps."""
    from causalspy.signals.descriptor_maps import DescriptorMaps

    names = list(maps)
    data = np.stack([np.asarray(maps[n], float) for n in names])
    out = DescriptorMaps(data)
    out.axes_manager.navigation_axes[0].name = "descriptor"
    for k, ax in enumerate(out.axes_manager.signal_axes):
        ax.name = ("x", "y")[k]
        if scan_axes is not None:
            src = scan_axes[k]
            ax.scale, ax.offset, ax.units = src.scale, src.offset, src.units
            ax.name = src.name if isinstance(src.name, str) and src.name else ax.name
    units = {**_UNITS, **(units or {})}
    out.metadata.General.title = title
    out.metadata.set_item("Descriptors.names", names)
    out.metadata.set_item("Descriptors.units", [units.get(n, "counts") for n in names])
    out.metadata.set_item("Descriptors.valid", np.all(np.isfinite(data), axis=0))
    return out


def fourd_descriptor_maps(s, mask=None, detectors=None, decomposition: int = 0,
                          algorithm: str = "NMF", scheduler=None, **dpc_kwargs):
    """4D-STEM descriptors on the scan grid as a ``descriptor_maps`` signal.

    CoM, DPC field, charge, potential and virtual images from one pass
    (:func:`dpc`), plus, with ``decomposition=k > 0``, the loadings of a
    ``k``-component HyperSpy decomposition of the patterns (``algorithm``:
    ``"NMF"``; for lazy data HyperSpy's chunk-wise scikit-learn ``MiniBatchNMF``) as
    ``nmf_0 ... nmf_{k-1}`` (or ``pca_...``).
    """
    r = dpc(s, mask=mask, detectors=detectors, scheduler=scheduler, **dpc_kwargs)
    maps = r.maps()
    maps["com_noise"] = r.com_noise
    if decomposition:
        maps.update(decomposition_loadings(s, decomposition, algorithm=algorithm, mask=mask))
    scan_axes = (s.axes_manager.navigation_axes if hasattr(s, "axes_manager") else None)
    out = maps_signal(maps, scan_axes, units={"com_noise": "px"})
    out.metadata.set_item("Descriptors.rotation_rad", r.rotation)
    out.metadata.set_item("Descriptors.flip", r.flip)
    out.metadata.set_item("Descriptors.center_px", list(r.center))
    return out


def decomposition_loadings(s, n_components: int, algorithm: str = "NMF", mask=None
                           ) -> dict[str, np.ndarray]:
    """Loadings of a HyperSpy decomposition of the patterns, one map per component.

    Runs on a copy: the input's ``learning_results`` are not touched.
    """
    import hyperspy.api as hs

    if n_components < 1:
        raise InvalidParameterError("decomposition needs n_components >= 1.")
    check_4d(s)
    data, lazy = _data_of(s)
    if hasattr(s, "axes_manager"):
        work = s._deepcopy_with_new_data(s.data)
    else:
        work = (hs.signals.Signal2D(data).as_lazy() if lazy else hs.signals.Signal2D(data))
    if mask is not None:
        work = work * (~np.asarray(mask, bool))
    if np.dtype(work.data.dtype).kind != "f":
        work.change_dtype("float32")
    algo = algorithm  # lazy "NMF": HyperSpy's chunk-wise MiniBatchNMF (ORNMF is per pattern)
    kw = {"output_dimension": n_components} if algo in ("NMF", "ORNMF") else {}
    work.decomposition(algorithm=algo, print_info=False, **kw)
    loads = work.get_decomposition_loadings()
    ld = np.asarray(loads.data.compute() if hasattr(loads.data, "compute") else loads.data)
    prefix = algo.lower().replace("ornmf", "nmf")
    return {f"{prefix}_{k}": ld[k] for k in range(min(n_components, ld.shape[0]))}
