"""The ``diffraction_4d`` signal type: a 4D-STEM scan (scan | detector)."""

from __future__ import annotations

from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

__all__ = ["Diffraction4D", "LazyDiffraction4D"]


class Diffraction4D(Signal2D):
    """A 4D-STEM dataset: two scan (navigation) and two detector (signal) axes.

    Get one with ``hs.load(f, signal_type="diffraction_4d")`` or
    ``s.set_signal_type("diffraction_4d")``. The methods are thin wrappers
    around :mod:`causalspy.multimodal.fourdstem`; they read the data once
    (out of core for lazy signals, on a ``dask.distributed`` cluster when a
    client is active) and never modify the signal. pyxem users convert with
    :meth:`to_pyxem` (the data and axes are the same).
    """

    _signal_type = "diffraction_4d"

    def to_pyxem(self):
        """The same data as pyxem's ``ElectronDiffraction2D`` (a new signal, data shared).

        Raises ``ImportError`` with the install command when pyxem is missing.
        """
        try:
            import pyxem  # noqa: F401
        except ImportError as e:
            raise ImportError("to_pyxem() needs pyxem: pip install pyxem (or causalspy[bench])"
                              ) from e
        out = self._deepcopy_with_new_data(self.data)
        out.set_signal_type("electron_diffraction")
        return out

    def bad_pixel_mask(self, **kwargs):
        """Dead, hot and NaN detector pixels; see :func:`causalspy.multimodal.bad_pixel_mask`."""
        from causalspy.multimodal.fourdstem import bad_pixel_mask

        return bad_pixel_mask(self, **kwargs)

    def center_of_mass(self, mask=None, center=None):
        """Centre of mass of every pattern; see :func:`causalspy.multimodal.center_of_mass`."""
        from causalspy.multimodal.fourdstem import center_of_mass

        return center_of_mass(self, mask=mask, center=center)

    def virtual_images(self, detectors=None, mask=None):
        """Virtual detector images; see :func:`causalspy.multimodal.virtual_images`."""
        from causalspy.multimodal.fourdstem import virtual_images

        return virtual_images(self, detectors=detectors, mask=mask)

    def dpc(self, **kwargs):
        """CoM/DPC field, charge, potential, virtual images; see :func:`causalspy.multimodal.dpc`."""
        from causalspy.multimodal.fourdstem import dpc

        return dpc(self, **kwargs)

    def descriptor_maps(self, **kwargs):
        """All 4D-STEM descriptors as a ``descriptor_maps`` signal on the scan grid.

        See :func:`causalspy.multimodal.fourd_descriptor_maps`.
        """
        from causalspy.multimodal.fourdstem import fourd_descriptor_maps

        return fourd_descriptor_maps(self, **kwargs)


class LazyDiffraction4D(LazySignal, Diffraction4D):
    """Lazy version of :class:`Diffraction4D` (processed chunk by chunk with Dask)."""
