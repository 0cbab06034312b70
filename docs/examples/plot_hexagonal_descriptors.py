"""
=====================================================
Phase, coordination and defects of a 2H/1T monolayer
=====================================================

A synthetic MoS2 monolayer whose left half is 2H (trigonal prismatic: each
Mo sees three S2 columns) and whose right half is 1T (octahedral: each Mo
sees six single-S columns). ``find_atoms`` finds the columns;
:func:`~causalspy.descriptors.hexagonal.hexagonal_descriptors` gives every
column (and every vacancy) its site, coordination, bond-orientational order,
local strain, defect label and local phase, which we check against the
ground truth.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.data import hexagonal, match_columns
from causalspy.descriptors import Descriptors
from causalspy.descriptors.hexagonal import hexagonal_descriptors

# %%
# Sample data
# -----------
# 20 x 20 cells at 1e4 counts per Mo column, 3 % dopants and 3 % vacancies
# on each sublattice, imaged with a 0.09 nm (FWHM) probe (``sigma_px=2.5``).
# ``phase="mixed"`` makes the cells right of the vertical centre line 1T.

s, truth = hexagonal(cells=(20, 20), sigma_px=2.5, dopant_fraction=0.03,
                     vacancy_fraction=0.03, phase="mixed", seed=0)
print(s)
print(truth.columns.groupby(["phase", "site", "defect"]).size())

# %%
# Columns and descriptors
# -----------------------
# One row per column plus one row per vacancy (at its expected position).

atoms = s.find_atoms()
desc = hexagonal_descriptors(atoms)
print(atoms)
print(desc)
df = desc.to_dataframe()
print(df.groupby(["site", "phase"])[["coordination", "psi3", "nn_distance"]].median())

# %%
# Against the ground truth
# ------------------------
# Phase labels of the sites more than 1.5 lattice parameters from the
# boundary and from the image border, and the defects found at least one
# lattice parameter from the border (columns closer to it are flagged:
# their neighbourhood is cut by the border, so they are never called
# dopants).

a = truth.params["a_px"]
m = match_columns(df[["x", "y"]].to_numpy(), truth.columns[["x", "y"]].to_numpy(),
                  0.3 * a / np.sqrt(3))
found = df.iloc[m.found_index].reset_index(drop=True)
true = truth.columns.iloc[m.true_index].reset_index(drop=True)
boundary = truth.params["phase_boundary_x_px"]
h, w = s.data.shape
inner = true["x"].between(a, w - a) & true["y"].between(a, h - a)
away = inner & (np.abs(true["x"] - boundary) > 1.5 * a)
print(f"phase correct for {(found['phase'][away] == true['phase'][away]).mean():.1%} "
      f"of {away.sum()} sites away from the boundary")
for kind, plural in (("dopant", "dopants"), ("vacancy", "vacancies")):
    t = inner & (true["defect"] == kind)
    hit = int((found["defect"][t] == kind).sum())
    false = int((inner & (found["defect"] == kind) & ~t).sum())
    print(f"{plural} away from the border: {hit} of {int(t.sum())} found, {false} false")

# %%
# Phase map
# ---------
# The phase comes from the neighbour configuration of each metal site: the
# chalcogen columns (or vacancies) on the three hollows of one type (2H) or
# on all six (1T). Sites at the boundary, where neither holds, stay
# "undetermined".

fig, ax = plt.subplots(figsize=(8, 6))
ax.imshow(s.data, cmap="gray")
colours = {"2H": "tab:blue", "1T": "tab:orange", "undetermined": "tab:gray"}
for phase, colour in colours.items():
    sel = df["phase"] == phase
    ax.scatter(df["x"][sel], df["y"][sel], s=10, color=colour, label=phase)
vac = df["defect"] == "vacancy"
ax.scatter(df["x"][vac], df["y"][vac], s=60, marker="s", facecolors="none",
           edgecolors="yellow", label="vacancy")
ax.axvline(boundary, color="red", ls="--", lw=1, label="true boundary")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
ax.set_title("local phase")
fig.subplots_adjust(right=0.78)
plt.show()

# %%
# Three-fold order around the metals
# ----------------------------------
# ``psi3 = |<exp(3 i theta)>|`` over a metal's chalcogen neighbours is 1 for
# the three neighbours of 2H and 0 for the six of 1T. ``Descriptors.plot``
# maps any descriptor; here for the metal rows only.

metal = Descriptors(df[df["site"] == "metal"], units=desc.units,
                    calibration=desc.calibration, metadata=desc.metadata,
                    lattice=desc.lattice, image=desc.image)
metal.plot("psi3", markersize=25)
plt.show()

# %%
# Local strain
# ------------
# ``exx`` of the local triangular lattice of same-site neighbours against
# the least-squares metal lattice. The generator applies no strain, so this
# map shows the noise floor (a few 1e-3); edge and border columns are
# flagged and drawn as crosses.

desc.plot("exx", markersize=15)
plt.show()
