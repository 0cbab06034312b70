"""Per-pixel spectral descriptors of EELS and EDS spectrum images.

Every descriptor is computed for all spectra at once, on ``(n_spectra,
n_channels)`` blocks: each block goes through one kernel that fits the
backgrounds, aligns the edges and integrates the windows, so eager arrays
(in blocks that bound memory), lazy (Dask, out of core) and distributed data
go through the same code. Energies and windows are in the units of the
signal's energy axis (eV for EELS, keV for EDS).

Descriptors
-----------
``{edge}_onset``, ``{edge}_shift``, ``{edge}_shift_err``
    Edge onset (energy of the steepest rise of the reference edge plus the
    shift), and the chemical shift of each spectrum against a reference
    (the mean spectrum, or a standard the user gives), with its 1-sigma
    uncertainty. The shift ``d`` is the least-squares alignment
    ``y(E) ~ a r(E - d) + c_0 + c_1 E`` of the background-subtracted
    spectrum ``y`` to the reference ``r`` (Gauss-Newton from ``d = 0`` with
    Poisson weights; ``r`` is interpolated on a 16x finer grid, so the shift
    is sub-channel without pixel locking).
``{edge}_l3_l2``, ``{edge}_l3_l2_err``
    White-line ratio: integrals of the background-subtracted spectrum over
    the L3 and L2 windows after removing a double step of heights 2:1 at the
    (shifted) L3 and L2 onsets whose level is the mean continuum above the
    L2 edge (Pearson et al. 1993).
``plasmon``, ``plasmon_err``
    Plasmon peak energy: vertex of a Poisson-weighted parabola fitted around
    the maximum (twice, re-centred), with its uncertainty.
``{name}`` and ``{name}_err`` of an integral
    Background-subtracted integral of a window (EELS edge: power law fitted
    before it; EDS line: a straight line through windows on both sides).

Power-law background ``A E^-r``: weighted least squares of ``log y`` on
``log E`` over the pre-edge window (weights ``y``, since
``var(log y) ~ 1/y`` for Poisson counts), closed form per spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalspy.exceptions import InvalidImageError, InvalidParameterError

__all__ = [
    "Edge",
    "Integral",
    "check_spectrum_image",
    "edge",
    "eds_line",
    "spectral_descriptors",
    "spectral_descriptor_maps",
    "spectral_loadings",
]

Window = tuple[float, float]


# --------------------------------------------------------------------------- specs
@dataclass
class Edge:
    """An ionization edge: windows for its background, shift and white lines.

    Attributes
    ----------
    name : str
        Prefix of the descriptor names (e.g. ``"Ti_L23"``).
    onset : float
        Nominal onset (L3 for an L2,3 edge), axis units.
    background : (float, float)
        Pre-edge window of the power-law fit.
    window : (float, float)
        Window of the shift alignment.
    l3, l2 : (float, float), optional
        White-line windows; with both, the L3/L2 ratio is measured.
    l2_onset : float, optional
        Nominal L2 onset (for the 2:1 continuum step).
    continuum : (float, float), optional
        Window above the L2 edge whose mean level is the step height.
    """

    name: str
    onset: float
    background: Window
    window: Window
    l3: Window | None = None
    l2: Window | None = None
    l2_onset: float | None = None
    continuum: Window | None = None


@dataclass
class Integral:
    """A background-subtracted window integral (elemental signal).

    Attributes
    ----------
    name : str
        Descriptor name (e.g. ``"Ti_L23_signal"``, ``"Fe_Ka"``).
    window : (float, float)
        Integration window.
    background : "powerlaw", "linear" or None
        ``"powerlaw"``: fitted over ``fit`` (one window before the signal,
        EELS); ``"linear"``: a straight line through ``fit`` (windows on both
        sides, EDS); None: raw counts.
    fit : tuple of windows
        Background window(s).
    """

    name: str
    window: Window
    background: str | None = "powerlaw"
    fit: tuple[Window, ...] = ()


def _edge_db(element: str, shell: str) -> float:
    """Onset (eV) of an edge from exspy's database."""
    try:
        from exspy.material import elements
    except ImportError as e:  # pragma: no cover - exspy is a dependency
        raise InvalidParameterError(
            "Edge names need exspy's database (pip install exspy); or give the energies "
            "with Edge(...).") from e
    try:
        return float(elements[element].Atomic_properties.Binding_energies[shell]
                     ["onset_energy (eV)"])
    except (KeyError, AttributeError):
        raise InvalidParameterError(
            f"No {element} {shell} edge in exspy's database; give the energies with "
            "Edge(name, onset, background, window, ...).") from None


