"""Multimodal descriptors: 4D-STEM (and spectrum images) on the structure's grid.

:mod:`causalspy.multimodal.fourdstem` turns a 4D-STEM scan into centre-of-mass
/ DPC fields, charge and potential maps, virtual detector images and
decomposition loadings, all on the scan grid as a ``descriptor_maps`` signal.
:mod:`causalspy.multimodal.spectral` gives per-pixel EELS/EDS descriptors
(edge onset and chemical shift, white-line ratios, plasmon energy, elemental
signals, decomposition loadings) as ``descriptor_maps``;
:mod:`causalspy.multimodal.coregister` registers another scan onto the
structural image and averages any maps over its cells.
"""

from causalspy.multimodal.coregister import Registration, coregister, map_to_cells, register
from causalspy.multimodal.fourdstem import (
    Detector,
    DPCResult,
    annular_detector,
    bad_pixel_mask,
    center_of_mass,
    check_4d,
    decomposition_loadings,
    dpc,
    fourd_descriptor_maps,
    integrate_gradient,
    maps_signal,
    rotation_from_curl,
    virtual_images,
)
from causalspy.multimodal.spectral import (
    Edge,
    Integral,
    check_spectrum_image,
    edge,
    eds_line,
    spectral_descriptor_maps,
    spectral_descriptors,
    spectral_loadings,
)

__all__ = [
    "Edge",
    "Integral",
    "Registration",
    "check_spectrum_image",
    "coregister",
    "edge",
    "eds_line",
    "map_to_cells",
    "register",
    "spectral_descriptor_maps",
    "spectral_descriptors",
    "spectral_loadings",
    "DPCResult",
    "Detector",
    "annular_detector",
    "bad_pixel_mask",
    "center_of_mass",
    "check_4d",
    "decomposition_loadings",
    "dpc",
    "fourd_descriptor_maps",
    "integrate_gradient",
    "maps_signal",
    "rotation_from_curl",
    "virtual_images",
]
