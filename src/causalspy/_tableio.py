"""Lossless table files shared by result classes: CSV + a JSON sidecar.

The CSV holds the table (floats with 17 significant digits, which round-trip
every float64 bit for bit) and opens in any spreadsheet or
``pandas.read_csv``. ``<name>.csv.json`` holds what a CSV cannot: the format
name and version, column dtypes, and the result's metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalspy.exceptions import FileReadError

__all__ = ["save_table", "load_table", "jsonable", "frame_to_json", "frame_from_json",
           "read_json"]


def sidecar_path(path: Path) -> Path:
    return Path(str(path) + ".json")


def save_table(path: str | Path, table: pd.DataFrame, fmt: str, version: int,
               extra: dict[str, Any]) -> Path:
    """Write ``table`` to ``path`` (.csv) and ``extra`` to the JSON sidecar."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"Tables are saved as .csv (plus a .json sidecar); got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.17g")
    side = {"format": fmt, "format_version": version,
            "dtypes": {k: str(v) for k, v in table.dtypes.items()}}
    side.update(jsonable(extra))
    sidecar_path(path).write_text(json.dumps(side, indent=1, allow_nan=True))
    return path


def load_table(path: str | Path, fmt: str, version: int,
               required: tuple[str, ...] = ("x", "y")) -> tuple[pd.DataFrame, dict]:
    """Read what :func:`save_table` wrote; a bare CSV (no sidecar) also loads."""
    path = Path(path)
    if not path.exists():
        raise FileReadError(f"No such file: {path}")
    side: dict[str, Any] = {}
    sp = sidecar_path(path)
    if sp.exists():
        try:
            side = json.loads(sp.read_text())
        except json.JSONDecodeError as e:
            raise FileReadError(f"{sp} is not valid JSON ({e}); re-save the result.") from e
        if side.get("format") != fmt:
            raise FileReadError(f"{sp} is not a {fmt} sidecar (found {side.get('format')!r}).")
        if int(side.get("format_version", 0)) > version:
            raise FileReadError(
                f"{path} was written by a newer causalspy (format {side['format_version']}); "
                "upgrade causalspy to read it."
            )
    try:
        kw = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
        dtypes = side.get("dtypes")
        if dtypes:
            # empty cells are NaN in numeric columns but empty strings in text columns
            kw.update(keep_default_na=False,
                      na_values={c: ["", "NaN", "nan"] for c, v in dtypes.items()
                                 if v.startswith(("int", "float"))})
        table = pd.read_csv(path, dtype=_read_dtypes(dtypes), **kw)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise FileReadError(f"Could not read {path} as a {fmt} table: {e}") from e
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise FileReadError(
            f"{path} has no {' and '.join(repr(c) for c in missing)} column(s); "
            f"is it a {fmt} table?"
        )
    return table, side


def read_json(path: str | Path, fmt: str, what: str) -> dict:
    """Read a causalspy JSON result file, checking that it is one of format ``fmt``."""
    path = Path(path)
    if not path.exists():
        raise FileReadError(f"No such file: {path}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FileReadError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise FileReadError(f"{path} is not a causalspy {what}.")
    return d


def frame_to_json(df: pd.DataFrame) -> dict:
    return {
        "columns": list(df.columns),
        "dtypes": {k: str(v) for k, v in df.dtypes.items()},
        "data": {k: df[k].tolist() for k in df.columns},
    }


def frame_from_json(d: dict) -> pd.DataFrame:
    df = pd.DataFrame({k: d["data"][k] for k in d["columns"]})
    for k, dt in d["dtypes"].items():
        df[k] = df[k].astype(dt)
    return df


def _read_dtypes(dtypes: dict | None):
    if not dtypes:
        return None
    return {k: v for k, v in dtypes.items() if v == "bool" or v.startswith(("int", "float"))}


def jsonable(obj):
    """Make metadata JSON-safe (NumPy scalars and arrays to Python types)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
