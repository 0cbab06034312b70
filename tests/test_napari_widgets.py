"""napari plugin: the dock widgets on the sample data, threaded runs, saving, bad input,
screenshots (runs under a real virtual display: pytest-xvfb)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytest.importorskip("magicgui")

pytestmark = pytest.mark.gui

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def perovskite_ld():
    """The perovskite sample as a layer data tuple (made once)."""
    from causalspy_napari._sample_data import perovskite_sample

    return perovskite_sample()[0]


@pytest.fixture(scope="module")
def perovskite_atoms(perovskite_ld):
    """causalspy's Atoms of the sample (made once; widgets are run on it elsewhere)."""
    import hyperspy.api as hs

    import causalspy

    data, kw, _ = perovskite_ld
    s = hs.signals.Signal2D(data)
    for ax, sc, off in zip(s.axes_manager.signal_axes, kw["scale"][::-1],
                           kw["translate"][::-1], strict=True):
        ax.scale, ax.offset, ax.units = sc, off, "nm"
    return causalspy.find_atoms(s)


@pytest.fixture(scope="module")
def perovskite_desc(perovskite_atoms):
    return perovskite_atoms.descriptors(structure="perovskite")


def _add(viewer, ld):
    from napari.layers import Layer

    data, kw, kind = ld
    kw = dict(kw, metadata=dict(kw.get("metadata", {})))
    layer = Layer.create(data, kw, kind)
    viewer.add_layer(layer)
    return layer


@pytest.fixture
def viewer_image(make_napari_viewer, perovskite_ld):
    viewer = make_napari_viewer()
    image = _add(viewer, perovskite_ld)
    return viewer, image


@pytest.fixture
def viewer_atoms(viewer_image, perovskite_atoms):
    from causalspy_napari._convert import atoms_layer_data

    viewer, image = viewer_image
    atoms = _add(viewer, atoms_layer_data(perovskite_atoms, image, {"test": True},
                                          name=f"atoms [{image.name}]"))
    return viewer, image, atoms


@pytest.fixture
def viewer_desc(viewer_atoms, perovskite_desc):
    from causalspy_napari._convert import descriptors_layer_data

    viewer, image, atoms = viewer_atoms
    desc = _add(viewer, descriptors_layer_data(perovskite_desc, atoms, {"test": True},
                                               name=f"descriptors [{image.name}]"))
    return viewer, image, atoms, desc


@pytest.fixture
def notes():
    """New napari notifications since the test started, as (severity, message) pairs."""
    from napari.utils.notifications import notification_manager

    n0 = len(notification_manager.records)

    def new():
        return [(str(n.severity).lower(), str(n.message))
                for n in notification_manager.records[n0:]]

    return new


# ----------------------------------------------------------------------------- find atoms
def _matched_fraction(points_yx, truth, tol=0.5):
    from scipy.spatial import cKDTree

    t = truth[truth["present"].astype(bool)][["x", "y"]].to_numpy(float)
    d, _ = cKDTree(points_yx[:, ::-1]).query(t)
    d2, _ = cKDTree(t).query(points_yx[:, ::-1])
    return float(np.mean(d < tol)), float(np.mean(d2 < tol))


