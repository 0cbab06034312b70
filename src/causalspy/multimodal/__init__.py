"""Multimodal descriptors: 4D-STEM (and spectrum images) on the structure's grid.

:mod:`causalspy.multimodal.fourdstem` turns a 4D-STEM scan into centre-of-mass
/ DPC fields, charge and potential maps, virtual detector images and
decomposition loadings, all on the scan grid as a ``descriptor_maps`` signal.
"""

from causalspy.multimodal.fourdstem import (
    Detector,
    DPCResult,
    annular_detector,
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

__all__ = [
    "DPCResult",
    "Detector",
    "annular_detector",
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
