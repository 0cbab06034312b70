"""Descriptors: physical quantities per unit cell or per column, as tables and maps."""

from __future__ import annotations

from causalspy.descriptors.perovskite import perovskite_descriptors
from causalspy.descriptors.result import Descriptors
from causalspy.exceptions import InvalidParameterError

__all__ = ["Descriptors", "compute_descriptors", "perovskite_descriptors"]

STRUCTURES = ("perovskite",)


def compute_descriptors(atoms, structure: str = "perovskite", **kwargs) -> Descriptors:
    """Descriptors of an :class:`~causalspy.Atoms` result for a structure family.

    Parameters
    ----------
    atoms : Atoms
    structure : {"perovskite"}
        ``"perovskite"``: per B-site unit cell (see :func:`perovskite_descriptors`).
    **kwargs
        Passed to the structure's function.
    """
    if structure == "perovskite":
        return perovskite_descriptors(atoms, **kwargs)
    raise InvalidParameterError(
        f"Unknown structure {structure!r}; choose one of {', '.join(STRUCTURES)}."
    )
