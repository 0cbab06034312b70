"""The ``atomic_series`` signal type: a time series of atomic-resolution images."""

from __future__ import annotations

from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

__all__ = ["AtomicSeries", "LazyAtomicSeries"]


class AtomicSeries(Signal2D):
    """An in-situ image series: one navigation axis (time), two image axes.

    Get one with ``hs.load(f, signal_type="atomic_series")`` or
    ``s.set_signal_type("atomic_series")``. Methods are thin wrappers around
    :mod:`causalspy.dynamics`; they work frame by frame (lazy signals stay
    lazy, memory bounded by a frame) and never modify the signal.
    """

    _signal_type = "atomic_series"

    def estimate_drift(self, **kwargs):
        """Drift of every frame; see :func:`causalspy.dynamics.estimate_drift`."""
        from causalspy.dynamics.drift import estimate_drift

        return estimate_drift(self, **kwargs)

    def correct_drift(self, shifts=None, **kwargs):
        """A drift-corrected copy; see :func:`causalspy.dynamics.correct_drift`."""
        from causalspy.dynamics.drift import correct_drift, estimate_drift

        if shifts is None:
            shifts = estimate_drift(self, **kwargs)
        return correct_drift(self, shifts)

    def find_atoms(self, **kwargs):
        """Atoms of every frame in one table; see :func:`causalspy.dynamics.find_atoms_series`."""
        from causalspy.dynamics.series import find_atoms_series

        return find_atoms_series(self, **kwargs)

    def track(self, **kwargs):
        """Columns linked across frames; see :func:`causalspy.dynamics.track_series`."""
        from causalspy.dynamics.track import track_series

        return track_series(self, **kwargs)

    def descriptors(self, structure: str = "hexagonal", **kwargs):
        """Per-frame descriptors on one cell grid; see :func:`causalspy.dynamics.series_descriptors`."""
        from causalspy.dynamics.series import series_descriptors

        return series_descriptors(self, structure=structure, **kwargs)


class LazyAtomicSeries(LazySignal, AtomicSeries):
    """Lazy version of :class:`AtomicSeries` (read and processed frame by frame)."""