def test_find_atoms_widget(viewer_image):
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer, image = viewer_image
    w = FindAtomsWidget(viewer)
    assert w._image.value is image
    atoms = w.run(sync=True)
    assert len(atoms) == 512
    pts = viewer.layers[f"atoms [{image.name}]"]
    assert w.atoms_layer is pts
    # positions against the sample's truth: >= 99 % within 0.5 px, no false columns
    truth = image.metadata["causalspy_truth"]
    recall, precision = _matched_fraction(np.asarray(pts.data), truth)
    assert recall >= 0.99 and precision >= 0.99
    # the features table is the Atoms table; calibration shared with the image
    feats = pts.features
    for col in ("x", "y", "x_err", "y_err", "sigma", "intensity", "sublattice", "dopant", "edge"):
        assert col in feats
    np.testing.assert_allclose(feats[["y", "x"]].to_numpy(), pts.data)
    assert tuple(pts.scale) == pytest.approx(tuple(image.scale))
    assert tuple(pts.translate) == pytest.approx(tuple(image.translate))
    np.testing.assert_allclose(pts.size, 1.5 * feats["sigma"].to_numpy())
    # face colour by sublattice: one colour per sublattice
    sub = feats["sublattice"].to_numpy()
    for s in np.unique(sub):
        assert len(np.unique(pts.face_color[sub == s], axis=0)) == 1
    assert not np.allclose(pts.face_color[sub == 0][0], pts.face_color[sub == 1][0])
    # provenance
    meta = pts.metadata["causalspy"]
    import causalspy

    assert meta["version"] == causalspy.__version__
    assert meta["step"] == "find_atoms"
    assert meta["parameters"]["refine"] == "gaussian"
    assert meta["atoms_metadata"]["parameters"]["separation"] > 0
    assert "512 columns" in w._status.value


def test_find_atoms_threaded_with_progress(viewer_image, qtbot):
    from causalspy_napari._jobs import Progress
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer, image = viewer_image
    w = FindAtomsWidget(viewer)
    w._refine.value = "com"
    reports = []
    worker = w.run()
    assert worker is not None and w.running
    assert not w._run_btn.enabled and w._cancel_btn.enabled
    worker.yielded.connect(reports.append)
    assert getattr(worker, "pbar", None) is not None  # napari's activity dock progress bar
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert reports and all(isinstance(r, Progress) for r in reports)
    pts = viewer.layers[f"atoms [{image.name}]"]
    recall, _ = _matched_fraction(np.asarray(pts.data), image.metadata["causalspy_truth"])
    assert recall >= 0.99
    assert pts.metadata["causalspy"]["parameters"]["refine"] == "com"
    assert w._run_btn.enabled and not w._cancel_btn.enabled


def test_cancel_stops_job_and_changes_nothing(viewer_image, qtbot):
    """A job whose causalspy call reports progress: the bar shows it, Cancel stops it."""
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer, image = viewer_image
    w = FindAtomsWidget(viewer)
    steps, applied, seen = [], [], []

    def slow(progress):
        for i in range(400):
            progress(i + 1, 400)
            steps.append(i)
            import time

            time.sleep(0.01)
        return "done"

    def prepare():
        def job(ctx):
            return (yield from ctx.call("slow step", slow))

        return job, applied.append

    layers_before = list(viewer.layers)
    worker = w.run(prepare=prepare)
    worker.yielded.connect(seen.append)
    qtbot.waitUntil(lambda: any(p.done > 5 for p in seen), timeout=10_000)
    assert worker.pbar.total == 400 and worker.pbar.n > 0
    w.cancel()
    qtbot.waitUntil(lambda: not w.running, timeout=10_000)
    n = len(steps)
    qtbot.wait(200)
    assert len(steps) == n < 400  # the computation itself stopped
    assert applied == []
    assert list(viewer.layers) == layers_before
    assert "Cancelled" in w._status.value


def test_lazy_tiled_path_reports_progress(viewer_image, qtbot, monkeypatch, perovskite_atoms):
    """Large images go through Dask tiles (progress + cancel); results are the same."""
    import causalspy_napari._widget_atoms as wa

    monkeypatch.setattr(wa, "LAZY_PIXELS", 0)
    viewer, image = viewer_image
    w = wa.FindAtomsWidget(viewer)
    seen = []
    worker = w.run()
    worker.yielded.connect(seen.append)
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    pts = viewer.layers[f"atoms [{image.name}]"]
    assert pts.metadata["causalspy"]["atoms_metadata"]["parameters"]["tiled"] is True
    assert any(p.total > 0 for p in seen)
    ref = perovskite_atoms.positions[:, ::-1]
    from scipy.spatial import cKDTree

    d, _ = cKDTree(ref).query(np.asarray(pts.data))
    assert len(pts.data) == len(ref) and d.max() < 0.05


