"""HyperSpy signal classes registered by causalspy (see ``hyperspy_extension.yaml``)."""

from causalspy.signals.atomic_resolution import AtomicResolution, LazyAtomicResolution
from causalspy.signals.descriptor_maps import DescriptorMaps, LazyDescriptorMaps

__all__ = [
    "AtomicResolution",
    "DescriptorMaps",
    "LazyAtomicResolution",
    "LazyDescriptorMaps",
]
