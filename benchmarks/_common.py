"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import hashlib
import os
import subprocess

#: The generator and scoring modules the benchmarks use (besides causalspy.atoms).
BENCH_DATA_FILES = ("_square.py", "_render.py", "_common.py", "_truth.py", "compare.py")


def src_state():
    """Git commit, and a hash of the benchmarked sources (causalspy.atoms, the square-lattice
    generator and the scoring code), to tell whether they changed during a run."""
    import causalspy

    root = os.path.dirname(os.path.abspath(causalspy.__file__))
    atoms = os.path.join(root, "atoms")
    files = [os.path.join(atoms, f) for f in sorted(os.listdir(atoms)) if f.endswith(".py")]
    files += [os.path.join(root, "data", f) for f in BENCH_DATA_FILES]
    h = hashlib.sha256()
    for path in files:
        if os.path.exists(path):
            with open(path, "rb") as fh:
                h.update(os.path.relpath(path, root).encode() + fh.read())
    try:  # the git checkout the imported causalspy comes from, if any
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        if commit:
            dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", *files],
                                   capture_output=True, text=True).stdout.strip()
            commit += " + uncommitted changes" if dirty else ""
        else:
            commit = f"(no git checkout: {root})"
    except OSError:
        commit = "?"
    return commit, h.hexdigest()[:12]
