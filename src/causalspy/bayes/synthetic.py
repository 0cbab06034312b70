"""Synthetic profiles with known parameters, for tests, benchmarks and examples."""

from __future__ import annotations

import numpy as np

from causalspy.bayes.models import get_model

__all__ = ["synthetic_map", "synthetic_profile", "synthetic_wall", "synthetic_wall_maps"]


def synthetic_profile(model: str = "tanh", params: dict | None = None, *, n: int = 200,
                      x_range: tuple[float, float] = (0.0, 20.0), noise=0.1,
                      seed: int | None = 0):
    """``(x, y, truth)`` from a built-in model with Gaussian noise of sd ``noise``.

    The curve is the model's own mean function at the sample positions, so
    generator and fit share the physics exactly. For a model with several
    channels (``coupled``) ``y`` has shape ``(channels, n)`` and ``noise`` may
    give one sd per channel. ``truth`` holds the parameters and the noise
    (``sigma``, ``sigma_<channel>``).
    """
    m = get_model(model)
    rng = np.random.default_rng(seed)
    x = np.linspace(x_range[0], x_range[1], int(n))
    p = dict(params or {})
    missing = [q.name for q in m.params if q.name not in p]
    if missing:
        raise ValueError(f"synthetic_profile: give values for {missing}.")
    sd = np.broadcast_to(np.asarray(noise, float), (m.n_channels,))
    mu = m.mean(np, x, **{q.name: p[q.name] for q in m.params})
    y = mu + rng.normal(size=mu.shape) * (sd[:, None] if m.n_channels > 1 else sd[0])
    truth = {q.name: float(p[q.name]) for q in m.params}
    truth.update({nm: float(v) for nm, v in zip(m.noise_names, sd, strict=True)})
    return x, y, truth


def synthetic_wall(*, n: int = 200, P_s: float = 1.0, x0: float = 9.0, w: float = 1.5,
                   b: float = 0.2, noise: float = 0.1, x_range: tuple[float, float] = (0.0, 20.0),
                   seed: int | None = 0):
    r"""A noisy domain-wall profile :math:`P_s \tanh((x - x_0)/w) + b + \varepsilon`.

    Returns
    -------
    x, y : numpy.ndarray
    truth : dict
        ``P_s``, ``x0``, ``w``, ``b``, ``sigma``.
    """
    return synthetic_profile("tanh", {"P_s": P_s, "x0": x0, "w": w, "b": b}, n=n,
                             x_range=x_range, noise=noise, seed=seed)


def synthetic_map(shape: tuple[int, int] = (50, 50), *, b: float = 0.5, s_x: float = 0.02,
                  s_y: float = -0.01, residual: float = 0.3, ell: float = 6.0,
                  noise: float = 0.05, seed: int | None = 0):
    r"""A map = known plane :math:`b + s_x X + s_y Y` + known smooth residual + noise.

    ``X, Y`` are pixel coordinates relative to the map centre (as in
    :func:`~causalspy.bayes.fit_map`). The residual is a squared-exponential
    random field of length scale ``ell`` pixels, with its own constant and
    planar part projected out (they would be indistinguishable from the
    trend), scaled to standard deviation ``residual``.

    Returns
    -------
    z : numpy.ndarray
        The noisy map, shape ``shape``.
    truth : dict
        ``b``, ``s_x``, ``s_y``, ``sigma`` and the maps ``physics`` and ``residual``.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    X, Y = np.meshgrid(np.arange(nx) - (nx - 1) / 2, np.arange(ny) - (ny - 1) / 2)
    # smooth field by Fourier filtering white noise with a Gaussian kernel
    kx = np.fft.fftfreq(nx)[None, :]
    ky = np.fft.fftfreq(ny)[:, None]
    filt = np.exp(-2 * (np.pi * ell) ** 2 * (kx ** 2 + ky ** 2))
    g = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=shape)) * filt))
    A = np.column_stack([np.ones(X.size), X.ravel(), Y.ravel()])
    g = g.ravel() - A @ np.linalg.lstsq(A, g.ravel(), rcond=None)[0]
    g = (residual * g / g.std()).reshape(shape)
    phys = b + s_x * X + s_y * Y
    z = phys + g + rng.normal(0, noise, shape)
    return z, {"b": b, "s_x": s_x, "s_y": s_y, "sigma": noise, "physics": phys, "residual": g}


def synthetic_wall_maps(shape: tuple[int, int] = (40, 60), *, P_s: float = 20.0,
                        w: float = 0.8, angle: float = 10.0, offset: float = 0.0,
                        b: float = 0.0, noise: float = 3.0, scale: float = 0.4,
                        holes: float = 0.03, seed: int | None = 0):
    r"""A ``descriptor_maps`` signal with one straight 180° wall and known truth.

    The polarization component ``dx`` across the wall is
    :math:`P_s \tanh(u / w) + b` with :math:`u` the signed distance from the
    wall (calibrated, ``scale`` nm per cell); the wall's normal points at
    ``angle`` degrees from +x and it passes ``offset`` nm from the map centre.
    ``dy`` is pure noise; a fraction ``holes`` of the cells is invalid (NaN).

    Returns
    -------
    maps : DescriptorMaps
        Descriptors ``dx``, ``dy`` (unit pm), axes in nm.
    truth : dict
        ``P_s``, ``w``, ``b``, ``sigma``, ``angle``, ``normal`` (unit vector),
        ``centre`` (a point on the wall, nm), ``distance`` (map of u, nm).
    """
    from causalspy.signals.descriptor_maps import DescriptorMaps

    rng = np.random.default_rng(seed)
    ny, nx = shape
    X, Y = np.meshgrid(np.arange(nx) * scale, np.arange(ny) * scale)
    t = np.deg2rad(angle)
    normal = np.array([np.cos(t), np.sin(t)])
    centre = np.array([(nx - 1) * scale / 2, (ny - 1) * scale / 2]) + offset * normal
    u = (X - centre[0]) * normal[0] + (Y - centre[1]) * normal[1]
    dx = P_s * np.tanh(u / w) + b + rng.normal(0, noise, shape)
    dy = rng.normal(0, noise, shape)
    valid = rng.random(shape) >= holes
    data = np.stack([dx, dy])
    data[:, ~valid] = np.nan
    s = DescriptorMaps(data)
    ax_n = s.axes_manager.navigation_axes[0]
    ax_n.name = "descriptor"
    for ax, nm in zip(s.axes_manager.signal_axes, ("cell_i", "cell_j"), strict=True):
        ax.name, ax.scale, ax.units = nm, scale, "nm"
    s.metadata.General.title = "descriptor maps"
    s.metadata.set_item("Descriptors.names", ["dx", "dy"])
    s.metadata.set_item("Descriptors.units", ["pm", "pm"])
    s.metadata.set_item("Descriptors.valid", valid)
    return s, {"P_s": P_s, "w": w, "b": b, "sigma": noise, "angle": angle,
               "normal": tuple(normal), "centre": tuple(centre), "distance": u}
