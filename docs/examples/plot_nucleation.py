"""
Where will the 1T phase nucleate?
=================================

A drifting, noisy in-situ series of a MoS2-like monolayer turns from 2H to 1T.
The synthetic sample's nucleation hazard grows with the local strain and the
local vacancy density. From the frames *before* the transition only,
:func:`~causalspy.dynamics.predict_nucleation` measures per-site descriptors,
reads where the new phase actually appeared in the later frames, fits a
discrete-time hazard model and validates it by spatial block
cross-validation: ROC AUC with a bootstrap interval, a shuffled-descriptor
baseline, top-k hit rate. A single series holds only a few nuclei, so the
interval is wide; fitting on other series (``train=``) narrows it (see the
user guide and ``benchmarks/bench_nucleation.py``).
"""

import matplotlib.pyplot as plt

from causalspy.data import insitu_series
from causalspy.dynamics import predict_nucleation

s, truth = insitu_series(n_frames=14, shape=(256, 256), n_nuclei=15, min_separation=2.5,
                         growth_speed=0.3, hazard={"strain": 2.0, "vacancy_density": 1.5},
                         seed=0)
before = truth.first_transition_frame          # frames 0..before-1 are still 2H
res = predict_nucleation(s, before=before, after=before + 6, n_boot=50, causal_boot=10)
print(res)
print(res.verdict)

# %%
# The probability map over the drift-corrected mean of the pre-transition
# frames; cyan circles: where nuclei actually formed (read from later frames).
ax = res.plot()
ax.scatter(truth.nuclei["x"], truth.nuclei["y"], marker="+", color="lime", s=80,
           label="true nuclei (generator)")
ax.legend(loc="upper right", fontsize="small")
plt.tight_layout()

# %%
# Drivers: standardized log-odds per standard deviation with tile-bootstrap
# intervals, and whether the causal graph (label forbidden from causing any
# descriptor) has a direct edge into ``nucleation``.
print(res.drivers[["descriptor", "coef", "coef_low", "coef_high", "effect",
                   "graph_edge", "graph_confidence"]].round(2).to_string(index=False))
