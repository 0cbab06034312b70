"""napari plugin: the *Wall fit* dock widget (draw a line across a wall, get the
Bayesian fit) on a synthetic descriptor map with a known wall; threaded run with
progress, bad input. Runs under a virtual display (pytest-xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("magicgui")
pytest.importorskip("numpyro")

pytestmark = pytest.mark.gui

SCALE = 0.4  # nm per cell


@pytest.fixture(scope="module")
def wall_case():
    from causalspy.bayes import synthetic_wall_maps

    return synthetic_wall_maps(shape=(40, 60), P_s=20.0, w=0.8, angle=10.0, noise=3.0,
                               scale=SCALE, seed=0)


@pytest.fixture
def viewer_map(make_napari_viewer, wall_case):
    """A viewer with the dx map as a calibrated descriptor-map layer and a line
    drawn across the wall (12 nm long, centred on it)."""
    maps, truth = wall_case
    viewer = make_napari_viewer()
    valid = np.asarray(maps.metadata.Descriptors.valid, bool)
    meta = {"causalspy": {"step": "descriptor_map", "descriptor": "dx", "unit": "pm",
                          "valid": valid, "parameters": {}}}
    image = viewer.add_image(np.asarray(maps.inav[0].data), name="dx (pm) [test]",
                             scale=(SCALE, SCALE), units=("nm", "nm"), metadata=meta)
    c, n = np.array(truth["centre"]), np.array(truth["normal"])
    a, b = c - 6 * n, c + 6 * n  # (x, y) in nm; napari wants (row, col) = (y, x)
    shapes = viewer.add_shapes([np.array([[a[1], a[0]], [b[1], b[0]]])], shape_type="line",
                               name="wall line")
    return viewer, image, shapes, truth


def _check_fit(post, truth):
    s = post.summary()
    assert post.converged, post
    for k, v in (("P_s", truth["P_s"]), ("w", truth["w"]), ("x0", 6.0)):
        assert abs(s.loc[k, "mean"] - v) < 3 * s.loc[k, "sd"], post
    assert s.loc["w", "unit"] == "nm" and s.loc["P_s", "unit"] == "pm"


def test_wall_fit_widget_sync(viewer_map):
    from causalspy_napari._widget_wall import WallFitWidget

    viewer, image, shapes, truth = viewer_map
    w = WallFitWidget(viewer)
    w._image.value, w._shapes.value = image, shapes
    w._width.value = 2.0
    w._draws.value = 500
    post = w.run(sync=True)
    assert post is not None and w.posterior is post
    _check_fit(post, truth)
    # the profile is in calibrated distance along the 12 nm line, band-averaged
    t = w.profile.table
    assert t["distance"].max() == pytest.approx(12.0, abs=0.5)
    assert (t["n"] > 1).all() and post.yerr is not None
    text = w._params.value
    assert "w = " in text and "nm" in text and "HDI" in text
    assert "converged" in w._status.value
    assert len(w._figure.axes) == 1 and len(w._figure.axes[0].lines) >= 2
    assert len(viewer.layers) == 2  # nothing added to or changed in the viewer


def test_wall_fit_widget_threaded_with_progress(viewer_map, qtbot):
    from causalspy_napari._jobs import Progress
    from causalspy_napari._widget_wall import WallFitWidget

    viewer, image, shapes, truth = viewer_map
    w = WallFitWidget(viewer)
    w._image.value, w._shapes.value = image, shapes
    w._draws.value = 500
    reports = []
    worker = w.run()
    assert worker is not None and w.running
    worker.yielded.connect(reports.append)
    qtbot.waitUntil(lambda: not w.running, timeout=300_000)
    assert reports and all(isinstance(r, Progress) for r in reports)
    assert w.posterior is not None
    _check_fit(w.posterior, truth)


def test_wall_fit_widget_bad_input(make_napari_viewer, viewer_map):
    from napari.utils.notifications import notification_manager

    from causalspy_napari._widget_wall import WallFitWidget

    viewer, image, shapes, _ = viewer_map
    n0 = len(notification_manager.records)

    def last_error():
        errs = [str(n.message) for n in notification_manager.records[n0:]
                if str(n.severity).lower() == "error"]
        assert errs, "no error notification"
        return errs[-1]

    w = WallFitWidget(viewer)
    w._image.value = image
    empty = viewer.add_shapes(name="empty")
    w.reset_choices()
    w._shapes.value = empty
    assert w.run(sync=True) is None
    assert "Draw a line" in last_error()
    box = viewer.add_shapes([np.array([[0, 0], [0, 5], [5, 5], [5, 0]])],
                            shape_type="rectangle", name="box")
    w.reset_choices()
    w._shapes.value = box
    assert w.run(sync=True) is None
    assert "has no line" in last_error()
    off = viewer.add_shapes([np.array([[-90.0, -90.0], [-80.0, -85.0]])], shape_type="line",
                            name="outside")
    w.reset_choices()
    w._shapes.value = off
    assert w.run(sync=True) is None
    assert "fewer than 3" in last_error()
    assert w.posterior is None


def test_wall_fit_in_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("causalspy", "Wall fit")
    assert type(widget).__name__ == "WallFitWidget"
