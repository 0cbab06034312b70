"""Image series: drift, per-frame atoms, tracks and events (and laws over time).

A series is an ``atomic_series`` signal (time on the navigation axis). The
chain is :func:`estimate_drift` (sub-pixel phase correlation) →
:func:`find_atoms_series` (frame by frame, memory bounded) → :func:`link`
(KD-tree mutual-nearest assignment per frame) → :class:`Tracks` with events
(columns appearing, disappearing, changing sublattice or species).
"""

from causalspy.dynamics.drift import check_series, correct_drift, estimate_drift
from causalspy.dynamics.series import find_atoms_series
from causalspy.dynamics.track import Tracks, link, track_series

__all__ = [
    "Tracks",
    "check_series",
    "correct_drift",
    "estimate_drift",
    "find_atoms_series",
    "link",
    "track_series",
]
