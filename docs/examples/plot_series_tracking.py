"""
Image series: drift, tracks and single-atom events
===================================================

A drifting in-situ series of a MoS2-like monolayer in which chalcogen columns
hop into neighbouring vacancies. The series is registered by phase
correlation, atoms are found frame by frame and linked into tracks; the hops
appear as paired ``disappear`` / ``appear`` events, while columns drifting
across the border are ``enter`` / ``exit``.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.data import drifting_series

s, truth = drifting_series(n_frames=8, cells=(8, 8), hops=2, seed=1)
tracks = s.track()
print(tracks)
print("largest drift error (px):", np.abs(tracks.drift - truth.drift).max().round(3))
print(tracks.events[tracks.events.event.isin(["appear", "disappear"])])
print("true hops:\n", truth.events)

# %%
ax = tracks.plot(s.data[0])
plt.tight_layout()
