"""Dock widget *Wall fit*: draw a line across a domain wall, get the Bayesian fit."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, SpinBox

from causalspy.exceptions import InvalidParameterError
from causalspy_napari._base import JobWidget, _wrap
from causalspy_napari._convert import META_KEY, _layer_units

__all__ = ["WallFitWidget", "line_from_shapes"]

MODELS = ("tanh", "tanh_slope", "charged", "linear")


def line_from_shapes(shapes, image) -> tuple[np.ndarray, np.ndarray, float]:
    """The last line (or path: its two ends) of a Shapes layer in ``image``'s data
    coordinates ``(row, col)``, and its length in world units."""
    if shapes is None or len(shapes.data) == 0:
        raise InvalidParameterError(
            "Draw a line across the wall first: add a Shapes layer, pick the line tool and "
            "drag from one domain into the other.")
    k = next((i for i in range(len(shapes.data) - 1, -1, -1)
              if shapes.shape_type[i] in ("line", "path")), None)
    if k is None:
        raise InvalidParameterError(
            f"The shapes layer {shapes.name!r} has no line: draw one with the line tool.")
    v = np.asarray(shapes.data[k], float)[:, -2:]
    ends = [shapes.data_to_world(v[0]), shapes.data_to_world(v[-1])]
    world = [np.asarray(e, float)[-2:] for e in ends]
    length = float(np.hypot(*(world[1] - world[0])))
    if length == 0:
        raise InvalidParameterError("The line has zero length: drag across the wall.")
    a, b = (np.asarray(image.world_to_data(w), float)[-2:] for w in world)
    return a, b, length


class WallFitWidget(JobWidget):
    """Bayesian fit of a domain-wall profile along a drawn line (``causalspy.bayes``).

    Choose an image or descriptor-map layer and a Shapes layer with a line
    drawn across the wall; the profile (band average over ``band width``,
    with its standard error per point) is fitted by NUTS with the chosen model
    (``tanh``: :math:`P_s \\tanh((x - x_0)/w) + b`). The parameters with
    their 90 % HDIs, the diagnostics and the fit are shown in the dock.
    """

    job_title = "causalspy: wall fit"

    def __init__(self, napari_viewer) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from napari.layers import Image, Shapes

        self._viewer = napari_viewer
        self._image = ComboBox(label="map / image", choices=self._layer_choices(
            Image, "descriptor_map"))
        self._shapes = ComboBox(label="line (shapes)", choices=self._layer_choices(Shapes))
        self._width = FloatSpinBox(label="band width", value=0.0, min=0.0, max=1e6, step=0.1,
                                   tooltip="Average over a band this wide (world units) "
                                           "perpendicular to the line; 0: the line itself")
        self._model = ComboBox(label="model", choices=list(MODELS), value="tanh")
        self._draws = SpinBox(label="draws per chain", value=1000, min=50, max=100000)
        self._seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self._figure = Figure(figsize=(4.5, 3.2), tight_layout=True)
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._canvas.setMinimumSize(360, 260)
        box = Container(labels=False)
        box.native.layout().addWidget(self._canvas)
        self._params = Label(value="")
        _wrap(self._params)
        super().__init__(napari_viewer, [self._image, self._shapes, self._width, self._model,
                                         self._draws, self._seed], run_text="Fit wall")
        self.append(box)
        self.append(Container(widgets=[self._params], labels=False))
        self._select_active(self._image, Image, "descriptor_map")
        self._follow_new_layers(self._shapes, Shapes)
        self.posterior = None
        self.profile = None

    # ------------------------------------------------------------------ run
    def _prepare(self):
        from causalspy.bayes import fit, wall_profile

        image, shapes = self._image.value, self._shapes.value
        if image is None:
            raise InvalidParameterError(
                "Wall fit needs an image or descriptor-map layer to take the profile from.")
        data = np.asarray(image.data, float)
        if data.ndim != 2:
            raise InvalidParameterError(
                f"The layer {image.name!r} is not a 2-D image (shape {data.shape}).")
        a, b, length = line_from_shapes(shapes, image)
        meta = (image.metadata or {}).get(META_KEY) or {}
        valid = meta.get("valid")
        z = data.copy()
        if valid is not None and np.shape(valid) == z.shape:
            z[~np.asarray(valid, bool)] = np.nan
        px = float(np.hypot(*(b - a)))
        to_world = length / px  # world units per pixel along the line
        width_px = float(self._width.value) / to_world
        # wall_profile works in (x, y) = (col, row) pixels of the layer's data
        prof = wall_profile(z, meta.get("descriptor") or image.name, (a[1], a[0]),
                            (b[1], b[0]), width=width_px)
        t = prof.table
        t["distance"] = t["distance"] * to_world
        x_unit = _layer_units(image, 1)
        y_unit = meta.get("unit", "")
        x, y, yerr = t["distance"].to_numpy(), t["mean"].to_numpy(), prof.yerr
        model, draws, seed = self._model.value, int(self._draws.value), int(self._seed.value)
        label = f"{prof.name} [{image.name}]"

        def job(ctx):
            return (yield from ctx.call(f"{model} fit of {len(x)} points", fit, x, y, model,
                                        yerr=yerr, x_unit=x_unit, y_unit=y_unit, draws=draws,
                                        seed=seed, label=label))

        def apply(post):
            self.posterior, self.profile = post, prof
            self._show(post)
            s = post.summary()
            state = "converged" if post.converged else "NOT CONVERGED — see warnings"
            key = ", ".join(f"{n} = {s.loc[n, 'mean']:.3g} {s.loc[n, 'unit']}".rstrip()
                            for n in ("x0", "w") if n in s.index)
            return f"{model}: {len(x)} points, {state}" + (f"; {key}" if key else "")

        return job, apply

    def _show(self, post) -> None:
        self._figure.clear()
        ax = self._figure.add_subplot(111)
        post.plot(ax=ax)
        ax.title.set_fontsize(8)
        self._canvas.draw_idle()
        s = post.summary()
        lines = []
        for n in s.index:
            r = s.loc[n]
            u = f" {r['unit']}" if r["unit"] else ""
            lines.append(f"{n} = {r['mean']:.4g} ± {r['sd']:.2g}{u}  "
                         f"(90 % HDI {r['hdi_low']:.4g} … {r['hdi_high']:.4g}, "
                         f"R-hat {r['r_hat']:.3f})")
        lines += [f"• {w}" for w in post.warnings]
        self._params.value = "\n".join(lines)