def edge(name: str, *, units: str = "eV") -> Edge:
    """An :class:`Edge` with default windows from exspy's edge database.

    Parameters
    ----------
    name : str
        ``"Element_Shell"``: ``"Ti_L23"`` (L3 and L2 white lines and their
        ratio), ``"Mn_L23"``, ``"O_K"``, ``"Fe_L3"``, ...
    units : {"eV", "keV"}
        Units of the signal's energy axis.

    Returns
    -------
    Edge
        Background ``onset - 30 .. onset - 5``; shift window ``onset - 6 ..
        onset + 20`` (``L2 + 12`` for L2,3); for L2,3 edges L3 ``onset - 2 ..
        mid``, L2 ``mid .. L2 + 5`` (mid = halfway between the L3 and L2
        white lines), continuum ``L2 + 9 .. L2 + 19``.
    """
    try:
        el, shell = name.split("_")
    except ValueError:
        raise InvalidParameterError(
            f"Edge names look like 'Ti_L23' or 'O_K', got {name!r}.") from None
    f = {"ev": 1.0, "kev": 1e-3}.get(units.lower())
    if f is None:
        raise InvalidParameterError(f"units must be 'eV' or 'keV', got {units!r}.")
    if shell in ("L23", "M45"):
        hi_shell, lo_shell = {"L23": ("L3", "L2"), "M45": ("M5", "M4")}[shell]
        e3, e2 = _edge_db(el, hi_shell), _edge_db(el, lo_shell)
        mid = 0.5 * (e3 + e2) + 1.5
        return Edge(name, e3 * f, ((e3 - 30) * f, (e3 - 5) * f), ((e3 - 6) * f, (e2 + 12) * f),
                    l3=((e3 - 2) * f, mid * f), l2=(mid * f, (e2 + 5) * f), l2_onset=e2 * f,
                    continuum=((e2 + 9) * f, (e2 + 19) * f))
    e0 = _edge_db(el, shell)
    return Edge(name, e0 * f, ((e0 - 30) * f, (e0 - 5) * f), ((e0 - 6) * f, (e0 + 20) * f))


def eds_line(line: str, fwhm: float = 0.13) -> Integral:
    """An EDS line integral (keV) with linear background windows on both sides.

    Parameters
    ----------
    line : str
        ``"Element_Line"`` as in exspy's database, e.g. ``"Fe_Ka"``, ``"Sr_La"``.
    fwhm : float
        Detector resolution at the line (keV): the window is +/- 1.2 FWHM,
        the background windows 1 FWHM wide, 2 FWHM away on each side.
    """
    try:
        from exspy.material import elements

        el, ln = line.split("_")
        e = float(elements[el].Atomic_properties.Xray_lines[ln]["energy (keV)"])
    except (ValueError, KeyError, AttributeError):
        raise InvalidParameterError(
            f"No X-ray line {line!r} in exspy's database (names look like 'Fe_Ka'); give the "
            "windows with Integral(...).") from None
    w = 1.2 * fwhm
    return Integral(line, (e - w, e + w), "linear",
                    ((e - w - 2 * fwhm, e - w - fwhm), (e + w + fwhm, e + w + 2 * fwhm)))


# --------------------------------------------------------------------------- input
def _energy_axis(s):
    if not hasattr(s, "axes_manager"):
        raise InvalidImageError(
            "A spectrum image must be a HyperSpy signal with a calibrated energy axis (e.g. "
            "hs.signals.Signal1D(data) with axes_manager.signal_axes[0].scale/offset/units set, "
            "or a file loaded with hs.load); a bare array has no energy calibration.")
    return s.axes_manager.signal_axes[0] if s.axes_manager.signal_dimension else None


