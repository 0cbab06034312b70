"""Scaling of ``causalspy.find_atoms`` with image size: time and peak memory.

Square lattice (spacing 18 px, sigma 3.5 px, 1e4 counts/column, jitter 0.3 px,
Poisson noise) of 512^2 to 4096^2 pixels (4096^2 holds about 51,000 columns).
Every size runs in a fresh subprocess so that its peak memory is clean. In the
subprocess the image is generated, numba is warmed up on a small image, the
baseline resident memory is read (it includes the image), the peak-RSS counter
is reset (``/proc/self/clear_refs``; polling with psutil where that is not
allowed) and ``find_atoms`` alone is timed. The table reports the peak RSS
during ``find_atoms`` above that baseline. One extra run at the largest size
uses a lazy signal (``s.as_lazy()``, rechunked to 1024 x 1024), processed by
Dask in tiles.

Run::

    .venv/bin/python benchmarks/bench_scaling.py            # 512^2 ... 4096^2 + lazy 4096^2
    .venv/bin/python benchmarks/bench_scaling.py --quick    # 512^2, 1024^2 + lazy 1024^2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time

from _common import src_state

SPACING = 18.0
SIGMA = 3.5
COUNTS = 1e4
JITTER = 0.3
MB = 1024.0**2


# ----------------------------------------------------------------------------- child
def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class PeakRSS:
    """Peak resident memory from now on: kernel high-water mark, else polling."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.method = "VmHWM after clear_refs"
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset the peak-RSS counter to the current RSS
            _status_kb("VmHWM")
        except OSError:
            self.method = "psutil polling (5 ms)"
            self._peak = self.proc.memory_info().rss
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def peak(self):
        if self.method.startswith("VmHWM"):
            return _status_kb("VmHWM") * 1024
        self._stop.set()
        self._thread.join()
        return max(self._peak, self.proc.memory_info().rss)


