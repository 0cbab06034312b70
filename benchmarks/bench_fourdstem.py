"""4D-STEM numbers for the multimodal issue.

Prints, in one run:

1. the machine's read bandwidth (a compiled parallel sum over the same in-memory
   array: the fastest any one-pass reduction can read it; numpy's ``a.sum()`` for
   reference) and the one-pass kernel's throughput as a fraction of it, for CoM
   alone, CoM + virtual BF + ADF, and CoM + BF + ADF + four more user detectors,
   on a 128^2 and a 256^2 detector (timings interleaved, best of several rounds, so
   load from other processes hits all of them alike); end-to-end ``dpc()`` too;
2. throughput against pyxem on the same data and detectors (pyxem's
   ``get_direct_beam_position(method="center_of_mass")`` and
   ``get_integrated_intensity`` per detector, as its documentation shows);
3. a lazily generated dataset larger than RAM processed out of core, in a fresh
   process (its peak RSS);
4. CoM/DPC field error against the Poisson noise limit on synthetic data, with
   the analytic bound for a uniform disk.

Run: ``.venv/bin/python benchmarks/bench_fourdstem.py`` (``--quick`` for a smoke
run without the larger-than-RAM dataset; ``--big-scan 256`` is the issue's
256x256 x 256x256 size, 17 GB; the default picks the smallest scan larger than RAM).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import warnings

import numba
import numpy as np

from causalspy.data import fourd_stem
from causalspy.multimodal import Detector, annular_detector, dpc
from causalspy.multimodal._fourd_kernels import moments, prepare
from causalspy.multimodal.fourdstem import _plane_fit
from causalspy.signals import Diffraction4D


@numba.njit(parallel=True, fastmath=True)
def _read_all(a):  # pragma: no cover - compiled
    n = a.shape[0]
    out = np.zeros(n)
    for i in numba.prange(n):
        s = 0.0
        row = a[i]
        for j in range(row.size):
            s += row[j]
        out[i] = s
    return out


def best_of(f, n=3):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def interleaved(fs: dict, rounds: int) -> dict:
    """Best time of each function over ``rounds`` rounds that run all of them in turn."""
    best = dict.fromkeys(fs, np.inf)
    for _ in range(rounds):
        for name, f in fs.items():
            t = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def detector_set(det: int, c):
    bf = annular_detector("vbf", (det, det), c, 0, det / 8)
    adf = annular_detector("vadf", (det, det), c, 1.2 * det / 8, 3 * det / 8)
    rect = np.zeros((det, det), np.float32)
    rect[det // 16: det // 4, det // 2: det - det // 16] = 1.0     # an off-axis user mask
    more = [annular_detector(f"ring{k}", (det, det), c, k * det / 16, (k + 1) * det / 16)
            for k in (2, 4, 6)] + [Detector("user_rect", rect)]
    return [bf, adf], more


def bandwidth_section(scan: int, det: int, rounds: int, label: str):
    rng = np.random.default_rng(0)
    a = rng.poisson(3.0, (scan, scan, det, det)).astype(np.float32)
    gb = a.nbytes / 1e9
    flat = a.reshape(scan * scan, det * det)
    _read_all(flat[:2])
    c = ((det - 1) / 2, (det - 1) / 2)
    two, more = detector_set(det, c)
    args = {k: prepare((det, det), d, None, c)[0]
            for k, d in (("com", []), ("bf_adf", two), ("six", two + more))}
    for v in args.values():
        moments(a[:1, :1], v)
    sig = Diffraction4D(a)
    dpc(Diffraction4D(a[:4, :4]), detectors=two, center=c)
    fs = {"bw": lambda: _read_all(flat),
          "np": lambda: a.sum(dtype=np.float32),
          "com": lambda: moments(a, args["com"]),
          "bf_adf": lambda: moments(a, args["bf_adf"]),
          "six": lambda: moments(a, args["six"]),
          "dpc": lambda: dpc(sig, detectors=two, center=c)}
    t = interleaved(fs, rounds)
    pct = {k: 100 * t["bw"] / v for k, v in t.items()}
    print(f"1{label}. in-memory {scan}x{scan} scan x {det}x{det} detector, float32, {gb:.2f} GB, "
          f"{numba.get_num_threads()} threads, best of {rounds} interleaved rounds")
    print(f"   read bandwidth (compiled parallel sum):   {gb / t['bw']:6.1f} GB/s "
          f"(numpy a.sum(), 1 thread: {gb / t['np']:.1f} GB/s)")
    print(f"   CoM (+ 2nd moments):                      {gb / t['com']:6.1f} GB/s = "
          f"{pct['com']:5.1f} % of bandwidth")
    print(f"   CoM + virtual BF + ADF, one pass:         {gb / t['bf_adf']:6.1f} GB/s = "
          f"{pct['bf_adf']:5.1f} % of bandwidth")
    print(f"   CoM + BF + ADF + 3 rings + 1 user mask:   {gb / t['six']:6.1f} GB/s = "
          f"{pct['six']:5.1f} % of bandwidth")
    print(f"   dpc() end to end (+ centre sample, DPC):  {gb / t['dpc']:6.1f} GB/s = "
          f"{pct['dpc']:5.1f} % of bandwidth")
    return a, two, c


def hot_section(calls: int = 400):
    """Per-core compute rate on cache-resident patterns (min over many short calls).

    Robust to load from other processes (a short call runs uninterrupted at
    least once) and shows the headroom of the kernel over one core's share of
    memory bandwidth.
    """
    @numba.njit(fastmath=True)
    def read1(a):  # pragma: no cover - compiled
        s = 0.0
        f = a.reshape(-1)
        for i in range(f.size):
            s += f[i]
        return s

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    print("1c. one thread, patterns in cache (1 MB), min over "
          f"{calls} calls: GB/s of pattern data")
    for det, n in ((128, 16), (256, 4)):
        a = np.random.default_rng(0).poisson(3.0, (n, det, det)).astype(np.float32)
        c = ((det - 1) / 2,) * 2
        two, more = detector_set(det, c)
        fs = {"sum": lambda a=a: read1(a)}
        for k, d in (("CoM", []), ("CoM+BF+ADF", two), ("+4 more", two + more)):
            args = prepare((det, det), d, None, c)[0]
            fs[k] = (lambda args=args, a=a: moments(a, args))
        best = dict.fromkeys(fs, np.inf)
        for f in fs.values():
            f()
        for _ in range(calls):
            for k, f in fs.items():
                t = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - t)
        print(f"   {det}x{det} detector: " + ", ".join(f"{k} {a.nbytes / v / 1e9:.1f}"
                                                     for k, v in best.items()))
    numba.set_num_threads(threads)


def pyxem_section(a, dets, c, scan_sub: int):
    try:
        import hyperspy.api as hs
        import pyxem  # noqa: F401
        from hyperspy.roi import CircleROI
    except ImportError:
        print("2. pyxem not installed (pip install pyxem): comparison skipped")
        return
    warnings.filterwarnings("ignore")
    sub = np.ascontiguousarray(a[:scan_sub, :scan_sub])
    gb = sub.nbytes / 1e9
    det = sub.shape[-1]
    s = hs.signals.Signal2D(sub)
    s.set_signal_type("electron_diffraction")
    rois = [CircleROI(cx=c[0], cy=c[1], r=det / 8, r_inner=0),
            CircleROI(cx=c[0], cy=c[1], r=3 * det / 8, r_inner=1.2 * det / 8)]

    def run_pyxem():
        s.get_direct_beam_position(method="center_of_mass")
        for roi in rois:
            s.get_integrated_intensity(roi)

    def run_ours():
        dpc(Diffraction4D(sub), detectors=dets, center=c, rotation=0.0, flip=False)

    run_ours()
    t_px = best_of(run_pyxem, 2)
    t_us = best_of(run_ours, 3)
    print(f"2. vs pyxem {pyxem.__version__} on {scan_sub}x{scan_sub} x {det}x{det} ({gb:.2f} GB), "
          "CoM + BF + ADF:")
    print(f"   pyxem {gb / t_px:6.2f} GB/s, causalspy dpc() {gb / t_us:6.2f} GB/s "
          f"-> {t_px / t_us:.1f}x pyxem")


def _peak_rss_gb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not
    inherited from the parent across fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def big_section(scan: int, det: int):
    """Out of core on a lazily generated scan (run in a fresh process: its own peak RSS)."""
    import psutil

    ram = psutil.virtual_memory().total / 1e9
    s, truth = fourd_stem(scan_shape=(scan, scan), detector_shape=(det, det),
                          disk_radius=det / 8, noise=False, lazy=True, chunks=16, seed=0)
    gb = s.data.nbytes / 1e9
    rss0 = _peak_rss_gb()
    t = time.perf_counter()
    r = dpc(s, center=truth.center, rotation=truth.rotation, flip=False,
            descan=(truth.descan_x, truth.descan_y))
    dt = time.perf_counter() - t
    rss = _peak_rss_gb()
    err = np.sqrt(np.mean((r.dpc_x - truth.field_x) ** 2 + (r.dpc_y - truth.field_y) ** 2) / 2)
    print(f"3. out of core: {scan}x{scan} x {det}x{det} float32 = {gb:.1f} GB generated lazily, "
          f"RAM {ram:.1f} GB ({gb / ram:.2f}x RAM)")
    print(f"   processed in {dt:.0f} s (generation included), peak RSS of the process "
          f"{rss:.2f} GB (before processing: {rss0:.2f} GB); noise-free field error {err:.4f} px")


def accuracy_section(seeds=(0, 1, 2, 3, 4)):
    r_disk, counts = 8.0, 1e5
    bound = r_disk / (2 * np.sqrt(counts))
    print(f"4. DPC field vs truth on fourd_stem (48x48 scan, 48x48 detector, {counts:.0e} "
          f"counts/pattern, disk radius {r_disk:g} px):")
    print("   Poisson CoM noise per axis = sqrt(<x^2> / N); uniform disk <x^2> = R^2 / 4 -> "
          f"R / (2 sqrt N) = {bound:.4f} px")
    for seed in seeds:
        s, tr = fourd_stem(seed=seed, rotation_deg=10.0 + 40 * seed, flip=bool(seed % 2),
                           disk_radius=r_disk, counts=counts)
        r = dpc(s)
        tx = tr.field_x - _plane_fit(tr.field_x)
        ty = tr.field_y - _plane_fit(tr.field_y)
        err = np.sqrt(np.mean((r.dpc_x - tx) ** 2 + (r.dpc_y - ty) ** 2) / 2)
        noise = np.sqrt(np.mean(r.com_noise ** 2))
        rot = (np.rad2deg(r.rotation - tr.rotation) + 180) % 360 - 180
        print(f"   seed {seed}: rotation error {rot:+.2f} deg, flip "
              f"{'ok' if r.flip == tr.flip else 'WRONG'}, field RMS error {err:.4f} px; "
              f"per-pattern bound (2nd moments, incl. halo) {noise:.4f} px -> ratio "
              f"{err / noise:.3f} ({err / bound:.3f} x disk bound)")


def _auto_big_scan(det: int) -> int:
    """Smallest scan side (multiple of 16) whose float32 data exceed RAM by 5 %."""
    import psutil

    ram = psutil.virtual_memory().total
    side = int(np.ceil(np.sqrt(1.05 * ram / (det * det * 4)) / 16) * 16)
    return max(side, 256)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--pyxem-scan", type=int, default=64)
    p.add_argument("--big-scan", type=int, default=0, help="0: smallest scan larger than RAM")
    p.add_argument("--big-det", type=int, default=256)
    p.add_argument("--only-big", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--only-hot", action="store_true", help="only section 1c")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-big", action="store_true", help="skip the larger-than-RAM run")
    args = p.parse_args()
    if args.only_big:
        big_section(args.big_scan, args.big_det)
        return
    if args.only_hot:
        hot_section()
        return
    geoms = [(128, 128, "a"), (64, 256, "b")]
    if args.quick:
        geoms, args.pyxem_scan, args.rounds = [(64, 64, "a")], 32, 2
    for scan, det, label in geoms:
        a, dets, c = bandwidth_section(scan, det, args.rounds, label)
        if label == "a":
            pyxem_section(a, dets, c, min(args.pyxem_scan, scan))
        del a
    hot_section(40 if args.quick else 400)
    if not (args.quick or args.skip_big):
        big = args.big_scan or _auto_big_scan(args.big_det)
        sys.stdout.flush()
        subprocess.run([sys.executable, __file__, "--only-big", "--big-scan", str(big),
                        "--big-det", str(args.big_det)], check=True)
    accuracy_section()


if __name__ == "__main__":
    main()
