"""Spectrum-image numbers for the multimodal issue.

Prints, in one run:

1. co-registration error (structural px, RMS over the moving field against the
   known transform) over several scan rotations, pixel-size ratios and drifts,
   with the reported uncertainty; against scikit-image's phase correlation given
   the *true* rotation and scale (translation only: what it can do);
2. spectral descriptor accuracy against the truth: Ti L2,3 chemical shift per
   pixel and per cell against the dose (with the reported error bar), white-line
   ratio and plasmon energy; the per-pixel shift against HyperSpy's
   ``estimate_shift1D`` (cross-correlation) on the same data, with timings;
3. the causal direction recovered by the full chain (HAADF -> atoms ->
   descriptors; spectrum images -> spectral descriptors -> co-registered onto
   the cells; DirectLiNGAM) in both variants over seeds; DirectLiNGAM on the
   true values of the same cells (what the sample size alone allows) and the
   measurement noise of each variable (share of its variance).

Run: ``.venv/bin/python benchmarks/bench_multimodal.py`` (``--quick``: fewer
transforms, doses and seeds; ``--only-causal``: section 3 only).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def registration(quick: bool) -> None:
    from scipy.ndimage import gaussian_filter, map_coordinates
    from skimage.registration import phase_cross_correlation

    from causalspy.data import eels_spectrum_image
    from causalspy.multimodal import register

    cases = [(7.0, 2.0, (5.3, -3.7), 2e3), (-31.0, 1.6, (-8.2, 6.1), 2e3),
             (95.0, 2.5, (2.5, 9.0), 2e3), (0.0, 1.0, (0.0, 0.0), 2e3),
             (178.0, 3.0, (-4.4, -7.7), 2e3), (45.0, 1.25, (11.0, 3.0), 2e3),
             (12.0, 2.0, (3.3, 1.1), 300.0), (-60.0, 2.2, (-6.6, 2.2), 100.0)]
    if quick:
        cases = cases[:4]
    print("1. Co-registration: SI/ADF scan -> HAADF pixels, 40x40 cells "
          "(target: error < 0.5 px)")
    print(f"   {'rot':>6} {'scale':>5} {'drift (px)':>14} {'ADF cts':>7} | {'error px':>8} "
          f"{'reported':>8} {'d rot':>7} {'time s':>6} | {'skimage*':>8} {'time s':>6}")
    errs, ratio = [], []
    for k, (rot, sc, drift, adf) in enumerate(cases):
        d = eels_spectrum_image(cells=(40, 40), seed=100 + k, rotation_deg=rot, si_pixel=sc,
                                drift_px=drift, adf_counts=adf)
        t0 = time.perf_counter()
        reg = register(d.haadf, d.adf)
        t_ours = time.perf_counter() - t0
        err = reg.error_px(d.truth.transform)
        errs.append(err)
        # peer: translation by phase correlation, given the true linear part (oracle)
        ref = np.asarray(d.haadf.data, float)
        mov = np.asarray(d.adf.data, float)
        lin = d.truth.transform[:, :2]
        t0 = time.perf_counter()
        hr, wr = ref.shape
        yy, xx = np.mgrid[0:hr, 0:wr].astype(float)
        cm = np.array([(mov.shape[1] - 1) / 2, (mov.shape[0] - 1) / 2])
        t0_ = np.array([(wr - 1) / 2, (hr - 1) / 2]) - lin @ cm
        uv = (np.stack([xx.ravel(), yy.ravel()], 1) - t0_) @ np.linalg.inv(lin).T
        warped = map_coordinates(mov, [uv[:, 1], uv[:, 0]], order=1, cval=mov.mean())
        shift, _, _ = phase_cross_correlation(gaussian_filter(ref, 0.5),
                                              warped.reshape(hr, wr), upsample_factor=20)
        t_sk = time.perf_counter() - t0
        m_sk = np.column_stack([lin, t0_ + shift[::-1]])
        reg_sk = type(reg)(m_sk, moving_shape=mov.shape, reference_shape=ref.shape)
        err_sk = reg_sk.error_px(d.truth.transform)
        ratio.append(t_ours / t_sk)
        print(f"   {rot:6.1f} {sc:5.2f} ({drift[0]:5.1f},{drift[1]:5.1f}) {adf:7.0f} | "
              f"{err:8.4f} {reg.uncertainty_px:8.4f} {reg.rotation_deg - rot:+7.4f} "
              f"{t_ours:6.2f} | {err_sk:8.3f} {t_sk:6.2f}")
    print(f"   max error {max(errs):.4f} px, median {np.median(errs):.4f} px over {len(errs)} "
          f"transforms; time vs skimage: median {np.median(ratio):.1f}x")
    print("   (*skimage phase_cross_correlation with upsample_factor=20: translation only, "
          "given the TRUE rotation and scale)")


def spectral(quick: bool) -> None:
    from causalspy.data import eels_spectrum_image
    from causalspy.multimodal import spectral_descriptors

    doses = [0.1, 0.3, 1.0, 3.0] if not quick else [0.3, 1.0]
    print("\n2. Spectral descriptors vs truth, 30x30 cells (0.25 eV/channel; dose 1 = about "
          "3000 background, 600 L3 counts/channel)")
    print(f"   {'dose':>5} | {'shift px RMS':>12} {'reported':>8} {'cell RMS':>8} | "
          f"{'hs shift RMS':>12} | {'L3/L2 cell':>10} {'r':>5} | {'plasmon RMS':>11} "
          f"{'bias':>6} | {'ours s':>6} {'hs s':>6}")
    for dose in doses:
        d = eels_spectrum_image(cells=(30, 30), seed=7, dose=dose)
        t0 = time.perf_counter()
        maps, _ = spectral_descriptors(d.core_loss, edges=["Ti_L23"])
        t_ours = time.perf_counter() - t0
        true = d.truth.maps["edge_shift"]
        est = maps["Ti_L23_shift"]
        dd = (est - np.nanmean(est)) - (true - true.mean())
        rms_px = float(np.sqrt(np.nanmean(dd**2)))
        rep = float(np.nanmedian(maps["Ti_L23_shift_err"]))
        # per cell (what the causal table sees): mean over each cell's pixels
        cell = d.truth.cell_index.ravel()
        nc = len(d.truth.cells)
        n = np.bincount(cell, minlength=nc)
        unit = d.truth.cells["unit"].to_numpy(bool) & (n > 5)
        ce = np.bincount(cell, np.nan_to_num(est.ravel()), minlength=nc) / np.maximum(n, 1)
        ct = d.truth.cells["edge_shift_true"].to_numpy()
        dc = (ce - ce[unit].mean() - (ct - ct[unit].mean()))[unit]
        rms_cell = float(np.sqrt(np.mean(dc**2)))
        cr = np.bincount(cell, np.nan_to_num(maps["Ti_L23_l3_l2"].ravel()),
                         minlength=nc) / np.maximum(n, 1)
        tr = d.truth.cells["l3_l2_true"].to_numpy()
        k, c = np.polyfit(tr[unit], cr[unit], 1)
        r_err = float(np.std(cr[unit] - (k * tr[unit] + c)))
        r_corr = float(np.corrcoef(cr[unit], tr[unit])[0, 1])
        # HyperSpy's estimate_shift1D (cross-correlation, interpolated) on the edge window
        s = d.core_loss.deepcopy()
        t0 = time.perf_counter()
        sh = s.estimate_shift1D(start=450.0, end=474.0, max_shift=3.0, show_progressbar=False)
        t_hs = time.perf_counter() - t0
        sh = -np.asarray(sh, float)  # hyperspy returns the shift that aligns (negative)
        dh = (sh - np.nanmean(sh)) - (true - true.mean())
        rms_hs = float(np.sqrt(np.nanmean(dh**2)))
        m2, _ = spectral_descriptors(d.low_loss, plasmon=(15, 45))
        dp = m2["plasmon"] - d.truth.maps["plasmon_peak"]
        print(f"   {dose:5.1f} | {rms_px:12.4f} {rep:8.4f} {rms_cell:8.4f} | {rms_hs:12.4f} | "
              f"{r_err:10.4f} {r_corr:5.3f} | {np.std(dp):11.4f} {np.mean(dp):+6.3f} | "
              f"{t_ours:6.2f} {t_hs:6.2f}")
    print("   shift / plasmon in eV; 'cell RMS': mean of a cell's pixels vs its true shift; "
          "L3/L2 cell: scatter about a linear fit to the true ratio (r: correlation)")


def _direction_ok(direction: str, found: set) -> bool:
    """Both structural edges point the generating way and neither is reversed."""
    fwd = {("edge_shift", "volume"), ("edge_shift", "p_mag")}
    rev = {(b, a) for a, b in fwd}
    if direction != "electronic_to_structure":
        fwd, rev = rev, fwd
    return fwd <= found and not (rev & found)


def causal(quick: bool) -> None:
    from causalspy.causal import discover
    from causalspy.data import eels_spectrum_image, match_columns
    from causalspy.multimodal import Registration, coregister, spectral_descriptor_maps

    seeds = range(3) if quick else range(10)
    cols = ["Ti_L23_shift", "area", "p_mag", "Ti_L23_l3_l2", "plasmon"]
    rename = {"Ti_L23_shift": "edge_shift", "area": "volume", "Ti_L23_l3_l2": "l3_l2"}
    names = [rename.get(c, c) for c in cols]  # the model's names (truth columns)
    print("\n3. Multimodal causal chain, 40x40 cells (HAADF -> atoms -> descriptors; EELS -> "
          "spectral maps -> co-registered cells; DirectLiNGAM on edge_shift, volume, p_mag, "
          "l3_l2, plasmon)")
    for direction in ("electronic_to_structure", "structure_to_electronic"):
        right, exact, shds, times, ns = 0, 0, [], [], []
        right0, exact0, noise = 0, 0, {c: [] for c in names}
        for seed in seeds:
            t0 = time.perf_counter()
            d = eels_spectrum_image(direction, cells=(40, 40), seed=1000 + seed)
            desc = d.haadf.find_atoms().descriptors(structure="perovskite")
            core = spectral_descriptor_maps(d.core_loss, edges=["Ti_L23"])
            low = spectral_descriptor_maps(d.low_loss, plasmon=(15, 45))
            both = coregister(desc, core, reference=d.haadf, moving=d.adf)
            reg = both.metadata["multimodal"][-1]["registration"]
            both = coregister(both, low, registration=Registration(  # same scan: reuse it
                np.asarray(reg["matrix"]), moving_shape=tuple(reg["moving_shape"]),
                moving_calibration=reg["moving_calibration"]))
            t = both.to_dataframe(flagged=False)
            units = d.truth.cells[d.truth.cells["unit"].to_numpy(bool)]
            m = match_columns(t[["x", "y"]].to_numpy(), units[["x", "y"]].to_numpy(), 3.0)
            table = t.iloc[m.found_index][cols].rename(columns=rename)
            keep = table.notna().all(axis=1).to_numpy()
            table = table[keep]
            g = discover(table, method="lingam")
            times.append(time.perf_counter() - t0)
            ns.append(len(table))
            found = set(g.directed_edges())
            truth = {e for e in d.truth.sample.observed_edges if "intensity_A" not in e}
            right += _direction_ok(direction, found)
            shds.append(len(found ^ truth))
            exact += found == truth
            # the same cells' TRUE values (oracle): what the sample size alone allows
            tv = units.iloc[m.true_index][names][keep]
            g0 = set(discover(tv, method="lingam").directed_edges())
            exact0 += g0 == truth
            right0 += _direction_ok(direction, g0)
            # measurement noise: fraction of each measured column's variance not explained by
            # its true value (linear fit)
            for c in names:
                a, b = table[c].to_numpy(float), tv[c].to_numpy(float)
                noise[c].append(np.var(a - np.polyval(np.polyfit(b, a, 1), b)) / np.var(a))
        print(f"   {direction:24s}: direction right in {right}/{len(seeds)} seeds, exact graph "
              f"in {exact}/{len(seeds)} (edge-set differences per seed: {shds}); "
              f"{np.mean(ns):.0f} cells per image, {np.mean(times):.1f} s per chain")
        print(f"   {'':24s}  true values of the same cells: direction right in "
              f"{right0}/{len(seeds)}, exact graph in {exact0}/{len(seeds)}; measurement noise "
              "(share of variance, median over seeds): "
              + ", ".join(f"{c} {np.median(v):.3f}" for c, v in noise.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only-causal", action="store_true", help="only section 3")
    args = ap.parse_args()
    import causalspy

    print(f"causalspy {causalspy.__version__}")
    if not args.only_causal:
        registration(args.quick)
        spectral(args.quick)
    causal(args.quick)


if __name__ == "__main__":
    main()