def test_estimate_separation_button(viewer_image):
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer, _ = viewer_image
    w = FindAtomsWidget(viewer)
    sep = w.estimate(sync=True)
    assert 12 < sep < 20  # A-B distance of the 24 px cell is 17 px
    assert w._separation.value == pytest.approx(round(sep, 2))
    assert len(viewer.layers) == 1


def test_save_atoms(viewer_atoms, tmp_path):
    import causalspy
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer, image, atoms_layer = viewer_atoms
    w = FindAtomsWidget(viewer)
    out = w.save(tmp_path / "atoms.csv")
    back = causalspy.Atoms.load(out)
    assert len(back) == len(atoms_layer.data)
    np.testing.assert_allclose(back.positions[:, ::-1], atoms_layer.data)
    assert back.calibration["x_scale"] == pytest.approx(image.scale[-1])


def test_vacancies_layer_on_hexagonal_sample(make_napari_viewer):
    from causalspy_napari._sample_data import hexagonal_sample
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer = make_napari_viewer()
    image = _add(viewer, hexagonal_sample()[0])
    atoms = FindAtomsWidget(viewer).run(sync=True)
    truth = image.metadata["causalspy_truth"]
    pts = viewer.layers[f"atoms [{image.name}]"]
    recall, precision = _matched_fraction(np.asarray(pts.data), truth)
    assert recall >= 0.99 and precision >= 0.99
    if len(atoms.vacancies):
        vac = viewer.layers[f"vacancies [{image.name}]"]
        assert len(vac.data) == len(atoms.vacancies)


# ----------------------------------------------------------------------------- descriptors
def test_descriptors_widget(viewer_atoms, tmp_path):
    from causalspy.descriptors import Descriptors
    from causalspy_napari._widget_descriptors import DescriptorsWidget

    viewer, image, atoms = viewer_atoms
    w = DescriptorsWidget(viewer)
    assert w._atoms.value is atoms
    assert w._maps.value == ["dy", "dx", "p_mag", "tetragonality"]
    desc, maps, names = w.run(sync=True)
    pts = viewer.layers[f"descriptors [{image.name}]"]
    feats = pts.features
    assert len(feats) == 256
    ok = ~feats["flag"].to_numpy(bool)
    for col in ("dx", "dy", "p_mag", "tetragonality", "exx"):
        assert np.isfinite(feats[col].to_numpy()[ok]).all()
    # the polarization proxy follows the truth's B-site displacement (180-degree domains)
    truth = image.metadata["causalspy_truth"]
    b = truth[truth["sublattice"] == 1]
    from scipy.spatial import cKDTree

    _, idx = cKDTree(b[["x", "y"]].to_numpy()).query(feats[["x", "y"]].to_numpy()[ok])
    true_dy = b["dy"].to_numpy()[idx]
    assert np.corrcoef(true_dy, feats["dy"].to_numpy()[ok])[0, 1] > 0.95
    # map layers: one per chosen descriptor, placed on the cells, styled per descriptor
    layers = {n: viewer.layers[f"{n} (px) [{image.name}]"] for n in ("dy", "dx", "p_mag")}
    layers["tetragonality"] = viewer.layers[f"tetragonality [{image.name}]"]
    assert layers["dy"].visible and not layers["p_mag"].visible
    assert layers["dy"].colormap.name == "coolwarm"
    lo, hi = layers["dy"].contrast_limits
    assert lo == pytest.approx(-hi) and hi > 0.5
    assert layers["p_mag"].colormap.name == "viridis"
    assert layers["p_mag"].contrast_limits[0] > 0
    dmap = layers["dy"]
    for r in feats[ok].head(20).itertuples():
        assert dmap.data[int(r.cell_j), int(r.cell_i)] == pytest.approx(r.dy)
        world_map = dmap.data_to_world((r.cell_j, r.cell_i))
        world_pt = pts.data_to_world((r.y, r.x))
        # the map pixel sits on the ideal cell site, the point on the (displaced) B column
        assert np.allclose(world_map, world_pt, atol=0.1 * 24 * image.scale[-1])
    # layers sit under the points; provenance on every layer
    assert viewer.layers.index(dmap) < viewer.layers.index(atoms)
    meta = dmap.metadata["causalspy"]
    assert meta["step"] == "descriptor_map" and meta["descriptor"] == "dy"
    assert meta["parameters"]["structure"] == "perovskite" and meta["version"]
    # save
    out = w.save(tmp_path / "desc.csv")
    back = Descriptors.load(out)
    pd.testing.assert_frame_equal(back.to_dataframe(), desc.to_dataframe())


