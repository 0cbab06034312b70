"""Registration of the ``atomic_series`` signal type (like exspy's test_assign_subclass)."""

import hyperspy.api as hs
import numpy as np
import pytest

from causalspy.signals import AtomicSeries, LazyAtomicSeries


def test_set_signal_type_and_back():
    s = hs.signals.Signal2D(np.zeros((3, 16, 16)))
    s.set_signal_type("atomic_series")
    assert isinstance(s, AtomicSeries)
    assert s.metadata.Signal.signal_type == "atomic_series"
    s.set_signal_type("")
    assert type(s) is hs.signals.Signal2D


def test_lazy_twin():
    s = hs.signals.Signal2D(np.zeros((3, 16, 16))).as_lazy()
    s.set_signal_type("atomic_series")
    assert type(s) is LazyAtomicSeries
    s.compute()
    assert type(s) is AtomicSeries


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
@pytest.mark.parametrize("lazy", [False, True])
def test_load_series_files(tmp_path, ext, lazy):
    s = AtomicSeries(np.random.default_rng(0).random((4, 16, 18)).astype(np.float32))
    t = s.axes_manager.navigation_axes[0]
    t.name, t.units, t.scale = "time", "s", 0.25
    f = tmp_path / f"series.{ext}"
    s.save(f)
    back = hs.load(f, lazy=lazy)   # the saved type comes back without asking
    assert type(back) is (LazyAtomicSeries if lazy else AtomicSeries)
    assert back.axes_manager.navigation_axes[0].scale == 0.25
    assert back.axes_manager.navigation_axes[0].units == "s"
    if lazy:
        # frame by frame: one chunk per frame is enough to read one frame
        assert back.data[1].compute().shape == (16, 18)
    np.testing.assert_array_equal(np.asarray(back.data), s.data)
    plain = hs.signals.Signal2D(s.data)
    plain.save(tmp_path / f"plain.{ext}")
    got = hs.load(tmp_path / f"plain.{ext}", signal_type="atomic_series", lazy=lazy)
    assert type(got) is (LazyAtomicSeries if lazy else AtomicSeries)


def test_methods_do_not_modify(tmp_path):
    from causalspy.data import insitu_series

    s, truth = insitu_series(n_frames=3, shape=(96, 96), seed=2)
    before = s.data.copy()
    d = s.estimate_drift()
    assert np.abs(d - truth.drift).max() < 0.15
    c = s.correct_drift(d)
    assert isinstance(c, AtomicSeries) and c is not s
    np.testing.assert_array_equal(s.data, before)


def test_cli_track_with_descriptors(tmp_path):
    from causalspy.cli import main
    from causalspy.data import insitu_series
    from causalspy.dynamics import Tracks

    s, _ = insitu_series(n_frames=3, shape=(96, 96), seed=2)
    s.save(tmp_path / "series.zspy")
    assert main(["track", str(tmp_path / "series.zspy"), "--out", str(tmp_path / "t.csv"),
                 "--descriptors", "hexagonal"]) == 0
    t = Tracks.load(tmp_path / "t.csv").table
    assert {"phase", "site"} <= set(t.columns) and t["frame"].nunique() == 3
    assert set(t["phase"]) <= {"2H", "1T", "undetermined"}
