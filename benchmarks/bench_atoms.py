"""Atom-column benchmark: causalspy against Atomap 0.4.2 on the same synthetic lattice.

Everything is measured in one process, on the same images, from the same
starting positions:

a. 2D-Gaussian refinement throughput (columns/s) of
   ``causalspy.atoms.refine_gaussian`` and Atomap's
   ``Sublattice.refine_atom_positions_using_2d_gaussian``.
b. Radial position RMS of interior columns at 1e4 and 500 counts/column, against
   the textbook Cramér–Rao bound ``sqrt(2) * sigma / sqrt(N)`` and against the
   exact Cramér–Rao bound of the image (pixel-integrated columns, neighbours'
   shot noise included).
c. Error calibration: std of (actual error / reported error) per axis.
d. Detection recall and precision of ``causalspy.find_atoms``.

Starting positions for (a)-(c): the true positions plus a Gaussian offset of
0.5 px per axis (fixed seed), rounded to whole pixels (RMS start error about
0.8 px, a little worse than an integer peak finder's). Both tools get the same
array.

Timings are ratios measured in the same process; causalspy is timed in several
runs before and after the Atomap run, with all threads and with one numba thread
(whose CPU time gives a per-core ratio that load hardly changes). The CPU/wall
column shows whether the parallel kernels really ran in parallel.

Run::

    .venv/bin/python benchmarks/bench_atoms.py            # full run (a few minutes)
    .venv/bin/python benchmarks/bench_atoms.py --quick    # smoke run (small images)

On a shared machine, give the run its own session and a larger scheduling share::

    setsid bash -c 'echo -15 > /proc/$$/autogroup; exec nice -n -15 \
        .venv/bin/python benchmarks/bench_atoms.py'
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import sys
import time
import warnings

import numpy as np
from scipy.special import erfc

from _common import src_state

SIGMA = 3.5
SPACING = 18.0
JITTER = 0.3
DOSES = (1e4, 500.0)
START_OFFSET = 0.5  # px per axis, before rounding the starts to whole pixels
START_SEED = 12345


# ----------------------------------------------------------------------------- helpers
def quiet_imports():
    """Import Atomap/HyperSpy with their deprecation chatter silenced."""
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    logging.getLogger("atomap").setLevel(logging.ERROR)
    import atomap.api as am

    return am


def make_image(shape, counts, seed, spacing=SPACING, noise=True):
    from causalspy.data import square_lattice

    s, truth = square_lattice(shape=shape, spacing=spacing, sigma=SIGMA, counts=counts,
                              background=0.0, jitter=JITTER, seed=seed, noise=noise)
    t = truth.present()
    return s, np.asarray(s.data, dtype=np.float64), t


def interior_mask(t, shape, sigma=SIGMA):
    """Not a truth ``edge`` column and further than 3.5 sigma + 1 px from the border."""
    h, w = shape
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    dist = np.minimum.reduce([x + 0.5, y + 0.5, w - 0.5 - x, h - 0.5 - y])
    return (~t["edge"].to_numpy(bool)) & (dist > 3.5 * sigma + 1.0)


def starts(tx, ty, seed=START_SEED):
    rng = np.random.default_rng(seed)
    off = rng.standard_normal((2, tx.size)) * START_OFFSET
    return np.rint(tx + off[0]), np.rint(ty + off[1])


def _phi(u):
    return np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


def _pix(centre, s, k):
    """Pixel-integrated 1D Gaussian (same formula as causalspy.data.render_columns)."""
    scale = 1.0 / (math.sqrt(2.0) * s)
    lo = (k - 0.5 - centre) * scale
    hi = (k + 0.5 - centre) * scale
    right = (k - centre) >= 0
    a = np.where(right, lo, -hi)
    b = np.where(right, hi, -lo)
    return 0.5 * (erfc(a) - erfc(b))


def _dpix(centre, s, k):
    """d/dcentre of :func:`_pix`: (phi(lo) - phi(hi)) / s with lo, hi the pixel edges."""
    return (_phi((k - 0.5 - centre) / s) - _phi((k + 0.5 - centre) / s)) / s


def exact_crb(shape, tx, ty, counts, sigma=SIGMA, background=0.0, truncate=6.0, batch=2000):
    """Per-column Cramér–Rao bounds (px) along x and y for Poisson counts.

    ``mu`` is the expected image of *all* columns (pixel-integrated Gaussians,
    no noise) plus background; for column i the Fisher information along x is
    ``I_xx = sum_pixels (d mu_i / dx)^2 / mu`` with ``mu_i`` that column's
    pixel-integrated Gaussian, whose derivative is the Gaussian pdf at the pixel
    edges. The bound per axis is ``1 / sqrt(I_xx)`` (likewise y).
    """
    from causalspy.data import render_columns

    h, w = shape
    mu = render_columns(shape, tx, ty, counts, sigma, background, truncate=truncate)
    r = int(math.ceil(truncate * sigma))
    off = np.arange(-r, r + 1)
    ixx = np.empty(tx.size)
    iyy = np.empty(tx.size)
    for s0 in range(0, tx.size, batch):
        sl = slice(s0, min(tx.size, s0 + batch))
        x, y = tx[sl, None], ty[sl, None]
        kx = np.floor(x + 0.5).astype(np.int64) + off
        ky = np.floor(y + 0.5).astype(np.int64) + off
        ex, ey = _pix(x, sigma, kx), _pix(y, sigma, ky)
        dex, dey = _dpix(x, sigma, kx), _dpix(y, sigma, ky)
        okx = (kx >= 0) & (kx < w)
        oky = (ky >= 0) & (ky < h)
        m = mu[np.clip(ky, 0, h - 1)[:, :, None], np.clip(kx, 0, w - 1)[:, None, :]]
        valid = oky[:, :, None] & okx[:, None, :] & (m > 0)
        inv = np.where(valid, 1.0 / np.where(valid, m, 1.0), 0.0)
        gx = counts * ey[:, :, None] * dex[:, None, :]
        gy = counts * dey[:, :, None] * ex[:, None, :]
        ixx[sl] = (gx * gx * inv).sum(axis=(1, 2))
        iyy[sl] = (gy * gy * inv).sum(axis=(1, 2))
    return 1.0 / np.sqrt(ixx), 1.0 / np.sqrt(iyy)


def rms_radial(dx, dy):
    return float(np.sqrt(np.mean(dx * dx + dy * dy)))


def table(headers, rows, title=None):
    """Plain-text table; also returns Markdown lines for docs."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    out = []
    if title:
        out.append(f"\n{title}")
    out.append("  ".join(h.rjust(wd) if i else h.ljust(wd) for i, (h, wd) in
                         enumerate(zip(headers, widths, strict=True))))
    out.append("  ".join("-" * wd for wd in widths))
    for r in cells:
        out.append("  ".join(c.rjust(wd) if i else c.ljust(wd) for i, (c, wd) in
                             enumerate(zip(r, widths, strict=True))))
    print("\n".join(out), flush=True)


