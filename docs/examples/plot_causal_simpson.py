"""
Simpson's paradox: strain and polarization across two domains
=============================================================

In a film with two ferroelectric domains, the domain state shifts both the
strain and the polarization. Pooled over the image, strain and polarization
are *negatively* correlated; within each domain, tensile strain *raises* the
polarization. A correlative analysis gets the sign wrong. causalspy learns the
graph (with the physical prior that the domain state comes first), estimates
the causal effect with the right adjustment, and warns about the paradox.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.causal import Prior, discover
from causalspy.data import simpsons_paradox

sample = simpsons_paradox(n=4000, seed=0)
df = sample.data
print(sample.description)

# %%
# The pooled correlation is negative, the within-domain slopes positive.
fig, ax = plt.subplots(figsize=(5.5, 4.2))
for d, colour in ((0, "tab:blue"), (1, "tab:orange")):
    sub = df[df["domain"] == d]
    ax.plot(sub["strain"] * 100, sub["p_mag"], ".", ms=2, alpha=0.4, color=colour,
            label=f"domain {d}")
    k, c = np.polyfit(sub["strain"], sub["p_mag"], 1)
    xs = np.linspace(sub["strain"].min(), sub["strain"].max(), 10)
    ax.plot(xs * 100, k * xs + c, color=colour, lw=2)
k, c = np.polyfit(df["strain"], df["p_mag"], 1)
xs = np.linspace(df["strain"].min(), df["strain"].max(), 10)
ax.plot(xs * 100, k * xs + c, "k--", lw=2, label="pooled fit")
ax.set_xlabel("strain (%)")
ax.set_ylabel("polarization |p| (pm)")
ax.legend(markerscale=5)
print(f"pooled correlation: {df['strain'].corr(df['p_mag']):+.2f}")

# %%
# Causal discovery with the prior "the domain state comes first".
g = discover(df, method="lingam", prior=Prior(tiers=[["domain"], ["strain", "p_mag"]]),
             bootstrap=50, seed=0)
print(g.to_dataframe())
eff = g.effects.set_index(["cause", "effect"]).loc[("strain", "p_mag")]
print(f"causal effect of strain on p_mag: {eff['total']:+.0f} pm per unit strain "
      f"(95 % interval {eff['total_low']:+.0f} .. {eff['total_high']:+.0f}; "
      f"truth {sample.total_effect('strain', 'p_mag'):+.0f})")
for w in g.warnings:
    print("WARNING:", w)
g.plot()
