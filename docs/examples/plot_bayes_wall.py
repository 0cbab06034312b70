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

from causalspy.bayes import compare, fit, synthetic_wall, synthetic_wall_maps, wall_profile

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

# %%
# From a descriptor map
# ---------------------
# Real profiles come from maps. ``synthetic_wall_maps`` makes a
# ``descriptor_maps`` signal with one wall (``dx`` in pm on a 0.4 nm cell grid,
# 3 % of cells invalid); ``wall_profile`` detects the wall (where ``dx`` changes
# sign), averages a 1.2 nm band across it and gives each point its standard
# error, which the fit uses as known per-point errors.
maps, mtruth = synthetic_wall_maps(P_s=20.0, w=0.8, angle=10.0, noise=3.0, seed=0)
prof = wall_profile(maps, "dx", width=1.2)
print(prof.table.head())
wpost = prof.fit("tanh", seed=0)
print(wpost.summary()[["mean", "hdi_low", "hdi_high", "unit"]])
print("true P_s, w:", mtruth["P_s"], mtruth["w"])

fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.8))
a0.imshow(maps.inav[0].data, extent=[0, 60 * 0.4, 40 * 0.4, 0], cmap="RdBu_r")
a0.plot([prof.start[0], prof.end[0]], [prof.start[1], prof.end[1]], "k-", lw=2)
a0.set_title("dx map and the detected profile line")
wpost.plot(ax=a1)
plt.tight_layout()
