"""The :class:`Atoms` result: one row per atomic column, with calibration and provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from causalspy._tableio import frame_from_json, frame_to_json, load_table, save_table

__all__ = ["Atoms", "FORMAT_VERSION"]

FORMAT_VERSION = 1

#: Columns every Atoms table has, with their units ("px" = pixels).
COLUMNS = {
    "x": "px",
    "y": "px",
    "x_err": "px",
    "y_err": "px",
    "sigma": "px",
    "sigma_major": "px",
    "sigma_minor": "px",
    "rotation": "rad",
    "amplitude": "image units",
    "background": "image units",
    "intensity": "image units x px^2",
    "intensity_err": "image units x px^2",
    "sublattice": "",
    "intensity_class": "",
    "dopant_z": "",
    "dopant": "",
    "edge": "",
    "fit_ok": "",
    "chi2": "",
}


class Atoms:
    """Atomic columns found in an image: a table plus calibration and provenance.

    Pixel coordinates follow the image array: ``x`` is the column index,
    ``y`` the row index, and the origin is the centre of pixel ``[0, 0]``.
    Calibrated positions are ``x_cal = x_offset + x_scale * x`` (likewise
    ``y``), in the image's axis units.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per column with at least ``x`` and ``y``; see the table
        below for the columns :func:`causalspy.find_atoms` writes.
    calibration : dict, optional
        ``x_scale, y_scale, x_offset, y_offset, x_units, y_units``.
    metadata : dict, optional
        Provenance: source image, parameters, software version, notes.
    vacancies : pandas.DataFrame, optional
        Lattice sites without a column (``x``, ``y``, ``sublattice``,
        ``n_predictions``).
    lattice_vectors : (2, 2) array, optional
        Primitive translations (px), one per row.
    image : array, optional
        The analysed image, kept in memory for :meth:`plot` (not saved).

    Notes
    -----
    Table columns written by :func:`causalspy.find_atoms`:

    =============== =============================================================
    x, y            column centre (px)
    x_err, y_err    1-sigma position uncertainty (px) from the Fisher information
    sigma           column width, geometric mean of sigma_major and sigma_minor (px)
    sigma_major     width along the major axis of the elliptical Gaussian (px)
    sigma_minor     width along the minor axis (px)
    rotation        angle of the major axis from +x (rad)
    amplitude       peak height above the local background (image units)
    background      local background under the column (image units)
    intensity       integrated column intensity, 2 pi A sigma_major sigma_minor
    intensity_err   its 1-sigma uncertainty
    sublattice      sublattice label (0 = brightest on average; -1 unassigned)
    intensity_class Gaussian-mixture class of the intensity (0 = brightest)
    dopant_z        robust z-score of the intensity within its sublattice
    dopant          True where abs(dopant_z) exceeds the threshold
    edge            True when the fitting window is cut by the image border
    fit_ok          False where the fit failed (position from detection)
    chi2            reduced chi-square of the fit (about 1 for a good fit)
    x_cal, y_cal    calibrated position (axis units); also x_err_cal, y_err_cal
    =============== =============================================================
    """

    def __init__(
        self,
        table: pd.DataFrame,
        *,
        calibration: dict | None = None,
        metadata: dict | None = None,
        vacancies: pd.DataFrame | None = None,
        lattice_vectors: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> None:
        if not {"x", "y"} <= set(table.columns):
            raise ValueError("An Atoms table needs at least the columns 'x' and 'y'.")
        self._table = table.reset_index(drop=True).copy()
        self.calibration = dict(
            {"x_scale": 1.0, "y_scale": 1.0, "x_offset": 0.0, "y_offset": 0.0,
             "x_units": "px", "y_units": "px"},
            **(calibration or {}),
        )
        self.metadata = dict(metadata or {})
        if vacancies is None:
            vacancies = pd.DataFrame({"x": [], "y": [], "sublattice": pd.Series([], dtype=int),
                                      "n_predictions": pd.Series([], dtype=int)})
        self.vacancies = vacancies.reset_index(drop=True).copy()
        self.lattice_vectors = None if lattice_vectors is None else np.asarray(lattice_vectors, float)
        self.image = image
        self._add_calibrated()

    # ------------------------------------------------------------------ access
    def _add_calibrated(self) -> None:
        c = self.calibration
        for df in (self._table, self.vacancies):
            if len(df.columns) and "x" in df:
                df["x_cal"] = c["x_offset"] + c["x_scale"] * df["x"].to_numpy(float)
                df["y_cal"] = c["y_offset"] + c["y_scale"] * df["y"].to_numpy(float)
        if "x_err" in self._table:
            self._table["x_err_cal"] = abs(c["x_scale"]) * self._table["x_err"].to_numpy(float)
            self._table["y_err_cal"] = abs(c["y_scale"]) * self._table["y_err"].to_numpy(float)

    @property
    def table(self) -> pd.DataFrame:
        """The table (a copy: editing it does not change this object)."""
        return self._table.copy()

    def to_dataframe(self) -> pd.DataFrame:
        """The table as a new :class:`pandas.DataFrame` (calibrated columns included)."""
        return self._table.copy()

    @property
    def positions(self) -> np.ndarray:
        """``(n, 2)`` array of ``(x, y)`` pixel positions."""
        return self._table[["x", "y"]].to_numpy(float)

    @property
    def n_sublattices(self) -> int:
        """Number of distinct sublattice labels (unassigned columns not counted)."""
        if "sublattice" not in self._table:
            return 1
        s = self._table["sublattice"].to_numpy()
        return int(len(np.unique(s[s >= 0])))

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, key):
        return self._table[key].copy()

    def __repr__(self) -> str:
        u = self.calibration["x_units"]
        return (
            f"<Atoms: {len(self)} columns, {self.n_sublattices} sublattice(s), "
            f"{len(self.vacancies)} vacancies, scale {self.calibration['x_scale']:g} {u}/px>"
        )

    def select(self, mask) -> Atoms:
        """A new :class:`Atoms` with the rows where ``mask`` is True."""
        mask = np.asarray(mask, dtype=bool)
        return Atoms(
            self._table[mask], calibration=self.calibration, metadata=self.metadata,
            vacancies=self.vacancies, lattice_vectors=self.lattice_vectors, image=self.image,
        )

    def sublattice(self, label: int) -> Atoms:
        """The columns of one sublattice."""
        return self.select(self._table["sublattice"].to_numpy() == label)

    # -------------------------------------------------------------------- plot
    def plot(self, image=None, ax=None, *, color_by: str = "sublattice", show_vacancies: bool = True,
             show_dopants: bool = True, markersize: float = 12.0, cmap: str = "gray"):
        """Overlay the columns on the image, coloured by sublattice.

        Parameters
        ----------
        image : array or HyperSpy signal, optional
            Background image; default: the analysed image if kept in memory.
        ax : matplotlib Axes, optional
        color_by : str
            Table column used for the colours (default ``"sublattice"``).
        show_vacancies, show_dopants : bool
            Mark vacancies (open squares) and dopant candidates (red rings).

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 7))
        img = self.image if image is None else image
        if img is not None:
            data = getattr(img, "data", img)
            ax.imshow(np.asarray(data, dtype=float), cmap=cmap, origin="upper",
                      interpolation="nearest")
        t = self._table
        values = t[color_by].to_numpy() if color_by in t else np.zeros(len(t))
        palette = plt.get_cmap("tab10")
        if color_by == "sublattice":
            for s in np.unique(values):
                m = values == s
                label = f"sublattice {s}" if s >= 0 else "unassigned"
                ax.scatter(t["x"][m], t["y"][m], s=markersize, color=palette(int(s) % 10) if s >= 0
                           else "white", label=label, edgecolors="none")
        else:
            sc = ax.scatter(t["x"], t["y"], s=markersize, c=values, cmap="viridis")
            plt.colorbar(sc, ax=ax, label=color_by)
        if show_dopants and "dopant" in t and t["dopant"].any():
            d = t[t["dopant"].astype(bool)]
            ax.scatter(d["x"], d["y"], s=markersize * 6, facecolors="none", edgecolors="red",
                       linewidths=1.2, label="dopant candidate")
        if show_vacancies and len(self.vacancies):
            v = self.vacancies
            ax.scatter(v["x"], v["y"], s=markersize * 5, marker="s", facecolors="none",
                       edgecolors="yellow", linewidths=1.2, label="vacancy")
        if "edge" in t and t["edge"].any():
            e = t[t["edge"].astype(bool)]
            ax.scatter(e["x"], e["y"], s=markersize * 0.8, marker="x", color="magenta",
                       linewidths=0.8, label="edge")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        title = self.metadata.get("source", {}).get("title") if isinstance(
            self.metadata.get("source"), dict) else None
        if title and len(title) > 40:
            title = title[:39] + "…"
        ax.set_title(f"{len(self)} columns" + (f" — {title}" if title else ""), fontsize="medium")
        ax.legend(loc="upper right", fontsize="small", framealpha=0.7)
        return ax

    # --------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (``.csv``) plus ``path + ".json"`` (metadata, vacancies).

        The CSV holds the table exactly (floats written with 17 significant
        digits, which round-trip every float64 bit for bit) and can be read by
        any spreadsheet or ``pandas.read_csv``. The JSON sidecar holds the
        format name (``causalspy-atoms``) and version, calibration, provenance
        metadata, lattice vectors, column dtypes and the vacancy table.
        :meth:`load` restores the object exactly.

        Returns
        -------
        pathlib.Path
            The CSV path.
        """
        return save_table(path, self._table, "causalspy-atoms", FORMAT_VERSION, {
            "calibration": self.calibration,
            "metadata": self.metadata,
            "lattice_vectors": None if self.lattice_vectors is None else self.lattice_vectors,
            "vacancies": frame_to_json(self.vacancies),
        })

    @classmethod
    def load(cls, path: str | Path) -> Atoms:
        """Load what :meth:`save` wrote (a bare CSV with ``x`` and ``y`` also works)."""
        table, side = load_table(path, "causalspy-atoms", FORMAT_VERSION)
        vac = frame_from_json(side["vacancies"]) if "vacancies" in side else None
        lv = side.get("lattice_vectors")
        return cls(
            table,
            calibration=side.get("calibration"),
            metadata=side.get("metadata"),
            vacancies=vac,
            lattice_vectors=None if lv is None else np.array(lv, dtype=float),
        )

    def descriptors(self, structure: str = "perovskite", **kwargs):
        """Per-cell (perovskite) or per-column (hexagonal) descriptors of these columns.

        See :func:`causalspy.descriptors.compute_descriptors`.
        """
        from causalspy.descriptors import compute_descriptors

        return compute_descriptors(self, structure=structure, **kwargs)