def check_spectrum_image(s, *, navigation: tuple[int, ...] = (1, 2)) -> None:
    """Raise a clear error unless ``s`` is a spectrum image with an energy axis.

    A spectrum image has one signal axis (energy, in eV or keV) and
    ``navigation`` scan axes (1 or 2).
    """
    ax = _energy_axis(s)
    nav, sig = s.axes_manager.navigation_dimension, s.axes_manager.signal_dimension
    if sig != 1:
        raise InvalidImageError(
            f"A spectrum image needs exactly one signal (energy) axis; this signal has {sig} "
            f"signal axes (shape {tuple(s.data.shape)}). Use s.transpose(signal_axes=1) or "
            "s.as_signal1D(-1).")
    if nav not in navigation:
        raise InvalidImageError(
            f"A spectrum image needs {' or '.join(map(str, navigation))} navigation (scan) axes; "
            f"this signal has {nav} (shape {tuple(s.data.shape)}).")
    units = str(ax.units).strip().lower()
    if units not in ("ev", "kev"):
        raise InvalidImageError(
            f"The spectrum image has no energy calibration (energy axis units {ax.units!r}, "
            f"scale {ax.scale if hasattr(ax, 'scale') else '?'}, offset "
            f"{ax.offset if hasattr(ax, 'offset') else '?'}): set "
            "s.axes_manager.signal_axes[0].scale, .offset and .units ('eV' or 'keV') first.")
    if ax.size < 16:
        raise InvalidImageError(f"The spectra have {ax.size} channels; at least 16 are needed.")
    dt = np.dtype(s.data.dtype)
    if dt.kind == "c" or dt.kind not in "fiub":
        raise InvalidImageError(f"Spectra must be real numbers, not {dt}.")


def _is_lazy(s) -> bool:
    return type(s.data).__module__.startswith("dask")


def _window_index(e: np.ndarray, win: Window, what: str, min_channels: int = 3) -> np.ndarray:
    lo, hi = float(win[0]), float(win[1])
    idx = np.flatnonzero((e >= lo) & (e <= hi))
    if hi <= lo or idx.size < min_channels:
        raise InvalidParameterError(
            f"The {what} window {lo:g}-{hi:g} holds {idx.size} channel(s) of the energy axis "
            f"({e[0]:g}-{e[-1]:g}); it needs at least {min_channels}: widen it or check the "
            "energy calibration.")
    return idx


