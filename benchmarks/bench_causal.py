"""Causal-discovery figures for docs/benchmarks.md (issue: causal discovery on descriptors).

Prints:
1. structural Hamming distance (SHD) of LiNGAM on random linear non-Gaussian SEMs with
   6-12 variables at n = 2000 and 5000 (several seeds);
2. whether FCI marks the hidden confounder, and which edges PC/GES leave unoriented;
3. end to end: an image rendered from a known model -> atoms -> descriptors -> graph (SHD);
4. 200 bootstrap resamples of LiNGAM on 10 variables x 10,000 cells: causalspy's
   ``discover(..., bootstrap=200)`` against a plain loop over causal-learn's DirectLiNGAM
   in the same run (speed ratio, and edge frequencies compared).

Run: ``.venv/bin/python benchmarks/bench_causal.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def shd_lingam(quick: bool) -> None:
    from causalspy.causal import discover
    from causalspy.data import linear_sem

    print("\n1. LiNGAM on random linear non-Gaussian SEMs (SHD; target <= 1)")
    print(f"{'vars':>5} {'n':>6} {'noise':>8}  SHD per seed            max")
    seeds = range(3 if quick else 5)
    for p in (6, 8, 10, 12):
        for n in (2000, 5000):
            for noise in ("laplace", "uniform"):
                shds = []
                for seed in seeds:
                    sem = linear_sem(n, n_vars=p, density=0.3, noise=noise, seed=seed)
                    g = discover(sem.data, method="lingam")
                    shds.append(sem.shd(g.directed_edges()))
                print(f"{p:>5} {n:>6} {noise:>8}  {str(shds):<22} {max(shds)}")


def equivalence_and_confounders() -> None:
    from causalspy.causal import discover
    from causalspy.data import doped_ferroelectric

    print("\n2. Hidden confounder (FCI) and equivalence classes (PC/GES)")
    # hidden thickness drives intensity and apparent strain; each also has an observed
    # cause (probe current -> intensity, substrate mismatch -> strain), which is what
    # lets FCI tell confounding from causation
    rng = np.random.default_rng(12345)
    n = 5000
    thickness = rng.laplace(size=n)
    probe, substrate = rng.laplace(size=n), rng.laplace(size=n)
    import pandas as pd

    data = pd.DataFrame({
        "probe_current": probe, "substrate": substrate,
        "intensity_A": 1e4 + 800 * (probe + thickness + 0.5 * rng.laplace(size=n)),
        "exx": 1e-3 * (substrate + thickness + 0.5 * rng.laplace(size=n)),
    })
    g = discover(data, method="fci")
    bi = [(r.source, r.target) for r in g.edges.itertuples() if r.type == "bidirected"]
    print(f"   true confounded pair: [('intensity_A', 'exx')] (hidden thickness); "
          f"FCI bidirected edges: {bi}")
    for w in g.warnings:
        if "Hidden confounder" in w:
            print("   warning:", w[:110], "...")
    df = doped_ferroelectric(n=5000, seed=0).data.drop(columns=["x_position"])
    for m in ("pc", "ges"):
        g = discover(df, method=m)
        und = [(r.source, r.target) for r in g.edges.itertuples() if r.type == "undirected"]
        print(f"   {m.upper()}: {len(g.directed_edges())} oriented, unoriented (reported): {und}")


def end_to_end(quick: bool) -> None:
    from causalspy.causal import discover
    from causalspy.data import doped_ferroelectric, match_columns, render_perovskite

    print("\n3. End to end: image rendered from a known model -> graph (target SHD <= 1)")
    cells = (40, 40) if quick else (80, 80)
    n_units = (cells[0] // 2) * (cells[1] // 2)
    sample = doped_ferroelectric(n=n_units, seed=1)
    t0 = time.perf_counter()
    s, truth = render_perovskite(sample, cells=cells, seed=1, cell_px=16)
    atoms = s.find_atoms()
    desc = atoms.descriptors(structure="perovskite")
    # descriptors of the cells that carry a sample row (see render_perovskite)
    d = desc.to_dataframe(flagged=False)
    tc = truth.cells[truth.cells["unit"].astype(bool)]
    m = match_columns(d[["x", "y"]].to_numpy(), tc[["x", "y"]].to_numpy(), 3.0)
    meas = d.iloc[m.found_index].reset_index(drop=True)
    table = meas[["intensity_A", "intensity_B", "area", "p_mag", "tetragonality"]].rename(
        columns={"area": "volume"})
    g = discover(table, method="lingam")
    t = time.perf_counter() - t0
    est = g.directed_edges()
    shd = sample.shd(est, ignore=["x_position"])
    print(f"   {len(atoms)} columns, {len(table)} cells with a sample; {t:.1f} s")
    print(f"   true edges:  {sorted(sample.observed_edges)}")
    print(f"   found edges: {sorted(est)}")
    print(f"   SHD = {shd}")


def bootstrap_speed(quick: bool) -> None:
    from causallearn.search.FCMBased import lingam

    from causalspy.causal import discover
    from causalspy.data import linear_sem

    n_boot = 20 if quick else 200
    print(f"\n4. {n_boot} bootstrap resamples of LiNGAM, 10 variables x 10,000 cells "
          "(target: >= 5x a plain causal-learn loop, frequencies within 0.05)")
    sem = linear_sem(10000, n_vars=10, density=0.3, noise="laplace", seed=3)
    X = sem.data.to_numpy()
    Xs = (X - X.mean(0)) / X.std(0)
    names = list(sem.data.columns)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    freq_cl = np.zeros((10, 10))
    for _ in range(n_boot):
        ix = rng.integers(0, len(Xs), len(Xs))
        m = lingam.DirectLiNGAM()
        m.fit(Xs[ix])
        freq_cl += (np.abs(m.adjacency_matrix_.T) > 1e-3)
    t_cl = time.perf_counter() - t0
    freq_cl /= n_boot
    res = {}
    for n_jobs in (1, 2):
        t0 = time.perf_counter()
        g = discover(sem.data, method="lingam", bootstrap=n_boot, seed=0, n_jobs=n_jobs)
        res[n_jobs] = (time.perf_counter() - t0, g)
    g = res[1][1]
    freq_cs = np.zeros((10, 10))
    idx = {n: k for k, n in enumerate(names)}
    for r in g.edges.itertuples():
        if r.type == "directed":
            freq_cs[idx[r.source], idx[r.target]] = r.confidence
    present = (freq_cs > 0) | (freq_cl > 0.5)
    diff = np.abs(freq_cs - freq_cl)[present]
    print(f"   causal-learn loop: {t_cl:.1f} s; causalspy n_jobs=1: {res[1][0]:.1f} s "
          f"({t_cl / res[1][0]:.1f}x); n_jobs=2: {res[2][0]:.1f} s ({t_cl / res[2][0]:.1f}x)")
    print(f"   edge frequencies of the found edges: max |difference| = {diff.max():.3f} "
          f"over {present.sum()} edges")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["shd", "fci", "e2e", "boot"], default=None)
    args = ap.parse_args()
    import causalspy

    print(f"causalspy {causalspy.__version__}")
    if args.only in (None, "shd"):
        shd_lingam(args.quick)
    if args.only in (None, "fci"):
        equivalence_and_confounders()
    if args.only in (None, "e2e"):
        end_to_end(args.quick)
    if args.only in (None, "boot"):
        bootstrap_speed(args.quick)


if __name__ == "__main__":
    main()
