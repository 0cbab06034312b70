"""4D-STEM numbers for the multimodal issue.

Prints, in one run:

1. the machine's read bandwidth (a compiled parallel sum over the same in-memory
   array: the fastest any one-pass reduction can read it) and causalspy's one-pass
   CoM and CoM + virtual BF + ADF throughput as a fraction of it;
2. throughput against pyxem on the same data and detectors (pyxem's
   ``get_direct_beam_position(method="center_of_mass")`` and
   ``get_integrated_intensity`` per detector, as its documentation shows);
3. a lazily generated dataset larger than RAM processed out of core (peak RSS);
4. CoM/DPC field error against the Poisson noise limit on synthetic data.

Run: ``.venv/bin/python benchmarks/bench_fourdstem.py`` (``--quick`` skips the
larger-than-RAM run; ``--big-scan 256 --big-det 256`` is the issue's size, 17 GB).
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numba
import numpy as np

from causalspy.data import fourd_stem
from causalspy.multimodal import annular_detector, dpc
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


def bandwidth_section(scan: int, det: int):
    rng = np.random.default_rng(0)
    a = rng.poisson(3.0, (scan, scan, det, det)).astype(np.float32)
    gb = a.nbytes / 1e9
    flat = a.reshape(scan * scan, det * det)
    _read_all(flat[:2])
    t_bw = best_of(lambda: _read_all(flat))
    bw = gb / t_bw
    c = ((det - 1) / 2, (det - 1) / 2)
    dets = [annular_detector("vbf", (det, det), c, 0, det / 8),
            annular_detector("vadf", (det, det), c, 1.2 * det / 8, 3 * det / 8)]
    a0, _ = prepare((det, det), [], None, c)
    a2, _ = prepare((det, det), dets, None, c)
    moments(a[:1, :1], a0)
    moments(a[:1, :1], a2)
    t_com = best_of(lambda: moments(a, a0))
    t_all = best_of(lambda: moments(a, a2))
    print(f"1. in-memory {scan}x{scan} scan x {det}x{det} detector, float32, {gb:.2f} GB, "
          f"{numba.get_num_threads()} threads")
    print(f"   read bandwidth (compiled parallel sum): {bw:6.1f} GB/s")
    print(f"   CoM (+ 2nd moments):                    {gb / t_com:6.1f} GB/s = "
          f"{100 * t_bw / t_com:5.1f} % of bandwidth")
    print(f"   CoM + virtual BF + ADF, one pass:       {gb / t_all:6.1f} GB/s = "
          f"{100 * t_bw / t_all:5.1f} % of bandwidth")
    return a, dets, c


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


def big_section(scan: int, det: int):
    import psutil

    ram = psutil.virtual_memory().total / 1e9
    s, truth = fourd_stem(scan_shape=(scan, scan), detector_shape=(det, det),
                          disk_radius=det / 8, noise=False, lazy=True, chunks=16, seed=0)
    gb = s.data.nbytes / 1e9
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t = time.perf_counter()
    r = dpc(s, center=truth.center, rotation=truth.rotation, flip=False,
            descan=(truth.descan_x, truth.descan_y))
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    err = np.sqrt(np.mean((r.dpc_x - truth.field_x) ** 2))
    print(f"3. out of core: {scan}x{scan} x {det}x{det} float32 = {gb:.1f} GB generated lazily "
          f"(RAM {ram:.1f} GB)")
    print(f"   processed in {dt:.0f} s (generation included), peak RSS {rss:.2f} GB "
          f"(before: {rss0:.2f} GB); noise-free field error {err:.4f} px")


def accuracy_section(seeds=(0, 1, 2, 3, 4)):
    print("4. DPC field vs truth on fourd_stem (48x48 scan, 48x48 detector, 1e5 counts/pattern):")
    for seed in seeds:
        s, tr = fourd_stem(seed=seed, rotation_deg=10.0 + 40 * seed, flip=bool(seed % 2))
        r = dpc(s)
        tx = tr.field_x - _plane_fit(tr.field_x)
        ty = tr.field_y - _plane_fit(tr.field_y)
        err = np.sqrt(np.mean((r.dpc_x - tx) ** 2 + (r.dpc_y - ty) ** 2) / 2)
        noise = np.sqrt(np.mean(r.com_noise ** 2))
        rot = (np.rad2deg(r.rotation - tr.rotation) + 180) % 360 - 180
        print(f"   seed {seed}: rotation error {rot:+.2f} deg, flip {'ok' if r.flip == tr.flip else 'WRONG'}, "
              f"field RMS error / Poisson CoM noise = {err / noise:.3f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scan", type=int, default=128)
    p.add_argument("--det", type=int, default=128)
    p.add_argument("--pyxem-scan", type=int, default=64)
    p.add_argument("--big-scan", type=int, default=256)
    p.add_argument("--big-det", type=int, default=256)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.scan, args.det, args.pyxem_scan = 64, 64, 32
    a, dets, c = bandwidth_section(args.scan, args.det)
    pyxem_section(a, dets, c, min(args.pyxem_scan, args.scan))
    del a
    if not args.quick:
        big_section(args.big_scan, args.big_det)
    accuracy_section()


if __name__ == "__main__":
    main()