def atomap_refine(am, image, x0, y0, method):
    """Run one Atomap refinement; returns (x, y, seconds). Neighbour search is not timed."""
    sub = am.Sublattice(np.column_stack([x0, y0]), image)
    sub.find_nearest_neighbors()
    c0 = os.times()
    t0 = time.perf_counter()
    if method == "gaussian":
        sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
    else:
        sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
    sec = time.perf_counter() - t0
    c1 = os.times()
    atomap_refine.cpu = c1.user + c1.system - c0.user - c0.system
    return np.asarray(sub.x_position, float), np.asarray(sub.y_position, float), sec


def time_cs(image, x0, y0, sigma, repeats, parallel=True, threads=None):
    """Wall and CPU seconds of ``repeats`` calls of refine_gaussian.

    ``threads=1`` runs the numba kernels on one thread (``numba.set_num_threads``):
    its CPU time is a per-core cost that a busy machine hardly changes.
    """
    import numba

    from causalspy.atoms import refine_gaussian

    ts, cpu = [], []
    fit = None
    n0 = numba.get_num_threads()
    if threads:
        numba.set_num_threads(threads)
    try:
        for _ in range(repeats):
            c0 = os.times()
            t0 = time.perf_counter()
            fit = refine_gaussian(image, x0, y0, sigma, parallel=parallel)
            ts.append(time.perf_counter() - t0)
            c1 = os.times()
            cpu.append(c1.user + c1.system - c0.user - c0.system)
    finally:
        numba.set_num_threads(n0)
    return ts, cpu, fit


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 270x270 images, 1 seed, 3 timing repeats")
    ap.add_argument("--seeds", type=int, default=3,
                    help="image seeds for RMS, calibration and detection (default 3)")
    ap.add_argument("--repeats", type=int, default=7,
                    help="timed runs of causalspy refine_gaussian (median; default 7)")
    ap.add_argument("--no-atomap-com", action="store_true", help="skip Atomap centre of mass")
    args = ap.parse_args(argv)

    size = 270 if args.quick else 540
    shape = (size, size)
    seeds = list(range(1 if args.quick else args.seeds))
    repeats = 3 if args.quick else max(5, args.repeats)

    am = quiet_imports()
    import numba

    import causalspy
    from causalspy import find_atoms
    from causalspy.atoms import NoiseModel, refine_com, refine_gaussian
    from causalspy.data import match_columns

    print("causalspy atom-column benchmark")
    print(f"date {dt.datetime.now().isoformat(timespec='seconds')}; python "
          f"{platform.python_version()}; causalspy {causalspy.__version__}; atomap 0.4.2; "
          f"numba {numba.__version__} ({numba.get_num_threads()} threads); "
          f"{os.cpu_count()} CPUs; {platform.machine()}")
    print(f"image {size}x{size} px, square lattice, spacing {SPACING:g} px, sigma {SIGMA} px, "
          f"jitter {JITTER} px, Poisson noise, background 0; seeds {seeds}")
    print(f"starts: true position + N(0, {START_OFFSET} px) per axis (seed {START_SEED}), "
          "rounded to whole pixels; the same array for both tools")
    commit, src_hash = src_state()
    print(f"source: git {commit}; benchmarked sources sha256 {src_hash}")

    # warm-up: numba compilation (or cache load) of both kernel variants
    _, wimg, wt = make_image((90, 90), 1e4, 99)
    wx, wy = starts(wt["x"].to_numpy(), wt["y"].to_numpy())
    refine_gaussian(wimg, wx, wy, SIGMA)
    refine_gaussian(wimg, wx, wy, SIGMA, parallel=False)
    find_atoms(wimg)

    # ---------------------------------------------------------------- run everything
    res = {}  # (dose, seed) -> dict of results
    timing = []
    for dose in DOSES:
        for seed in seeds:
            s, img, t = make_image(shape, dose, seed)
            tx, ty = t["x"].to_numpy(), t["y"].to_numpy()
            x0, y0 = starts(tx, ty)
            inner = interior_mask(t, shape)
            r = {"tx": tx, "ty": ty, "inner": inner, "n": tx.size}
            # causalspy Gaussian, timed on the first seed only. The machine may be
            # shared, so half of the runs are made before and half after the Atomap run
            # and the median of all is used (both tools see similar load).
            timed = seed == seeds[0]
            if timed:
                load0 = os.getloadavg()[0]
                fa = find_atoms(s, refine="none")
                sig_est = float(fa.metadata["parameters"]["sigma_start"])
                cs_runs = {}

                def run_cs(cs_runs=cs_runs, img=img, x0=x0, y0=y0, sig_est=sig_est):
                    for key, sg, par, nth in (("t_cs", SIGMA, True, None),
                                              ("t_cs1", SIGMA, False, None),
                                              ("t_cst1", SIGMA, True, 1),
                                              ("t_cs30", 3.0, True, None),
                                              ("t_cse", sig_est, True, None)):
                        ts, cpu, f = time_cs(img, x0, y0, sg, (repeats + 1) // 2, parallel=par,
                                             threads=nth)
                        cs_runs.setdefault(key, []).extend(ts)
                        cs_runs.setdefault(key + "_cpu", []).extend(cpu)
                        cs_runs[key + "_it"] = f.iterations

                run_cs()
            fit = refine_gaussian(img, x0, y0, SIGMA)
            r["cs_gauss"] = (fit.x, fit.y, fit.x_err, fit.y_err, fit.ok)
            # a second pass started from the first pass's result (windows re-centred)
            fit2 = refine_gaussian(img, fit.x, fit.y, SIGMA)
            r["cs_gauss2"] = (fit2.x, fit2.y, fit2.x_err, fit2.y_err, fit2.ok)
            r["cs_gauss_sigma"] = fit.sigma
            # causalspy CoM, errors propagated with the Gaussian fit's noise model
            c = refine_com(img, x0, y0, SIGMA, noise=fit.noise)
            ok = np.isfinite(c["x"]) & np.isfinite(c["y"])
            r["cs_com"] = (c["x"], c["y"], c["x_err"], c["y_err"], ok)
            # same estimator with the textbook Poisson model (var = counts)
            cp = refine_com(img, x0, y0, SIGMA, noise=NoiseModel(0.0, 1.0, 0.25))
            r["cs_com_pois_err"] = (cp["x_err"], cp["y_err"])
            # the user-facing pipeline, matched to the truth
            for key, how in (("fa_gauss", "gaussian"), ("fa_com", "com")):
                a = find_atoms(s, refine=how).to_dataframe()
                m = match_columns(a[["x", "y"]].to_numpy(), np.column_stack([tx, ty]),
                                  0.3 * SPACING)
                xs = np.full(tx.size, np.nan)
                ys, xe, ye = xs.copy(), xs.copy(), xs.copy()
                xs[m.true_index] = a["x"].to_numpy()[m.found_index]
                ys[m.true_index] = a["y"].to_numpy()[m.found_index]
                xe[m.true_index] = a["x_err"].to_numpy()[m.found_index]
                ye[m.true_index] = a["y_err"].to_numpy()[m.found_index]
                r[key] = (xs, ys, xe, ye, np.isfinite(xs))
            # Atomap
            ax, ay, t_am = atomap_refine(am, img, x0, y0, "gaussian")
            cpu_am = atomap_refine.cpu
            if timed:
                run_cs()
            r["am_gauss"] = (ax, ay, None, None, np.isfinite(ax))
            if not args.no_atomap_com:
                cx, cy, t_amc = atomap_refine(am, img, x0, y0, "com")
                r["am_com"] = (cx, cy, None, None, np.isfinite(cx))
            r["crb"] = exact_crb(shape, tx, ty, dose)
            res[(dose, seed)] = r
            if timed:
                tm = {k: float(np.median(v)) for k, v in cs_runs.items()}
                for k in ("t_cs", "t_cs1", "t_cst1", "t_cs30", "t_cse"):
                    tm[k + "_cpu"] = float(np.sum(cs_runs[k + "_cpu"]) / np.sum(cs_runs[k]))
                tm["t_cs_min_cpu"] = tm["t_cs_cpu"]
                tm["t_cs_min_it"] = tm["t_cs_it"]
                tm.update(dose=dose, n=tx.size, t_am=t_am, t_am_cpu=cpu_am / t_am,
                          sig_est=sig_est,
                          t_cs_min=float(np.min(cs_runs["t_cs"])), nrep=len(cs_runs["t_cs"]),
                          load=(load0, os.getloadavg()[0]),
                          t_amc=None if args.no_atomap_com else t_amc)
                timing.append(tm)
            print(f"  done: {dose:g} counts, seed {seed} (Atomap Gaussian {t_am:.1f} s)",
                  flush=True)

    # ---------------------------------------------------------------- (a) throughput
    rows = []
    for tm in timing:
        n, d = tm["n"], f"{tm['dose']:g}"
        rows.append([d, n, "Atomap 2D Gaussian (1 run)", f"{tm['t_am']:.2f} s",
                     f"{n / tm['t_am']:.0f}", "1x", f"{tm['t_am_cpu']:.2f}", ""])
        for label, key in ((f"causalspy refine_gaussian, sigma0={SIGMA} (median)", "t_cs"),
                           (f"causalspy refine_gaussian, sigma0={SIGMA} (fastest run)",
                            "t_cs_min"),
                           ("  same, parallel=False (median)", "t_cs1"),
                           ("  same, numba.set_num_threads(1) (median)", "t_cst1"),
                           ("  same, sigma0=3.0 (median)", "t_cs30"),
                           (f"  same, sigma0={tm['sig_est']:.2f} = find_atoms' estimate (median)",
                            "t_cse")):
            rows.append([d, n, label, f"{tm[key] * 1e3:.1f} ms", f"{n / tm[key]:.0f}",
                         f"{tm['t_am'] / tm[key]:.0f}x", f"{tm[key + '_cpu']:.2f}",
                         int(tm[key + "_it"])])
        if tm["t_amc"] is not None:
            rows.append([d, n, "(Atomap centre of mass, 1 run)", f"{tm['t_amc']:.2f} s",
                         f"{n / tm['t_amc']:.0f}", "", "", ""])
    table(["counts", "columns", "method", "time", "columns/s", "speed-up vs Atomap",
           "CPU/wall", "iterations"], rows,
          f"(a) 2D-Gaussian refinement throughput, first seed (causalspy: median of "
          f"{timing[0]['nrep']} runs after warm-up, half before and half after the Atomap run; "
          "Atomap: one run); target >= 300x")
    print("load average (1 min) before/after each timing block: "
          + ", ".join(f"{tm['dose']:g} counts {tm['load'][0]:.2f}/{tm['load'][1]:.2f}"
                      for tm in timing))
    print("CPU/wall = process CPU time / wall time (about 1 for one thread, up to the number "
          "of cores for parallel kernels).")
    for tm in timing:
        ncpu = os.cpu_count() or 1
        if ncpu > 1 and tm["t_cs1_cpu"] > 1.3:
            print(f"  NOTE ({tm['dose']:g} counts): parallel=False used {tm['t_cs1_cpu']:.2f} "
                  "CPUs: the serial kernels are running multi-threaded.")
        if ncpu > 1 and tm["t_cs_cpu"] < 1.2:
            print(f"  NOTE ({tm['dose']:g} counts): parallel=True used only {tm['t_cs_cpu']:.2f} "
                  "CPUs: the parallel kernels are running on one thread.")

    # ---------------------------------------------------------------- (b) RMS
    methods = [("cs_gauss", "causalspy refine_gaussian"),
               ("cs_gauss2", "  same, 2nd pass from the 1st pass's result"),
               ("cs_com", "causalspy refine_com"),
               ("fa_gauss", "causalspy find_atoms(refine='gaussian')"),
               ("fa_com", "causalspy find_atoms(refine='com')"),
               ("am_gauss", "Atomap 2D Gaussian")]
    if not args.no_atomap_com:
        methods.append(("am_com", "Atomap centre of mass"))
    rows = []
    summary = {}
    crb_rad = {}
    for dose in DOSES:
        tb = math.sqrt(2.0) * SIGMA / math.sqrt(dose)
        vx = np.concatenate([res[(dose, s)]["crb"][0][res[(dose, s)]["inner"]] ** 2 for s in seeds])
        vy = np.concatenate([res[(dose, s)]["crb"][1][res[(dose, s)]["inner"]] ** 2 for s in seeds])
        ex = math.sqrt(float(np.mean(vx + vy)))
        crb_rad[dose] = ex
        n_in = int(sum(res[(dose, s)]["inner"].sum() for s in seeds))
        rows.append([f"{dose:g}", "textbook bound sqrt(2)*sigma/sqrt(N)", n_in, f"{tb:.4f}",
                     "1.000", f"{tb / ex:.3f}", "", "", ""])
        rows.append([f"{dose:g}", "exact Cramér–Rao bound of the image", n_in, f"{ex:.4f}",
                     f"{ex / tb:.3f}", "1.000", "", "", ""])
        for key, label in methods:
            dxs, dys, nok = [], [], 0
            for s in seeds:
                r = res[(dose, s)]
                x, y, _, _, ok = r[key]
                sel = r["inner"] & ok & np.isfinite(x) & np.isfinite(y)
                nok += int((r["inner"] & ~sel).sum())
                dxs.append(x[sel] - r["tx"][sel])
                dys.append(y[sel] - r["ty"][sel])
            dx, dy = np.concatenate(dxs), np.concatenate(dys)
            rms = rms_radial(dx, dy)
            summary[(dose, key)] = (rms / tb, rms / ex)
            tgt = "<= 1.1" if key in ("cs_gauss", "fa_gauss") else ""
            rows.append([f"{dose:g}", label, dx.size, f"{rms:.4f}", f"{rms / tb:.3f}",
                         f"{rms / ex:.3f}", tgt, f"{np.mean(dx):+.4f}/{np.mean(dy):+.4f}",
                         nok])
    table(["counts", "estimator", "columns", "radial RMS (px)", "/ textbook", "/ exact CRB",
           "target", "mean dx/dy (px)", "not ok"], rows,
          f"(b) radial position RMS, interior columns only (not truth 'edge', > 3.5 sigma + 1 px "
          f"from the border), {len(seeds)} seed(s) pooled; target causalspy <= 1.1x exact CRB")
    print("Note: the textbook bound sqrt(2)*sigma/sqrt(N) is for one isolated, background-free,\n"
          "unpixelated Gaussian. The exact bound uses the expected image itself: the tails of\n"
          "each column's pixels also carry the neighbours' counts, whose shot noise adds\n"
          "variance without adding position information, and pixel integration blurs the\n"
          "profile; both make the exact bound larger than the textbook one.\n"
          "The 1.1x target applies to the Gaussian (maximum-likelihood) fit. refine_com is a\n"
          "Gaussian-weighted centre of mass whose weight has the column's own width; for an\n"
          "isolated background-free Gaussian its variance is 16/9 of the bound, an RMS of\n"
          "4/3 = 1.333x the textbook bound even with perfect pixels, so it cannot reach 1.1x.")

    # ---------------------------------------------------------------- (c) calibration
    rows = []
    for dose in DOSES:
        for key, label in (("cs_gauss", "causalspy refine_gaussian"),
                           ("cs_gauss2", "  same, 2nd pass"),
                           ("cs_com", "causalspy refine_com (noise model of the fit)"),
                           ("cs_com_pois", "causalspy refine_com (Poisson var = counts)"),
                           ("fa_gauss", "causalspy find_atoms(refine='gaussian')"),
                           ("fa_com", "causalspy find_atoms(refine='com')")):
            zx, zy, ratio, nwild = [], [], [], 0
            for s in seeds:
                r = res[(dose, s)]
                if key == "cs_com_pois":
                    x, y, _, _, ok = r["cs_com"]
                    xe, ye = r["cs_com_pois_err"]
                else:
                    x, y, xe, ye, ok = r[key]
                sel = r["inner"] & ok & np.isfinite(xe) & np.isfinite(ye) & (xe > 0) & (ye > 0)
                zx.append((x[sel] - r["tx"][sel]) / xe[sel])
                zy.append((y[sel] - r["ty"][sel]) / ye[sel])
                er = np.sqrt(xe[sel] ** 2 + ye[sel] ** 2)
                ratio.append(er)
                nwild += int(np.sum(er > 1.0))
            zx, zy = np.concatenate(zx), np.concatenate(zy)
            er = np.concatenate(ratio)
            med_err = float(np.median(er))
            summary[(dose, key, "cal")] = (float(np.std(zx)), float(np.std(zy)))
            summary[(dose, key, "wild")] = (nwild, float(er.max()))
            rows.append([f"{dose:g}", label, zx.size, f"{np.std(zx):.3f}", f"{np.std(zy):.3f}",
                         f"{np.mean(zx):+.3f}/{np.mean(zy):+.3f}", f"{med_err:.4f}",
                         f"{med_err / crb_rad[dose]:.3f}", f"{er.max():.4g}", nwild])
    table(["counts", "estimator", "columns", "std(dx/x_err)", "std(dy/y_err)",
           "mean dx/x_err, dy/y_err", "median reported radial err (px)", "/ exact CRB",
           "max (px)", "> 1 px"], rows,
          "(c) error calibration, interior columns; target std 0.8-1.25 per axis")

    # ---------------------------------------------------------------- (d) detection
    rows = []
    det_shape = (540, 540)  # also in --quick: detection is cheap
    det_cases = [(spacing, dose, det_shape) for spacing in (18.0, 12.0) for dose in DOSES]
    # a smaller image of the dense lattice as a robustness probe (not part of the targets)
    det_cases += [(12.0, dose, (270, 270)) for dose in DOSES]
    for spacing, dose, dshape in det_cases:
        nf = nt = nm = 0
        seps, inv = [], []
        for s in seeds:
            sig, _, t = make_image(dshape, dose, 100 + s, spacing=spacing)
            a = find_atoms(sig)
            seps.append(float(a.metadata["parameters"]["separation"]))
            inv.append(bool(a.metadata["parameters"]["invert"]))
            pos = a.to_dataframe()[["x", "y"]].to_numpy()
            m = match_columns(pos, t[["x", "y"]].to_numpy(), 0.3 * spacing)
            nf += m.n_found
            nt += m.n_true
            nm += len(m.true_index)
        target = 99.9 if dose >= 1e4 else 99.0
        rec, prec = 100.0 * nm / nt, 100.0 * nm / nf
        probe = dshape != det_shape
        if not probe:
            summary[(spacing, dose, "det")] = (rec, prec)
        else:
            summary[(spacing, dose, "probe")] = (rec, prec, dshape, sum(inv))
        rows.append([f"{dshape[0]}x{dshape[1]}", f"{spacing:g}", f"{dose:g}", nt, nf, nm,
                     nt - nm, nf - nm, f"{rec:.2f}", f"{prec:.2f}",
                     "(probe)" if probe else f">= {target}",
                     f"{min(seps):.2f}-{max(seps):.2f}", f"{sum(inv)}/{len(inv)}"])
    table(["image", "spacing (px)", "counts", "true", "found", "matched", "missed",
           "false pos.", "recall %", "precision %", "target %", "est. separation (px)",
           "inverted"], rows,
          f"(d) detection by find_atoms (defaults: separation and invert estimated), sigma "
          f"{SIGMA} px, seeds {[100 + s for s in seeds]} pooled, all columns incl. edges, "
          "match tolerance 0.3 x spacing")

    # ---------------------------------------------------------------- verdict
    if src_state()[1] != src_hash:
        print("\nWARNING: the benchmarked causalspy sources changed during this run; rerun it.")
    print("\nTargets")
    for tm in timing:
        ratio = tm["t_am"] / tm["t_cs"]
        cratio = tm["t_am"] * tm["t_am_cpu"] / (tm["t_cst1"] * tm["t_cst1_cpu"])
        print(f"  throughput ratio at {tm['dose']:g} counts: {ratio:.0f}x wall time "
              f"(target >= 300x) {'OK' if ratio >= 300 else 'MISSED'}; per core (CPU time, "
              f"causalspy on 1 thread): {cratio:.0f}x")
    for dose in DOSES:
        for key in ("cs_gauss", "fa_gauss"):
            v = summary[(dose, key)][1]
            print(f"  RMS / exact CRB, {key} at {dose:g} counts: {v:.3f} (target <= 1.1) "
                  f"{'OK' if v <= 1.1 else 'MISSED'}")
        for key in ("cs_com", "fa_com"):
            v, w = summary[(dose, key)][1], summary[(dose, key)][0]
            print(f"  RMS / exact CRB, {key} at {dose:g} counts: {v:.3f} ({w:.3f}x textbook; "
                  "no target: its asymptotic limit is 1.333x textbook)")
        for key in ("cs_gauss", "cs_com", "fa_gauss", "fa_com"):
            sx, sy = summary[(dose, key, "cal")]
            good = 0.8 <= sx <= 1.25 and 0.8 <= sy <= 1.25
            print(f"  calibration std, {key} at {dose:g} counts: {sx:.3f}/{sy:.3f} "
                  f"(target 0.8-1.25) {'OK' if good else 'MISSED'}")
            nwild, emax = summary[(dose, key, "wild")]
            if nwild:
                print(f"    PROBLEM: {nwild} interior column(s) of {key} at {dose:g} counts report "
                      f"a radial error above 1 px (largest {emax:.4g} px)")
    for dose in DOSES:
        sg = np.concatenate([res[(dose, s)]["cs_gauss_sigma"] for s in seeds])
        okk = np.concatenate([res[(dose, s)]["cs_gauss"][4] for s in seeds])
        wide = okk & (sg > 2 * SIGMA)
        if wide.any():
            print(f"    PROBLEM: refine_gaussian at {dose:g} counts: {int(wide.sum())} column(s) "
                  f"flagged ok with a fitted sigma > {2 * SIGMA:g} px (true {SIGMA} px; largest "
                  f"{sg[wide].max():.1f} px)")
    for spacing in (18.0, 12.0):
        for dose in DOSES:
            rec, prec = summary[(spacing, dose, "det")]
            target = 99.9 if dose >= 1e4 else 99.0
            good = rec >= target and prec >= target
            print(f"  detection at {spacing:g} px, {dose:g} counts: recall {rec:.2f} %, "
                  f"precision {prec:.2f} % (target >= {target} %) {'OK' if good else 'MISSED'}")
    for dose in DOSES:
        rec, prec, dshape, ninv = summary[(12.0, dose, "probe")]
        if rec < 99 or prec < 99:
            print(f"  PROBLEM: {dshape[0]}x{dshape[1]} px at 12 px spacing, {dose:g} counts: "
                  f"recall {rec:.2f} %, precision {prec:.2f} %; invert chosen in {ninv} of "
                  f"{len(seeds)} images (the columns are bright)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
