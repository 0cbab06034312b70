"""Nucleation-site prediction numbers for the image-series issue.

On ``insitu_series`` (MoS2-like 2H -> 1T, drifting, Poisson noise, 1e4
counts/column) with a per-site nucleation hazard ``h0 exp(sum beta_k z_k)``
that depends on local descriptors (``--hazard``, default strain and vacancy
density) or on none, prints for every series:

* the prediction from frames before the transition only, validated on this
  series alone (spatial block cross-validation): AUC with its bootstrap
  interval, the shuffled-descriptor baseline, nuclei found / true;
* the same series predicted by a model fitted on the *other* series of the
  same condition (leave one series out): AUC and interval, top-k hit rate;
* the pooled leave-one-series-out AUC over all series with a tile-bootstrap
  interval, and the oracle AUC (the generator's true hazard scored against
  the same labels: the ceiling any predictor can reach on these labels);
* the drivers fitted on all series of the condition, against the true betas.

AUC is the cumulative/dynamic AUC of survival analysis: nucleation sites
against sites still 2H at the end; sites a growing region reached first are
censored (left out).

Run: ``.venv/bin/python benchmarks/bench_nucleation.py`` (``--quick``: 3 series
per condition, fewer bootstraps).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial import cKDTree

from causalspy.data import insitu_series
from causalspy.dynamics import _hazard as hz
from causalspy.dynamics import predict_nucleation

SETTINGS = dict(n_frames=22, shape=(288, 288), n_nuclei=15, min_separation=2.5,
                growth_speed=0.3)
DEPENDENT = {"strain": 2.5, "vacancy_density": 1.0}


def ci(v, lo, hi):
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def truth_labels(res, truth):
    """Cases: the generator's nucleus sites that formed within the labelled frames; controls:
    sites still 2H at the end of them; others (reached by growth) left out. Per site of
    ``res`` (nearest truth site)."""
    t = res.sites
    _, j = cKDTree(truth.sites[["x", "y"]].to_numpy()).query(t[["x", "y"]].to_numpy())
    ts = truth.sites.iloc[j]
    end = res.metadata["after"]
    tf = ts["transition_frame"].to_numpy()
    flipped = (tf >= 0) & (tf < end)
    return np.where(ts["nucleated_first"].to_numpy() & flipped, 1, np.where(flipped, -1, 0))


def run_condition(name, hazard, seeds, n_boot, frames_after, cache=None):
    from pathlib import Path

    from causalspy.dynamics import NucleationPrediction

    print(f"\n== hazard {name}: {hazard or 'none (every site equally likely)'}")
    results, truths = [], []
    for seed in seeds:
        s, truth = insitu_series(hazard=hazard, seed=seed, **SETTINGS)
        before = int(truth.first_transition_frame)
        f = None if cache is None else Path(cache) / f"{name.split()[-1]}_{seed}.csv"
        t0 = time.perf_counter()
        if f is not None and f.exists():
            res = NucleationPrediction.load(f)
        else:
            res = predict_nucleation(s, before=before, after=min(before + frames_after,
                                                                 SETTINGS["n_frames"]),
                                     n_boot=n_boot, n_shuffle=20, causal_boot=20, seed=seed)
            if f is not None:
                res.save(f)
        dt = time.perf_counter() - t0
        v = res.validation
        results.append(res)
        truths.append(truth)
        print(f"  seed {seed}: before={before}, {v['n_sites']} sites, nuclei found "
              f"{v['n_nuclei']}/{len(truth.nuclei)} true | this series only (block CV): AUC "
              f"{ci(v['auc'], v['auc_low'], v['auc_high'])}, shuffled "
              f"{v['shuffled_auc_mean']:.2f} | {dt:.0f} s")
    # leave one series out: fitted on the others' labelled sites, predicting this one
    pooled_y, pooled_p, pooled_tile, pooled_true, pooled_ty = [], [], [], [], []
    los = []
    for i, res in enumerate(results):
        others = [r for j, r in enumerate(results) if j != i]
        r = predict_nucleation(res, before=res.metadata["before"], train=others,
                               n_boot=n_boot, causal=False, seed=i)
        v = r.validation
        los.append(v)
        use = np.isfinite(r.probability)
        t = r.sites[use]
        pooled_y.append(t["label"].to_numpy())
        pooled_p.append(t["probability"].to_numpy())
        xy = t[["x", "y"]].to_numpy()
        pooled_tile.append(hz.tiles(xy, 4 * r.metadata["a_px"]) + 100000 * i)
        tr = truths[i].sites
        _, j = cKDTree(tr[["x", "y"]].to_numpy()).query(xy)
        pooled_true.append(tr["hazard"].to_numpy()[j])
        pooled_ty.append(truth_labels(r, truths[i])[use])
        print(f"  seed {seeds[i]}: trained on the other {len(others)} series: AUC "
              f"{ci(v['auc'], v['auc_low'], v['auc_high'])}, oracle "
              f"{hz.auc(pooled_y[-1], pooled_true[-1]):.2f}; vs the generator's nuclei "
              f"{hz.auc(pooled_ty[-1], pooled_p[-1]):.2f}; top-{v['top_k']} hit rate "
              f"{v['top_k_hit_rate']:.0%} (chance {v['top_k_chance']:.0%}); "
              f"{'predictable' if v['predictable'] else 'not predictable'}")
    y, p = np.concatenate(pooled_y), np.concatenate(pooled_p)
    tiles = np.concatenate(pooled_tile)
    boots = hz.tile_bootstrap_auc(y, p, tiles, 1000, np.random.default_rng(0))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    a = hz.auc(y, p)
    oracle = hz.auc(y, np.concatenate(pooled_true))
    covers = sum(v["auc_low"] <= 0.5 <= v["auc_high"] for v in los)
    ty = np.concatenate(pooled_ty)
    tb = hz.tile_bootstrap_auc(ty, p, tiles, 1000, np.random.default_rng(1))
    print(f"  pooled, leave one series out, against the generator's true nucleus sites "
          f"(cases {int((ty == 1).sum())}, controls {int((ty == 0).sum())}): AUC "
          f"{ci(hz.auc(ty, p), *np.percentile(tb, [2.5, 97.5]))}; oracle (true hazard) "
          f"{hz.auc(ty, np.concatenate(pooled_true)):.2f}")
    print(f"  pooled, leave one series out: AUC {ci(a, lo, hi)} over {len(results)} series "
          f"({int((y == 1).sum())} nucleation sites, {int((y == 0).sum())} controls); "
          f"oracle (true hazard) {oracle:.2f}; per-series intervals covering 0.5: "
          f"{covers}/{len(los)}; per-series AUC min {min(v['auc'] for v in los):.2f}, "
          f"median {np.median([v['auc'] for v in los]):.2f}")
    # drivers fitted on all series of the condition
    allfit = predict_nucleation(results[0], before=results[0].metadata["before"],
                                train=results, n_boot=n_boot, causal=True, causal_boot=20)
    d = allfit.drivers
    print("  drivers (fitted on all series; log-odds per SD, 95 % tile-bootstrap interval; "
          "graph: direct edge into nucleation, bootstrap confidence):")
    for r in d.itertuples():
        true = (hazard or {}).get(r.descriptor)
        g = f"{r.graph_confidence:.0%}" if r.graph_edge else "-"
        print(f"    {r.descriptor:17s} {ci(r.coef, r.coef_low, r.coef_high):>22s}  "
              f"{r.effect:12s} graph {g:>5s}  true beta {true if true is not None else 0}")
    return a, (lo, hi), los


def main():
    import json

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hazard", default=json.dumps(DEPENDENT),
                    help="descriptor-dependent hazard as JSON {descriptor: beta}")
    ap.add_argument("--only", choices=["dependent", "none"], default=None)
    ap.add_argument("--cache", default=None,
                    help="directory to keep each series' result in (reruns reuse them)")
    args = ap.parse_args()
    seeds = range(3) if args.quick else range(6)
    n_boot = 50 if args.quick else 200
    print("insitu_series", SETTINGS, "; labels from the 10 frames after the prediction frame")
    out = {}
    if args.only in (None, "dependent"):
        out["dependent"] = run_condition("depends on descriptors", json.loads(args.hazard),
                                         seeds, n_boot, 10, args.cache)
    if args.only in (None, "none"):
        out["none"] = run_condition("depends on none", None, seeds, n_boot, 10, args.cache)
    print()
    if "dependent" in out:
        a1, ci1, _ = out["dependent"]
        print(f"summary: descriptor-dependent hazard: pooled AUC {ci(a1, *ci1)} "
              "(target >= 0.85)")
    if "none" in out:
        a0, ci0, _ = out["none"]
        print(f"summary: no dependence: pooled AUC {ci(a0, *ci0)} (target: interval covers "
              f"0.5: {'yes' if ci0[0] <= 0.5 <= ci0[1] else 'NO'})")


if __name__ == "__main__":
    main()