def test_descriptors_hexagonal_structure(make_napari_viewer, notes):
    """Hexagonal descriptors when causalspy has them, else a clear notification."""
    import causalspy.descriptors as cd
    from causalspy_napari._sample_data import hexagonal_sample
    from causalspy_napari._widget_atoms import FindAtomsWidget
    from causalspy_napari._widget_descriptors import DescriptorsWidget

    viewer = make_napari_viewer()
    image = _add(viewer, hexagonal_sample()[0])
    FindAtomsWidget(viewer).run(sync=True)
    w = DescriptorsWidget(viewer)
    w._structure.value = "hexagonal"
    assert "psi3" in w._maps.choices
    before = list(viewer.layers)
    result = w.run(sync=True)
    if "hexagonal" in getattr(cd, "STRUCTURES", ()):
        assert result is not None
        pts = viewer.layers[f"descriptors [{image.name}]"]
        assert "psi3" in pts.features
    else:
        assert list(viewer.layers) == before
        errs = [m for s, m in notes() if s == "error"]
        assert errs and "hexagonal" in errs[-1]


# ----------------------------------------------------------------------------- causal graph
def test_causal_graph_widget(viewer_desc, tmp_path, notes):
    from causalspy.causal import CausalGraph
    from causalspy_napari._widget_causal import EDGE_COLUMNS, CausalGraphWidget

    viewer, image, atoms, desc_layer = viewer_desc
    w = CausalGraphWidget(viewer)
    assert w._layer.value is desc_layer
    assert "p_mag" in w._columns.choices and "x" not in w._columns.choices
    w._bootstrap.value = 10
    graph = w.run(sync=True)
    assert isinstance(graph, CausalGraph) and len(graph.edges) > 0
    # edge table: one row per edge, with confidences and effects
    tab = w._table.to_dataframe()
    assert list(tab.columns) == EDGE_COLUMNS and len(tab) == len(graph.edges)
    conf = pd.to_numeric(tab["confidence"], errors="coerce")
    assert conf.between(0, 1).all()
    assert (tab["effect (σ/σ)"] != "").any()
    # the graph is drawn in the dock; warnings are words
    ax = w._figure.axes[0]
    assert ax.get_title().startswith("lingam")
    assert len(ax.collections) + len(ax.patches) > 0
    assert w._warnings.value
    # the graph is kept with the layer for the Local causal map widget
    assert desc_layer.metadata["causalspy"]["causal_graph"]["method"] == "lingam"
    # save
    out = w.save(tmp_path / "graph.json")
    back = CausalGraph.load(out)
    pd.testing.assert_frame_equal(back.edges, graph.edges)
    # priors typed in the widget (tiers, forbidden edges) on chosen variables
    w._columns.value = ["p_mag", "dy", "a", "c", "intensity_A", "intensity_B"]
    w._bootstrap.value = 0
    w._forbid.value = "p_mag:dy, a:c"
    w._tiers.value = "intensity_A, intensity_B; a, c, p_mag, dy"
    g2 = w.run(sync=True)
    assert sorted(g2.nodes) == sorted(w._columns.value)
    assert not g2.has_edge("p_mag", "dy") and not g2.has_edge("a", "c")
    assert not g2.has_edge("a", "intensity_A")  # tier order
    assert g2.prior["forbidden"] == [["p_mag", "dy"], ["a", "c"]]
    # a malformed prior: a notification, the graph and table stay as they were
    n_rows = len(w._table.to_dataframe())
    w._forbid.value = "p_mag->dy"
    assert w.run(sync=True) is None
    assert w.graph is g2 and len(w._table.to_dataframe()) == n_rows
    errs = [m for s, m in notes() if s == "error"]
    assert errs and "cause:effect" in errs[-1]
    # unknown variable in the prior: causalspy's own message
    w._forbid.value = "nonsense:dy"
    assert w.run(sync=True) is None
    assert "nonsense" in [m for s, m in notes() if s == "error"][-1]


