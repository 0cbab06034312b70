"""
Valence or structure first? EELS and HAADF on the same unit cells
==================================================================

Does a change of the Ti valence expand the cell and weaken the polar
displacement, or does the strain state set the valence? With the structure
from a HAADF image and the Ti L2,3 edge shift from an EELS spectrum image
*measured on the same cells*, the causal engine can tell.

The synthetic data come in two variants: in one the edge shift (valence)
drives the cell volume and the B-site displacement, in the other the reverse.
The spectrum image is a separate, coarser scan (2x the HAADF pixel size),
rotated by 7 degrees and drifted by a few pixels, with a simultaneous ADF
image. The chain: HAADF -> atoms -> per-cell descriptors; spectrum images ->
per-pixel edge shift, white-line ratio and plasmon energy -> registered (ADF
against HAADF) and averaged over each cell -> one table -> DirectLiNGAM.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.causal import discover
from causalspy.data import eels_spectrum_image, match_columns
from causalspy.multimodal import map_to_cells, register, spectral_descriptor_maps

data = eels_spectrum_image("electronic_to_structure", cells=(40, 40), seed=0)
print(data.core_loss)
print(data.truth.sample.description)

# %%
# Structure: atoms and per-cell descriptors from the HAADF image.
desc = data.haadf.find_atoms().descriptors(structure="perovskite")

# %%
# Electronic structure: per-pixel descriptors of the core-loss (Ti L2,3 edge:
# onset, chemical shift with its error, L3/L2 ratio) and low-loss (plasmon)
# spectrum images, with the scan calibration.
core = spectral_descriptor_maps(data.core_loss, edges=["Ti_L23"])
low = spectral_descriptor_maps(data.low_loss, plasmon=(15, 45))
print(core.descriptor_names, low.descriptor_names)

# %%
# Co-registration: the simultaneous ADF against the HAADF gives the scan's
# scale, rotation and drift (sub-pixel), then every map is averaged over the
# Voronoi region of each cell.
reg = register(data.haadf, data.adf)
print(reg)
print(f"error against the true transform: {reg.error_px(data.truth.transform):.3f} HAADF px")
both = map_to_cells(low, map_to_cells(core, desc, reg), reg)

fig, ax = plt.subplots(1, 3, figsize=(12, 4))
ax[0].imshow(data.haadf.data, cmap="gray")
ax[0].set_title("HAADF")
ax[1].imshow(core.get_map("Ti_L23_shift").data, cmap="RdBu_r", vmin=-0.4, vmax=0.4)
ax[1].set_title("edge shift per SI pixel (eV)")
for a in ax[:2]:
    a.set_axis_off()
both.plot("Ti_L23_shift", ax=ax[2], image=data.haadf.data, markersize=8)
ax[2].set_title("edge shift per cell (eV)")
plt.tight_layout()

# %%
# One table, structural and spectral columns with units. The generator sets
# the descriptors in every other cell (its "units"; the cells in between
# follow their neighbours), so we keep those cells.
t = both.to_dataframe(flagged=False)
units = data.truth.cells[data.truth.cells["unit"].to_numpy(bool)]
m = match_columns(t[["x", "y"]].to_numpy(), units[["x", "y"]].to_numpy(), 3.0)
cols = {"Ti_L23_shift": "edge_shift", "area": "volume", "p_mag": "p_mag",
        "Ti_L23_l3_l2": "l3_l2", "plasmon": "plasmon"}
table = t.iloc[m.found_index][list(cols)].dropna().rename(columns=cols)
print({c: both.units[k] for k, c in cols.items()})
print(f"{len(table)} cells")

g = discover(table, method="lingam")
print("found:", sorted(g.directed_edges()))
print("truth:", sorted(e for e in data.truth.sample.observed_edges if "intensity_A" not in e))
g.plot()

# %%
# The reverse variant: the structure sets the valence. Same chain, reversed
# arrows. Its weakest edge, p_mag -> edge_shift (a quarter of the shift's
# variance), is the fragile one: the B-site displacement is measured from the
# HAADF image with about a quarter of its variance as noise, and LiNGAM assumes
# causes measured without error. With ~130 cells (30x30) it can come out
# reversed; with ~235 it did in 1 of 10 seeds (see the benchmarks), while the
# true values of the same cells always give the right graph.
rev = eels_spectrum_image("structure_to_electronic", cells=(40, 40), seed=0)
desc_r = rev.haadf.find_atoms().descriptors(structure="perovskite")
reg_r = register(rev.haadf, rev.adf)
both_r = map_to_cells(spectral_descriptor_maps(rev.low_loss, plasmon=(15, 45)),
                      map_to_cells(spectral_descriptor_maps(rev.core_loss, edges=["Ti_L23"]),
                                   desc_r, reg_r), reg_r)
t = both_r.to_dataframe(flagged=False)
units = rev.truth.cells[rev.truth.cells["unit"].to_numpy(bool)]
m = match_columns(t[["x", "y"]].to_numpy(), units[["x", "y"]].to_numpy(), 3.0)
table_r = t.iloc[m.found_index][list(cols)].dropna().rename(columns=cols)
g_r = discover(table_r, method="lingam")
print("found:", sorted(g_r.directed_edges()))
print("truth:", sorted(e for e in rev.truth.sample.observed_edges if "intensity_A" not in e))
print("volume -> edge_shift found:", ("volume", "edge_shift") in g_r.directed_edges(),
      "| edge_shift -> volume found:", ("edge_shift", "volume") in g_r.directed_edges())
print(f"correlation edge_shift-volume in both variants: "
      f"{np.corrcoef(table['edge_shift'], table['volume'])[0, 1]:+.2f} / "
      f"{np.corrcoef(table_r['edge_shift'], table_r['volume'])[0, 1]:+.2f} "
      "(the sign alone cannot say who drives whom)")
