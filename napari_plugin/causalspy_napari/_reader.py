"""Reader: any file RosettaSciIO reads opens as calibrated image layers.

``napari_get_reader`` only looks at file names (fast, never raises); the
returned function loads with :func:`hyperspy.api.load` and turns every signal
into an image layer data tuple (see :func:`._convert.signal_layer_data`):
calibration in ``scale``/``translate``, units and axis names, metadata in
``layer.metadata``. A file holding several signals gives one layer per
signal; several files opened as a stack are stacked by HyperSpy (one layer).
A file that cannot be read gives a napari notification and no layer.
"""

from __future__ import annotations

import os
from pathlib import Path

from causalspy_napari._convert import signal_layer_data

__all__ = ["napari_get_reader", "read_hyperspy", "EXTENSIONS"]

#: File extensions (lower case) offered to RosettaSciIO; keep in step with napari.yaml.
EXTENSIONS = (
    ".dm3", ".dm4", ".emd", ".de5", ".hspy", ".hdf5", ".h5", ".zspy", ".mrc", ".mrcz", ".ali",
    ".ser", ".emi", ".tif", ".tiff", ".blo", ".unf", ".prz", ".tvips", ".mib", ".bcf", ".nxs",
    ".rpl", ".app5", ".elid", ".wdf", ".sur", ".pro", ".spd", ".dens",
)

#: Files larger than this are opened lazily (Dask), so napari reads only what it shows.
LAZY_BYTES = 1 << 30


def _supported(path) -> bool:
    p = str(path).rstrip("/\\")
    return p.lower().endswith(EXTENSIONS)


def napari_get_reader(path):
    """Return :func:`read_hyperspy` if every path has a supported extension, else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_supported(p) for p in paths):
        return None
    return read_hyperspy


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def _notify(message: str) -> None:
    try:
        from napari.utils.notifications import show_warning

        show_warning(message)
    except Exception:  # pragma: no cover - napari missing: the message is logged instead
        import logging

        logging.getLogger(__name__).warning(message)


def _load(paths: list[Path], stack: bool):
    import hyperspy.api as hs

    lazy = any(_size(p) > LAZY_BYTES for p in paths)
    arg = [str(p) for p in paths] if stack else str(paths[0])
    out = hs.load(arg, lazy=lazy, stack=stack) if stack else hs.load(arg, lazy=lazy)
    return out if isinstance(out, list) else [out]


def read_hyperspy(path):
    """Read one file (or a list of files, as a stack) into image layer data tuples.

    Returns
    -------
    list of (data, kwargs, "image")
        One tuple per signal; an empty list if nothing could be read (a
        notification says why, and napari may try another reader).
    """
    paths = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(p) for p in path]
    stack = len(paths) > 1
    label = paths[0].name if not stack else f"{paths[0].name} … ({len(paths)} files)"
    try:
        signals = _load(paths, stack)
    except Exception as e:  # any reader error: say what happened, do not crash napari
        if stack:  # files that cannot be stacked (different shapes): one layer per file
            layers = []
            for p in paths:
                layers += read_hyperspy(str(p))
            if layers:
                _notify(f"causalspy: the {len(paths)} files could not be stacked ({e}); "
                        "opened one layer per file instead.")
            return layers
        _notify(f"causalspy could not read {label}: {e}. Check that the file is complete and "
                "of a format RosettaSciIO supports (dm3/dm4, emd, tif, mrc, hspy, zspy, ...).")
        return []
    stem = paths[0].stem if not stack else f"{paths[0].stem} (stack of {len(paths)})"
    layers, skipped = [], []
    for k, s in enumerate(signals):
        title = str(s.metadata.get_item("General.title", "") or "")
        name = stem if len(signals) == 1 else f"{stem} [{title or k}]"
        ld, why = signal_layer_data(s, name=name, extra={
            "source_file": [str(p) for p in paths] if stack else str(paths[0]),
            "signal_index": k,
        })
        if ld is None:
            skipped.append(f"signal {k} ({title or 'untitled'}): {why}")
        else:
            layers.append(ld)
    if skipped:
        _notify(f"causalspy: {label}: skipped " + "; ".join(skipped))
    if not layers and not skipped:
        _notify(f"causalspy: {label} holds no signal.")
    return layers