def child(size, lazy, seed, repeats):
    import gc
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import psutil

    from causalspy import find_atoms
    from causalspy.data import square_lattice

    proc = psutil.Process()
    s, truth = square_lattice(shape=(size, size), spacing=SPACING, sigma=SIGMA, counts=COUNTS,
                              jitter=JITTER, seed=seed)
    n_true = int(len(truth.present()))
    del truth
    image_bytes = int(s.data.nbytes)
    # warm-up: numba compilation (or cache load) and first-call imports, on a small image
    w, _ = square_lattice(shape=(180, 180), spacing=SPACING, sigma=SIGMA, counts=COUNTS,
                          jitter=JITTER, seed=seed + 1)
    find_atoms(w)
    if lazy:
        wl = w.as_lazy()
        find_atoms(wl)
        sl = s.as_lazy()
        sl.data = sl.data.rechunk((1024, 1024))
        target = sl
    else:
        target = s
    del w
    gc.collect()
    baseline = proc.memory_info().rss
    meter = PeakRSS()
    t0 = time.perf_counter()
    atoms = find_atoms(target)
    times = [time.perf_counter() - t0]
    peak = meter.peak()  # of the first call only
    df = atoms.to_dataframe()
    tiled = bool(atoms.metadata["parameters"]["tiled"])
    del atoms
    for _ in range(repeats - 1):  # more timings, against the noise of a shared machine
        t0 = time.perf_counter()
        find_atoms(target)
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    out = dict(size=size, lazy=lazy, pixels=size * size, n_true=n_true, n_found=int(len(df)),
               seconds=sec, seconds_min=float(min(times)), repeats=len(times),
               image_bytes=image_bytes, baseline=int(baseline), peak=int(peak),
               tiled=tiled, method=meter.method,
               fit_ok=int(np.sum(df["fit_ok"].to_numpy(bool))),
               load=os.getloadavg()[0])
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------- parent
def run_child(size, lazy, seed, repeats):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(size), "--seed", str(seed),
           "--repeats", str(repeats)]
    if lazy:
        cmd.append("--lazy")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    raise RuntimeError(f"child for size {size} (lazy={lazy}) failed with code {proc.returncode}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="512^2 and 1024^2 only, lazy at 1024^2")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="image sides in px (default 512 1024 2048 4096)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed find_atoms calls per size (median reported; default 3); the "
                         "peak memory is that of the first call")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--lazy", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        child(args.child, args.lazy, args.seed, max(1, args.repeats))
        return 0

    sizes = args.sizes or ([512, 1024] if args.quick else [512, 1024, 2048, 4096])
    import numba

    import causalspy

    print("causalspy find_atoms scaling benchmark")
    print(f"date {dt.datetime.now().isoformat(timespec='seconds')}; python "
          f"{platform.python_version()}; causalspy {causalspy.__version__}; numba "
          f"{numba.__version__}; {os.cpu_count()} CPUs; {platform.machine()}")
    print(f"square lattice, spacing {SPACING:g} px, sigma {SIGMA} px, {COUNTS:g} counts/column, "
          f"jitter {JITTER} px, Poisson noise, seed {args.seed}; find_atoms defaults "
          "(separation estimated, refine='gaussian'); one fresh process per row")
    commit, src_hash = src_state()
    print(f"source: git {commit}; benchmarked sources sha256 {src_hash}")
    results = []
    for size in sizes:
        results.append(run_child(size, False, args.seed, args.repeats))
        print(f"  done {size}^2 ({results[-1]['seconds']:.2f} s)", flush=True)
    results.append(run_child(max(sizes), True, args.seed, args.repeats))
    print(f"  done {max(sizes)}^2 lazy ({results[-1]['seconds']:.2f} s)", flush=True)

    headers = ["image", "mode", "pixels", "true cols", "found", "fit ok", "seconds", "fastest",
               "columns/s", "s / 1000 cols", "image MB", "baseline RSS MB", "peak RSS MB",
               "peak - baseline MB", "load"]
    rows = []
    for r in results:
        mode = "lazy, 1024^2 chunks" if r["lazy"] else ("eager, tiled" if r["tiled"] else "eager")
        rows.append([f"{r['size']}^2", mode, f"{r['pixels']:,}", r["n_true"], r["n_found"],
                     r["fit_ok"], f"{r['seconds']:.2f}", f"{r['seconds_min']:.2f}",
                     f"{r['n_found'] / r['seconds']:,.0f}",
                     f"{1000 * r['seconds'] / r['n_found']:.3f}",
                     f"{r['image_bytes'] / MB:.0f}", f"{r['baseline'] / MB:.0f}",
                     f"{r['peak'] / MB:.0f}", f"{(r['peak'] - r['baseline']) / MB:.0f}",
                     f"{r['load']:.2f}"])
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print(f"\nfind_atoms time (median of {results[0]['repeats']} calls; 'fastest' = quickest "
          "call) and peak memory of the first call (peak RSS method: "
          f"{results[0]['method']}; 'load' = 1-min load average at the end of the run)")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))

    eager = [r for r in results if not r["lazy"]]
    big = max(eager, key=lambda r: r["size"])
    lazy = results[-1]
    per = [r["seconds"] / r["n_found"] * 1000 for r in eager]
    print("\nLinearity: seconds per 1000 columns "
          + ", ".join(f"{r['size']}^2: {p:.3f}" for r, p in zip(eager, per, strict=True))
          + f" (largest/smallest {per[-1] / per[0]:.2f}; 1.0 = linear, below 1 = a fixed "
          "per-call cost being spread over more columns)")
    if len(eager) > 1:
        inc = [1000 * (b["seconds"] - a["seconds"]) / (b["n_found"] - a["n_found"])
               for a, b in zip(eager[:-1], eager[1:], strict=True)]
        print("Incremental cost, seconds per extra 1000 columns: "
              + ", ".join(f"{a['size']}^2 -> {b['size']}^2: {v:.3f}"
                          for a, b, v in zip(eager[:-1], eager[1:], inc, strict=True)))
    if src_state()[1] != src_hash:
        print("\nWARNING: the benchmarked causalspy sources changed during this run; rerun it.")
    print("Targets")
    extra_gb = (big["peak"] - big["baseline"]) / 1024**3
    print(f"  {big['size']}^2 eager: {big['seconds']:.1f} s (target: seconds), "
          f"{extra_gb:.2f} GB beyond the baseline (target < 2 GB) "
          f"{'OK' if extra_gb < 2 else 'MISSED'}")
    lazy_gb = (lazy["peak"] - lazy["baseline"]) / 1024**3
    print(f"  {lazy['size']}^2 lazy: {lazy['seconds']:.1f} s, {lazy_gb:.2f} GB beyond the "
          f"baseline (target < 2 GB) {'OK' if lazy_gb < 2 else 'MISSED'}; found "
          f"{lazy['n_found']} vs eager {big['n_found']} (truth {big['n_true']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
