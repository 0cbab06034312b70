"""Conversions between napari layers and causalspy objects (no Qt, no napari import).

napari layers are read through their attributes (``data``, ``scale``,
``translate``, ``affine``, ``features``, ``metadata``), and results are
returned as napari *layer data tuples* ``(data, kwargs, layer_type)``, so
everything here can be tested without a viewer.

Coordinates: causalspy's pixel positions are ``x`` = column index and ``y`` =
row index; napari points use ``(row, col)`` = ``(y, x)`` data coordinates. A
points layer made from an image gets the image's ``scale``, ``translate``,
``affine`` and ``units``, so data coordinates are image pixels and both sit on
the same world coordinates.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

import causalspy
from causalspy.exceptions import (
    InvalidImageError,
    InvalidParameterError,
    NoColumnsFoundError,
)

__all__ = [
    "META_KEY",
    "provenance",
    "signal_layer_data",
    "image_layer_signal",
    "check_image_layer",
    "check_points_layer",
    "atoms_layer_data",
    "vacancies_layer_data",
    "atoms_from_layer",
    "descriptors_layer_data",
    "descriptors_from_layer",
    "descriptor_map_layer_data",
    "local_map_layer_data",
    "map_style",
    "numeric_feature_columns",
]

#: Key of the causalspy provenance dict in ``layer.metadata``.
META_KEY = "causalspy"

#: Sublattice colours (sublattice 0 = brightest), napari colour names / hex.
SUBLATTICE_COLORS = ["#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

#: Descriptors whose sign matters (diverging colormap centred on zero).
SIGNED = {"dx", "dy", "dx_cal", "dy_cal", "exx", "eyy", "exy", "rotation", "dopant_z"}
#: Angles (cyclic colormap over [-pi, pi]).
ANGLES = {"p_angle"}
#: Columns that locate or index a row: never offered as variables.
INDEX_COLUMNS = {"x", "y", "x_cal", "y_cal", "x_err_cal", "y_err_cal", "cell_i", "cell_j",
                 "flag", "edge", "site", "hollow", "column_index", "sublattice", "fit_ok",
                 "intensity_class", "dopant"}


# ----------------------------------------------------------------------------- provenance
def provenance(step: str, parameters: dict, **extra) -> dict:
    """The ``layer.metadata["causalspy"]`` dict: enough to reproduce the layer."""
    out = {
        "version": causalspy.__version__,
        "step": step,
        "parameters": dict(parameters),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out.update(extra)
    return out


def image_name(layer) -> str:
    """Name of the image a causalspy layer was derived from (else the layer's own name)."""
    info = (getattr(layer, "metadata", None) or {}).get(META_KEY)
    name = info.get("image_layer") if isinstance(info, dict) else None
    return str(name or layer.name)


def layer_step(layer) -> str | None:
    """The causalspy step that made a layer (``None`` for other layers)."""
    meta = getattr(layer, "metadata", None) or {}
    info = meta.get(META_KEY)
    return info.get("step") if isinstance(info, dict) else None


# ----------------------------------------------------------------------------- reading
def _units_ok(unit: str) -> bool:
    try:
        import pint

        pint.get_application_registry().parse_expression(unit)
    except Exception:
        return False
    return True


def _axis_units(axis) -> str:
    u = getattr(axis, "units", None)
    if u is None or str(u).strip() in ("", "<undefined>", "undefined", "px", "pixel", "pixels"):
        return "pixel"
    u = str(u).strip().replace("µ", "u").replace("μ", "u").replace("Å", "angstrom")
    return u if _units_ok(u) else "pixel"


def _axis_name(axis, k: int) -> str:
    name = getattr(axis, "name", None)
    return str(name) if name not in (None, "", "<undefined>") else f"axis {k}"


def signal_layer_data(signal, name: str | None = None, extra: dict | None = None):
    """An image layer data tuple for a HyperSpy signal, or ``(None, reason)``.

    The layer's dimensions follow ``signal.data`` (navigation axes first, then
    the image rows and columns), with each axis' calibration as ``scale`` and
    ``translate`` and its units and name as ``units`` and ``axis_labels``. A
    spectrum image (1D signal with navigation axes) is transposed so that its
    spatial axes are the displayed ones. The HyperSpy metadata and original
    metadata are kept in ``layer.metadata``.

    Returns
    -------
    tuple
        ``((data, kwargs, "image"), None)`` or ``(None, reason)``.
    """
    am = signal.axes_manager
    if am.signal_dimension == 1 and am.navigation_dimension >= 1:
        signal = signal.T
        am = signal.axes_manager
    if signal.data.ndim < 2:
        return None, (f"{signal.data.ndim}D data (a single spectrum or value) is not an image; "
                      "open it with HyperSpy instead.")
    title = str(signal.metadata.get_item("General.title", "") or "")
    name = name or title or "signal"
    data = signal.data
    notes = []
    rgb = False
    if data.dtype.names is not None:  # HyperSpy RGB(A) structured dtype
        try:
            from rsciio.utils.rgb import rgbx2regular_array
        except ImportError:  # rosettasciio < 0.8
            from rsciio.utils.rgb_tools import rgbx2regular_array

        data = rgbx2regular_array(np.asarray(data))
        rgb = True
    elif np.iscomplexobj(data):
        data = np.abs(data)
        notes.append("complex data: showing the amplitude")
    elif data.dtype == np.float16:
        data = data.astype(np.float32)
        notes.append("float16 data converted to float32 for display")
    axes = sorted(am._axes, key=lambda a: a.index_in_array)
    scale, translate, units, labels = [], [], [], []
    for k, ax in enumerate(axes):
        uniform = getattr(ax, "is_uniform", True)
        s = float(ax.scale) if uniform else 1.0
        o = float(ax.offset) if uniform else 0.0
        if not np.isfinite(s) or s == 0:
            s, o = 1.0, 0.0
            notes.append(f"axis {_axis_name(ax, k)!r} has no usable scale: shown in pixels")
        if not uniform:
            notes.append(f"axis {_axis_name(ax, k)!r} is non-uniform: shown in pixels")
        scale.append(s)
        translate.append(o)
        units.append(_axis_units(ax) if uniform else "pixel")
        labels.append(_axis_name(ax, k))
    meta: dict[str, Any] = {
        "hyperspy_metadata": signal.metadata.as_dictionary(),
        "original_metadata": signal.original_metadata.as_dictionary(),
        "signal_type": getattr(signal, "_signal_type", "") or "",
        "axes": [{"name": labels[k], "scale": scale[k], "offset": translate[k],
                  "units": str(getattr(ax, "units", "") or "")} for k, ax in enumerate(axes)],
        "lazy": bool(getattr(signal, "_lazy", False)),
    }
    if notes:
        meta["notes"] = notes
    meta.update(extra or {})
    kwargs = {"name": name, "scale": scale, "translate": translate, "units": units,
              "axis_labels": labels, "metadata": meta}
    if rgb:
        kwargs["rgb"] = True
    else:
        lims = _robust_limits(data)
        if lims is not None:
            kwargs["contrast_limits"] = lims
    return (data, kwargs, "image"), None


def _robust_limits(data) -> list[float] | None:
    """0.1-99.9 percentile contrast limits of (a sample of) an array, or None."""
    try:
        arr = data
        if arr.ndim > 2:  # a frame is enough
            arr = arr[(0,) * (arr.ndim - 2)]
        arr = np.asarray(arr[:: max(1, arr.shape[0] // 512), :: max(1, arr.shape[1] // 512)],
                         dtype=float)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            return None
        lo, hi = np.percentile(arr, [0.1, 99.9])
        if not hi > lo:
            lo, hi = float(arr.min()), float(arr.max())
        return [float(lo), float(hi)] if hi > lo else None
    except Exception:
        return None


# ----------------------------------------------------------------------------- checks
def check_image_layer(layer, what: str = "Find atoms") -> None:
    """Raise a clear error unless ``layer`` is a single 2D greyscale image."""
    if layer is None:
        raise InvalidImageError(
            f"{what} needs an image layer: open an image (File > Open, or File > Open Sample > "
            "causalspy) and choose it in the 'image' box."
        )
    if getattr(layer, "rgb", False):
        raise InvalidImageError(
            f"The layer {layer.name!r} is an RGB image; {what} needs a greyscale image with "
            "atomic columns. Split it (right-click the layer > Split RGB) and choose one channel, "
            "or open the raw data."
        )
    ndim = int(layer.data.ndim)
    if getattr(layer, "multiscale", False):
        raise InvalidImageError(f"The layer {layer.name!r} is multiscale; {what} needs a single "
                                "2D image. Open the full-resolution image as a plain layer.")
    if ndim != 2:
        shape = tuple(int(v) for v in layer.data.shape)
        raise InvalidImageError(
            f"The layer {layer.name!r} is a {ndim}D stack of shape {shape}; {what} needs a single "
            "2D image. Split it (right-click the layer > Split Stack) and choose one frame."
        )


def check_points_layer(layer, what: str, need: str = "atoms") -> None:
    """Raise a clear error unless ``layer`` is a non-empty points layer of the right kind."""
    if layer is None:
        src = "Find atoms" if need == "atoms" else "Descriptors"
        raise InvalidParameterError(
            f"{what} needs a points layer made by the causalspy '{src}' widget: run it first "
            "and choose its layer."
        )
    if len(layer.data) == 0:
        raise NoColumnsFoundError(
            f"The points layer {layer.name!r} is empty: run Find atoms on an image (or add points) "
            f"before {what}."
        )
    feats = getattr(layer, "features", None)
    if need == "atoms" and (feats is None or "sublattice" not in feats):
        raise InvalidParameterError(
            f"The points layer {layer.name!r} has no causalspy atoms table (no 'sublattice' "
            "feature): run Find atoms on the image and choose the layer it makes."
        )
    if need == "descriptors" and layer_step(layer) != "descriptors":
        raise InvalidParameterError(
            f"The points layer {layer.name!r} holds no causalspy descriptors: run the "
            "Descriptors widget on an atoms layer and choose the 'descriptors' layer it makes."
        )


# ----------------------------------------------------------------------------- image -> signal
def _layer_units(layer, k: int) -> str:
    info = (layer.metadata or {}).get("axes")
    if isinstance(info, list) and len(info) == layer.data.ndim:
        u = str(info[k].get("units") or "")
        if u:
            return u
    try:
        u = layer.units[k]
        s = f"{u:~}"
        return "px" if s in ("px", "pixel") or str(u) == "pixel" else s
    except Exception:
        return "px"


def image_layer_signal(layer, lazy: bool | None = None):
    """A HyperSpy ``Signal2D`` view of a 2D image layer, calibrated like the layer.

    The data are not copied (causalspy copies what it needs and never writes
    to its input). ``lazy=True`` wraps the array in Dask so causalspy works in
    tiles that can report progress and be cancelled.
    """
    import hyperspy.api as hs

    check_image_layer(layer)
    data = layer.data
    if lazy:
        import dask.array as da

        arr = data if type(data).__module__.startswith("dask") else da.from_array(
            np.asarray(data), chunks=(1024, 1024))
        s = hs.signals.Signal2D(arr).as_lazy()
    else:
        s = hs.signals.Signal2D(np.asarray(data))
    ax_x, ax_y = s.axes_manager.signal_axes
    sy, sx = (float(v) for v in layer.scale[-2:])
    ty, tx = (float(v) for v in layer.translate[-2:])
    ax_x.scale, ax_y.scale = sx, sy
    ax_x.offset, ax_y.offset = tx, ty
    ax_x.units, ax_y.units = _layer_units(layer, 1), _layer_units(layer, 0)
    ax_x.name, ax_y.name = "x", "y"
    s.metadata.General.title = str(layer.name)
    fn = ((layer.metadata or {}).get("hyperspy_metadata") or {}).get("General", {}).get(
        "original_filename")
    if fn:
        s.metadata.General.original_filename = fn
    return s


def _spatial_kwargs(layer) -> dict:
    """scale/translate/affine/units of a 2D layer, for layers drawn on top of it."""
    kw = {"scale": [float(v) for v in layer.scale[-2:]],
          "translate": [float(v) for v in layer.translate[-2:]]}
    aff = np.asarray(layer.affine.affine_matrix, float)
    if aff.shape == (3, 3) and not np.allclose(aff, np.eye(3)):
        kw["affine"] = aff
    kw.update(_units_of(layer))
    return kw


def _units_of(layer) -> dict:
    try:
        return {"units": [str(u) for u in layer.units[-2:]]}
    except Exception:
        return {}


def _world_matrix(layer) -> np.ndarray:
    """3x3 matrix from the layer's 2D data coordinates (row, col, 1) to world coordinates."""
    sy, sx = (float(v) for v in layer.scale[-2:])
    ty, tx = (float(v) for v in layer.translate[-2:])
    m = np.array([[sy, 0.0, ty], [0.0, sx, tx], [0.0, 0.0, 1.0]])
    aff = np.asarray(layer.affine.affine_matrix, float)
    if aff.shape == (3, 3):
        m = aff @ m
    return m


# ----------------------------------------------------------------------------- atoms
def _hex_rgba(color: str) -> list[float]:
    c = color.lstrip("#")
    return [int(c[k:k + 2], 16) / 255.0 for k in (0, 2, 4)] + [1.0]


def atoms_layer_data(atoms, image_layer, parameters: dict, name: str | None = None):
    """Points layer data tuple of an :class:`~causalspy.Atoms` result found in ``image_layer``.

    ``features`` is the Atoms table; point size is the fitted column width
    (2 sigma); face colour by sublattice, red border for dopant candidates.
    """
    t = atoms.to_dataframe()
    data = t[["y", "x"]].to_numpy(float)
    sig = t["sigma"].to_numpy(float) if "sigma" in t else np.full(len(t), np.nan)
    med = float(np.nanmedian(sig)) if np.isfinite(sig).any() else 3.0
    size = 1.5 * np.where(np.isfinite(sig), sig, med)
    dop = t["dopant"].to_numpy(bool) if "dopant" in t else np.zeros(len(t), bool)
    border = np.tile(np.array([1.0, 1.0, 1.0, 0.6]), (len(t), 1))
    border[dop] = [1.0, 0.0, 0.0, 1.0]
    meta = {META_KEY: provenance(
        "find_atoms", parameters, source_layer=str(image_layer.name),
        image_layer=str(image_layer.name),
        atoms_metadata=atoms.metadata, calibration=atoms.calibration,
        lattice_vectors=None if atoms.lattice_vectors is None else atoms.lattice_vectors.tolist(),
        vacancies=atoms.vacancies.copy(),
    )}
    sub = t["sublattice"].to_numpy(int) if "sublattice" in t else np.zeros(len(t), int)
    palette = np.array([_hex_rgba(c) for c in SUBLATTICE_COLORS] + [[1.0, 1.0, 1.0, 1.0]])
    face = palette[np.where(sub >= 0, sub % len(SUBLATTICE_COLORS), len(SUBLATTICE_COLORS))]
    kwargs = dict(
        name=name or f"atoms ({image_layer.name})",
        features=t,
        size=size,
        face_color=face,
        border_color=border,
        border_width=0.15,
        border_width_is_relative=True,
        opacity=0.8,
        metadata=meta,
        **_spatial_kwargs(image_layer),
    )
    return data, kwargs, "points"


def vacancies_layer_data(atoms, image_layer, name: str | None = None):
    """Points layer data tuple of the vacancies of an Atoms result (or None if there are none)."""
    v = atoms.vacancies
    if len(v) == 0:
        return None
    t = atoms.to_dataframe()
    sig = float(np.nanmedian(t["sigma"])) if "sigma" in t and len(t) else 3.0
    kwargs = dict(
        name=name or f"vacancies ({image_layer.name})",
        features=v.copy(), size=3.0 * sig, symbol="square", face_color="transparent",
        border_color="yellow", border_width=0.15, border_width_is_relative=True,
        metadata={META_KEY: provenance("vacancies", {}, source_layer=str(image_layer.name))},
        **_spatial_kwargs(image_layer),
    )
    return v[["y", "x"]].to_numpy(float), kwargs, "points"


def atoms_from_layer(layer):
    """An :class:`~causalspy.Atoms` from a points layer made by Find atoms.

    Positions come from the points (so moved, added or deleted points count);
    the other columns from ``layer.features``; calibration, lattice vectors,
    vacancies and provenance from ``layer.metadata``.
    """
    check_points_layer(layer, "Descriptors", need="atoms")
    info = (layer.metadata or {}).get(META_KEY) or {}
    t = pd.DataFrame(layer.features).copy().reset_index(drop=True)
    pts = np.asarray(layer.data, float)
    t["x"] = pts[:, -1]
    t["y"] = pts[:, -2]
    t = t.drop(columns=[c for c in ("x_cal", "y_cal", "x_err_cal", "y_err_cal") if c in t])
    lv = info.get("lattice_vectors")
    return causalspy.Atoms(
        t, calibration=info.get("calibration"), metadata=info.get("atoms_metadata") or {},
        vacancies=info.get("vacancies"), lattice_vectors=None if lv is None else np.asarray(lv),
    )


# ----------------------------------------------------------------------------- descriptors
def descriptors_layer_data(desc, atoms_layer, parameters: dict, name: str | None = None):
    """Points layer data tuple (one point per cell/column) whose features are the descriptors."""
    t = desc.to_dataframe()
    lat = desc.lattice or {}
    t1 = np.asarray(lat.get("t1", [10.0, 0.0]), float)
    size = 0.3 * float(np.hypot(*t1))
    flag = t["flag"].to_numpy(bool) if "flag" in t else np.zeros(len(t), bool)
    face = np.tile(np.array([1.0, 1.0, 1.0, 0.9]), (len(t), 1))
    face[flag] = [0.5, 0.5, 0.5, 0.6]
    meta = {META_KEY: provenance(
        "descriptors", parameters, source_layer=str(atoms_layer.name),
        image_layer=image_name(atoms_layer),
        units=dict(desc.units), calibration=dict(desc.calibration),
        descriptors_metadata=desc.metadata, lattice=desc.lattice,
    )}
    kwargs = dict(
        name=name or f"descriptors ({atoms_layer.name})", features=t, size=size,
        symbol="diamond", face_color=face, border_width=0.0, opacity=0.8, metadata=meta,
        **_spatial_kwargs(atoms_layer),
    )
    return t[["y", "x"]].to_numpy(float), kwargs, "points"


def descriptors_from_layer(layer, what: str = "This step"):
    """A :class:`~causalspy.descriptors.Descriptors` from a layer made by the Descriptors widget."""
    from causalspy.descriptors import Descriptors

    check_points_layer(layer, what, need="descriptors")
    info = layer.metadata[META_KEY]
    return Descriptors(pd.DataFrame(layer.features).copy(), units=info.get("units"),
                       calibration=info.get("calibration"),
                       metadata=info.get("descriptors_metadata"), lattice=info.get("lattice"))


def numeric_feature_columns(layer) -> list[str]:
    """Numeric, non-index feature columns of a layer that hold data (the candidate variables).

    All-NaN columns (e.g. octahedral tilt when no oxygen column was imaged) are left out.
    """
    feats = getattr(layer, "features", None)
    if feats is None or len(feats.columns) == 0:
        return []
    out = []
    for c in feats.columns:
        if c in INDEX_COLUMNS or str(c).endswith("_cal") or str(c).endswith("_err"):
            continue
        s = feats[c]
        if (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
                and s.notna().any()):
            out.append(str(c))
    return out


def _cell_to_pixel(desc) -> np.ndarray:
    """3x3 matrix from cell-grid coordinates (cell_j, cell_i, 1) to pixels (y, x, 1)."""
    t = desc.to_dataframe()
    lat = desc.lattice or {}
    if "t1" not in lat or "cell_i" not in t:
        raise InvalidParameterError("These descriptors have no lattice: maps need a cell grid.")
    t1 = np.asarray(lat["t1"], float)
    t2 = np.asarray(lat["t2"], float)
    ci, cj = t["cell_i"].to_numpy(), t["cell_j"].to_numpy()
    ok = (ci >= 0) & (cj >= 0)
    if not ok.any():
        raise InvalidParameterError("No row of these descriptors is on the cell grid.")
    pos = t[["x", "y"]].to_numpy(float)[ok]
    p0 = np.median(pos - np.outer(ci[ok], t1) - np.outer(cj[ok], t2), axis=0)
    # columns: d/d(cell_j), d/d(cell_i), offset; rows: pixel y, pixel x
    return np.array([[t2[1], t1[1], p0[1]], [t2[0], t1[0], p0[0]], [0.0, 0.0, 1.0]])


def map_style(name: str, values: np.ndarray, unit: str = "") -> dict:
    """Colormap and contrast limits that suit a descriptor map.

    Signed quantities (displacements, strains, rotations, z-scores, causal
    strengths) get a diverging map centred on zero; angles a cyclic one;
    everything else a sequential map between the 1st and 99th percentiles.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    base = name.split(":")[0]
    if name.endswith(":direction"):
        return {"colormap": "PiYG", "contrast_limits": [-1.0, 1.0]}
    if base in ANGLES or unit == "rad" and base not in SIGNED:
        return {"colormap": "twilight", "contrast_limits": [-np.pi, np.pi]}
    signed = base in SIGNED or "->" in base or (v.size and v.min() < 0 < v.max()
                                                 and abs(v.min()) > 0.1 * abs(v.max()))
    if signed:
        m = float(np.percentile(np.abs(v), 99)) if v.size else 1.0
        m = m if m > 0 else 1.0
        return {"colormap": "coolwarm", "contrast_limits": [-m, m]}
    if v.size == 0:
        return {"colormap": "viridis", "contrast_limits": [0.0, 1.0]}
    lo, hi = (float(x) for x in np.percentile(v, [1, 99]))
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
        if not hi > lo:
            lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    cmap = "magma" if base.startswith("intensity") else "viridis"
    return {"colormap": cmap, "contrast_limits": [lo, hi]}


def descriptor_map_layer_data(maps, name: str, desc, ref_layer, parameters: dict,
                              suffix: str | None = None):
    """Image layer data tuple of one descriptor map, placed on the cells of the image.

    The map's pixel ``(cell_j, cell_i)`` is drawn at its cell's position in
    the image (an affine transform from the reference lattice), so it overlays
    the image and the points exactly.
    """
    sig = maps.get_map(name)
    data = np.asarray(sig.data, float)
    unit = (desc.units or {}).get(name, "")
    affine = _world_matrix(ref_layer) @ _cell_to_pixel(desc)
    style = map_style(name, data, unit)
    ax_x, ax_y = sig.axes_manager.signal_axes
    meta = {META_KEY: provenance(
        "descriptor_map", parameters, descriptor=name, unit=unit,
        source_layer=str(ref_layer.name),
        cell_grid={"cell_i_scale": float(ax_x.scale), "cell_j_scale": float(ax_y.scale),
                   "units": str(ax_x.units)},
        valid=np.asarray(maps.metadata.get_item("Descriptors.valid", np.isfinite(data))),
    )}
    label = f"{name} ({unit})" if unit else name
    kwargs = dict(name=f"{label} [{suffix or ref_layer.name}]", affine=affine,
                  opacity=0.7, blending="translucent", interpolation2d="nearest",
                  metadata=meta, **style, **_units_of(ref_layer))
    return data, kwargs, "image"


def local_map_layer_data(maps, label: str, desc, ref_layer, window: int, stride: int,
                         parameters: dict, suffix: str | None = None):
    """Image layer data tuple of a local causal map (window grid placed on the image)."""
    sig = maps.get_map(label)
    data = np.asarray(sig.data, float)
    # window (wj, wi) is centred on cell (stride * w + (window - 1) / 2)
    c = (window - 1) / 2.0
    win_to_cell = np.array([[stride, 0.0, c], [0.0, stride, c], [0.0, 0.0, 1.0]])
    affine = _world_matrix(ref_layer) @ _cell_to_pixel(desc) @ win_to_cell
    style = map_style(label, data)
    meta = {META_KEY: provenance("local_causal_map", parameters, map=label,
                                 source_layer=str(ref_layer.name))}
    kwargs = dict(name=f"local {label} [{suffix or ref_layer.name}]", affine=affine,
                  opacity=0.7, interpolation2d="nearest", metadata=meta, **style,
                  **_units_of(ref_layer))
    return data, kwargs, "image"