# ------------------------------------------------------------------ fitting helpers
def _wls(X: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Weighted least squares per spectrum: ``y[n, k] ~ X[n, k, p] @ beta[n, p]``.

    Returns ``beta`` and the inverse normal matrix ``(X^T W X)^-1`` (the
    covariance when ``w`` are inverse variances).
    """
    Xw = X * w[..., None]
    A = np.einsum("nkp,nkq->npq", Xw, X)
    b = np.einsum("nkp,nk->np", Xw, y)
    A = A + np.eye(A.shape[-1]) * (1e-12 * np.trace(A, axis1=1, axis2=2)[:, None, None] + 1e-300)
    Ainv = np.linalg.inv(A)
    return np.einsum("npq,nq->np", Ainv, b), Ainv


def _powerlaw(y: np.ndarray, e: np.ndarray, idx: np.ndarray):
    """Fit ``A E^-r`` over channels ``idx`` of every spectrum.

    Returns ``(log A, r, cov)``, with ``cov`` the ``(n, 2, 2)`` covariance of
    ``(log A, -r)``.
    """
    yy = np.maximum(y[:, idx], 1.0)
    le = np.log(e[idx])
    X = np.broadcast_to(np.stack([np.ones_like(le), le], 1), (len(y), le.size, 2))
    beta, cov = _wls(X, np.log(yy), yy)
    return beta[:, 0], -beta[:, 1], cov


def _powerlaw_eval(loga, r, e):
    return np.exp(loga[:, None] - r[:, None] * np.log(e)[None, :])


def _powerlaw_sum_var(loga, r, cov, e_win):
    """Sum of the extrapolated background over ``e_win`` and its variance."""
    b = _powerlaw_eval(loga, r, e_win)
    g = np.stack([b.sum(1), (b * np.log(e_win)[None, :]).sum(1)], 1)  # d/d(logA), d/d(-r)
    return b.sum(1), np.einsum("np,npq,nq->n", g, cov, g)


# --------------------------------------------------------------------------- plan
@dataclass
class _EdgePlan:
    spec: Edge
    bg_idx: np.ndarray
    fit_idx: np.ndarray
    fine_e: np.ndarray
    ref: np.ndarray
    dref: np.ndarray
    ref_onset: float
    max_shift: float
    l3_idx: np.ndarray | None = None
    l2_idx: np.ndarray | None = None
    cont_idx: np.ndarray | None = None


@dataclass
class _Plan:
    e: np.ndarray
    width: np.ndarray  # channel widths
    edges: list
    integrals: list  # (Integral, win_idx, fit_idx_list)
    plasmon: tuple | None  # (idx window, half width in channels)

    def names(self) -> list[str]:
        out = []
        for p in self.edges:
            n = p.spec.name
            out += [f"{n}_onset", f"{n}_shift", f"{n}_shift_err"]
            if p.l3_idx is not None:
                out += [f"{n}_l3_l2", f"{n}_l3_l2_err"]
        for integ, *_ in self.integrals:
            out += [integ.name, f"{integ.name}_err"]
        if self.plasmon is not None:
            out += ["plasmon", "plasmon_err"]
        return out


def _ref_spectrum(mean: np.ndarray, e: np.ndarray, spec: Edge):
    """Background-subtracted reference and its onset (steepest rise near the nominal onset)."""
    bg_idx = _window_index(e, spec.background, f"{spec.name} background")
    loga, r, _ = _powerlaw(mean[None, :], e, bg_idx)
    sig = mean - _powerlaw_eval(loga, r, e)[0]
    step = float(np.median(np.diff(e)))
    fine = np.arange(e[0], e[-1], step / 16.0)
    ref = np.interp(fine, e, sig)
    # light smoothing (0.7 channel) against noise in the reference; same for its derivative
    from scipy.ndimage import gaussian_filter1d

    ref = gaussian_filter1d(ref, 16 * 0.7)
    dref = np.gradient(ref, fine)
    tol = 0.2 * (spec.window[1] - spec.window[0])
    near = (fine >= spec.onset - tol) & (fine <= spec.onset + tol)
    if not near.any():
        raise InvalidParameterError(
            f"The {spec.name} onset {spec.onset:g} is outside the energy axis ({e[0]:g}-{e[-1]:g}).")
    k = np.flatnonzero(near)[np.argmax(dref[near])]
    return fine, ref, dref, float(fine[k])


def _plan(s, e, edges, integrals, plasmon, reference, max_shift) -> _Plan:
    edges = [edge(x, units=s.axes_manager.signal_axes[0].units) if isinstance(x, str) else x
             for x in edges]
    for x in edges:
        if not isinstance(x, Edge):
            raise InvalidParameterError(f"edges takes names like 'Ti_L23' or Edge objects, "
                                        f"not {x!r}.")
    plans = []
    mean = None
    if edges:
        if reference is not None:
            mean = np.asarray(getattr(reference, "data", reference), float)
            if mean.shape != e.shape:
                raise InvalidParameterError(
                    f"The reference spectrum has {mean.shape} channels; the spectrum image has "
                    f"{e.shape} (same energy axis needed).")
        else:
            mean = _mean_spectrum(s)
    for spec in edges:
        bg_idx = _window_index(e, spec.background, f"{spec.name} background")
        fit_idx = _window_index(e, spec.window, f"{spec.name} shift", 8)
        if spec.background[1] >= spec.onset:
            raise InvalidParameterError(
                f"The {spec.name} background window ({spec.background[0]:g}-"
                f"{spec.background[1]:g}) must end before the edge onset ({spec.onset:g}).")
        if not np.all(e[bg_idx] > 0):
            raise InvalidParameterError(
                f"The {spec.name} background window must be at positive energies (power law).")
        fine, ref, dref, onset = _ref_spectrum(mean, e, spec)
        p = _EdgePlan(spec, bg_idx, fit_idx, fine, ref, dref, onset, max_shift)
        if spec.l3 is not None and spec.l2 is not None:
            p.l3_idx = _window_index(e, spec.l3, f"{spec.name} L3")
            p.l2_idx = _window_index(e, spec.l2, f"{spec.name} L2")
            if spec.continuum is not None:
                p.cont_idx = _window_index(e, spec.continuum, f"{spec.name} continuum")
        plans.append(p)
    ints = []
    for integ in integrals:
        if not isinstance(integ, Integral):
            raise InvalidParameterError(f"integrals takes Integral objects, not {integ!r}.")
        win = _window_index(e, integ.window, f"{integ.name} signal", 1)
        if integ.background not in (None, "powerlaw", "linear"):
            raise InvalidParameterError(
                f"Integral background must be 'powerlaw', 'linear' or None, not "
                f"{integ.background!r}.")
        fits = [_window_index(e, w, f"{integ.name} background") for w in integ.fit]
        if integ.background is not None and not fits:
            raise InvalidParameterError(f"Integral {integ.name!r} needs background window(s) "
                                        "(fit=...) or background=None.")
        ints.append((integ, win, np.concatenate(fits) if fits else None))
    plas = None
    if plasmon is not None:
        idx = _window_index(e, plasmon, "plasmon", 8)
        step = float(np.median(np.diff(e)))
        plas = (idx, max(3, int(round(1.5 / step))) if plasmon[1] > 2 else 3)
    return _Plan(e, np.gradient(e), plans, ints, plas)


# --------------------------------------------------------------------------- kernel
def _edge_kernel(y: np.ndarray, e: np.ndarray, p: _EdgePlan, n_iter: int = 5):
    loga, r, _ = _powerlaw(y, e, p.bg_idx)
    ew = e[p.fit_idx]
    raw = y[:, p.fit_idx]
    sig = raw - _powerlaw_eval(loga, r, ew)
    w = 1.0 / np.maximum(raw, 1.0)
    n = len(y)
    d = np.zeros(n)
    f0, df = p.fine_e[0], p.fine_e[1] - p.fine_e[0]
    xc = (ew - ew.mean()) / max(ew.std(), 1e-12)
    ones = np.ones((n, ew.size))
    cov = None
    beta = None
    for _ in range(n_iter):
        q = np.clip(((ew[None, :] - d[:, None]) - f0) / df, 0, p.ref.size - 1.001)
        i0 = q.astype(np.int64)
        fr = q - i0
        rv = p.ref[i0] * (1 - fr) + p.ref[i0 + 1] * fr
        dv = p.dref[i0] * (1 - fr) + p.dref[i0 + 1] * fr
        X = np.stack([rv, dv, ones, np.broadcast_to(xc, rv.shape)], -1)
        beta, cov = _wls(X, sig, w)
        a = beta[:, 0]
        a_safe = np.where(np.abs(a) > 1e-12, a, np.nan)
        step = -beta[:, 1] / a_safe
        d = np.clip(np.nan_to_num(d + step, nan=0.0), -p.max_shift, p.max_shift)
    resid = sig - np.einsum("nkp,np->nk", X, beta)
    chi2 = (resid**2 * w).sum(1) / max(ew.size - 4, 1)
    a = beta[:, 0]
    err = np.sqrt(np.clip(cov[:, 1, 1] * np.maximum(chi2, 1e-12), 0, None)) / np.abs(a)
    bad = ~(a > 0)
    d = np.where(bad, np.nan, d)
    err = np.where(bad, np.nan, err)
    out = [p.ref_onset + d, d, err]
    if p.l3_idx is not None:
        out += list(_white_lines(y, e, p, loga, r, d))
    return out


def _white_lines(y, e, p: _EdgePlan, loga, r, d):
    """L3/L2 ratio after subtracting the background and the 2:1 continuum steps."""
    spec = p.spec
    d0 = np.nan_to_num(d)
    sums, vars_ = [], []
    if p.cont_idx is not None:
        ec = e[p.cont_idx]
        lev = (y[:, p.cont_idx] - _powerlaw_eval(loga, r, ec)).mean(1)
    else:
        lev = np.zeros(len(y))
    e3 = spec.onset + d0
    e2 = (spec.l2_onset if spec.l2_onset is not None else spec.onset) + d0
    for idx in (p.l3_idx, p.l2_idx):
        ew = e[idx]
        lo = ew[0] - 0.5 * (ew[1] - ew[0])
        hi = ew[-1] + 0.5 * (ew[1] - ew[0])
        raw = y[:, idx]
        b = _powerlaw_eval(loga, r, ew)
        # channel counts: the step contributes its level times the channels above the onset
        step_len = (2 / 3 * np.clip(hi - np.maximum(e3, lo), 0, None)
                    + 1 / 3 * np.clip(hi - np.maximum(e2, lo), 0, None)) / (ew[1] - ew[0])
        sums.append(raw.sum(1) - b.sum(1) - lev * step_len)
        vars_.append(np.maximum(raw.sum(1), 1.0))
    i3, i2 = sums
    ratio = i3 / np.where(np.abs(i2) > 0, i2, np.nan)
    err = np.abs(ratio) * np.sqrt(vars_[0] / np.maximum(i3**2, 1e-300)
                                  + vars_[1] / np.maximum(i2**2, 1e-300))
    return ratio, err


def _integral_kernel(y, e, integ: Integral, win, fit):
    raw = y[:, win].sum(1)
    if integ.background is None:
        return raw, np.sqrt(np.maximum(raw, 0))
    if integ.background == "powerlaw":
        loga, r, cov = _powerlaw(y, e, fit)
        b, vb = _powerlaw_sum_var(loga, r, cov, e[win])
    else:
        ef = e[fit]
        xc = ef.mean()
        X = np.broadcast_to(np.stack([np.ones_like(ef), ef - xc], 1), (len(y), ef.size, 2))
        beta, cov = _wls(X, y[:, fit], 1.0 / np.maximum(y[:, fit], 1.0))
        g = np.stack([np.full(len(y), win.size), np.full(len(y), (e[win] - xc).sum())], 1)
        b = (g * beta).sum(1)
        vb = np.einsum("np,npq,nq->n", g, cov, g)
    return raw - b, np.sqrt(np.maximum(raw, 0) + vb)


def _plasmon_kernel(y, e, idx, half):
    from scipy.ndimage import gaussian_filter1d

    seg = gaussian_filter1d(y[:, idx].astype(float), 2.0, axis=1)
    k = np.argmax(seg, axis=1)
    k = np.clip(k, half, idx.size - 1 - half)
    pos = idx[0] + k
    n = len(y)
    off = np.arange(-half, half + 1)
    v = np.full(n, np.nan)
    err = np.full(n, np.nan)
    centre = e[pos]
    for _ in range(2):  # fit, re-centre on the vertex, fit again
        j = np.clip(np.searchsorted(e, centre)[:, None] + off[None, :], 0, e.size - 1)
        x = e[j] - centre[:, None]
        yy = y[np.arange(n)[:, None], j].astype(float)
        X = np.stack([np.ones_like(x), x, x * x], -1)
        beta, cov = _wls(X, yy, 1.0 / np.maximum(yy, 1.0))
        c1, c2 = beta[:, 1], beta[:, 2]
        ok = c2 < 0
        vert = np.where(ok, -c1 / np.where(ok, 2 * c2, -1.0), 0.0)
        vert = np.clip(vert, x[:, 0], x[:, -1])
        g = np.stack([np.zeros(n), -1 / (2 * np.where(ok, c2, -1.0)),
                      c1 / (2 * np.where(ok, c2, -1.0) ** 2)], 1)
        resid = yy - np.einsum("nkp,np->nk", X, beta)
        chi2 = (resid**2 / np.maximum(yy, 1.0)).sum(1) / max(off.size - 3, 1)
        var = np.einsum("np,npq,nq->n", g, cov, g) * np.maximum(chi2, 1e-12)
        v = np.where(ok, centre + vert, np.nan)
        err = np.where(ok, np.sqrt(np.clip(var, 0, None)), np.nan)
        centre = np.where(ok, centre + vert, centre)
    return v, err


def _kernel(block: np.ndarray, plan: _Plan) -> np.ndarray:
    """All descriptors of a ``(..., n_channels)`` block: ``(..., n_descriptors)``."""
    shape = block.shape[:-1]
    y = np.asarray(block, dtype=np.float64).reshape(-1, block.shape[-1])
    if not np.all(np.isfinite(y)):
        bad = int((~np.all(np.isfinite(y), axis=1)).sum())
        raise InvalidImageError(
            f"{bad} spectra contain NaN or inf values; remove or fill those pixels first "
            "(e.g. s.data = numpy.nan_to_num(s.data), or crop them away).")
    out = []
    e = plan.e
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for p in plan.edges:
            out += _edge_kernel(y, e, p)
        for integ, win, fit in plan.integrals:
            out += list(_integral_kernel(y, e, integ, win, fit))
        if plan.plasmon is not None:
            out += list(_plasmon_kernel(y, e, *plan.plasmon))
    res = np.stack(out, -1) if out else np.zeros((len(y), 0))
    return res.reshape(shape + (res.shape[-1],))


def _mean_spectrum(s) -> np.ndarray:
    data = s.data
    nav = tuple(range(data.ndim - 1))
    m = data.mean(axis=nav, dtype=np.float64)
    if _is_lazy(s):
        m = m.compute()
    m = np.asarray(m, float)
    if not np.all(np.isfinite(m)):
        raise InvalidImageError(
            "Some spectra contain NaN or inf values; remove or fill those pixels first "
            "(e.g. s.data = numpy.nan_to_num(s.data), or crop them away).")
    return m


# --------------------------------------------------------------------------- public
_UNITS_BY_KIND = {"onset": "E", "shift": "E", "shift_err": "E", "l3_l2": "", "l3_l2_err": "",
                  "plasmon": "E", "plasmon_err": "E"}


def spectral_descriptors(s, *, edges=(), integrals=(), plasmon: Window | None = None,
                         reference=None, max_shift: float = 5.0, block_size: int = 4096,
                         scheduler=None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Spectral descriptors of every spectrum of a spectrum image.

    Parameters
    ----------
    s : hyperspy Signal1D (EELSSpectrum, EDSSpectrum), eager or lazy
        One energy (signal) axis in eV or keV, 1 or 2 navigation axes.
    edges : sequence of str or Edge
        Edges to measure: onset, chemical shift (with uncertainty) and, for
        L2,3 / M4,5 edges, the white-line ratio. Names (``"Ti_L23"``) take
        their windows from exspy's database (see :func:`edge`).
    integrals : sequence of Integral
        Background-subtracted window integrals (EELS edges, EDS lines; see
        :func:`eds_line`).
    plasmon : (float, float), optional
        Window of the plasmon peak (low-loss spectra), e.g. ``(15, 45)``.
    reference : array or Signal1D, optional
        Reference spectrum for the chemical shift (same energy axis), e.g.
        a standard; default the mean spectrum of ``s`` (shifts relative to
        the mean).
    max_shift : float
        Largest shift searched (axis units).
    block_size : int
        Spectra per block for eager data (bounds memory).
    scheduler : optional
        Dask scheduler for lazy data (e.g. a ``distributed.Client``).

    Returns
    -------
    maps : dict of ndarray
        Navigation-shaped arrays (NaN where a fit failed).
    units : dict of str

    Raises
    ------
    InvalidImageError
        Not a spectrum image, no energy calibration, NaN/inf spectra.
    InvalidParameterError
        Windows outside the energy axis or empty, unknown edges.

    Notes
    -----
    Lazy data are read once for the descriptors, plus once for the mean
    spectrum when edges are measured without a ``reference``.
    """
    check_spectrum_image(s)
    ax = s.axes_manager.signal_axes[0]
    e = np.asarray(ax.axis, float)
    if not np.all(np.diff(e) > 0):
        raise InvalidImageError("The energy axis must increase monotonically.")
    if not (edges or integrals or plasmon is not None):
        raise InvalidParameterError(
            "Nothing to measure: give edges=, integrals= and/or plasmon=.")
    lazy = _is_lazy(s)
    if not lazy and not np.all(np.isfinite(s.data)):
        bad = np.argwhere(~np.all(np.isfinite(np.asarray(s.data)), axis=-1))
        raise InvalidImageError(
            f"{len(bad)} spectra contain NaN or inf values (first at navigation index "
            f"{tuple(int(v) for v in bad[0])}); remove or fill those pixels first (e.g. "
            "s.data = numpy.nan_to_num(s.data), or crop them away).")
    plan = _plan(s, e, list(edges), list(integrals), plasmon, reference, float(max_shift))
    names = plan.names()
    data = s.data
    if lazy:
        import dask.array as da

        d = data.rechunk({data.ndim - 1: -1})
        out = da.map_blocks(_kernel, d, plan, chunks=d.chunks[:-1] + ((len(names),),),
                            dtype=np.float64)
        res = np.asarray(out.compute(scheduler=scheduler) if scheduler else out.compute())
    else:
        flat = np.asarray(data).reshape(-1, data.shape[-1])
        res = np.concatenate([_kernel(flat[i:i + block_size], plan)
                              for i in range(0, len(flat), block_size)], 0)
        res = res.reshape(data.shape[:-1] + (len(names),))
    maps = {n: res[..., k] for k, n in enumerate(names)}
    eu = str(ax.units)
    units = {}
    for n in names:
        kind = next((k for k in sorted(_UNITS_BY_KIND, key=len, reverse=True)
                     if n.endswith(k)), None)
        if kind is not None:
            units[n] = eu if _UNITS_BY_KIND[kind] == "E" else ""
        else:
            units[n] = "counts"
    return maps, units


def spectral_loadings(s, n_components: int, algorithm: str = "NMF", *,
                      prefix: str | None = None, **kwargs) -> dict[str, np.ndarray]:
    """Loadings of a HyperSpy decomposition of the spectra, one map per component.

    Runs on a copy (the input's ``learning_results`` are untouched). With
    ``"SVD"``/``"PCA"`` the spectra are normalized for Poisson noise. Lazy
    data are decomposed chunk by chunk (``"NMF"``: scikit-learn's
    ``MiniBatchNMF``).
    ``kwargs`` go to ``s.decomposition``.
    """
    check_spectrum_image(s)
    if not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise InvalidParameterError("decomposition needs n_components >= 1.")
    work = s._deepcopy_with_new_data(s.data)
    # lazy "NMF" is HyperSpy's chunk-wise scikit-learn MiniBatchNMF (partial_fit per Dask
    # chunk); ORNMF goes spectrum by spectrum (18 min for 27x27 spectra, not usable)
    kw = dict(kwargs)
    if algorithm.upper() in ("SVD", "PCA") and not _is_lazy(s):
        kw.setdefault("normalize_poissonian_noise", True)
    work.decomposition(algorithm=algorithm, output_dimension=int(n_components),
                       print_info=False, **kw)
    load = work.get_decomposition_loadings()
    arr = np.asarray(load.data)
    if _is_lazy(s) and hasattr(arr, "compute"):
        arr = arr.compute()
    pre = prefix or algorithm.lower()
    return {f"{pre}_{k}": np.asarray(arr[k], float) for k in range(int(n_components))}


def spectral_descriptor_maps(s, *, edges=(), integrals=(), plasmon: Window | None = None,
                             decomposition: int = 0, algorithm: str = "NMF", reference=None,
                             max_shift: float = 5.0, scheduler=None):
    """Spectral descriptors of a spectrum image as a ``descriptor_maps`` signal.

    The maps keep the scan calibration of ``s`` (its navigation axes), so
    they can be co-registered onto the cells of a structural image with
    :func:`causalspy.multimodal.map_to_cells`. See
    :func:`spectral_descriptors` for the parameters; ``decomposition=k``
    adds the loadings of a ``k``-component decomposition (``algorithm``).

    Examples
    --------
    >>> from causalspy.data import eels_spectrum_image
    >>> d = eels_spectrum_image(cells=(8, 8), poisson=False)
    >>> m = spectral_descriptor_maps(d.core_loss, edges=["Ti_L23"])
    >>> m.descriptor_names[:3]
    ['Ti_L23_onset', 'Ti_L23_shift', 'Ti_L23_shift_err']
    """
    from causalspy.multimodal.fourdstem import maps_signal

    check_spectrum_image(s, navigation=(2,))
    maps, units = {}, {}
    if edges or integrals or plasmon is not None:
        maps, units = spectral_descriptors(s, edges=edges, integrals=integrals, plasmon=plasmon,
                                           reference=reference, max_shift=max_shift,
                                           scheduler=scheduler)
    if decomposition:
        load = spectral_loadings(s, decomposition, algorithm)
        maps.update(load)
        units.update({k: "" for k in load})
    if not maps:
        raise InvalidParameterError(
            "Nothing to measure: give edges=, integrals=, plasmon= and/or decomposition=.")
    title = s.metadata.get_item("General.title", "") or "spectrum image"
    out = maps_signal(maps, s.axes_manager.navigation_axes, units=units,
                      title=f"Spectral descriptors of {title}")
    out.metadata.set_item("Descriptors.source", str(title))
    out.metadata.set_item("Descriptors.energy_units", str(s.axes_manager.signal_axes[0].units))
    return out
