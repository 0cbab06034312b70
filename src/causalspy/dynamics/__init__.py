"""Image series: drift, per-frame atoms, tracks and events (and laws over time).

A series is an ``atomic_series`` signal (time on the navigation axis). The
chain is :func:`estimate_drift` (sub-pixel phase correlation) →
:func:`find_atoms_series` (frame by frame, memory bounded) → :func:`link`
(KD-tree candidates and a minimum-displacement assignment per frame) →
:class:`Tracks` with events (columns appearing, disappearing, changing
sublattice or species, local phase flips) → :func:`series_descriptors`
(per-frame, per-site descriptors on one cell grid, as a table and as
``descriptor_maps`` over time). :func:`predict_nucleation` maps where a new
phase will nucleate from the frames before it, with validation and drivers.
"""

from causalspy.dynamics.drift import check_series, correct_drift, estimate_drift
from causalspy.dynamics.nucleation import (
    NoTransitionError,
    predict_nucleation,
    site_descriptors,
    transition_labels,
)
from causalspy.dynamics.nucleation_result import NucleationPrediction
from causalspy.dynamics.series import SeriesDescriptors, find_atoms_series, series_descriptors
from causalspy.dynamics.track import Tracks, link, track_series

__all__ = [
    "NoTransitionError",
    "NucleationPrediction",
    "SeriesDescriptors",
    "Tracks",
    "check_series",
    "correct_drift",
    "estimate_drift",
    "find_atoms_series",
    "link",
    "predict_nucleation",
    "series_descriptors",
    "site_descriptors",
    "track_series",
    "transition_labels",
]
