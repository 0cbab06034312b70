"""Co-registration: per-pixel maps of another scan onto the cells of a structural image.

Two steps:

1. :func:`register` finds the affine map ``T`` from the pixels of a
   *moving* reference channel (e.g. the ADF image acquired with a spectrum
   image or a 4D-STEM scan) to the pixels of the structural image, handling
   a different pixel size, a scan rotation and a drift offset:

   - scale from the two calibrations (or from the Fourier-Mellin log-polar
     spectrum when they are missing), rotation from the phase correlation
     of the log-polar power spectra (Reddy & Chatterji 1996);
   - candidates ``rotation + k 90 deg`` (the power spectrum cannot tell them
     apart on a square lattice), each translated by masked normalized cross
     correlation (Padfield 2012); the best correlation wins;
   - sub-pixel refinement of all six affine parameters by Gauss-Newton on the
     intensities (Lucas-Kanade, forward additive): the moving image is
     modelled as ``alpha * B(T(u)) + beta`` with ``B`` the structural image
     blurred to the moving pixel size, coarse to fine.

   The parameter covariance of the last step gives the registration
   uncertainty (RMS over the moving field, structural px).

2. :func:`map_to_cells` carries any per-pixel maps (a ``descriptor_maps``
   signal of spectral or 4D-STEM descriptors, a simultaneous HAADF, ...)
   through ``T`` and averages them over each cell: its Voronoi region (the
   pixels nearest to the cell's position, within ``0.75`` of the cell
   spacing) or a disc of ``radius`` around it. The result is one
   :class:`~causalspy.descriptors.Descriptors` table with the structural and
   the mapped descriptors per cell, with units and provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causalspy.exceptions import InvalidImageError, InvalidParameterError

__all__ = ["Registration", "coregister", "map_to_cells", "register"]

_LENGTH_NM = {"nm": 1.0, "å": 0.1, "a": 0.1, "angstrom": 0.1, "pm": 1e-3, "µm": 1e3,
              "um": 1e3, "m": 1e9}


# --------------------------------------------------------------------------- result
@dataclass
class Registration:
    """An affine map from moving-image pixels to structural-image pixels.

    Attributes
    ----------
    matrix : ndarray
        ``(2, 3)``: ``[x, y] = matrix @ [u, v, 1]`` with ``(u, v)`` a moving
        pixel (column, row) and ``(x, y)`` a structural pixel.
    ncc : float
        Normalized cross-correlation of the moving image with the
        prediction from the structural image at the solution.
    uncertainty_px : float
        RMS over the moving field of the 1-sigma position uncertainty of
        ``T(u)`` (structural px), from the refinement's covariance.
    moving_shape, reference_shape : tuple of int
    moving_calibration : dict
        ``scale``, ``offset`` (per axis, x then y) and ``units`` of the
        moving image's axes: maps on another grid of the same scan are
        placed through it.
    """

    matrix: np.ndarray
    ncc: float = float("nan")
    uncertainty_px: float = float("nan")
    moving_shape: tuple[int, int] = (0, 0)
    reference_shape: tuple[int, int] = (0, 0)
    moving_calibration: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """Moving pixel size in structural pixels (geometric mean of the two axes)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def rotation_deg(self) -> float:
        """Rotation of the moving scan relative to the structural image (degrees)."""
        a = self.matrix[:, :2]
        return float(np.degrees(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])))

    @property
    def shift(self) -> np.ndarray:
        """Where the centre of the moving image lands, minus the structural centre (px)."""
        hm, wm = self.moving_shape
        hr, wr = self.reference_shape
        return self.apply([[(wm - 1) / 2, (hm - 1) / 2]])[0] - [(wr - 1) / 2, (hr - 1) / 2]

    def apply(self, uv) -> np.ndarray:
        """Structural pixel coordinates of moving pixel coordinates ``(n, 2)``."""
        uv = np.asarray(uv, float)
        return uv @ self.matrix[:, :2].T + self.matrix[:, 2]

    def inverse(self, xy) -> np.ndarray:
        """Moving pixel coordinates of structural pixel coordinates ``(n, 2)``."""
        xy = np.asarray(xy, float)
        return (xy - self.matrix[:, 2]) @ np.linalg.inv(self.matrix[:, :2]).T

    def error_px(self, true_matrix) -> float:
        """RMS distance (structural px) over the moving field between this map and another."""
        t = np.asarray(true_matrix, float)
        hm, wm = self.moving_shape
        vv, uu = np.mgrid[0:hm, 0:wm]
        uv = np.stack([uu.ravel(), vv.ravel()], 1).astype(float)
        d = self.apply(uv) - (uv @ t[:, :2].T + t[:, 2])
        return float(np.sqrt(np.mean(np.sum(d**2, 1))))

    def to_dict(self) -> dict:
        """Plain-Python summary (for provenance)."""
        return {"matrix": self.matrix.tolist(), "scale": self.scale,
                "rotation_deg": self.rotation_deg, "shift_px": self.shift.tolist(),
                "ncc": float(self.ncc), "uncertainty_px": float(self.uncertainty_px),
                "moving_shape": list(self.moving_shape),
                "reference_shape": list(self.reference_shape),
                "moving_calibration": self.moving_calibration}

    def __repr__(self) -> str:
        return (f"<Registration: scale {self.scale:.4f}, rotation {self.rotation_deg:+.3f} deg, "
                f"shift ({self.shift[0]:+.2f}, {self.shift[1]:+.2f}) px, NCC {self.ncc:.3f}, "
                f"uncertainty {self.uncertainty_px:.3f} px>")


