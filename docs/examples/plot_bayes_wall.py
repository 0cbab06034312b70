"""
Bayesian fit of a ferroelectric domain wall
===========================================

A polarization profile across a 180° wall follows the Ginzburg–Landau–Devonshire
solution :math:`P(x) = P_s \\tanh((x - x_0)/w) + b`. We state what we know as
priors (the wall half-width ``w`` is about a nanometre), sample the posterior
with NumPyro's NUTS, check the diagnostics, and ask whether the data really
show a wall rather than a gradient (PSIS-LOO model comparison) and how much
they taught us (information gain, KL posterior ‖ prior).
"""

import matplotlib.pyplot as plt

from causalspy.bayes import compare, fit, synthetic_wall

# a synthetic profile: 200 points over 20 nm, P_s = 25 pm, w = 1.5 nm
x, p, truth = synthetic_wall(n=200, P_s=25.0, x0=9.0, w=1.5, b=2.0, noise=3.0, seed=0)

post = fit(x, p, "tanh", priors=["w=LogNormal(0, 1)"], x_unit="nm", y_unit="pm",
           seed=1)
print(post)

# %%
# The posterior-predictive plot: the data, the posterior mean wall, a 90 % band
# for the curve and a 90 % band for new measurements (curve + noise).
ax = post.plot(truth=truth)
plt.tight_layout()

# %%
# Summaries (90 % highest-density intervals) and diagnostics. ``post.warnings``
# is empty only when R-hat, effective sample size and divergences are all fine.
print(post.summary()[["mean", "sd", "hdi_low", "hdi_high", "r_hat", "unit"]])
print("warnings:", post.warnings or "none")

# %%
# Is it a wall at all? Compare with a linear gradient by PSIS-LOO.
lin = fit(x, p, "linear", x_unit="nm", y_unit="pm", seed=1)
c = compare({"tanh": post, "linear": lin})
print(c.verdict)
print(c.weights)

# %%
# What the data taught: KL(posterior ‖ prior) in nats per parameter and in total.
gain = post.information_gain()
print({k: round(v, 2) for k, v in gain.items()})
