"""Packaging: no Qt on import, version, entry points, package data in the built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import causalspy

ROOT = Path(__file__).resolve().parents[1]


def test_version():
    assert isinstance(causalspy.__version__, str) and causalspy.__version__[0].isdigit()


def test_import_does_not_load_qt_or_napari():
    code = (
        "import sys, causalspy, causalspy.atoms, causalspy.data, causalspy.signals, causalspy.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PyQt5','PyQt6','PySide2','PySide6','qtpy','napari','vispy')]\n"
        "print(bad); assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_napari_manifest():
    npe2 = pytest.importorskip("npe2")
    pm = npe2.PluginManifest.from_distribution("causalspy")
    assert pm.name == "causalspy"
    ids = {c.id for c in pm.contributions.commands}
    assert "causalspy.perovskite_sample" in ids


def test_sample_data_layers():
    from causalspy_napari._sample_data import hexagonal_sample, perovskite_sample

    for fn in (perovskite_sample, hexagonal_sample):
        (data, kwargs, kind), = fn()
        assert kind == "image" and data.ndim == 2
        assert kwargs["scale"][0] > 0


@pytest.mark.slow
def test_wheel_contains_package_data(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheel = next(tmp_path.glob("causalspy-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "causalspy/hyperspy_extension.yaml" in names
    assert "causalspy_napari/napari.yaml" in names
    meta = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(meta[0]).decode()
    assert "[hyperspy.extensions]" in text and "causalspy = causalspy" in text
    assert "[napari.manifest]" in text
