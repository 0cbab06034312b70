"""The causalspy command: atoms, demo, and one clear line for bad input."""

import subprocess
import sys

import hyperspy.api as hs
import numpy as np
import pandas as pd
import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "causalspy.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    from causalspy.data import perovskite

    s, truth = perovskite(cells=(8, 8), seed=2)
    f = tmp_path_factory.mktemp("img") / "pto.hspy"
    s.save(f)
    return f, truth


def test_atoms_writes_table(tmp_path, image_file):
    f, truth = image_file
    out = tmp_path / "atoms.csv"
    png = tmp_path / "overlay.png"
    r = run("atoms", str(f), "--out", str(out), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(out)
    for c in ["x", "y", "x_err", "y_err", "sigma", "intensity", "sublattice"]:
        assert c in t.columns
    assert len(t) == len(truth.present())
    assert set(t["sublattice"]) == {0, 1}
    assert png.stat().st_size > 10_000
    assert "columns" in r.stdout


@pytest.mark.parametrize("opts", [["--refine", "com"], ["--refine", "none"],
                                  ["--separation", "17", "--no-invert"], ["--edge", "drop"]])
def test_atoms_options(tmp_path, image_file, opts):
    f, truth = image_file
    out = tmp_path / "a.csv"
    r = run("atoms", str(f), "--out", str(out), *opts)
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(out)
    if "drop" in opts:
        assert not t["edge"].any() and len(t) > 0.5 * len(truth.present())
    else:
        assert len(t) == len(truth.present())


def test_frame_of_a_stack(tmp_path):
    from causalspy.data import square_lattice

    s, _ = square_lattice(shape=(120, 120), seed=0)
    st = hs.stack([s, s])
    f = tmp_path / "stack.hspy"
    st.save(f)
    r = run("atoms", str(f), "--out", str(tmp_path / "a.csv"))
    assert r.returncode == 2
    assert "--frame" in r.stderr
    r = run("atoms", str(f), "--frame", "1", "--out", str(tmp_path / "a.csv"))
    assert r.returncode == 0, r.stderr


def test_demo(tmp_path):
    r = run("demo", "--out", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    d = tmp_path / "demo"
    for name in ["atoms.csv", "atoms.csv.json", "atoms_overlay.png", "summary.txt"]:
        assert (d / name).exists()
    assert "recall 1.0000" in r.stdout
    assert "structural Hamming distance" in r.stdout
    assert (d / "report.html").exists() and (d / "graph.json").exists()


@pytest.mark.parametrize("case", ["missing", "truncated", "text", "nan", "constant"])
def test_bad_input_one_line(tmp_path, image_file, case):
    f, _ = image_file
    if case == "missing":
        path = tmp_path / "nope.dm3"
    elif case == "truncated":
        path = tmp_path / "cut.hspy"
        path.write_bytes(f.read_bytes()[:3000])
    elif case == "text":
        path = tmp_path / "notes.tif"
        path.write_text("this is not an image")
    else:
        data = np.full((64, 64), 3.0)
        if case == "nan":
            data = np.random.default_rng(0).random((64, 64))
            data[5, 5] = np.nan
        path = tmp_path / f"{case}.hspy"
        hs.signals.Signal2D(data).save(path)
    r = run("atoms", str(path), "--out", str(tmp_path / "o.csv"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("causalspy: error:")
    assert "Traceback" not in r.stderr


def test_version():
    r = run("--version")
    assert r.returncode == 0 and "causalspy" in r.stdout
