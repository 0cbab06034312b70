"""Benchmark of causalspy.bayes: calibration, model comparison, speed.

Run: ``python benchmarks/bench_bayes.py [--walls 200] [--cases 20]
[--only speed,calibration,comparison,map]`` (one core: ``taskset -c 0``). Prints, with the default sampler settings (4 chains x
500 warm-up + 1000 draws):

* calibration (simulation-based): over N synthetic tanh walls whose parameters
  and noise are drawn from the priors the fit uses, how often the 90 % HDI
  contains the truth, per parameter (target 85-95 %) with its binomial 95 %
  interval, and the fraction of fits with R-hat < 1.01;
* model comparison (PSIS-LOO, tanh vs linear): accuracy on walls and on
  gradients at realistic noise (target >= 90 % correct, wrong picks ~ 0), and
  the "undecided" rate on walls much wider than the field of view;
* time of a 200-point wall fit after compilation (target < 5 s) and the
  compilation time;
* the structured GP on a 50 x 50 map (known plane + known smooth residual +
  noise): time, residual recovery and the honesty of the map's uncertainty.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: Priors of the calibration study, in the units of the synthetic profiles
#: (x: 0-20 over 200 points). The truths are drawn from them.
CALIBRATION_PRIORS = ["P_s=TruncatedNormal(1, 0.5, 0.2, 3)", "x0=Normal(10, 2)",
                      "w=LogNormal(0.2, 0.5)", "b=Normal(0, 0.5)", "sigma=LogNormal(-1.9, 0.5)"]


def _draw_truth(pri, rng) -> dict:
    """One draw from each prior (NumPyro's sampler, seeded from ``rng``)."""
    import jax

    out = {}
    for n, spec in pri.items():
        key = jax.random.PRNGKey(int(rng.integers(2**31)))
        out[n] = float(spec.to_numpyro().sample(key))
    return out


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def _ml_inside(x, y, truth) -> dict:
    """Does the exact-likelihood 90 % Wald interval contain the truth? Separates
    unlucky noise draws (both methods miss) from a sampler problem."""
    from scipy.optimize import curve_fit

    def f(x, P_s, x0, w, b):
        return P_s * np.tanh((x - x0) / w) + b

    keys = ["P_s", "x0", "w", "b"]
    p0 = [truth[k] for k in keys]
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, c = curve_fit(f, x, y, p0=p0, maxfev=10000)
    except RuntimeError:
        return dict.fromkeys(keys, False)
    sd = np.sqrt(np.diag(c))
    return {k: bool(abs(p[i] - p0[i]) <= 1.645 * sd[i]) for i, k in enumerate(keys)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walls", type=int, default=200)
    ap.add_argument("--cases", type=int, default=20, help="model-comparison cases per kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="speed,calibration,comparison,map",
                    help="comma-separated sections to run")
    a = ap.parse_args(argv)
    only = {s.strip() for s in a.only.split(",")}

    import numpyro

    numpyro.set_host_device_count(1)
    from causalspy.bayes import compare, fit, synthetic_profile, synthetic_wall

    rng = np.random.default_rng(a.seed)
    names = ["P_s", "x0", "w", "b", "sigma"]

    # ---------------------------------------------------------------- speed
    if "speed" in only:
        _speed(fit, synthetic_wall)
    if "calibration" in only:
        _calibration(a, rng, names, fit, synthetic_wall)
    if "comparison" in only:
        _comparison(a, rng, fit, compare, synthetic_wall, synthetic_profile)
    if "map" in only:
        _gp_map()
    return 0


def _speed(fit, synthetic_wall):
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


def _calibration(a, rng, names, fit, synthetic_wall):
    # Simulation-based calibration: the truth of every wall is drawn from the very
    # prior the fit uses, so a correct sampler puts it inside the 90 % HDI with
    # probability exactly 0.9 (Talts et al. 2018). Drawing truths from some other
    # range and fitting with data-scaled default priors does not test calibration.
    import math

    from scipy.stats import binom

    from causalspy.bayes import parse_priors

    pri = parse_priors(CALIBRATION_PRIORS)
    hits = dict.fromkeys(names, 0)
    ml_hits = dict.fromkeys(names[:4], 0)
    rhat_ok = 0
    div = 0
    for k in range(a.walls):
        tr = _draw_truth(pri, rng)
        x, y, truth = synthetic_wall(n=200, noise=tr.pop("sigma"), seed=1000 + k, **tr)
        post = fit(x, y, "tanh", priors=CALIBRATION_PRIORS, seed=k)
        s = post.summary()
        for n in names:
            hits[n] += bool(s.loc[n, "hdi_low"] <= truth[n] <= s.loc[n, "hdi_high"])
        for n, inside in _ml_inside(x, y, truth).items():
            ml_hits[n] += inside
        d = post.diagnostics
        rhat_ok += d["r_hat_max"] < 1.01
        div += d["divergences"] > 0
    lo, hi = math.ceil(0.85 * a.walls), math.floor(0.95 * a.walls)
    p_in = binom.cdf(hi, a.walls, 0.9) - binom.cdf(lo - 1, a.walls, 0.9)
    print(f"calibration over {a.walls} walls drawn from the fit's prior (90 % HDI, target "
          f"85-95 %; a perfectly calibrated sampler lands in 85-95 % with probability "
          f"{100 * p_in:.0f} % per parameter at this number of walls):")
    print("  priors: " + "; ".join(CALIBRATION_PRIORS))
    for n in names:
        k_in = hits[n]
        ci = _clopper_pearson(k_in, a.walls)
        print(f"  {n:>6}: {100 * k_in / a.walls:5.1f} %  (95 % CI {100 * ci[0]:.0f}-"
              f"{100 * ci[1]:.0f} %)")
    print(f"  R-hat < 1.01 in {100 * rhat_ok / a.walls:.0f} % of fits; fits with divergences: "
          f"{div}")
    print("  reference on the same walls: maximum likelihood +- 1.645 Fisher sd (scipy "
          "curve_fit) covers " + ", ".join(f"{n} {100 * v / a.walls:.1f} %"
                                           for n, v in ml_hits.items()))


def _comparison(a, rng, fit, compare, synthetic_wall, synthetic_profile):
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


def _gp_map():
    from causalspy.bayes import fit_map, synthetic_map

    z, tr = synthetic_map((50, 50), ell=6.0, seed=0)
    z = z.copy()
    z[10:16, 30:42] = np.nan
    for k in range(2):
        t, c = time.perf_counter(), time.process_time()
        res = fit_map(z, "plane", seed=k)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        r = np.corrcoef(res.residual_mean.ravel(), tr["residual"].ravel())[0, 1]
        err = res.total_mean - tr["physics"] - tr["residual"]
        cover = np.mean(np.abs(err) < 1.645 * res.total_sd)
        s = res.summary()
        z_tr = {n: (s.loc[n, "mean"] - tr[n]) / s.loc[n, "sd"] for n in ("b", "s_x", "s_y")}
        print(f"structured GP, 50x50 map (plane + GP residual, {res.settings['n_basis']}^2 "
              f"basis functions, 2 x (300 + 500) NUTS, fit {k + 1}"
              f"{' with compilation' if k == 0 else ', compiled sampler reused'}): "
              f"{dt:.1f} s wall, {dc:.1f} s CPU; "
              f"{res.settings['mean_leapfrog_steps']:.0f} leapfrog steps per draw; "
              f"residual corr with truth {r:.3f}; noise-free map within its 90 % band at "
              f"{100 * cover:.0f} % of pixels; trend (mean - truth)/sd: " +
              ", ".join(f"{n} {v:+.1f}" for n, v in z_tr.items()) +
              f"; converged {res.converged}")


if __name__ == "__main__":
    raise SystemExit(main())