# ----------------------------------------------------------------------------- local map
def test_local_causal_map_widget(viewer_desc):
    from causalspy_napari._widget_local import LocalCausalMapWidget

    viewer, image, atoms, desc_layer = viewer_desc
    desc_layer.metadata["causalspy"]["causal_graph"] = {
        "edges": [{"source": "a", "target": "c", "type": "directed", "weight": 0.2},
                  {"source": "c", "target": "eyy", "type": "directed", "weight": 0.9}]}
    w = LocalCausalMapWidget(viewer)
    w._layer_changed()
    assert (w._cause.value, w._effect.value) == ("c", "eyy")  # strongest edge of the graph
    w._direction.value = True
    maps = w.run(sync=True)
    assert maps is not None
    layer = viewer.layers[f"local c->eyy [{image.name}]"]
    assert np.isfinite(layer.data).any()
    assert layer.colormap.name == "coolwarm"
    lo, hi = layer.contrast_limits
    assert lo == pytest.approx(-hi)
    meta = layer.metadata["causalspy"]
    assert meta["step"] == "local_causal_map" and meta["parameters"]["window"] == 8
    dirl = viewer.layers[f"local c->eyy:direction [{image.name}]"]
    assert set(np.unique(dirl.data[np.isfinite(dirl.data)])) <= {-1.0, 0.0, 1.0}
    # window (0, 0) is centred on cell (3.5, 3.5) of the image
    w0 = layer.data_to_world((0, 0))
    assert np.all(np.asarray(w0) > 0)


# ----------------------------------------------------------------------------- end to end
def test_pipeline_through_the_plugins_menu(make_napari_viewer):
    """Sample -> Find atoms -> Descriptors -> Causal graph -> Local map, as napari docks them."""
    viewer = make_napari_viewer()
    viewer.open_sample("causalspy", "perovskite")
    w = {}
    for name in ("Find atoms", "Descriptors", "Causal graph", "Local causal map"):
        _, w[name] = viewer.window.add_plugin_dock_widget("causalspy", name)
    atoms = w["Find atoms"].run(sync=True)
    assert len(atoms) == 512
    desc, maps, names = w["Descriptors"].run(sync=True)
    assert names == ["dy", "dx", "p_mag", "tetragonality"]
    causal = w["Causal graph"]
    assert causal._layer.value.name.startswith("descriptors")
    causal._bootstrap.value = 0
    graph = causal.run(sync=True)
    assert len(graph.edges) > 0
    local = w["Local causal map"]
    local.use_graph_edge()
    e = graph.edges[graph.edges["type"] == "directed"]
    best = e.iloc[int(np.argmax(np.abs(e["weight"].to_numpy())))]
    assert (local._cause.value, local._effect.value) == (best["source"], best["target"])
    assert local.run(sync=True) is not None
    steps = [ly.metadata.get("causalspy", {}).get("step") for ly in viewer.layers]
    for step in ("find_atoms", "descriptors", "descriptor_map", "local_causal_map"):
        assert step in steps


