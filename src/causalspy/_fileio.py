"""Reading files through RosettaSciIO with one clear error for the command line."""

from __future__ import annotations

from pathlib import Path

from causalspy.exceptions import FileReadError

__all__ = ["load_file", "read_table"]


def load_file(path: str, lazy: bool, hint: str):
    """``hs.load(path, lazy=lazy)``; missing, directory or unreadable -> FileReadError.

    ``hint`` ends the message for unreadable files, e.g. "Is it a complete
    4D-STEM file RosettaSciIO reads (mib, blo, ...)?". May return a list.
    """
    import hyperspy.api as hs

    p = Path(path)
    if not p.exists():
        raise FileReadError(f"No such file: {path}")
    if p.is_dir() and p.suffix.lower() not in (".zspy", ".zarr"):
        raise FileReadError(f"{path} is a directory, not an image file.")
    try:
        return hs.load(str(p), lazy=lazy)
    except Exception as e:  # RosettaSciIO raises many types for unreadable files
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileReadError(f"Could not read {path}: {msg}. {hint}") from e


def read_table(path: str, what: str = "a CSV table", reader=None):
    """Read a table file; missing or unparsable -> FileReadError naming ``what`` it should be.

    ``reader`` defaults to :func:`pandas.read_csv`; e.g. ``Descriptors.load`` for a
    descriptor table with its sidecar.
    """
    p = Path(path)
    if not p.is_file():
        raise FileReadError(f"No such file: {path}")
    if reader is None:
        import pandas as pd

        reader = pd.read_csv
    try:
        return reader(p)
    except Exception as e:  # noqa: BLE001 - any parser failure is a bad file
        raise FileReadError(f"Could not read {path} as {what}: {e}") from e