# --------------------------------------------------------------------------- input
def _image(x, what: str) -> tuple[np.ndarray, dict]:
    """A 2D float image and its calibration from a signal or array; checks."""
    if hasattr(x, "axes_manager"):
        if x.axes_manager.signal_dimension != 2 or x.axes_manager.navigation_dimension != 0:
            raise InvalidImageError(
                f"The {what} image must be a single 2D image; got a signal with "
                f"{x.axes_manager.navigation_dimension} navigation and "
                f"{x.axes_manager.signal_dimension} signal axes (shape {tuple(x.data.shape)}).")
        axes = x.axes_manager.signal_axes
        cal = {"scale": [float(a.scale) for a in axes], "offset": [float(a.offset) for a in axes],
               "units": str(axes[0].units)}
        data = np.asarray(x.data)
    else:
        data = np.asarray(x)
        cal = {"scale": [1.0, 1.0], "offset": [0.0, 0.0], "units": "px"}
    if data.ndim != 2:
        raise InvalidImageError(f"The {what} image must be 2D; got shape {data.shape}.")
    if np.iscomplexobj(data) or data.dtype.kind not in "fiub":
        raise InvalidImageError(f"The {what} image must be real numbers, not {data.dtype}.")
    if min(data.shape) < 16:
        raise InvalidImageError(f"The {what} image ({data.shape}) is too small (>= 16 px).")
    data = data.astype(float)
    if not np.all(np.isfinite(data)):
        raise InvalidImageError(f"The {what} image contains NaN or inf pixels; fill them first.")
    if np.ptp(data) == 0:
        raise InvalidImageError(f"The {what} image is constant; nothing to register.")
    return data, cal


def _nm(units: str) -> float | None:
    return _LENGTH_NM.get(str(units).strip().lower())


def _normalize(a: np.ndarray) -> np.ndarray:
    a = a - a.mean()
    return a / (a.std() or 1.0)


# ------------------------------------------------------------- rotation and scale
def _log_polar_spectrum(img: np.ndarray, k_lo: float, k_hi: float, n_theta: int, n_r: int):
    """Log-polar resampling of the high-passed power spectrum, theta in [0, pi)."""
    from scipy.ndimage import map_coordinates

    h, w = img.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    f = np.abs(np.fft.fftshift(np.fft.fft2(_normalize(img) * win)))
    f = np.log1p(f)
    theta = np.linspace(0, np.pi, n_theta, endpoint=False)
    rad = np.exp(np.linspace(np.log(k_lo), np.log(k_hi), n_r))
    rows = h // 2 + rad[None, :] * np.sin(theta)[:, None] * h
    cols = w // 2 + rad[None, :] * np.cos(theta)[:, None] * w
    lp = map_coordinates(f, [rows, cols], order=1, mode="nearest")
    lp = lp - lp.mean(axis=0, keepdims=True)  # remove the radial (isotropic) profile
    return lp * np.hanning(n_r)[None, :]


def _rotation_scale(ref: np.ndarray, mov: np.ndarray, scale: float | None):
    """Rotation (rad, modulo pi) and scale (moving px / reference px) from log-polar spectra."""
    from skimage.registration import phase_cross_correlation

    n_theta, n_r = 720, 256
    s_guess = 1.0 if scale is None else scale
    # common band in reference cycles/px: above a few cycles per field, below the
    # moving Nyquist frequency (0.5 / scale)
    k_hi_ref = 0.45 * min(1.0, 1.0 / s_guess)
    k_lo_ref = max(4.0 / min(ref.shape), 4.0 / (min(mov.shape) * s_guess))
    if scale is None:  # unknown scale: each image on the same band of its own frequencies
        k_lo = max(4.0 / min(ref.shape), 4.0 / min(mov.shape))
        lp_r = _log_polar_spectrum(ref, k_lo, 0.45, n_theta, n_r)
        lp_m = _log_polar_spectrum(mov, k_lo, 0.45, n_theta, n_r)
        dlog = (np.log(0.45) - np.log(k_lo)) / (n_r - 1)
    else:
        if k_lo_ref >= k_hi_ref:
            raise InvalidParameterError(
                "The two images share no spatial frequencies at this scale: check the pixel "
                "sizes (scale=).")
        lp_r = _log_polar_spectrum(ref, k_lo_ref, k_hi_ref, n_theta, n_r)
        lp_m = _log_polar_spectrum(mov, k_lo_ref * scale, k_hi_ref * scale, n_theta, n_r)
        dlog = 0.0
    shift, _, _ = phase_cross_correlation(lp_r, lp_m, upsample_factor=20, normalization=None)
    theta = shift[0] * np.pi / n_theta
    s = scale if scale is not None else float(np.exp(-shift[1] * dlog))
    return float(theta), float(s)


