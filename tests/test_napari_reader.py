"""napari plugin: manifest, reader, sample data, and the Qt-free import promise."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("npe2")

pytestmark = pytest.mark.gui


# ----------------------------------------------------------------------------- manifest
def test_manifest_validates():
    import npe2

    pm = npe2.PluginManifest.from_distribution("causalspy")
    assert pm.name == "causalspy"
    ids = {c.id for c in pm.contributions.commands}
    for suffix in ("get_reader", "perovskite_sample", "hexagonal_sample", "find_atoms_widget",
                   "descriptors_widget", "causal_graph_widget", "local_causal_map_widget",
                   "wall_fit_widget"):
        assert f"causalspy.{suffix}" in ids
    assert all(i.startswith("causalspy.") for i in ids)
    assert {w.display_name for w in pm.contributions.widgets} == {
        "Find atoms", "Descriptors", "Causal graph", "Local causal map", "Wall fit"}
    patterns = pm.contributions.readers[0].filename_patterns
    for ext in ("dm3", "dm4", "emd", "tif", "tiff", "mrc", "hspy", "zspy"):
        assert f"*.{ext}" in patterns
    # every reader pattern is one the reader function accepts
    from causalspy_napari._reader import EXTENSIONS

    assert {p[1:].lower() for p in patterns} <= set(EXTENSIONS)


def test_npe2_validate_cli_with_imports():
    exe = shutil.which("npe2", path=str(Path(sys.executable).parent)) or shutil.which("npe2")
    if exe is None:
        pytest.skip("npe2 command-line tool not found")
    r = subprocess.run([exe, "validate", "causalspy", "--imports"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid" in (r.stdout + r.stderr).lower()


def test_core_and_plugin_import_without_qt():
    code = (
        "import sys\n"
        "import causalspy, causalspy.causal, causalspy.descriptors\n"
        "import causalspy_napari, causalspy_napari._reader, causalspy_napari._sample_data\n"
        "import causalspy_napari._convert, causalspy_napari._jobs\n"
        "bad = [m for m in ('PyQt6', 'PyQt5', 'PySide6', 'qtpy', 'napari', 'magicgui', 'vispy')\n"
        "       if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- reader
@pytest.fixture(scope="module")
def small_signal():
    import hyperspy.api as hs

    rng = np.random.default_rng(0)
    s = hs.signals.Signal2D(rng.random((40, 50)).astype("float32"))
    ax_x, ax_y = s.axes_manager.signal_axes
    ax_x.scale, ax_x.offset, ax_x.units, ax_x.name = 0.02, 1.0, "nm", "x"
    ax_y.scale, ax_y.offset, ax_y.units, ax_y.name = 0.03, -2.0, "nm", "y"
    s.metadata.General.title = "test image"
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
    return s


def test_get_reader_by_extension(tmp_path):
    from causalspy_napari._reader import napari_get_reader, read_hyperspy

    assert napari_get_reader("image.dm3") is read_hyperspy
    assert napari_get_reader("IMAGE.DM4") is read_hyperspy
    assert napari_get_reader(["a.tif", "b.tif"]) is read_hyperspy
    assert napari_get_reader("notes.txt") is None
    assert napari_get_reader(["a.tif", "b.txt"]) is None
    assert napari_get_reader([]) is None


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_read_calibrated_image(tmp_path, small_signal, ext):
    from causalspy_napari._reader import napari_get_reader

    path = tmp_path / f"img.{ext}"
    small_signal.save(path)
    layers = napari_get_reader(str(path))(str(path))
    assert len(layers) == 1
    data, kw, kind = layers[0]
    assert kind == "image" and data.shape == (40, 50)
    np.testing.assert_array_equal(data, small_signal.data)
    assert kw["scale"] == pytest.approx([0.03, 0.02])
    assert kw["translate"] == pytest.approx([-2.0, 1.0])
    assert kw["units"] == ["nm", "nm"]
    assert kw["axis_labels"] == ["y", "x"]
    assert kw["name"] == "img"
    md = kw["metadata"]
    assert md["hyperspy_metadata"]["Acquisition_instrument"]["TEM"]["beam_energy"] == 300.0
    assert md["source_file"] == str(path)
    # the tuple makes a valid napari layer with the calibration
    from napari.layers import Layer

    layer = Layer.create(data, kw, kind)
    assert tuple(layer.scale) == pytest.approx((0.03, 0.02))
    assert str(layer.units[0]) == "nanometer"


def test_read_stack_and_series(tmp_path, small_signal):
    import hyperspy.api as hs

    from causalspy_napari._reader import read_hyperspy

    stack = hs.stack([small_signal, small_signal * 2, small_signal * 3])
    stack.axes_manager.navigation_axes[0].scale = 5.0
    stack.axes_manager.navigation_axes[0].units = "s"
    p = tmp_path / "stack.hspy"
    stack.save(p)
    (data, kw, _), = read_hyperspy(str(p))
    assert data.shape == (3, 40, 50)
    assert kw["scale"] == pytest.approx([5.0, 0.03, 0.02])
    assert kw["units"][0] == "s"
    # a series of 2D files opened together ("stack" in napari) is one 3D layer
    paths = []
    for k in range(3):
        paths.append(str(tmp_path / f"frame{k}.hspy"))
        (small_signal * (k + 1)).save(paths[-1])
    (data, kw, _), = read_hyperspy(paths)
    assert data.shape == (3, 40, 50)
    np.testing.assert_allclose(data[2], 3 * small_signal.data)
    assert kw["scale"][-2:] == pytest.approx([0.03, 0.02])


def _write_ncem_emd(path, shapes):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f.attrs["version_major"] = 0
        f.attrs["version_minor"] = 2
        grp = f.create_group("data")
        for k, shape in enumerate(shapes):
            g = grp.create_group(f"signal{k}")
            g.attrs["emd_group_type"] = 1
            g.create_dataset("data", data=np.full(shape, k + 1.0, dtype="float32"))
            for d, n in enumerate(shape):
                ds = g.create_dataset(f"dim{d + 1}", data=np.arange(n) * 0.1)
                ds.attrs["name"] = "yx"[d]
                ds.attrs["units"] = "[n_m]"


def test_multi_signal_file_gives_one_layer_per_signal(tmp_path):
    from causalspy_napari._reader import read_hyperspy

    p = tmp_path / "two.emd"
    _write_ncem_emd(p, [(32, 40), (20, 24)])
    import hyperspy.api as hs

    layers = read_hyperspy(str(p))
    assert len(layers) == 2
    # the same arrays HyperSpy gives, one layer each
    assert [ld[0].shape for ld in layers] == [s.data.shape for s in hs.load(str(p))]
    assert sorted(ld[0].size for ld in layers) == [20 * 24, 32 * 40]
    assert len({ld[1]["name"] for ld in layers}) == 2
    for _, kw, kind in layers:
        assert kind == "image"
        assert kw["scale"] == pytest.approx([0.1, 0.1])


def test_rgb_tiff_opens_as_rgb(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from causalspy_napari._reader import read_hyperspy

    rgb = (np.random.default_rng(1).random((30, 20, 3)) * 255).astype("uint8")
    p = tmp_path / "rgb.tif"
    tifffile.imwrite(p, rgb, photometric="rgb")
    (data, kw, _), = read_hyperspy(str(p))
    assert kw.get("rgb") is True
    assert data.shape == (30, 20, 3)


def test_unreadable_file_notifies_and_returns_nothing(tmp_path, monkeypatch):
    import causalspy_napari._reader as reader

    messages = []
    monkeypatch.setattr(reader, "_notify", messages.append)
    p = tmp_path / "broken.dm3"
    p.write_bytes(b"this is not a DigitalMicrograph file" * 10)
    assert reader.read_hyperspy(str(p)) == []
    assert len(messages) == 1 and "could not read broken.dm3" in messages[0]


def test_unreadable_file_in_viewer_is_a_notification(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    p = tmp_path / "broken.dm4"
    p.write_bytes(b"\x00\x01garbage" * 50)
    n0 = len(notification_manager.records)
    with pytest.raises(ValueError):  # napari: no reader returned data (a clean error)
        viewer.open(str(p), plugin="causalspy")
    assert len(viewer.layers) == 0
    new = [str(n.message) for n in notification_manager.records[n0:]]
    assert any("could not read broken.dm4" in m for m in new)


# ----------------------------------------------------------------------------- sample data
def test_sample_data_has_truth_and_calibration():
    from causalspy_napari._sample_data import hexagonal_sample, perovskite_sample

    for make, n_sub in ((perovskite_sample, 2), (hexagonal_sample, 2)):
        (data, kw, kind), = make()
        assert kind == "image" and data.ndim == 2
        truth = kw["metadata"]["causalspy_truth"]
        assert {"x", "y", "sublattice", "present"} <= set(truth.columns)
        assert truth["sublattice"].nunique() >= n_sub
        params = kw["metadata"]["causalspy_truth_params"]
        assert kw["scale"] == pytest.approx([params["pixel_size_nm"]] * 2)
        assert kw["units"] == ["nm", "nm"]
        prov = kw["metadata"]["causalspy"]
        assert prov["version"] and prov["step"].startswith("sample:")


def test_open_sample_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("causalspy", "perovskite")
    (layer,) = viewer.layers
    assert layer.data.shape == (384, 384)
    assert len(layer.metadata["causalspy_truth"]) == 512
