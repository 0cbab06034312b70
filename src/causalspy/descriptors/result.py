"""The :class:`Descriptors` result: one row per unit cell (or column), with units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from causalspy._tableio import load_table, save_table

__all__ = ["Descriptors", "FORMAT_VERSION"]

FORMAT_VERSION = 1

#: Columns that locate a row and are not descriptors themselves.
INDEX_COLUMNS = ("x", "y", "x_cal", "y_cal", "cell_i", "cell_j", "flag", "edge", "site",
                 "column_index", "sublattice", "hollow")


class Descriptors:
    """Physical descriptors per unit cell (perovskites) or per column (2D materials).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per cell/column; ``x``, ``y`` (px) locate it, ``flag`` is
        True where the row could not be measured (edge, missing neighbours);
        flagged rows hold NaN, never made-up values.
    units : dict
        Unit of every column (``"px"``, ``"nm"``, ``"pm"``, ``"rad"``, ``""``).
    calibration : dict
        Calibration of the source image (see :class:`causalspy.Atoms`).
    metadata : dict
        Provenance: source image, atoms parameters, descriptor parameters.
    lattice : dict, optional
        Reference lattice (``t1``, ``t2`` in px, ``origin``) used for the
        strain and for the cell grid of :meth:`to_maps`.
    image : array, optional
        Image kept in memory for :meth:`plot` (not saved).
    """

    def __init__(self, table: pd.DataFrame, *, units: dict | None = None,
                 calibration: dict | None = None, metadata: dict | None = None,
                 lattice: dict | None = None, image=None) -> None:
        self._table = table.reset_index(drop=True).copy()
        self.units = {c: "" for c in self._table.columns}
        self.units.update(units or {})
        self.calibration = dict(calibration or {})
        self.metadata = dict(metadata or {})
        self.lattice = None if lattice is None else {k: np.asarray(v, float).tolist()
                                                     if not isinstance(v, str) else v
                                                     for k, v in lattice.items()}
        self.image = image

    # ------------------------------------------------------------------ access
    @property
    def names(self) -> list[str]:
        """Numeric descriptor columns (not positions, indices, flags or labels)."""
        t = self._table
        return [c for c in t.columns if c not in INDEX_COLUMNS
                and pd.api.types.is_numeric_dtype(t[c]) and not pd.api.types.is_bool_dtype(t[c])]

    @property
    def labels(self) -> list[str]:
        """Categorical descriptor columns (e.g. ``phase``, ``defect``)."""
        t = self._table
        return [c for c in t.columns if c not in INDEX_COLUMNS and c not in self.names
                and not pd.api.types.is_bool_dtype(t[c])]

    def to_dataframe(self, flagged: bool = True) -> pd.DataFrame:
        """The table as a new DataFrame; ``flagged=False`` leaves out flagged rows."""
        t = self._table.copy()
        if not flagged and "flag" in t:
            t = t[~t["flag"].to_numpy(bool)].reset_index(drop=True)
        return t

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, key):
        return self._table[key].copy()

    def __repr__(self) -> str:
        nflag = int(self._table["flag"].sum()) if "flag" in self._table else 0
        kind = self.metadata.get("structure", "?")
        return (f"<Descriptors ({kind}): {len(self)} rows ({nflag} flagged), "
                f"{len(self.names)} descriptors: {', '.join(self.names[:8])}"
                f"{', ...' if len(self.names) > 8 else ''}>")

    # -------------------------------------------------------------------- plot
    def plot(self, name: str, ax=None, *, image=None, cmap: str = "coolwarm",
             markersize: float = 30.0, symmetric: bool | None = None):
        """Scatter map of one descriptor over the image.

        Parameters
        ----------
        name : str
            Descriptor (table column) to show.
        ax : matplotlib Axes, optional
        image : array, optional
            Background image; default: the analysed image if kept in memory.
        symmetric : bool, optional
            Colour scale centred on zero (default for signed quantities such
            as displacements and strains).

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if name not in self._table:
            raise KeyError(f"No descriptor {name!r}; available: {', '.join(self.names)}")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 6))
        img = self.image if image is None else getattr(image, "data", image)
        if img is not None:
            ax.imshow(np.asarray(img, float), cmap="gray", interpolation="nearest")
        t = self._table
        ok = ~t["flag"].to_numpy(bool) if "flag" in t else np.ones(len(t), bool)
        if not pd.api.types.is_numeric_dtype(t[name]) or pd.api.types.is_bool_dtype(t[name]):
            # a categorical descriptor (phase, defect): one colour per category
            cats = sorted(map(str, pd.unique(t[name].astype(str))))
            pal = plt.get_cmap("tab10")
            for k, cat in enumerate(cats):
                m = (t[name].astype(str) == cat).to_numpy()
                ax.scatter(t["x"][m], t["y"][m], s=markersize, color=pal(k % 10), label=cat)
            ax.legend(loc="upper right", fontsize="small", title=name)
            ax.set_title(name)
            ax.set_xlabel("x (px)")
            ax.set_ylabel("y (px)")
            return ax
        v = t[name].to_numpy(float)
        if symmetric is None:
            symmetric = bool(np.nanmin(v[ok], initial=0) < 0 < np.nanmax(v[ok], initial=0))
        vmax = np.nanpercentile(np.abs(v[ok]), 99) if ok.any() else 1.0
        kw = {"vmin": -vmax, "vmax": vmax} if symmetric else {}
        sc = ax.scatter(t["x"][ok], t["y"][ok], c=v[ok], s=markersize, cmap=cmap, **kw)
        if (~ok).any():
            ax.scatter(t["x"][~ok], t["y"][~ok], s=markersize * 0.4, marker="x",
                       color="gray", label="flagged (not measured)")
            ax.legend(loc="upper right", fontsize="small")
        unit = self.units.get(name, "")
        plt.colorbar(sc, ax=ax, label=f"{name} ({unit})" if unit else name)
        ax.set_title(name)
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        return ax

    # --------------------------------------------------------------------- maps
    def to_maps(self, names: list[str] | None = None):
        """Descriptors on the cell grid as a ``descriptor_maps`` signal.

        A :class:`~causalspy.signals.DescriptorMaps` stack: the descriptor
        is the navigation axis, the cell grid (calibrated along the reference
        lattice vectors) the signal axes. Missing or flagged cells are NaN and
        ``metadata.Descriptors.valid`` is their mask.
        """
        from causalspy.signals.descriptor_maps import DescriptorMaps

        names = list(names or self.names)
        t = self._table
        if "cell_i" not in t or "cell_j" not in t:
            raise ValueError("These descriptors have no cell indices (cell_i, cell_j); "
                             "maps need a lattice.")
        ok = (t["cell_i"].to_numpy() >= 0) & (t["cell_j"].to_numpy() >= 0)
        ci = t["cell_i"].to_numpy()[ok]
        cj = t["cell_j"].to_numpy()[ok]
        ni, nj = int(ci.max()) + 1 if ci.size else 0, int(cj.max()) + 1 if cj.size else 0
        data = np.full((len(names), nj, ni), np.nan)
        flag = t["flag"].to_numpy(bool)[ok] if "flag" in t else np.zeros(ok.sum(), bool)
        valid = np.zeros((nj, ni), dtype=bool)
        valid[cj[~flag], ci[~flag]] = True
        for k, n in enumerate(names):
            v = t[n].to_numpy(float)[ok].copy()
            v[flag] = np.nan
            data[k, cj, ci] = v
        s = DescriptorMaps(data)
        cal = self.calibration
        lat = self.lattice or {}
        t1 = np.asarray(lat.get("t1", [1.0, 0.0]), float)
        t2 = np.asarray(lat.get("t2", [0.0, 1.0]), float)
        sx, sy = cal.get("x_scale", 1.0), cal.get("y_scale", 1.0)
        units = cal.get("x_units", "px")
        ax_n = s.axes_manager.navigation_axes[0]
        ax_n.name = "descriptor"
        ax_x, ax_y = s.axes_manager.signal_axes
        ax_x.name, ax_y.name = "cell_i", "cell_j"
        ax_x.scale = float(np.hypot(t1[0] * sx, t1[1] * sy))
        ax_y.scale = float(np.hypot(t2[0] * sx, t2[1] * sy))
        ax_x.units = ax_y.units = units
        s.metadata.General.title = "descriptor maps"
        s.metadata.set_item("Descriptors.names", names)
        s.metadata.set_item("Descriptors.units", [self.units.get(n, "") for n in names])
        s.metadata.set_item("Descriptors.valid", valid)
        s.metadata.set_item("Descriptors.lattice_t1_px", t1.tolist())
        s.metadata.set_item("Descriptors.lattice_t2_px", t2.tolist())
        return s

    # --------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (``.csv``) plus a ``.csv.json`` sidecar (units, provenance).

        Lossless: :meth:`load` restores the table bit for bit.
        """
        return save_table(path, self._table, "causalspy-descriptors", FORMAT_VERSION, {
            "units": self.units, "calibration": self.calibration, "metadata": self.metadata,
            "lattice": self.lattice,
        })

    @classmethod
    def load(cls, path: str | Path) -> Descriptors:
        """Load what :meth:`save` wrote."""
        table, side = load_table(path, "causalspy-descriptors", FORMAT_VERSION)
        return cls(table, units=side.get("units"), calibration=side.get("calibration"),
                   metadata=side.get("metadata"), lattice=side.get("lattice"))
