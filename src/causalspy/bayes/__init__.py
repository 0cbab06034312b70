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
from causalspy.bayes.compare import DECISIVE_ELPD, Comparison, compare
from causalspy.bayes.fit import cache_info, clear_cache, fit, fit_law, fit_wall
from causalspy.bayes.models import MODELS, Model, Param, get_model
from causalspy.bayes.posterior import ESS_MIN_PER_CHAIN, R_HAT_MAX, Posterior
from causalspy.bayes.priors import FAMILIES, PriorSpec, parse_prior, parse_priors
from causalspy.bayes.sequential import SequentialResult, sequential_update
from causalspy.bayes.synthetic import synthetic_profile, synthetic_wall

__all__ = [
    "Comparison",
    "DECISIVE_ELPD",
    "ESS_MIN_PER_CHAIN",
    "FAMILIES",
    "MODELS",
    "MissingDependencyError",
    "Model",
    "Param",
    "Posterior",
    "PriorSpec",
    "R_HAT_MAX",
    "SequentialResult",
    "cache_info",
    "clear_cache",
    "compare",
    "fit",
    "fit_law",
    "fit_wall",
    "get_model",
    "parse_prior",
    "parse_priors",
    "sequential_update",
    "synthetic_profile",
    "synthetic_wall",
]
