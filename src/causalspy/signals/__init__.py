"""HyperSpy signal classes registered by causalspy (see ``hyperspy_extension.yaml``)."""

from causalspy.signals.atomic_resolution import AtomicResolution, LazyAtomicResolution

__all__ = ["AtomicResolution", "LazyAtomicResolution"]
