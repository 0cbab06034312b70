"""napari plugin for causalspy (thin front end: it calls causalspy, never re-implements it).

This package holds the npe2 manifest (``napari.yaml``) and the contributions:

``_reader``
    files RosettaSciIO reads -> calibrated image layers;
``_sample_data``
    the synthetic perovskite and MoS2-like images, truth in the layer metadata;
``_widget_atoms``, ``_widget_descriptors``, ``_widget_causal``, ``_widget_local``
    the dock widgets *Find atoms*, *Descriptors*, *Causal graph*, *Local causal map*;
``_convert``
    layers <-> causalspy objects (no Qt); ``_jobs``: background jobs with progress
    and cancel; ``_base``: the widgets' shared machinery.

Importing it does not import napari or Qt; napari loads the contributions
lazily from the manifest.
"""

from causalspy import __version__

__all__ = ["__version__"]
