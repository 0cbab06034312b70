"""Exception types raised by causalspy.

Every error raised for bad input derives from :class:`CausalspyError`, so a
caller (the CLI, a napari widget, a batch script) can catch one type and show
its message, which always says what to do next.
"""

from __future__ import annotations

__all__ = [
    "CausalspyError",
    "InvalidImageError",
    "InvalidParameterError",
    "NoColumnsFoundError",
    "FileReadError",
]


class CausalspyError(ValueError):
    """Base class for errors caused by the data or parameters a user gave."""


class InvalidImageError(CausalspyError):
    """The image cannot be analysed as given (NaN/inf, constant, too small,
    complex, wrong dimensionality, ...)."""


class InvalidParameterError(CausalspyError):
    """A parameter is out of its valid range or inconsistent with the data."""


class NoColumnsFoundError(CausalspyError):
    """Column detection found too few columns to build the requested result."""


class FileReadError(CausalspyError):
    """A file could not be read (missing, unreadable, truncated or of an
    unsupported format)."""
