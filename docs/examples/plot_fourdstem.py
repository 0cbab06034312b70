"""
4D-STEM: DPC field, charge and virtual images from one pass
============================================================

A synthetic 4D-STEM scan across a lattice of atoms: the bright-field disk is
deflected by the gradient of the projected potential, the detector is rotated
25 degrees against the scan, and a linear descan is added. :func:`dpc` finds
the rotation from the curl of the CoM field, removes the descan and returns
the field, the projected charge and potential and virtual BF/ADF images, all
from one pass over the data.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.data import fourd_stem
from causalspy.multimodal import dpc

s, truth = fourd_stem(scan_shape=(48, 48), detector_shape=(48, 48), rotation_deg=25.0, seed=0)
r = dpc(s)
print(f"rotation found {np.rad2deg(r.rotation):.2f} deg (truth 25), flip {r.flip}")
print(f"median CoM noise {np.median(r.com_noise):.4f} px per probe position")
# A plane over the scan cannot be told apart from descan, so compare without it.
yy, xx = np.mgrid[0:48, 0:48]
A = np.stack([np.ones(xx.size), xx.ravel(), yy.ravel()], 1)
tx, ty = (t - (A @ np.linalg.lstsq(A, t.ravel(), rcond=None)[0]).reshape(t.shape)
          for t in (truth.field_x, truth.field_y))
err = np.sqrt(np.mean((r.dpc_x - tx) ** 2 + (r.dpc_y - ty) ** 2) / 2)
print(f"field RMS error {err:.4f} px = {err / np.sqrt(np.mean(r.com_noise ** 2)):.2f} x the "
      "Poisson noise of the centre of mass")

# %%
# The field (arrows) over the charge map, next to the true charge and the
# virtual ADF image.
fig, ax = plt.subplots(1, 3, figsize=(11, 3.8))
ax[0].imshow(r.charge, cmap="RdBu_r")
yy, xx = np.mgrid[0:48:3, 0:48:3]
ax[0].quiver(xx, yy, r.dpc_x[::3, ::3], -r.dpc_y[::3, ::3], color="k", scale=12)
ax[0].set_title("DPC field and charge")
ax[1].imshow(truth.charge, cmap="RdBu_r")
ax[1].set_title("true charge")
ax[2].imshow(r.images["vadf"], cmap="gray")
ax[2].set_title("virtual ADF")
for a in ax:
    a.set_axis_off()
plt.tight_layout()

# %%
# The same as a ``descriptor_maps`` signal on the calibrated scan grid, ready
# to join structural descriptors.
maps = s.descriptor_maps()
print(maps, maps.descriptor_names)
