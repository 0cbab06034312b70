"""Parsimonious-law figures for docs/benchmarks (issue 7, "Parsimonious laws").

Prints, next to the target of the issue:
1. logistic (JMAK-type) and Landau-Khalatnikov kinetics from 100-point series with 1 % noise:
   worst relative coefficient error, spurious/missing terms, ensemble-interval coverage;
2. a 1D Allen-Cahn field (weak-form SINDy): signs and worst relative error of its terms;
3. run times.

Run: ``.venv/bin/python benchmarks/bench_laws.py`` (``--quick`` for fewer seeds).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def score(law, truth):
    worst, wrong, covered, n = 0.0, 0, 0, 0
    for target, terms in truth.items():
        found = law.coefficients[target]
        wrong += len(set(found) ^ set(terms))
        ivs = law.to_dataframe().set_index(["target", "term"])
        for term, value in terms.items():
            if term in found:
                worst = max(worst, abs(found[term] / value - 1))
                if np.sign(found[term]) != np.sign(value):
                    wrong += 1
            lo, hi = ivs.loc[(target, term), ["low", "high"]]
            covered += bool(lo <= value <= hi)
            n += 1
    return worst, wrong, covered, n


def kinetics(seeds) -> None:
    from causalspy.laws import discover, synthetic

    print("\n1. Kinetics, 100 points, 1 % noise (target: every coefficient within 5 %, "
          "no spurious terms)")
    print(f"{'law':<20} {'criterion':>9} {'seeds':>5} {'worst err':>10} {'target':>7} "
          f"{'wrong terms':>11} {'target':>6} {'95% CI covers':>14} {'s/fit':>6}")
    for gen, lib in ((synthetic.logistic, "poly2"), (synthetic.landau_khalatnikov, "poly3")):
        for crit in ("aicc", "bic", "cv"):
            worst, wrong, cov, n, dt = 0.0, 0, 0, 0, 0.0
            for seed in seeds:
                s = gen(n=100, noise=0.01, seed=seed)
                t0 = time.perf_counter()
                law = discover(s.data, library=lib, criterion=crit, seed=seed)
                dt += time.perf_counter() - t0
                w, e, c, k = score(law, s.truth)
                worst, wrong, cov, n = max(worst, w), wrong + e, cov + c, n + k
            print(f"{gen.__name__:<20} {crit:>9} {len(seeds):>5} {100 * worst:>9.2f}% "
                  f"{'<= 5%':>7} {wrong:>11} {'0':>6} {f'{cov}/{n}':>14} "
                  f"{dt / len(seeds):>6.2f}")


def field(seeds) -> None:
    from causalspy.laws import discover_field, synthetic

    print("\n2. Allen-Cahn field u_t = 0.05 u_xx + u - u^3 (64 x 81 grid; target: right signs, "
          "within 10 %, no spurious terms)")
    print(f"{'noise':>6} {'seeds':>5} {'worst err':>10} {'target':>7} {'wrong terms':>11} "
          f"{'95% CI covers':>14} {'s/fit':>6}")
    for noise in (0.0, 0.01, 0.05):
        worst, wrong, cov, n, dt = 0.0, 0, 0, 0, 0.0
        for seed in seeds:
            s = synthetic.allen_cahn(noise=noise, seed=seed)
            t0 = time.perf_counter()
            law = discover_field(s.data["u"], s.data["t"], s.data["x"], seed=seed)
            dt += time.perf_counter() - t0
            w, e, c, k = score(law, s.truth)
            worst, wrong, cov, n = max(worst, w), wrong + e, cov + c, n + k
        print(f"{100 * noise:>5.0f}% {len(seeds):>5} {100 * worst:>9.2f}% {'<= 10%':>7} "
              f"{wrong:>11} {f'{cov}/{n}':>14} {dt / len(seeds):>6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seeds = range(3 if args.quick else 20)
    kinetics(list(seeds))
    field(list(range(2 if args.quick else 5)))


if __name__ == "__main__":
    main()
