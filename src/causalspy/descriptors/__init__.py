"""Descriptors: physical quantities per unit cell or per column, as tables and maps."""

from __future__ import annotations

from causalspy.descriptors.hexagonal import hexagonal_descriptors
from causalspy.descriptors.perovskite import perovskite_descriptors
from causalspy.descriptors.result import Descriptors
from causalspy.exceptions import InvalidParameterError

__all__ = [
    "Descriptors",
    "compute_descriptors",
    "hexagonal_descriptors",
    "perovskite_descriptors",
]

STRUCTURES = ("perovskite", "hexagonal")


def compute_descriptors(atoms, structure: str = "perovskite", **kwargs) -> Descriptors:
    """Descriptors of an :class:`~causalspy.Atoms` result for a structure family.

    Parameters
    ----------
    atoms : Atoms
    structure : {"perovskite", "hexagonal"}
        ``"perovskite"``: per B-site unit cell (see :func:`perovskite_descriptors`);
        ``"hexagonal"``: per column of a 2D transition-metal dichalcogenide, with
        vacancies as rows (see :func:`hexagonal_descriptors`).
    **kwargs
        Passed to the structure's function.
    """
    if structure == "perovskite":
        return perovskite_descriptors(atoms, **kwargs)
    if structure == "hexagonal":
        return hexagonal_descriptors(atoms, **kwargs)
    raise InvalidParameterError(
        f"Unknown structure {structure!r}; choose one of {', '.join(STRUCTURES)}."
    )