# ----------------------------------------------------------------------------- bad input
def _snapshot(viewer):
    return [(ly, np.array(ly.data, copy=True), dict(ly.metadata)) for ly in viewer.layers]


def _unchanged(viewer, snap):
    assert list(viewer.layers) == [s[0] for s in snap]
    for ly, data, meta in snap:
        np.testing.assert_array_equal(np.asarray(ly.data), data)
        assert set(ly.metadata) == set(meta)


def _expect_error(widget, notes, *fragments):
    assert widget.run(sync=True) is None
    errs = [m for s, m in notes() if s == "error"]
    assert errs, "no error notification"
    for f in fragments:
        assert f in errs[-1], errs[-1]


def test_bad_input_find_atoms(make_napari_viewer, notes):
    from causalspy_napari._widget_atoms import FindAtomsWidget

    viewer = make_napari_viewer()
    w = FindAtomsWidget(viewer)
    _expect_error(w, notes, "needs an image layer")  # nothing to choose
    assert len(viewer.layers) == 0
    rng = np.random.default_rng(0)
    rgb = viewer.add_image((rng.random((64, 64, 3)) * 255).astype("uint8"), name="photo",
                           rgb=True)
    w.reset_choices()
    w._image.value = rgb
    snap = _snapshot(viewer)
    _expect_error(w, notes, "RGB", "Split RGB")
    _unchanged(viewer, snap)
    stack = viewer.add_image(rng.random((3, 64, 64)), name="series")
    w.reset_choices()
    w._image.value = stack
    snap = _snapshot(viewer)
    _expect_error(w, notes, "3D stack", "Split Stack")
    _unchanged(viewer, snap)
    flat = viewer.add_image(np.ones((64, 64)), name="flat")
    w.reset_choices()
    w._image.value = flat
    snap = _snapshot(viewer)
    _expect_error(w, notes, "constant")  # causalspy's own message, as a notification
    _unchanged(viewer, snap)
    assert w.estimate(sync=True) is None  # the Estimate button too
    _unchanged(viewer, snap)


def test_bad_input_points_layers(viewer_image, notes):
    from causalspy_napari._widget_causal import CausalGraphWidget
    from causalspy_napari._widget_descriptors import DescriptorsWidget
    from causalspy_napari._widget_local import LocalCausalMapWidget

    viewer, image = viewer_image
    d = DescriptorsWidget(viewer)
    _expect_error(d, notes, "needs a points layer")
    c = CausalGraphWidget(viewer)
    _expect_error(c, notes, "needs a points layer")
    empty = viewer.add_points(np.zeros((0, 2)), name="empty")
    for w in (d, c):
        w.reset_choices()
    d._atoms.value = empty
    snap = _snapshot(viewer)
    _expect_error(d, notes, "empty")
    c._layer.value = empty
    _expect_error(c, notes, "empty")
    _unchanged(viewer, snap)
    clicks = viewer.add_points(np.array([[10.0, 10.0], [20.0, 30.0]]), name="clicks")
    d.reset_choices()
    d._atoms.value = clicks
    snap = _snapshot(viewer)
    _expect_error(d, notes, "no causalspy atoms table")
    lw = LocalCausalMapWidget(viewer)
    lw._layer.value = clicks
    _expect_error(lw, notes, "holds no causalspy descriptors")
    c.reset_choices()
    c._layer.value = clicks
    _expect_error(c, notes, "no features table")
    _unchanged(viewer, snap)


def test_bad_input_local_map_same_variable(viewer_desc, notes):
    from causalspy_napari._widget_local import LocalCausalMapWidget

    viewer, *_ = viewer_desc
    w = LocalCausalMapWidget(viewer)
    w._cause.value = w._effect.value = "p_mag"
    snap = _snapshot(viewer)
    _expect_error(w, notes, "two different descriptors")
    w._effect.value = "dy"
    w._window.value = 3  # too few cells per window for two variables
    _expect_error(w, notes, "larger window")
    _unchanged(viewer, snap)


