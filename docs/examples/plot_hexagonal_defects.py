"""
==================================================
Dopants and vacancies in a MoS2-like monolayer
==================================================

A synthetic 2H-MoS2 monolayer (HAADF) with two kinds of point defects on
both sublattices: substitutional dopants (W on a Mo site, one Se in an S2
column) and vacancies (an empty Mo site, an S2 column missing both atoms).
``find_atoms`` splits the columns into the metal and chalcogen sublattices,
flags columns whose intensity is unusual for their sublattice as dopant
candidates, and predicts vacancies from the lattice. Here we check both
against the ground truth.
"""

import matplotlib.pyplot as plt
import numpy as np

from causalspy.data import hexagonal, match_columns

# %%
# Sample data and atoms
# ---------------------
# 16 x 16 lattice rows and columns, 2 % dopants and 2 % vacancies on each
# sublattice (the defaults).

s, truth = hexagonal(cells=(16, 16), seed=0)
print(s)
print(truth.columns.groupby(["site", "defect"]).size())

atoms = s.find_atoms()
print(atoms)
sep = atoms.metadata["parameters"]["separation"]

# %%
# Sublattices
# -----------
# Match found columns to the true (occupied) sites and compare the
# sublattice labels: causalspy labels sublattices by mean intensity, so 0 is
# the metal (Mo, heavier) and 1 the chalcogen (S2) sublattice, as in the
# ground truth.

tp = truth.present()
m = match_columns(atoms.positions, tp[["x", "y"]].to_numpy(), tol=0.3 * sep)
print(f"recall {m.recall:.3f}, precision {m.precision:.3f}")

table = atoms.table
found = table.iloc[m.found_index].reset_index(drop=True)
true = tp.iloc[m.true_index].reset_index(drop=True)
agree = np.mean(found["sublattice"].to_numpy() == true["sublattice"].to_numpy())
print(f"sublattice labels agree with the truth for {agree:.1%} of matched columns")

# %%
# Dopants
# -------
# A column is a dopant candidate when its robust intensity z-score within
# its sublattice (``dopant_z``) exceeds ``dopant_threshold`` (5 by default).

is_true_dopant = (true["defect"] == "dopant").to_numpy()
flagged = found["dopant"].to_numpy()
for label, site in ((0, "metal"), (1, "chalcogen")):
    on = true["sublattice"].to_numpy() == label
    print(f"{site:9s}: {is_true_dopant[on].sum():2d} true dopants, "
          f"{(flagged & is_true_dopant)[on].sum():2d} flagged, "
          f"{(flagged & ~is_true_dopant)[on].sum():2d} other columns flagged")

# %%
# Vacancies
# ---------
# Vacancies are lattice sites predicted by at least two neighbouring columns
# of the same sublattice where no column was found.

tv = truth.columns[truth.columns["defect"] == "vacancy"]
mv = match_columns(atoms.vacancies[["x", "y"]].to_numpy(), tv[["x", "y"]].to_numpy(),
                   tol=0.3 * sep)
print(f"{len(tv)} true vacancies, {len(atoms.vacancies)} found: "
      f"recall {mv.recall:.3f}, precision {mv.precision:.3f}")
print(atoms.vacancies[["x", "y", "sublattice", "n_predictions"]].head().to_string())

# %%
# Overlay
# -------
# ``atoms.plot`` marks dopant candidates with red rings and vacancies with
# yellow squares; the true defects are added as crosses (dopants) and plus
# signs (vacancies).

fig, ax = plt.subplots(figsize=(9, 7))
atoms.plot(ax=ax, markersize=12)
td = tp[tp["defect"] == "dopant"]
ax.scatter(td["x"], td["y"], marker="x", s=25, color="cyan", label="true dopant")
ax.scatter(tv["x"], tv["y"], marker="+", s=80, color="magenta", label="true vacancy")
ax.set_title(f"{len(atoms)} columns, {int(table['dopant'].sum())} dopant candidates, "
             f"{len(atoms.vacancies)} vacancies")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
fig.subplots_adjust(left=0.08, right=0.76)
plt.show()

# %%
# Dopant z-scores
# ---------------
# The z-score of every column, per sublattice, with the true dopants
# highlighted and the default threshold dashed. Where true dopants and
# other columns overlap, no threshold separates them; where they do not, a
# threshold between the groups does.

fig, ax = plt.subplots(figsize=(7, 4))
z = found["dopant_z"].to_numpy()
sub = true["sublattice"].to_numpy()
rng = np.random.default_rng(0)
for label, _site in ((0, "metal"), (1, "chalcogen")):
    on = sub == label
    jitter = label + rng.uniform(-0.15, 0.15, on.sum())
    ax.scatter(jitter[~is_true_dopant[on]], z[on][~is_true_dopant[on]], s=8, color="0.5")
    ax.scatter(jitter[is_true_dopant[on]], z[on][is_true_dopant[on]], s=30, color="red")
ax.scatter([], [], s=8, color="0.5", label="host column")
ax.scatter([], [], s=30, color="red", label="true dopant")
threshold = atoms.metadata["parameters"]["dopant_threshold"]
ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
ax.axhline(-threshold, color="k", ls="--", lw=1)
ax.set_xticks([0, 1], ["metal (0)", "chalcogen (1)"])
ax.set_ylabel("dopant_z (robust z-score)")
ax.legend(fontsize="small")
plt.show()
