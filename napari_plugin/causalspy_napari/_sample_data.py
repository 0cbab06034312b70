"""Sample data for napari's File > Open Sample menu: causalspy's synthetic images."""

from __future__ import annotations


def _layer(signal, name: str):
    ax = signal.axes_manager.signal_axes
    scale = (float(ax[1].scale), float(ax[0].scale))
    meta = {"units": str(ax[0].units), "source": "causalspy.data"}
    return (signal.data, {"name": name, "scale": scale, "metadata": meta}, "image")


def perovskite_sample():
    """Synthetic PbTiO3 [001] HAADF with 180-degree domains (16x16 cells)."""
    from causalspy.data import perovskite

    s, _ = perovskite(cells=(16, 16), seed=0)
    return [_layer(s, "perovskite HAADF (synthetic)")]


def hexagonal_sample():
    """Synthetic MoS2-like monolayer with dopants and vacancies."""
    from causalspy.data import hexagonal

    s, _ = hexagonal(cells=(16, 16), seed=0)
    return [_layer(s, "MoS2-like HAADF (synthetic)")]
