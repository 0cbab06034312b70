"""The ``descriptor_maps`` signal type: descriptors on the unit-cell grid."""

from __future__ import annotations

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

__all__ = ["DescriptorMaps", "LazyDescriptorMaps"]


class DescriptorMaps(Signal2D):
    """A stack of maps, one per descriptor (navigation axis), on the cell grid.

    Names and units are in ``metadata.Descriptors.names`` / ``.units``;
    ``metadata.Descriptors.valid`` marks measured cells (others are NaN).
    HyperSpy's plotting, slicing, statistics and saving work as usual.
    """

    _signal_type = "descriptor_maps"

    @property
    def descriptor_names(self) -> list[str]:
        """Names of the descriptors along the navigation axis."""
        try:
            return list(self.metadata.Descriptors.names)
        except AttributeError:
            return [str(i) for i in range(self.axes_manager.navigation_size)]

    def get_map(self, name: str) -> Signal2D:
        """The map of one descriptor as a new ``Signal2D``."""
        names = self.descriptor_names
        if name not in names:
            raise KeyError(f"No descriptor {name!r}; available: {', '.join(names)}")
        s = self.inav[names.index(name)]
        out = Signal2D(np.asarray(s.data))
        for a_in, a_out in zip(s.axes_manager.signal_axes, out.axes_manager.signal_axes,
                               strict=True):
            a_out.scale, a_out.offset, a_out.units, a_out.name = (a_in.scale, a_in.offset,
                                                                  a_in.units, a_in.name)
        out.metadata.General.title = name
        return out


    def causal_graph(self, **kwargs):
        """Learn a causal graph from these maps (one sample per valid cell).

        A thin wrapper around :func:`causalspy.causal.discover`; keyword
        arguments (``method``, ``columns``, ``prior``, ``bootstrap``, ...) are
        passed on.
        """
        from causalspy.causal import discover

        return discover(self, **kwargs)


class LazyDescriptorMaps(LazySignal, DescriptorMaps):
    """Lazy version of :class:`DescriptorMaps`."""
