"""The ground truth returned with every synthetic image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GroundTruth"]


@dataclass
class GroundTruth:
    """True column positions and generator parameters of a synthetic image.

    Attributes
    ----------
    columns : pandas.DataFrame
        One row per lattice *site*, vacant sites included. Always has the
        columns ``x``, ``y`` (true centre in pixels; ``x`` = column index,
        ``y`` = row index, origin at the centre of pixel ``[0, 0]``),
        ``sublattice`` (int, 0 = the generator's main/brightest sublattice),
        ``species`` (str), ``counts`` (expected total counts of the column,
        0 for a vacancy), ``present`` (bool), ``sigma`` (Gaussian width in
        pixels) and ``edge`` (bool: centre closer than ``1.5 * sigma`` to the
        image border, or outside it), plus generator-specific columns.
    params : dict
        Every parameter of the generator call, with defaults resolved, and
        derived quantities such as ``pixel_size_nm``.

    Examples
    --------
    >>> from causalspy.data import square_lattice
    >>> signal, truth = square_lattice(shape=(90, 90), noise=False)
    >>> truth.positions()[:2]
    array([[ 8.5,  8.5],
           [26.5,  8.5]])
    """

    columns: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def present(self) -> pd.DataFrame:
        """Return the rows of ``columns`` whose site is occupied (``present == True``).

        Returns
        -------
        pandas.DataFrame
            The occupied sites; the index is kept, so rows can be matched back
            to ``columns``.
        """
        return self.columns[self.columns["present"].to_numpy(dtype=bool)]

    def positions(self, present_only: bool = True, edge: bool = True) -> np.ndarray:
        """Return the true column centres as an ``(n, 2)`` array of ``(x, y)`` pixels.

        Parameters
        ----------
        present_only : bool
            Leave out vacant sites.
        edge : bool
            Keep columns flagged as ``edge``; ``False`` leaves them out.

        Returns
        -------
        numpy.ndarray
            ``float64`` array with columns ``x`` and ``y``.
        """
        mask = np.ones(len(self.columns), dtype=bool)
        if present_only:
            mask &= self.columns["present"].to_numpy(dtype=bool)
        if not edge:
            mask &= ~self.columns["edge"].to_numpy(dtype=bool)
        return self.columns.loc[mask, ["x", "y"]].to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        n_present = int(self.columns["present"].sum()) if len(self.columns) else 0
        generator = self.params.get("generator", "?")
        return (
            f"<GroundTruth from {generator}: {len(self.columns)} sites, "
            f"{n_present} columns present>"
        )
