"""Parsimonious laws (SINDy): sparse ODEs for descriptor time series, weak-form PDEs for fields.

pysindy is imported only when a law is discovered, so ``import causalspy`` stays light.
"""

from causalspy.laws import synthetic
from causalspy.laws.discover import CRITERIA, discover, select_sparse
from causalspy.laws.fields import discover_field
from causalspy.laws.law import Law

__all__ = ["CRITERIA", "Law", "discover", "discover_field", "select_sparse", "synthetic"]
