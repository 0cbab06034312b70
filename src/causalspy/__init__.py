"""causalspy: from atomically resolved electron-microscopy data to causal understanding.

The core package is importable without Qt or napari. HyperSpy signal classes
are registered through HyperSpy's extension mechanism, so
``s.set_signal_type("atomic_resolution")`` gives :class:`~causalspy.signals.AtomicResolution`.
"""

from causalspy._version import __version__
from causalspy.atoms import Atoms, find_atoms
from causalspy.exceptions import (
    CausalspyError,
    FileReadError,
    InvalidImageError,
    InvalidParameterError,
    NoColumnsFoundError,
)

__all__ = [
    "__version__",
    "Atoms",
    "find_atoms",
    "CausalspyError",
    "FileReadError",
    "InvalidImageError",
    "InvalidParameterError",
    "NoColumnsFoundError",
]