def _period(img: np.ndarray) -> float:
    """Dominant period (px) of an image: the peak of its radially averaged power spectrum."""
    h, w = img.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    f = np.abs(np.fft.fft2(_normalize(img) * win)) ** 2
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    k = np.hypot(kx, ky)
    bins = np.linspace(0, 0.5, 101)
    idx = np.digitize(k.ravel(), bins)
    prof = np.bincount(idx, f.ravel(), minlength=bins.size + 1)[1:bins.size]
    cnt = np.bincount(idx, minlength=bins.size + 1)[1:bins.size]
    kc = 0.5 * (bins[1:] + bins[:-1])
    ok = (kc > 4.0 / min(h, w)) & (cnt > 0)
    if not ok.any():
        return float(min(h, w)) / 4
    j = np.flatnonzero(ok)[np.argmax(prof[ok] / np.maximum(cnt[ok], 1))]
    return float(1.0 / kc[j])


def _linear(scale: float, theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return scale * np.array([[c, -s], [s, c]])


def _masked_ncc(big: np.ndarray, bmask: np.ndarray, small: np.ndarray):
    """Normalized cross-correlation of ``small`` at every offset in ``big`` (masked).

    Returns the NCC map and the overlap (pixel count) map; entry ``[k, l]`` is
    ``small[0, 0]`` placed on ``big[k - hs + 1, l - ws + 1]`` (Padfield 2012,
    with the small image fully valid).
    """
    from scipy.signal import fftconvolve

    hs, ws = small.shape
    flip = small[::-1, ::-1]
    ones = np.ones_like(flip)
    bm = bmask.astype(float)
    b = big * bm

    def corr(a, k):
        return fftconvolve(a, k, mode="full")

    n = np.round(corr(bm, ones))
    s1, s2 = corr(b, ones), corr(b * big, ones)
    t1, t2 = corr(bm, flip), corr(bm, flip * flip)
    x = corr(b, flip)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.maximum(n, 1.0)
        num = x - s1 * t1 / nn
        den = np.sqrt(np.clip((s2 - s1**2 / nn) * (t2 - t1**2 / nn), 0, None))
        ncc = np.where(den > 1e-9 * np.abs(s2).max(), num / den, 0.0)
    return np.clip(ncc, -1, 1), n


def _translate(ref: np.ndarray, mov: np.ndarray, lin: np.ndarray, blur: float):
    """Integer translation for a given linear part, by masked NCC on the moving grid.

    The (blurred) structural image is resampled on the moving pixel grid
    over its whole field; the moving image is slid over it. Both are blurred
    by ``blur`` (structural px, about half the lattice period): what is left
    is the non-periodic content (composition, thickness, defects), so the
    match is not one lattice vector off. Each offset is scored by Fisher's
    ``z = atanh(NCC) sqrt(N - 3)``, so a full overlap wins over a slightly
    better match of a small corner.
    """
    from scipy.ndimage import gaussian_filter, map_coordinates

    hr, wr = ref.shape
    hm, wm = mov.shape
    s = float(np.sqrt(abs(np.linalg.det(lin))))
    blurred = gaussian_filter(ref, np.hypot(blur, np.sqrt(max(s * s - 1, 0) / 12.0)))
    mov = gaussian_filter(mov, blur / s)
    inv = np.linalg.inv(lin)
    corners = np.array([[0, 0], [wr - 1, 0], [0, hr - 1], [wr - 1, hr - 1]], float) @ inv.T
    lo = np.floor(corners.min(0))
    hi = np.ceil(corners.max(0))
    gw, gh = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1
    gv, gu = np.mgrid[0:gh, 0:gw].astype(float)
    uv = np.stack([gu.ravel() + lo[0], gv.ravel() + lo[1]], 1)
    xy = uv @ lin.T
    inside = ((xy[:, 0] >= 0) & (xy[:, 0] <= wr - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= hr - 1))
    rm = map_coordinates(blurred, [xy[:, 1], xy[:, 0]], order=1, mode="nearest").reshape(gh, gw)
    ncc, n = _masked_ncc(rm, inside.reshape(gh, gw), _normalize(mov))
    n_min = 0.25 * hm * wm
    z = np.where(n >= n_min, np.arctanh(np.clip(ncc, -0.999, 0.999)) * np.sqrt(
        np.clip(n - 3, 0, None)), -np.inf)
    k, l_ = np.unravel_index(np.argmax(z), z.shape)
    off = np.array([l_ - (wm - 1), k - (hm - 1)], float) + lo  # moving (0,0) in grid coords
    m = np.column_stack([lin, lin @ off])
    return m, float(ncc[k, l_]) if np.isfinite(z[k, l_]) else -1.0


def _ncc_at(ref_b: np.ndarray, mov: np.ndarray, m: np.ndarray) -> float:
    from scipy.ndimage import map_coordinates

    hm, wm = mov.shape
    vv, uu = np.mgrid[0:hm, 0:wm].astype(float)
    xy = np.stack([uu.ravel(), vv.ravel()], 1) @ m[:, :2].T + m[:, 2]
    h, w = ref_b.shape
    ok = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    if ok.sum() < 0.1 * ok.size:
        return -1.0
    p = map_coordinates(ref_b, [xy[ok, 1], xy[ok, 0]], order=1)
    q = mov.ravel()[ok]
    return float(np.corrcoef(p, q)[0, 1])


# ------------------------------------------------------------------ refinement
def _refine(ref: np.ndarray, mov: np.ndarray, m0: np.ndarray, model: str, blur: float,
            n_iter: int = 30, margin: float = 3.0):
    """Lucas-Kanade refinement of the affine (or similarity) map, coarse to fine."""
    from scipy.ndimage import gaussian_filter, map_coordinates, spline_filter

    hm, wm = mov.shape
    h, w = ref.shape
    vv, uu = np.mgrid[0:hm, 0:wm].astype(float)
    uv = np.stack([uu.ravel(), vv.ravel()], 1)
    c = uv.mean(0)
    du = uv - c
    m = m0.copy()
    s = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    sig0 = np.sqrt(max(s * s - 1, 0) / 12.0)
    cov = None
    resid_var = np.nan
    J = None
    ok = None
    ncc = np.nan
    for extra in (blur, 0.5 * blur, 2.0, 1.0, 0.0):
        b = gaussian_filter(ref, np.hypot(sig0, extra)) if (sig0 > 0 or extra > 0) else ref
        q_all = _normalize(gaussian_filter(mov, extra / s) if extra > 0 else mov).ravel()
        coef = spline_filter(b, order=3)
        gy, gx = np.gradient(b)
        cgx, cgy = spline_filter(gx, order=3), spline_filter(gy, order=3)
        for _ in range(n_iter):
            xy = uv @ m[:, :2].T + m[:, 2]
            ok = ((xy[:, 0] >= margin) & (xy[:, 0] <= w - 1 - margin)
                  & (xy[:, 1] >= margin) & (xy[:, 1] <= h - 1 - margin))
            if ok.sum() < 0.1 * ok.size:
                raise InvalidParameterError(
                    "After registration the moving image overlaps less than 10 % of its pixels "
                    "with the structural image: the grids do not overlap (check the field of "
                    "view, scale= and rotation=).")
            crd = [xy[ok, 1], xy[ok, 0]]
            p = map_coordinates(coef, crd, order=3, prefilter=False)
            px = map_coordinates(cgx, crd, order=3, prefilter=False)
            py = map_coordinates(cgy, crd, order=3, prefilter=False)
            q = q_all[ok]
            d = du[ok]
            if model == "affine":
                cols = [px * d[:, 0], px * d[:, 1], py * d[:, 0], py * d[:, 1], px, py]
            else:  # similarity: A + [[e, -f], [f, e]]
                cols = [px * d[:, 0] + py * d[:, 1], -px * d[:, 1] + py * d[:, 0], px, py]
            J = np.column_stack([p, np.ones_like(p)] + cols)
            sol, *_ = np.linalg.lstsq(J, q, rcond=None)
            alpha = sol[0]
            if alpha <= 0:
                raise InvalidParameterError(
                    "The moving image is anti-correlated with the structural image at the "
                    "registration: the channels do not match (use an ADF/HAADF channel).")
            dp = sol[2:] / alpha
            if model == "affine":
                da_ = np.array([[dp[0], dp[1]], [dp[2], dp[3]]])
                dt = dp[4:6]
            else:
                da_ = np.array([[dp[0], -dp[1]], [dp[1], dp[0]]])
                dt = dp[2:4]
            # T(u) = A u + t ; the update is expressed in centred coordinates
            m[:, :2] += da_
            m[:, 2] += dt - da_ @ c
            step = np.abs(da_).max() * np.abs(du).max() + np.abs(dt).max()
            r = q - J @ sol
            resid_var = float(r @ r / max(len(q) - J.shape[1], 1))
            ncc = float(np.corrcoef(p, q)[0, 1])
            if step < 1e-4:
                break
    # covariance of the geometric parameters -> position uncertainty over the field
    cov = resid_var * np.linalg.pinv(J.T @ J)[2:, 2:] / sol[0] ** 2
    d = du
    if model == "affine":
        gxp = np.column_stack([d[:, 0], d[:, 1], 0 * d[:, 0], 0 * d[:, 0], np.ones(len(d)),
                               0 * d[:, 0]])
        gyp = np.column_stack([0 * d[:, 0], 0 * d[:, 0], d[:, 0], d[:, 1], 0 * d[:, 0],
                               np.ones(len(d))])
    else:
        gxp = np.column_stack([d[:, 0], -d[:, 1], np.ones(len(d)), 0 * d[:, 0]])
        gyp = np.column_stack([d[:, 1], d[:, 0], 0 * d[:, 0], np.ones(len(d))])
    var = np.einsum("np,pq,nq->n", gxp, cov, gxp) + np.einsum("np,pq,nq->n", gyp, cov, gyp)
    return m, ncc, float(np.sqrt(np.mean(var)))


# --------------------------------------------------------------------------- public
def register(reference, moving, *, scale: float | None = None, rotation: float | None = None,
             model: str = "affine", symmetry: int = 4) -> Registration:
    """Affine map from the pixels of ``moving`` to the pixels of ``reference``.

    Parameters
    ----------
    reference : Signal2D or 2D array
        The structural image (e.g. HAADF), on whose pixels the cells are.
    moving : Signal2D or 2D array
        A channel of the other scan with the same contrast kind, e.g. the ADF
        image acquired simultaneously with a spectrum image.
    scale : float, optional
        Moving pixel size / reference pixel size. Default: from the two
        calibrations when both are lengths (nm, Angstrom, pm, um); else
        estimated from the log-polar power spectra.
    rotation : float, optional
        Scan rotation of ``moving`` relative to ``reference`` (degrees) when
        known; default: estimated (with the ``symmetry``-fold candidates).
    model : {"affine", "similarity"}
        ``"affine"`` (6 parameters: also takes up linear drift, i.e. shear
        and different x/y scales) or ``"similarity"`` (scale, rotation,
        shift).
    symmetry : int
        Rotations ``360 / symmetry`` apart are tried (the power spectrum of a
        square lattice repeats every 90 deg); 2 for a generic image.

    Returns
    -------
    Registration

    Raises
    ------
    InvalidImageError
        Not 2D images, NaN/inf, constant or tiny images.
    InvalidParameterError
        The images do not overlap (or not enough), anti-correlated channels,
        bad options.

    Examples
    --------
    >>> from causalspy.data import eels_spectrum_image
    >>> d = eels_spectrum_image(cells=(20, 20), seed=0)
    >>> reg = register(d.haadf, d.adf)
    >>> reg.error_px(d.truth.transform) < 0.5
    True
    """
    if model not in ("affine", "similarity"):
        raise InvalidParameterError(f"model must be 'affine' or 'similarity', not {model!r}.")
    if symmetry not in (1, 2, 4, 6):
        raise InvalidParameterError(f"symmetry must be 1, 2, 4 or 6, not {symmetry!r}.")
    ref, cal_r = _image(reference, "reference")
    mov, cal_m = _image(moving, "moving")
    if scale is None:
        fr, fm = _nm(cal_r["units"]), _nm(cal_m["units"])
        if fr is not None and fm is not None:
            scale = (abs(cal_m["scale"][0]) * fm) / (abs(cal_r["scale"][0]) * fr)
    if scale is not None and not (np.isfinite(scale) and 0.05 < scale < 20):
        raise InvalidParameterError(f"scale must be a finite number in (0.05, 20), got {scale!r}.")
    if rotation is None:
        theta0, scale_est = _rotation_scale(ref, mov, scale)
        step = 2 * np.pi / symmetry
        cands = [theta0 + k * step for k in range(symmetry)]
        if symmetry == 1:
            cands.append(theta0 + np.pi)  # the power spectrum leaves pi open
    else:
        _, scale_est = (0.0, scale) if scale is not None else _rotation_scale(ref, mov, None)
        cands = [np.radians(float(rotation))]
    scale = scale_est if scale is None else scale
    blur = 0.5 * _period(ref)
    best = None
    for th in cands:
        m, score = _translate(ref, mov, _linear(scale, th), blur)
        if best is None or score > best[1]:
            best = (m, score)
    if best[1] < 0.05:
        raise InvalidParameterError(
            "The moving image does not correlate with the structural image at any rotation "
            f"(best NCC {best[1]:.2f}): the grids do not overlap, or the channels differ.")
    m, ncc, unc = _refine(ref, mov, best[0], model, blur)
    return Registration(matrix=m, ncc=ncc, uncertainty_px=unc, moving_shape=mov.shape,
                        reference_shape=ref.shape, moving_calibration=cal_m)


# ----------------------------------------------------------------- map to cells
def _maps_of(maps) -> tuple[dict[str, np.ndarray], dict[str, str], dict, str]:
    """Named 2D maps, their units, their grid calibration and a title."""
    if isinstance(maps, dict):
        out = {str(k): np.asarray(v, float) for k, v in maps.items()}
        return out, {k: "" for k in out}, None, "maps"
    if hasattr(maps, "axes_manager"):
        from causalspy.signals.descriptor_maps import DescriptorMaps

        axes = maps.axes_manager.signal_axes
        cal = {"scale": [float(a.scale) for a in axes], "offset": [float(a.offset) for a in axes],
               "units": str(axes[0].units)}
        title = maps.metadata.get_item("General.title", "") or "maps"
        data = np.asarray(maps.data)
        if hasattr(data, "compute"):  # pragma: no cover - lazy maps
            data = data.compute()
        if isinstance(maps, DescriptorMaps) or maps.axes_manager.navigation_dimension == 1:
            names = getattr(maps, "descriptor_names", None) or [
                str(i) for i in range(data.shape[0])]
            try:
                units = list(maps.metadata.Descriptors.units)
            except AttributeError:
                units = [""] * len(names)
            return ({n: np.asarray(data[k], float) for k, n in enumerate(names)},
                    dict(zip(names, units, strict=False)), cal, title)
        if maps.axes_manager.signal_dimension == 2 and maps.axes_manager.navigation_dimension == 0:
            name = str(title).replace(" ", "_")
            q = maps.metadata.get_item("Signal.quantity", "") or ""
            return {name: data.astype(float)}, {name: str(q)}, cal, title
    raise InvalidParameterError(
        "maps must be a descriptor_maps signal, a single 2D image (Signal2D) or a dict of 2D "
        f"arrays; got {type(maps).__name__}.")


def _cells_of(cells):
    """Cell positions (structural px), the base table, units, calibration, metadata, lattice."""
    from causalspy.atoms.table import Atoms
    from causalspy.descriptors.result import Descriptors

    if isinstance(cells, Descriptors):
        t = cells.to_dataframe()
        return (t[["x", "y"]].to_numpy(float), t, dict(cells.units), dict(cells.calibration),
                dict(cells.metadata), cells.lattice, cells.image)
    if isinstance(cells, Atoms):
        t = cells.to_dataframe()
        keep = [c for c in ("x", "y", "x_cal", "y_cal", "sublattice", "edge") if c in t]
        t = t[keep].copy()
        t.insert(2, "column_index", np.arange(len(t)))
        units = {"x": "px", "y": "px", "x_cal": cells.calibration.get("x_units", ""),
                 "y_cal": cells.calibration.get("y_units", "")}
        return (t[["x", "y"]].to_numpy(float), t, units, dict(cells.calibration),
                {"structure": "columns", "source": cells.metadata.get("source", {})}, None,
                cells.image)
    arr = np.asarray(cells, float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidParameterError(
            "cells must be a Descriptors or Atoms result or an (n, 2) array of (x, y) px.")
    t = pd.DataFrame({"x": arr[:, 0], "y": arr[:, 1]})
    return arr, t, {"x": "px", "y": "px"}, {}, {"structure": "positions"}, None, None


def _pixel_positions(shape, cal_maps, registration, cal_cells):
    """Structural-px coordinates of every map pixel (row-major)."""
    h, w = shape
    vv, uu = np.mgrid[0:h, 0:w].astype(float)
    uv = np.stack([uu.ravel(), vv.ravel()], 1)
    if registration is not None:
        mc = registration.moving_calibration or {}
        if cal_maps is not None and mc and not (
                list(shape) == list(registration.moving_shape)
                and np.allclose(cal_maps["scale"], mc["scale"])
                and np.allclose(cal_maps["offset"], mc["offset"])):
            fa, fb = _nm(cal_maps["units"]), _nm(mc["units"])
            if cal_maps["units"] != mc["units"] and (fa is None or fb is None):
                raise InvalidParameterError(
                    f"The maps are calibrated in {cal_maps['units']!r}, the registered image in "
                    f"{mc['units']!r}: they cannot be placed on the same scan.")
            k = (fa / fb) if (fa and fb) else 1.0
            cal_xy = (uv * np.asarray(cal_maps["scale"]) + np.asarray(cal_maps["offset"])) * k
            uv = (cal_xy - np.asarray(mc["offset"])) / np.asarray(mc["scale"])
        return registration.apply(uv)
    # no registration: the two grids are related by their calibrations only
    if cal_maps is None or not cal_cells or cal_maps["units"] in ("px", "<undefined>", ""):
        return uv
    fa, fb = _nm(cal_maps["units"]), _nm(cal_cells.get("x_units", ""))
    if fa is None or fb is None:
        return uv
    cal_xy = (uv * np.asarray(cal_maps["scale"]) + np.asarray(cal_maps["offset"])) * fa / fb
    sx, sy = float(cal_cells.get("x_scale", 1.0)), float(cal_cells.get("y_scale", 1.0))
    ox, oy = float(cal_cells.get("x_offset", 0.0)), float(cal_cells.get("y_offset", 0.0))
    return np.column_stack([(cal_xy[:, 0] - ox) / sx, (cal_xy[:, 1] - oy) / sy])


def _partial_cells(pos: np.ndarray, counts: np.ndarray, xy: np.ndarray, reach: float,
                   min_coverage: float) -> np.ndarray:
    """Cells cut by the edge of the maps' field that hold too few pixels.

    The field is the quadrilateral of the corner pixel centres of ``xy``
    (``(h, w, 2)`` structural px). A cell whose pixels may lie farther than
    ``reach`` from it never touches the edge; the median count of those
    interior cells is the full count.
    """
    if min_coverage <= 0 or min(xy.shape[:2]) < 2:
        return np.zeros(len(pos), bool)
    corners = xy[[0, 0, -1, -1], [0, -1, -1, 0]]
    d = np.full(len(pos), np.inf)
    area2 = 0.0
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        area2 += a[0] * b[1] - a[1] * b[0]
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        t = b - a
        # signed distance to the edge's line, positive inside (either corner orientation)
        side = (t[0] * (pos[:, 1] - a[1]) - t[1] * (pos[:, 0] - a[0])) / np.hypot(*t)
        d = np.minimum(d, side * np.sign(area2))
    interior = (d > reach) & (counts > 0)
    if not interior.any():
        return np.zeros(len(pos), bool)
    full = float(np.median(counts[interior]))
    return (d <= reach) & (counts > 0) & (counts < min_coverage * full)


def map_to_cells(maps, cells, registration: Registration | None = None, *,
                 mode: str = "voronoi", radius: float | None = None,
                 names: list[str] | None = None, prefix: str = "", min_pixels: int = 1,
                 min_coverage: float = 0.5, errors: bool = False):
    """Average per-pixel maps over every cell and add them to the cell table.

    Parameters
    ----------
    maps : descriptor_maps signal, Signal2D or dict of 2D arrays
        Per-pixel maps (spectral, 4D-STEM, a simultaneous image); the maps of
        a ``descriptor_maps`` signal keep their names and units.
    cells : Descriptors, Atoms or (n, 2) array
        Where the cells/columns are (structural px): a ``Descriptors`` result
        (its table is kept and extended), an ``Atoms`` result (one row per
        column) or positions.
    registration : Registration, optional
        From :func:`register` (maps of the moving scan, on its grid or on
        another calibrated grid of the same scan). Default: the maps are
        placed through the two calibrations (same scan, no rotation/drift).
    mode : {"voronoi", "window"}
        ``"voronoi"``: each pixel goes to its nearest cell, if within
        ``0.75`` of the median cell spacing; ``"window"``: every pixel within
        ``radius`` (structural px) of a cell counts for that cell.
    radius : float, optional
        Window radius (default: 0.35 of the cell spacing).
    names : list of str, optional
        Maps to take (default: all).
    prefix : str
        Prepended to the new column names (e.g. ``"eels_"``).
    min_pixels : int
        Cells with fewer pixels get NaN.
    min_coverage : float
        Cells cut by the edge of the maps' field of view get NaN when they
        hold fewer than this fraction of the median pixel count of the cells
        well inside the field: a cell mostly outside the scan is otherwise
        represented by a few pixels on its border, which can carry the
        neighbouring cell's signal. 0 keeps every cell with ``min_pixels``.
    errors : bool
        Also add ``<name>_sem`` (standard error of the cell mean).

    Returns
    -------
    Descriptors
        The cell table with one new column per map (the cell mean; a map
        named ``<x>_err`` next to ``<x>`` becomes the error of the mean,
        ``sqrt(sum err^2) / n``), units from the maps, and provenance in
        ``metadata["multimodal"]``.

    Raises
    ------
    InvalidParameterError
        The maps and the cells do not overlap, unknown names or modes.
    """
    from scipy.spatial import cKDTree

    from causalspy.descriptors.result import Descriptors

    if mode not in ("voronoi", "window"):
        raise InvalidParameterError(f"mode must be 'voronoi' or 'window', not {mode!r}.")
    mp, units_m, cal_maps, title = _maps_of(maps)
    if names is not None:
        unknown = [n for n in names if n not in mp]
        if unknown:
            raise InvalidParameterError(f"No map(s) {unknown}; available: {list(mp)}.")
        mp = {n: mp[n] for n in names}
    shapes = {v.shape for v in mp.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InvalidParameterError(f"All maps must be 2D and of one shape; got {shapes}.")
    shape = next(iter(shapes))
    pos, table, units, cal_cells, meta, lattice, image = _cells_of(cells)
    if len(pos) < 1 or not np.all(np.isfinite(pos)):
        raise InvalidParameterError("The cells need finite positions (x, y).")
    tree = cKDTree(pos)
    if len(pos) > 1:
        spacing = float(np.median(tree.query(pos, k=2)[0][:, 1]))
    else:
        spacing = float(max(shape))
    xy = _pixel_positions(shape, cal_maps, registration, cal_cells)
    n_cells = len(pos)
    if mode == "voronoi":
        dist, idx = tree.query(xy, distance_upper_bound=0.75 * spacing)
        hit = np.isfinite(dist)
        cell = idx[hit]
        pix = np.flatnonzero(hit)
        par = {"max_distance_px": 0.75 * spacing}
    else:
        r = 0.35 * spacing if radius is None else float(radius)
        if not (np.isfinite(r) and r > 0):
            raise InvalidParameterError(f"radius must be a positive number, got {radius!r}.")
        sp = cKDTree(xy).sparse_distance_matrix(tree, r, output_type="ndarray")
        pix, cell = sp["i"].astype(np.int64), sp["j"].astype(np.int64)
        par = {"radius_px": r}
    if cell.size == 0:
        raise InvalidParameterError(
            "The maps do not overlap the cells: no map pixel falls on any cell after the "
            "transform. Check the registration (or the calibrations), and that both cover the "
            "same region.")
    out = table.copy()
    new_units = {}
    counts_any = np.bincount(cell, minlength=n_cells)
    reach = par.get("max_distance_px", par.get("radius_px"))
    partial = _partial_cells(pos, counts_any, xy.reshape(shape + (2,)), reach,
                             float(min_coverage))
    par["min_coverage"] = float(min_coverage)
    par["cells_dropped_at_field_edge"] = int(partial.sum())
    for name, arr in mp.items():
        v = np.asarray(arr, float).ravel()[pix]
        good = np.isfinite(v)
        n = np.bincount(cell[good], minlength=n_cells).astype(float)
        base = name[:-4] if name.endswith("_err") else None
        with np.errstate(invalid="ignore", divide="ignore"):
            if base is not None and base in mp:
                val = np.sqrt(np.bincount(cell[good], v[good] ** 2, minlength=n_cells)) / n
            else:
                s1 = np.bincount(cell[good], v[good], minlength=n_cells)
                val = s1 / n
                if errors:
                    s2 = np.bincount(cell[good], v[good] ** 2, minlength=n_cells)
                    var = np.clip(s2 / n - val**2, 0, None) * n / np.maximum(n - 1, 1)
                    sem = np.sqrt(var / n)
                    sem[(n < 2) | partial] = np.nan
                    out[f"{prefix}{name}_sem"] = sem
                    new_units[f"{prefix}{name}_sem"] = units_m.get(name, "")
        val[(n < max(int(min_pixels), 1)) | partial] = np.nan
        out[f"{prefix}{name}"] = val
        new_units[f"{prefix}{name}"] = units_m.get(name, "")
    covered = int(((counts_any >= max(int(min_pixels), 1)) & ~partial).sum())
    meta = dict(meta)
    prov = list(meta.get("multimodal", []))
    prov.append({"source": str(title), "names": [f"{prefix}{n}" for n in mp], "mode": mode,
                 **par, "cells_with_data": covered, "cells": n_cells,
                 "registration": registration.to_dict() if registration is not None else None,
                 "map_calibration": cal_maps})
    meta["multimodal"] = prov
    units = {**units, **new_units}
    return Descriptors(out, units=units, calibration=cal_cells, metadata=meta, lattice=lattice,
                       image=image)


def coregister(cells, maps, *, reference=None, moving=None,
               registration: Registration | None = None, **kwargs):
    """Register (when ``reference`` and ``moving`` are given) and map onto the cells.

    ``register(reference, moving)`` then ``map_to_cells(maps, cells, reg,
    **kwargs)``; ``kwargs`` also take ``scale``, ``rotation``, ``model`` and
    ``symmetry`` for the registration.

    Returns
    -------
    Descriptors
        The registration summary is in ``metadata["multimodal"][-1]``.
    """
    reg_kw = {k: kwargs.pop(k) for k in ("scale", "rotation", "model", "symmetry")
              if k in kwargs}
    if registration is None and (reference is not None or moving is not None):
        if reference is None or moving is None:
            raise InvalidParameterError("Registration needs both reference= (the structural "
                                        "image) and moving= (e.g. the simultaneous ADF).")
        registration = register(reference, moving, **reg_kw)
    return map_to_cells(maps, cells, registration, **kwargs)
