"""
Image series: drift, tracks, phase flips and descriptors over time
===================================================================

A drifting, noisy in-situ series of a MoS2-like monolayer in which a 1T region
nucleates and grows (the ground truth of :func:`causalspy.data.insitu_series`).
The series is registered by phase correlation, atoms are found and labelled
frame by frame, and columns are linked into tracks. The growing 1T region shows
up as ``phase_flip`` events on the metal columns and ``appear`` events for the
new single-atom chalcogen columns; ``psi3`` (1 in 2H, 0 in 1T) on the
frame-0 cell grid shows the transformed cells over time.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.data import insitu_series
from causalspy.dynamics import series_descriptors

s, truth = insitu_series(n_frames=6, shape=(144, 144), transition_start=1, h0=1.0,
                         n_nuclei=1, growth_speed=1.0, seed=5)
tracks = s.track(descriptors="hexagonal")
print(tracks)
print("largest drift error (px):", np.abs(tracks.drift - truth.drift).max().round(3))
print(tracks.events["event"].value_counts())
print("true nucleus:\n", truth.nuclei)

# %%
# Tracks over the last frame, with that frame's events; the true 1T sites circled.
k = s.data.shape[0] - 1
ax = tracks.plot(s.data[k], frame=k)
on = truth.is_1t()[k]
ax.scatter(truth.sites.x[on] + truth.drift[k, 0], truth.sites.y[on] + truth.drift[k, 1],
           s=120, facecolors="none", edgecolors="magenta", lw=0.6, label="true 1T")
ax.legend(loc="upper right", fontsize=8)
plt.tight_layout()

# %%
# One descriptor over time on the frame-0 cell grid.
sd = series_descriptors(tracks)
psi3 = sd.map_series("psi3")
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for a, f in zip(axes, (0, 3, k), strict=True):
    a.imshow(psi3.data[f], vmin=0, vmax=1, cmap="viridis", origin="upper")
    a.set_title(f"psi3, t = {f * psi3.axes_manager[0].scale:g} s")
    a.axis("off")
plt.tight_layout()
