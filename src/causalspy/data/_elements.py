"""Atomic numbers of the elements the synthetic generators know about."""

from __future__ import annotations

from causalspy.exceptions import InvalidParameterError

__all__ = ["Z", "atomic_number"]

#: Atomic number of each element symbol the generators accept.
Z: dict[str, int] = {
    "H": 1,
    "Li": 3,
    "C": 6,
    "N": 7,
    "O": 8,
    "F": 9,
    "Na": 11,
    "Mg": 12,
    "Al": 13,
    "Si": 14,
    "P": 15,
    "S": 16,
    "Cl": 17,
    "K": 19,
    "Ca": 20,
    "Sc": 21,
    "Ti": 22,
    "V": 23,
    "Cr": 24,
    "Mn": 25,
    "Fe": 26,
    "Co": 27,
    "Ni": 28,
    "Cu": 29,
    "Zn": 30,
    "Ga": 31,
    "Ge": 32,
    "As": 33,
    "Se": 34,
    "Sr": 38,
    "Y": 39,
    "Zr": 40,
    "Nb": 41,
    "Mo": 42,
    "Ru": 44,
    "Pd": 46,
    "Ag": 47,
    "In": 49,
    "Sn": 50,
    "Sb": 51,
    "Te": 52,
    "Ba": 56,
    "La": 57,
    "Ce": 58,
    "Nd": 60,
    "Sm": 62,
    "Gd": 64,
    "Hf": 72,
    "Ta": 73,
    "W": 74,
    "Re": 75,
    "Ir": 77,
    "Pt": 78,
    "Au": 79,
    "Pb": 82,
    "Bi": 83,
}


def atomic_number(symbol: str, name: str = "element") -> int:
    """Return the atomic number of ``symbol``.

    Parameters
    ----------
    symbol : str
        Element symbol with standard capitalisation, e.g. ``"Pb"``.
    name : str
        Name of the parameter, used in the error message.

    Returns
    -------
    int
        The atomic number.

    Raises
    ------
    InvalidParameterError
        If the symbol is not in :data:`Z`.
    """
    if not isinstance(symbol, str) or symbol not in Z:
        valid = ", ".join(sorted(Z, key=Z.__getitem__))
        raise InvalidParameterError(
            f"{name}={symbol!r} is not a known element; use one of: {valid} "
            "(case-sensitive symbols, or add the element to causalspy.data.Z)."
        )
    return Z[symbol]
