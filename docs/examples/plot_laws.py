"""
Parsimonious laws: transformation kinetics and an order-parameter field
=======================================================================

SINDy finds the simplest equation that explains a descriptor time series.
Here a transformed fraction follows autocatalytic (logistic) kinetics
:math:`\\dot f = r f (1 - f/K)` and the polarization relaxes by
Landau–Khalatnikov dynamics :math:`\\dot P = -(aP + bP^3)`; both are
sampled at 100 times with 1 % noise. A weak-form fit then recovers an
Allen–Cahn law :math:`u_t = D u_{xx} + u - u^3` for an order-parameter field.
"""

import matplotlib.pyplot as plt

from causalspy.laws import discover, discover_field, synthetic

# %%
# Logistic (JMAK-type) kinetics with a quadratic library.
kin = synthetic.logistic(n=100, noise=0.01, seed=0)
law = discover(kin.data, time="t", library="poly2")
print(law.equations()[0], "   truth:", kin.truth)
law.plot()
plt.tight_layout()

# %%
# Landau–Khalatnikov relaxation needs a cubic library. The table shows each
# coefficient with its 95 % ensemble interval and how often the bagged models
# kept the term.
lk = synthetic.landau_khalatnikov(n=100, noise=0.01, seed=0)
law = discover(lk.data, time="t", library="poly3")
print(law.equations()[0], "   truth:", lk.truth)
print(law.to_dataframe().round(3).to_string(index=False))
law.plot()
plt.tight_layout()

# %%
# A field: weak-form SINDy never differentiates the noisy data.
ac = synthetic.allen_cahn(nx=64, nt=81, noise=0.01, seed=0)
fig, ax = plt.subplots(figsize=(5, 3.5))
im = ax.imshow(ac.data["u"], aspect="auto", origin="lower", cmap="RdBu_r",
               extent=[ac.data["t"][0], ac.data["t"][-1], ac.data["x"][0], ac.data["x"][-1]])
ax.set_xlabel("t")
ax.set_ylabel("x")
fig.colorbar(im, label="u")
field_law = discover_field(ac.data["u"], ac.data["t"], ac.data["x"])
print(field_law.equations()[0], "   truth:", ac.truth)
ax.set_title("$" + field_law.latex(3)[0] + "$", fontsize="small")
plt.tight_layout()
