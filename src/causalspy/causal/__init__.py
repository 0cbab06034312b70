"""Causal discovery on descriptors: graphs with physical priors, confidence and effects."""

from causalspy.causal.discover import METHODS, discover
from causalspy.causal.graph import EDGE_TYPES, CausalGraph
from causalspy.causal.local import local_causal_maps
from causalspy.causal.pairwise import pairwise
from causalspy.causal.prior import Prior

__all__ = [
    "CausalGraph",
    "EDGE_TYPES",
    "METHODS",
    "Prior",
    "discover",
    "local_causal_maps",
    "pairwise",
]
