"""Turn descriptors into a clean numeric matrix for causal discovery, or say why not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalspy.exceptions import InvalidParameterError

__all__ = ["prepare_table"]

#: Columns of a Descriptors table left out by default (positions, indices, duplicates).
_SKIP = {"x", "y", "x_cal", "y_cal", "cell_i", "cell_j", "flag", "edge", "column_index",
         "p_angle"}


def _as_frame(data) -> pd.DataFrame:
    from causalspy.descriptors.result import Descriptors

    if isinstance(data, Descriptors):
        df = data.to_dataframe(flagged=False)
        keep = [c for c in data.names if c not in _SKIP and not c.endswith("_cal")]
        return df[keep]
    if isinstance(data, pd.DataFrame):
        df = data
        if "flag" in df:
            df = df[~df["flag"].astype(bool)]
        return df.drop(columns=[c for c in ("flag",) if c in df])
    try:  # a descriptor_maps signal: one column per descriptor, one row per valid cell
        from causalspy.signals.descriptor_maps import DescriptorMaps

        if isinstance(data, DescriptorMaps):
            names = data.descriptor_names
            arr = np.asarray(data.data).reshape(len(names), -1).T
            return pd.DataFrame(arr, columns=names)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidParameterError(f"Data must be a 2D table; got shape {data.shape}.")
        return pd.DataFrame(data, columns=[f"x{i}" for i in range(data.shape[1])])
    raise InvalidParameterError(
        f"Causal discovery takes a Descriptors result, a pandas DataFrame, a descriptor_maps "
        f"signal or a 2D array; got {type(data).__name__}."
    )


def _default_variables(df: pd.DataFrame) -> list[str]:
    """Columns of a descriptor table that are variables: not all-NaN, not the uncertainty
    of another column (``<x>_err``, ``<x>_sem``), not an edge onset next to its shift."""
    cols = set(df.columns)
    return [c for c in df.columns if not df[c].isna().all()
            and not (c.endswith(("_err", "_sem")) and c[:-4] in cols)
            and not (c.endswith("_onset") and f"{c[:-6]}_shift" in cols)]


def prepare_table(data, columns: list[str] | None = None, *, min_per_variable: int = 10,
                  collinear_tol: float = 1e-6) -> pd.DataFrame:
    """Select, check and clean the variables for causal discovery.

    Rows with any NaN are dropped (flagged cells). Refused, with an error that
    names the columns: non-numeric or all-NaN columns, constant columns,
    duplicate columns, perfectly collinear sets, fewer than
    ``min_per_variable`` rows per variable, unknown column names.
    """
    df = _as_frame(data)
    if columns is None and not isinstance(data, pd.DataFrame | np.ndarray):
        # a Descriptors table's default variables: leave out descriptors this image could not
        # give (e.g. octahedral tilt without imaged oxygen columns); named ones still error.
        # Nor the uncertainties of a multimodal table (<x>_err, <x>_sem next to <x>) or an edge
        # onset next to its shift (reference onset + shift: a duplicate of it)
        df = df[_default_variables(df)]
    if columns is not None:
        columns = list(columns)
        unknown = [c for c in columns if c not in df.columns]
        if unknown:
            raise InvalidParameterError(
                f"Unknown column(s) {unknown}; available: {list(df.columns)}."
            )
        if len(set(columns)) != len(columns):
            raise InvalidParameterError(f"Columns are listed twice in {columns}.")
        df = df[columns]
    nonnum = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])
              or pd.api.types.is_bool_dtype(df[c])]
    if nonnum:
        raise InvalidParameterError(
            f"Non-numeric column(s) {nonnum}: encode them as numbers or leave them out "
            "(columns=...)."
        )
    df = df.astype(float)
    allnan = [c for c in df.columns if df[c].isna().all()]
    if allnan:
        raise InvalidParameterError(f"Column(s) {allnan} hold only NaN; leave them out.")
    df = df.replace([np.inf, -np.inf], np.nan).dropna().reset_index(drop=True)
    if df.shape[1] < 2:
        raise InvalidParameterError("At least two variables are needed for a causal graph.")
    const = [c for c in df.columns if np.nanstd(df[c].to_numpy()) == 0]
    if const:
        raise InvalidParameterError(f"Column(s) {const} are constant: they cannot cause or be "
                                    "caused by anything here; leave them out.")
    if len(df) < min_per_variable * df.shape[1]:
        raise InvalidParameterError(
            f"{len(df)} complete rows for {df.shape[1]} variables: at least "
            f"{min_per_variable * df.shape[1]} ({min_per_variable} per variable) are needed. "
            "Use fewer columns or more cells."
        )
    X = df.to_numpy()
    Z = (X - X.mean(0)) / X.std(0)
    cols = list(df.columns)
    for i in range(len(cols)):
        for j in range(i):
            if np.allclose(Z[:, i], Z[:, j], atol=1e-9) or np.allclose(Z[:, i], -Z[:, j], atol=1e-9):
                raise InvalidParameterError(
                    f"Columns {cols[j]!r} and {cols[i]!r} are duplicates (identical up to scale); "
                    "keep one."
                )
    sv = np.linalg.svd(Z / np.sqrt(len(Z)), compute_uv=False)
    if sv[-1] < collinear_tol * sv[0]:
        # name the smallest set: the variables loading on the null direction
        _, _, vt = np.linalg.svd(Z / np.sqrt(len(Z)))
        null = vt[-1]
        involved = [cols[k] for k in np.argsort(-np.abs(null)) if abs(null[k]) > 0.05]
        raise InvalidParameterError(
            f"Columns {involved} are perfectly collinear (one is a linear combination of the "
            "others); leave one out."
        )
    return df
