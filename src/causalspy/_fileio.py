"""Reading files through RosettaSciIO with one clear error for the command line."""

from __future__ import annotations

from pathlib import Path

from causalspy.exceptions import FileReadError

__all__ = ["load_file"]


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
