"""The ``atomic_resolution`` signal type: a STEM/TEM image with atomic columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

if TYPE_CHECKING:  # pragma: no cover
    from causalspy.atoms.table import Atoms

__all__ = ["AtomicResolution", "LazyAtomicResolution"]


class AtomicResolution(Signal2D):
    """An atomically resolved image (HAADF, ABF, BF, ...) in HyperSpy.

    Get one with ``hs.load(f, signal_type="atomic_resolution")`` or
    ``s.set_signal_type("atomic_resolution")`` on any ``Signal2D``.
    Methods return new objects; the signal itself is never modified.
    """

    _signal_type = "atomic_resolution"

    def find_atoms(
        self,
        separation: float | None = None,
        refine: Literal["gaussian", "com", "none"] = "gaussian",
        invert: bool | None = None,
        **kwargs,
    ) -> Atoms:
        """Find every atomic column and refine its position to sub-pixel precision.

        A thin wrapper around :func:`causalspy.atoms.find_atoms` that passes
        the signal's axes calibration and metadata; see that function for all
        parameters and the returned table.

        Parameters
        ----------
        separation : float, optional
            Smallest column separation in pixels. Estimated from the image's
            autocorrelation when not given.
        refine : {"gaussian", "com", "none"}
            Sub-pixel refinement: joint 2D elliptical Gaussian fit (maximum
            likelihood), iterated centre of mass, or none.
        invert : bool, optional
            ``True`` for dark columns (ABF, BF). ``None`` decides from the image.
        **kwargs
            Passed to :func:`causalspy.atoms.find_atoms`.

        Returns
        -------
        Atoms
            One row per column with positions, uncertainties, widths,
            intensities and sublattice labels.
        """
        from causalspy.atoms.find import find_atoms

        return find_atoms(self, separation=separation, refine=refine, invert=invert, **kwargs)


class LazyAtomicResolution(LazySignal, AtomicResolution):
    """Lazy (Dask-backed) version of :class:`AtomicResolution`.

    ``find_atoms`` processes the image in overlapping Dask blocks, so large
    images run in bounded memory and on a ``dask.distributed`` cluster.
    """
