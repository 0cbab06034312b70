"""HyperSpy signal classes registered by causalspy (see ``hyperspy_extension.yaml``)."""

from causalspy.signals.atomic_resolution import AtomicResolution, LazyAtomicResolution
from causalspy.signals.atomic_series import AtomicSeries, LazyAtomicSeries
from causalspy.signals.descriptor_maps import DescriptorMaps, LazyDescriptorMaps
from causalspy.signals.diffraction_4d import Diffraction4D, LazyDiffraction4D

__all__ = [
    "AtomicResolution",
    "AtomicSeries",
    "DescriptorMaps",
    "Diffraction4D",
    "LazyAtomicResolution",
    "LazyAtomicSeries",
    "LazyDescriptorMaps",
    "LazyDiffraction4D",
]
