r"""Bayesian inference with physical priors (NumPyro NUTS + ArviZ).

Fit physical models to descriptor profiles with user-editable priors, check
the sampling, compare models by PSIS-LOO/WAIC and measure what new data
teach (KL divergence posterior ‖ prior, sequential updating)::

    from causalspy.bayes import compare, fit

    post = fit(x, p, "tanh", priors=["w=LogNormal(0, 1)"], x_unit="nm", y_unit="pm", seed=0)
    post.summary(); post.warnings; post.plot(); post.save("wall.nc")
    compare([post, fit(x, p, "linear")]).verdict

Importing this module is cheap: NumPyro, JAX and ArviZ (the ``bayes`` extra,
``pip install "causalspy[bayes]"``) are imported on first use.
"""

from causalspy.bayes._deps import MissingDependencyError
from causalspy.bayes.causal import causal_model, fit_causal, parent_signs
from causalspy.bayes.compare import DECISIVE_ELPD, Comparison, compare
from causalspy.bayes.fit import cache_info, clear_cache, fit, fit_law, fit_wall
from causalspy.bayes.gpmap import MAP_MODELS, MapPosterior, fit_map
from causalspy.bayes.models import MODELS, Model, Param, get_model
from causalspy.bayes.posterior import ESS_MIN_PER_CHAIN, R_HAT_MAX, Posterior
from causalspy.bayes.priors import FAMILIES, PriorSpec, parse_prior, parse_priors
from causalspy.bayes.profile import WallProfile, detect_wall, wall_profile
from causalspy.bayes.sequential import SequentialResult, sequential_update
from causalspy.bayes.synthetic import (
    synthetic_map,
    synthetic_profile,
    synthetic_wall,
    synthetic_wall_maps,
)

__all__ = [
    "Comparison",
    "DECISIVE_ELPD",
    "ESS_MIN_PER_CHAIN",
    "FAMILIES",
    "MAP_MODELS",
    "MODELS",
    "MapPosterior",
    "MissingDependencyError",
    "Model",
    "Param",
    "Posterior",
    "WallProfile",
    "PriorSpec",
    "R_HAT_MAX",
    "SequentialResult",
    "cache_info",
    "causal_model",
    "clear_cache",
    "compare",
    "detect_wall",
    "fit",
    "fit_causal",
    "fit_law",
    "fit_map",
    "fit_wall",
    "get_model",
    "parent_signs",
    "parse_prior",
    "parse_priors",
    "sequential_update",
    "synthetic_map",
    "synthetic_profile",
    "synthetic_wall",
    "synthetic_wall_maps",
    "wall_profile",
]