# ----------------------------------------------------------------------------- screenshots
def _lum(img):
    return np.asarray(img[..., :3], float).mean(axis=-1)


def test_screenshot_points_on_columns(make_napari_viewer, qtbot, perovskite_ld,
                                      perovskite_atoms):
    from causalspy_napari._convert import atoms_layer_data

    viewer = make_napari_viewer(show=True)
    image = _add(viewer, perovskite_ld)
    pts = _add(viewer, atoms_layer_data(perovskite_atoms, image, {}))
    viewer.window._qt_window.resize(900, 800)
    viewer.reset_view()
    qtbot.waitUntil(viewer.window._qt_window.isVisible)
    with_pts = viewer.screenshot(canvas_only=True, flash=False)
    pts.visible = False
    without = viewer.screenshot(canvas_only=True, flash=False)
    lum = _lum(without)
    assert lum.std() > 10 and lum.max() > 100  # not blank
    mask = np.abs(_lum(with_pts) - lum) > 30  # where the points are drawn
    assert 0.02 < mask.mean() < 0.6
    # the points sit on the columns: the image under them is much brighter than elsewhere
    assert lum[mask].mean() > 2.0 * lum[~mask].mean()


def test_docs_screenshots(make_napari_viewer, qtbot, perovskite_ld, tmp_path):
    """Every widget renders in a real window; CAUSALSPY_DOCS_SCREENSHOTS=1 writes the PNGs
    to docs/images (otherwise to a temporary folder)."""
    from skimage.io import imsave

    from causalspy_napari._widget_atoms import FindAtomsWidget
    from causalspy_napari._widget_causal import CausalGraphWidget
    from causalspy_napari._widget_descriptors import DescriptorsWidget
    from causalspy_napari._widget_local import LocalCausalMapWidget

    out_dir = DOCS_IMAGES if os.environ.get("CAUSALSPY_DOCS_SCREENSHOTS") else tmp_path
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    image = _add(viewer, perovskite_ld)
    name = image.name

    def shot(widget, title, fname, before=None, zoom=1.0):
        dock = viewer.window.add_dock_widget(widget, name=title, area="right")
        qtbot.waitUntil(dock.isVisible)
        widget.run(sync=True)
        if before:
            before()
        viewer.reset_view()
        getattr(viewer, "scene", viewer).camera.zoom *= zoom
        qtbot.wait(300)
        imsave(out_dir / fname, viewer.screenshot(canvas_only=False, flash=False),
               check_contrast=False)
        viewer.window.remove_dock_widget(dock)

    out_dir.mkdir(parents=True, exist_ok=True)
    shot(FindAtomsWidget(viewer), "Find atoms", "napari_find_atoms.png", zoom=1.8)

    def hide_atoms():
        viewer.layers[f"atoms [{name}]"].visible = False

    shot(DescriptorsWidget(viewer), "Descriptors", "napari_descriptors.png", hide_atoms)
    c = CausalGraphWidget(viewer)
    c._columns.value = ["intensity_A", "intensity_B", "a", "c", "p_mag", "exx", "eyy"]
    shot(c, "Causal graph", "napari_causal_graph.png")
    lw = LocalCausalMapWidget(viewer)

    def only_local():
        for ly in viewer.layers:
            if ly.name.startswith(("dy", "dx", "p_mag", "tetragonality")):
                ly.visible = False

    shot(lw, "Local causal map", "napari_local_causal_map.png", only_local)
    for fname in ("napari_find_atoms.png", "napari_descriptors.png", "napari_causal_graph.png",
                  "napari_local_causal_map.png"):
        assert (out_dir / fname).stat().st_size > 20_000
