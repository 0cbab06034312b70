"""Benchmark of causalspy.bayes: calibration, model comparison, speed.

Run: ``python benchmarks/bench_bayes.py [--walls 50] [--cases 20]`` (one core:
``taskset -c 0``). Prints, with the default sampler settings (4 chains x
250 warm-up + 250 draws):

* calibration: over N synthetic tanh walls with random parameters and noise,
  how often the 90 % HDI contains the truth, per parameter (target 85-95 %),
  and the fraction of fits with R-hat < 1.01;
* model comparison (PSIS-LOO, tanh vs linear): accuracy on walls and on
  gradients at realistic noise (target >= 90 % correct, wrong picks ~ 0), and
  the "undecided" rate on walls much wider than the field of view;
* time of a 200-point wall fit after compilation (target < 5 s) and the
  compilation time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walls", type=int, default=50)
    ap.add_argument("--cases", type=int, default=20, help="model-comparison cases per kind")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import numpyro

    numpyro.set_host_device_count(1)
    from causalspy.bayes import compare, fit, synthetic_profile, synthetic_wall

    rng = np.random.default_rng(a.seed)
    names = ["P_s", "x0", "w", "b", "sigma"]

    # ---------------------------------------------------------------- speed
    x, y, _ = synthetic_wall(n=200, seed=0)
    t = time.perf_counter()
    fit(x, y, "tanh", seed=0)
    t_first = time.perf_counter() - t
    times = []
    for s in range(3):
        t = time.perf_counter()
        fit(x, y, "tanh", seed=s + 1)
        times.append(time.perf_counter() - t)
    print(f"speed: first fit (with compilation) {t_first:.1f} s; 200-point fit after "
          f"compilation median {np.median(times):.2f} s (target < 5 s)")

    # ---------------------------------------------------------------- calibration
    hits = dict.fromkeys(names, 0)
    rhat_ok = 0
    div = 0
    for k in range(a.walls):
        tr = {"P_s": rng.uniform(0.3, 2.0) * rng.choice([-1, 1]), "x0": rng.uniform(5, 15),
              "w": rng.uniform(0.4, 3.0), "b": rng.normal(0, 0.5)}
        noise = rng.uniform(0.05, 0.3)
        x, y, truth = synthetic_wall(n=200, noise=noise, seed=1000 + k, **tr)
        post = fit(x, y, "tanh", seed=k)
        s = post.summary()
        for n in names:
            hits[n] += bool(s.loc[n, "hdi_low"] <= truth[n] <= s.loc[n, "hdi_high"])
        d = post.diagnostics
        rhat_ok += d["r_hat_max"] < 1.01
        div += d["divergences"] > 0
    print(f"calibration over {a.walls} walls (90 % HDI, target 85-95 %):")
    for n in names:
        print(f"  {n:>6}: {100 * hits[n] / a.walls:5.1f} %")
    print(f"  R-hat < 1.01 in {100 * rhat_ok / a.walls:.0f} % of fits; fits with divergences: "
          f"{div}")

    # ---------------------------------------------------------------- comparison
    res = {"wall": [], "gradient": [], "wide wall": []}
    for k in range(a.cases):
        noise = rng.uniform(0.05, 0.2)
        cases = {
            "wall": synthetic_wall(n=200, P_s=rng.uniform(0.5, 1.5), x0=rng.uniform(6, 14),
                                   w=rng.uniform(0.5, 3), b=0.0, noise=noise, seed=2000 + k),
            "gradient": synthetic_profile("linear", {"b": rng.normal(0, 0.5),
                                                     "s": rng.uniform(-0.1, 0.1)},
                                          n=200, noise=noise, seed=3000 + k),
            "wide wall": synthetic_wall(n=200, P_s=1.0, x0=10.0, w=rng.uniform(60, 120), b=0.0,
                                        noise=noise, seed=4000 + k),
        }
        for kind, (x, y, _) in cases.items():
            c = compare([fit(x, y, "tanh", seed=k), fit(x, y, "linear", seed=k)])
            res[kind].append(c.best)
    print(f"model comparison (PSIS-LOO, tanh vs linear, {a.cases} cases each):")
    w = res["wall"]
    print(f"  walls:      tanh {w.count('tanh')}/{len(w)}, linear {w.count('linear')}, "
          f"undecided {w.count(None)}  -> accuracy {100 * w.count('tanh') / len(w):.0f} %")
    g = res["gradient"]
    print(f"  gradients:  linear {g.count('linear')}, undecided {g.count(None)}, wrong (tanh) "
          f"{g.count('tanh')}  -> not wrong {100 * (1 - g.count('tanh') / len(g)):.0f} %")
    ww = res["wide wall"]
    print(f"  wide walls (cannot tell): undecided {ww.count(None)}/{len(ww)}, tanh "
          f"{ww.count('tanh')}, linear {ww.count('linear')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
