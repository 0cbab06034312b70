"""Nucleation-site prediction numbers for the image-series issue.

On ``insitu_series`` (MoS2-like 2H -> 1T, drifting, Poisson noise, 1e4
counts/column) with a per-site nucleation hazard ``h0 exp(sum beta_k z_k)``
that depends on local descriptors (``--hazard``, default strain and vacancy
density) or on none, prints for every series:

* the prediction from frames before the transition only, validated on this
  series alone (spatial block cross-validation): AUC with its bootstrap
  interval, the shuffled-descriptor baseline, nuclei found / true;
* the same series predicted by a model fitted on the *other* series of the
  same condition (leave one series out), validated against the nuclei read
  from its later frames: AUC with interval, shuffled baseline, top-k hit rate;
  and against the generator's true nucleus sites and times, next to the
  oracle (the generator's own hazard scored the same way: the ceiling);
* pooled over the series: the leave-one-series-out AUC against the
  generator's truth with a tile-bootstrap interval (the issue's numbers:
  >= 0.85 with a descriptor-dependent hazard, an interval covering 0.5
  without), the same against the nuclei read from the images, and the
  shuffled baseline;
* metal vacancies among the nucleation sites read from the images, the usable sites
  and the generator's nucleus sites, and how early the images read them as 1T
  (the readout bias behind ``intensity`` "lowers" with a null hazard);
* the drivers fitted on all series of the condition, against the true betas.

The AUC is the incident/dynamic AUC of survival analysis: each nucleation
site against the sites still at risk (2H, not yet reached by a growing
region) when its nucleus formed, pooled over windows and series (series never
share a risk set). ``cumulative`` is the nucleation-vs-still-2H-at-the-end
AUC, for reference: growth removes the neighbours of nuclei from its
controls, so it reads high whenever the hazard varies smoothly over space.

Run: ``.venv/bin/python benchmarks/bench_nucleation.py`` (``--quick``: 3 series
per condition, fewer bootstraps; ``--cache DIR`` keeps each series' measured
descriptors and labels, the image part, so reruns only refit).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from causalspy.data import insitu_series
from causalspy.dynamics import NucleationPrediction, predict_nucleation
from causalspy.dynamics import _hazard as hz

SETTINGS = dict(n_frames=22, shape=(288, 288), n_nuclei=15, min_separation=2.5,
                growth_speed=0.3)
DEPENDENT = {"strain": 2.5, "vacancy_density": 1.0}
FRAMES_AFTER = 10


def ci(v, lo, hi):
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def truth_labels(res, truth):
    """Per site of ``res`` (nearest generator site): label (1 the generator's nucleus site
    formed within the labelled frames, 0 still 2H at their end, -1 reached by growth
    first), event window, last window at risk (windows of one frame from ``before``) and
    the true hazard."""
    t = res.sites
    _, j = cKDTree(truth.sites[["x", "y"]].to_numpy()).query(t[["x", "y"]].to_numpy())
    ts = truth.sites.iloc[j]
    b, end = res.metadata["before"], res.metadata["after"]
    tf = ts["transition_frame"].to_numpy()
    flipped = (tf >= 0) & (tf < end)
    lab = np.where(ts["nucleated_first"].to_numpy() & flipped, 1, np.where(flipped, -1, 0))
    last = np.where(lab == 1, tf - b, np.where(lab == 0, end - b - 1, tf - b - 1))
    return lab, np.where(lab == 1, tf - b, -1), np.clip(last, 0, None), ts["hazard"].to_numpy()


def measured(name, hazard, seed, cache):
    """Descriptors and labels measured from the images (a saved result stands for them)."""
    s, truth = insitu_series(hazard=hazard, seed=seed, **SETTINGS)
    before = int(truth.first_transition_frame)
    f = None if cache is None else Path(cache) / f"{name}_{seed}.csv"
    t0 = time.perf_counter()
    if f is not None and f.exists():
        return NucleationPrediction.load(f), truth, None
    res = predict_nucleation(s, before=before,
                             after=min(before + FRAMES_AFTER, SETTINGS["n_frames"]),
                             n_boot=2, n_shuffle=1, causal=False, seed=seed)
    if f is not None:
        res.save(f)
    return res, truth, time.perf_counter() - t0


def pooled(parts, key_y, key_ev, key_last, key_score, n_boot, seed, key_tile="tile"):
    """Incident AUC over several series (windows offset so series never share a risk
    set) with a tile-bootstrap interval."""
    y = np.concatenate([p[key_y] for p in parts])
    ev = np.concatenate([np.where(p[key_ev] >= 0, p[key_ev] + 1000 * i, -1)
                         for i, p in enumerate(parts)])
    last = np.concatenate([p[key_last] + 1000 * i for i, p in enumerate(parts)])
    s = np.concatenate([p[key_score] for p in parts])
    tiles = np.concatenate([p[key_tile] + 100000 * i for i, p in enumerate(parts)])
    a = hz.auc_incident(y, ev, last, s)
    b = hz.tile_bootstrap_auc(y, s, tiles, n_boot, np.random.default_rng(seed), ev, last)
    lo, hi = np.percentile(b, [2.5, 97.5])
    return a, lo, hi, int((y == 1).sum()), hz.auc(y, s)


def vacancy_readout(results, truths):
    """Metal vacancies among the nucleation sites read from the images, among the usable
    sites and among the generator's nucleus sites, and how early the images read their
    1T state: window of the lasting 1T read minus the median of their neighbours' (sites
    within 1.2 a, both read to flip), against the same for the other sites."""
    n = {"img": [0, 0], "all": [0, 0], "true": [0, 0]}
    rel = {True: [], False: []}
    for res, truth in zip(results, truths, strict=True):
        s = res.sites
        use = ~s["flag"].to_numpy(bool)
        vac = (s["defect"] == "vacancy").to_numpy()
        tl = truth_labels(res, truth)[0]
        for k, m in (("img", use & (s["label"] == 1).to_numpy()), ("all", use),
                     ("true", use & (tl == 1))):
            n[k][0] += int((m & vac).sum())
            n[k][1] += int(m.sum())
        fl = s["flip_window"].to_numpy(float)
        fl[fl < 0] = np.nan
        pairs = cKDTree(s[["x", "y"]].to_numpy(float)).query_pairs(
            1.2 * res.metadata["a_px"], output_type="ndarray")
        i, j = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
        ok = np.isfinite(fl[i]) & np.isfinite(fl[j]) & use[i]
        med = pd.Series(fl[j][ok]).groupby(i[ok]).median()
        for site, m in med.items():   # a few hundred flipped sites
            rel[bool(vac[site])].append(fl[site] - m)
    frac = {k: v[0] / max(v[1], 1) for k, v in n.items()}
    return (f"  metal vacancies: {frac['img']:.1%} of the nucleation sites read from the images "
            f"({n['img'][0]}/{n['img'][1]}), {frac['all']:.1%} of the usable sites, "
            f"{frac['true']:.1%} of the generator's nucleus sites; read 1T "
            f"{-np.mean(rel[True]):+.2f} windows before their neighbours' median "
            f"(other sites {-np.mean(rel[False]):+.2f}; {len(rel[True])} vacancies)")


def run_condition(name, hazard, seeds, n_boot, n_shuffle, cache):
    print(f"\n== hazard {name}: {hazard or 'none (every site equally likely)'}")
    results, truths = [], []
    key = "none" if not hazard else "dependent" if hazard == DEPENDENT else "dependent_" + "_".join(
        f"{k}{v:g}" for k, v in sorted(hazard.items()))
    for seed in seeds:
        m, truth, dt = measured(key, hazard, seed, cache)
        res = predict_nucleation(m, before=m.metadata["before"], n_boot=n_boot,
                                 n_shuffle=n_shuffle, causal=False, seed=seed)
        v = res.validation
        results.append(res)
        truths.append(truth)
        print(f"  seed {seed}: before={res.metadata['before']}, {v['n_sites']} sites, nuclei "
              f"found {v['n_nuclei']}/{len(truth.nuclei)} true | this series only (block CV): "
              f"AUC {ci(v['auc'], v['auc_low'], v['auc_high'])}, shuffled "
              f"{v['shuffled_auc_mean']:.2f} | images "
              f"{'cached' if dt is None else f'{dt:.0f} s'}")
    parts, los = [], []
    for i, res in enumerate(results):
        others = [r for j, r in enumerate(results) if j != i]
        r = predict_nucleation(res, before=res.metadata["before"], train=others,
                               n_boot=n_boot, n_shuffle=n_shuffle, causal=False, seed=i)
        v = r.validation
        los.append(v)
        use = np.isfinite(r.probability)
        t = r.sites[use]
        tl, tev, tlast, haz = (a[use] for a in truth_labels(r, truths[i]))
        part = {"p": t["probability"].to_numpy(), "y": t["label"].to_numpy(),
                "ev": t["event_window"].to_numpy(), "last": t["last_window"].to_numpy(),
                "ty": tl, "tev": tev, "tlast": tlast, "haz": haz,
                "tile": hz.tiles(t[["x", "y"]].to_numpy(), 4 * r.metadata["a_px"])}
        # the sites of one nucleus read from the images are resampled together
        cxy = t[["x", "y"]].to_numpy().copy()
        case = part["y"] == 1
        cxy[case] = t[case].groupby("nucleus")[["x", "y"]].transform("mean").to_numpy()
        part["tile_img"] = hz.tiles(cxy, 4 * r.metadata["a_px"])
        parts.append(part)
        a_t = hz.auc_incident(tl, tev, tlast, part["p"])
        o_t = hz.auc_incident(tl, tev, tlast, haz)
        print(f"  seed {seeds[i]}: trained on the other {len(others)} series | vs nuclei read "
              f"from the images: AUC {ci(v['auc'], v['auc_low'], v['auc_high'])}, shuffled "
              f"{v['shuffled_auc_mean']:.2f}, top-{v['top_k']} hit rate "
              f"{v['top_k_hit_rate']:.0%} (chance {v['top_k_chance']:.0%}), "
              f"{'predictable' if v['predictable'] else 'not predictable'} | vs the "
              f"generator's {int((tl == 1).sum())} nuclei: AUC {a_t:.2f}, oracle {o_t:.2f}")
    tr = pooled(parts, "ty", "tev", "tlast", "p", 1000, 0)
    orc = pooled(parts, "ty", "tev", "tlast", "haz", 1000, 0)
    im = pooled(parts, "y", "ev", "last", "p", 1000, 1, "tile_img")
    sh_rng = np.random.default_rng(2)
    sh = []
    for _ in range(200):   # scores shuffled within each series
        sp = [dict(q, s=q["p"][sh_rng.permutation(len(q["p"]))]) for q in parts]
        sh.append(pooled(sp, "ty", "tev", "tlast", "s", 1, 0)[0])
    covers = sum(v["auc_low"] <= 0.5 <= v["auc_high"] for v in los)
    print(f"  pooled, leave one series out, vs the generator's true nuclei ({tr[3]} nucleus "
          f"sites): AUC {ci(*tr[:3])} (cumulative {tr[4]:.2f}); oracle (true hazard) "
          f"{ci(*orc[:3])}; shuffled scores {np.mean(sh):.2f} "
          f"[{np.percentile(sh, 2.5):.2f}, {np.percentile(sh, 97.5):.2f}]")
    print(f"  pooled, leave one series out, vs nuclei read from the images ({im[3]} nucleation "
          f"sites): AUC {ci(*im[:3])} (cumulative {im[4]:.2f}); per-series intervals covering "
          f"0.5: {covers}/{len(los)}")
    print(vacancy_readout(results, truths))
    allfit = predict_nucleation(results[0], before=results[0].metadata["before"],
                                train=results, n_boot=n_boot, causal=True, causal_boot=20)
    print("  drivers (fitted on all series; log-odds per SD, simultaneous 95 % tile-bootstrap "
          "intervals; graph: direct edge into nucleation, bootstrap confidence):")
    for r in allfit.drivers.itertuples():
        true = (hazard or {}).get(r.descriptor)
        g = f"{r.graph_confidence:.0%}" if r.graph_edge else "-"
        print(f"    {r.descriptor:17s} {ci(r.coef, r.coef_low, r.coef_high):>22s}  "
              f"{r.effect:12s} graph {g:>5s}  true beta {true if true is not None else 0}")
    return tr, im, float(np.mean(sh))


def main():
    import json

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None, help="series per condition")
    ap.add_argument("--hazard", default=json.dumps(DEPENDENT),
                    help="descriptor-dependent hazard as JSON {descriptor: beta}")
    ap.add_argument("--only", choices=["dependent", "none"], default=None)
    ap.add_argument("--cache", default=None,
                    help="directory to keep each series' measured descriptors and labels in")
    args = ap.parse_args()
    n = args.seeds or (3 if args.quick else 8)
    seeds = range(n)
    n_boot, n_shuffle = (50, 10) if args.quick else (200, 20)
    if args.cache:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
    print("insitu_series", SETTINGS, f"; labels from the {FRAMES_AFTER} frames after the "
          f"prediction frame; {n} series per condition")
    out = {}
    if args.only in (None, "dependent"):
        out["dependent"] = run_condition("depends on descriptors", json.loads(args.hazard),
                                         seeds, n_boot, n_shuffle, args.cache)
    if args.only in (None, "none"):
        out["none"] = run_condition("depends on none", None, seeds, n_boot, n_shuffle,
                                    args.cache)
    print()
    if "dependent" in out:
        tr, im, sh = out["dependent"]
        print(f"summary: descriptor-dependent hazard: pooled AUC vs true nuclei {ci(*tr[:3])} "
              f"(target >= 0.85: {'yes' if tr[0] >= 0.85 else 'NO'}); vs nuclei read from the "
              f"images {ci(*im[:3])}; shuffled {sh:.2f}")
    if "none" in out:
        tr, im, sh = out["none"]
        print(f"summary: no dependence: pooled AUC vs true nuclei {ci(*tr[:3])} (target: "
              f"interval covers 0.5: {'yes' if tr[1] <= 0.5 <= tr[2] else 'NO'}); vs nuclei "
              f"read from the images {ci(*im[:3])} (covers 0.5: "
              f"{'yes' if im[1] <= 0.5 <= im[2] else 'NO'}); shuffled {sh:.2f}")


if __name__ == "__main__":
    main()
