"""napari plugin for causalspy (thin front end: it calls causalspy, never re-implements it).

This package holds the npe2 manifest (``napari.yaml``) and the contributions.
Importing it does not import napari or Qt; napari loads the contributions
lazily from the manifest.
"""

from causalspy import __version__

__all__ = ["__version__"]
