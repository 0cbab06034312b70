"""
=============================================
Find the atoms of a perovskite HAADF image
=============================================

Find every atomic column of a synthetic PbTiO3 [001] HAADF image, look at
the table of results, and check it against the ground truth: how many
columns were found, how many are real, and whether the reported position
uncertainties match the actual errors.
"""

import matplotlib.pyplot as plt
import numpy as np

import causalspy
from causalspy.data import match_columns

# %%
# Sample data
# -----------
# :func:`causalspy.data.perovskite` returns a HyperSpy signal of type
# ``"atomic_resolution"`` (calibrated in nm, Poisson noise) and its ground
# truth: 12 x 12 unit cells, bright Pb columns on the cell corners and
# weaker Ti columns near the cell centres, displaced by 20 pm in stripes of
# opposite polarization (180-degree domains).

s, truth = causalspy.data.perovskite(cells=(12, 12), seed=0)
print(s)
print(truth)

# %%
# Find the atoms
# --------------
# One call, with everything estimated from the image: the column
# separation, bright or dark columns, the noise and the column width.

atoms = s.find_atoms()
print(atoms)

# %%
# The result is a table with one row per column: sub-pixel positions
# ``x``, ``y`` (pixels) and their 1-sigma errors, the fitted Gaussian widths,
# integrated intensities, the sublattice, dopant and edge flags, and the
# calibrated positions ``x_cal``, ``y_cal`` (nm).

table = atoms.table
print(table[["x", "y", "x_err", "y_err", "sigma", "intensity", "sublattice"]].head().to_string())

# %%
# Every setting actually used is recorded, including the estimated ones:

params = atoms.metadata["parameters"]
print(f"separation {params['separation']:.2f} px, starting width "
      f"{params['sigma_start']:.2f} px, inverted: {params['invert']}")
print("lattice vectors (px):\n", np.round(atoms.lattice_vectors, 2))

# %%
# Overlay the columns on the image, coloured by sublattice (0 = brightest
# on average, here Pb; 1 = Ti). Columns flagged ``edge`` get a small cross.
# ``plot`` returns the matplotlib ``Axes``, here used to shorten the title
# and move the legend.

ax = atoms.plot()
ax.set_title(f"{len(atoms)} columns, {atoms.n_sublattices} sublattices")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
ax.figure.set_layout_engine("constrained")
plt.show()

# %%
# Compare with the ground truth
# -----------------------------
# :func:`causalspy.data.match_columns` pairs found and true columns one to
# one within a third of the separation. Recall is the fraction of true
# columns found, precision the fraction of found columns that are real.

tp = truth.present()
m = match_columns(atoms.positions, tp[["x", "y"]].to_numpy(), tol=0.3 * params["separation"])
print(f"{len(atoms)} columns found, {len(tp)} true: "
      f"recall {m.recall:.3f}, precision {m.precision:.3f}")

# %%
# The actual position errors of the matched columns, compared with the
# uncertainties ``find_atoms`` reports (``x_err``, ``y_err``, from the Fisher
# information of the Gaussian fit): if the reported errors are right, the
# two numbers agree. The columns flagged ``edge`` (their fitting window is
# cut by the image border) are left out. The weak Ti columns have fewer
# counts, so larger errors.

found = table.iloc[m.found_index].reset_index(drop=True)
true = tp.iloc[m.true_index].reset_index(drop=True)
inner = ~found["edge"].to_numpy()
for label, name in ((0, "Pb (sublattice 0)"), (1, "Ti (sublattice 1)")):
    sel = inner & (found["sublattice"].to_numpy() == label)
    dx = found["x"].to_numpy()[sel] - true["x"].to_numpy()[sel]
    dy = found["y"].to_numpy()[sel] - true["y"].to_numpy()[sel]
    rms = np.sqrt(np.mean(np.concatenate([dx, dy]) ** 2))
    reported = np.sqrt(np.mean(np.concatenate([found["x_err"][sel], found["y_err"][sel]]) ** 2))
    print(f"{name}: RMS error per axis {rms:.3f} px, RMS reported error {reported:.3f} px "
          f"({sel.sum()} columns)")

# %%
# Intensities of one sublattice
# -----------------------------
# The integrated intensity of each column is its total scattered signal. The
# Ti sublattice's intensities cluster around one value: no column stands out
# as a dopant candidate (``dopant_z`` is the robust z-score within the
# sublattice). The dashed line is the expected value from the ground truth.

ti = atoms.sublattice(1).table
fig, ax = plt.subplots(figsize=(6, 4))
ax.hist(ti["intensity"], bins=25, color="tab:orange", alpha=0.8)
ax.axvline(truth.params["counts_per_species"]["Ti"], color="k", ls="--",
           label="true counts per Ti column")
ax.set_xlabel("integrated intensity (counts)")
ax.set_ylabel("number of columns")
ax.set_title(f"Sublattice 1 (Ti): {len(ti)} columns, {int(ti['dopant'].sum())} dopant candidates")
ax.legend()
plt.show()
