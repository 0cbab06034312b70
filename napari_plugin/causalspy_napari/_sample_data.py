"""Sample data for napari's File > Open Sample menu: causalspy's synthetic images.

Each layer carries its ground truth in ``layer.metadata``:
``"causalspy_truth"`` is the truth table (one row per lattice site, ``x``,
``y`` in pixels, ``sublattice``, ``species``, ``present``, ...) and
``"causalspy_truth_params"`` the generator parameters.
"""

from __future__ import annotations

from causalspy_napari._convert import META_KEY, provenance, signal_layer_data

__all__ = ["perovskite_sample", "hexagonal_sample", "PEROVSKITE_PARAMS", "HEXAGONAL_PARAMS"]

#: Generator parameters of the samples (also stored in the layers' metadata). The
#: perovskite has 2e4 counts per Pb column (a well-exposed HAADF image): at 1e4 the
#: weak Ti columns are still found, but about 1 % of them land 0.5-0.6 px off.
PEROVSKITE_PARAMS = {"cells": (16, 16), "counts": 2e4, "seed": 0}
HEXAGONAL_PARAMS = {"cells": (16, 16), "seed": 0}


def _layer(signal, truth, name: str, generator: str, params: dict):
    ld, _ = signal_layer_data(signal, name=name, extra={
        "source": "causalspy.data",
        "causalspy_truth": truth.columns.copy(),
        "causalspy_truth_params": dict(truth.params),
        META_KEY: provenance(f"sample:{generator}", params, generator=f"causalspy.data.{generator}"),
    })
    return ld


def perovskite_sample():
    """Synthetic PbTiO3 [001] HAADF with 180-degree domains (16x16 cells, 20 pm B-site shifts)."""
    from causalspy.data import perovskite

    s, truth = perovskite(**PEROVSKITE_PARAMS)
    return [_layer(s, truth, "perovskite HAADF (synthetic)", "perovskite", PEROVSKITE_PARAMS)]


def hexagonal_sample():
    """Synthetic MoS2-like monolayer with dopants and vacancies."""
    from causalspy.data import hexagonal

    s, truth = hexagonal(**HEXAGONAL_PARAMS)
    return [_layer(s, truth, "MoS2-like HAADF (synthetic)", "hexagonal", HEXAGONAL_PARAMS)]
