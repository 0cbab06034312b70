"""Lazy access to the optional ``bayes`` dependencies (NumPyro, JAX, ArviZ).

``import causalspy`` and ``import causalspy.bayes`` never import them; the
functions that sample or summarize call :func:`require` first.
"""

from __future__ import annotations

import warnings

from causalspy.exceptions import CausalspyError

__all__ = ["MissingDependencyError", "require", "arviz"]

INSTALL_HINT = 'pip install "causalspy[bayes]"'


class MissingDependencyError(CausalspyError, ImportError):
    """An optional dependency of :mod:`causalspy.bayes` is not installed."""


def require():
    """Import and return ``(numpyro, jax, arviz)``, or raise a clear error."""
    try:
        import jax
        import numpyro
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"causalspy.bayes needs NumPyro and JAX ({e}); install them with {INSTALL_HINT}."
        ) from e
    return numpyro, jax, arviz()


def arviz():
    """Import ArviZ quietly (its refactor FutureWarning is not the user's concern)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import arviz as az
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"causalspy.bayes needs ArviZ ({e}); install it with {INSTALL_HINT}."
        ) from e
    return az
