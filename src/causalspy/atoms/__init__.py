"""Atomic columns: detection, sub-pixel refinement, sublattices and chemistry."""

from causalspy.atoms.detect import autocorrelation_period, columns_are_dark, estimate_separation
from causalspy.atoms.find import find_atoms
from causalspy.atoms.refine import NoiseModel, refine_com, refine_gaussian
from causalspy.atoms.table import Atoms

__all__ = [
    "Atoms",
    "NoiseModel",
    "autocorrelation_period",
    "columns_are_dark",
    "estimate_separation",
    "find_atoms",
    "refine_com",
    "refine_gaussian",
]
