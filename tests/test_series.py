"""Image series: signal type, drift, per-frame atoms, tracks and events against truth."""

from __future__ import annotations

import hyperspy.api as hs
import numpy as np
import pytest
from scipy.spatial import cKDTree

from causalspy.data import drifting_series
from causalspy.dynamics import (
    Tracks,
    correct_drift,
    estimate_drift,
    find_atoms_series,
    link,
    track_series,
)
from causalspy.exceptions import InvalidImageError, InvalidParameterError
from causalspy.signals import AtomicSeries, LazyAtomicSeries


@pytest.fixture(scope="module")
def sample():
    return drifting_series(n_frames=8, cells=(8, 8), hops=2, seed=1)


@pytest.fixture(scope="module")
def tracks(sample):
    s, _ = sample
    return track_series(s)


def test_signal_type_registered(capsys, tmp_path):
    hs.print_known_signal_types()
    assert "atomic_series" in capsys.readouterr().out
    s = hs.signals.Signal2D(np.zeros((3, 32, 32)))
    s.set_signal_type("atomic_series")
    assert isinstance(s, AtomicSeries)
    s.save(tmp_path / "s.hspy")
    assert isinstance(hs.load(tmp_path / "s.hspy", lazy=True), LazyAtomicSeries)


def test_drift_subpixel_and_correction(sample):
    s, truth = sample
    before = s.data.copy()
    d = estimate_drift(s)
    assert np.abs(d - truth.drift).max() < 0.15
    lazy = s.as_lazy()
    np.testing.assert_allclose(estimate_drift(lazy), d, atol=1e-9)
    c = correct_drift(lazy, d)
    assert c._lazy
    # after correction, the last frame lines up with the first
    f0, fl = np.asarray(c.data[0]), np.asarray(c.data[-1].compute())
    raw = np.corrcoef(s.data[0][20:-20, 20:-20].ravel(), s.data[-1][20:-20, 20:-20].ravel())[0, 1]
    fixed = np.corrcoef(f0[20:-20, 20:-20].ravel(), fl[20:-20, 20:-20].ravel())[0, 1]
    assert fixed > 0.8 and fixed > raw + 0.2
    assert np.array_equal(s.data, before)


def test_links_correct_against_truth(sample, tracks):
    _, truth = sample
    t = tracks.table
    site = np.full(len(t), -1)
    for f in range(len(truth.drift)):
        c = truth.columns[(truth.columns.frame == f) & truth.columns.present]
        m = t.frame.to_numpy() == f
        d, j = cKDTree(c[["x", "y"]].to_numpy()).query(t.loc[m, ["x", "y"]].to_numpy())
        site[m] = np.where(d < 2, c.site.to_numpy()[j], -1)
    t = t.assign(site=site).sort_values(["track", "frame"])
    same = t.track.to_numpy()[1:] == t.track.to_numpy()[:-1]
    a, b = t.site.to_numpy()[:-1][same], t.site.to_numpy()[1:][same]
    assert same.sum() > 500
    assert np.mean((a == b) & (a >= 0)) >= 0.99


def test_hop_events_found(sample, tracks):
    _, truth = sample
    ev = tracks.events
    for _, hop in truth.events.iterrows():
        frm = truth.columns[(truth.columns.frame == hop.frame)]
        src = frm[frm.site == hop.site_from][["x", "y"]].to_numpy()[0]
        dst = frm[frm.site == hop.site_to][["x", "y"]].to_numpy()[0]
        app = ev[(ev.event == "appear") & (ev.frame == hop.frame)]
        assert np.min(np.hypot(app.x - dst[0], app.y - dst[1])) < 2
        dis = ev[(ev.event == "disappear") & (ev.frame == hop.frame)]
        # the disappearing column is reported where it was last seen (previous frame)
        prev = truth.columns[(truth.columns.frame == hop.frame - 1) &
                             (truth.columns.site == hop.site_from)][["x", "y"]].to_numpy()[0]
        assert np.min(np.hypot(dis.x - prev[0], dis.y - prev[1])) < 2
        assert src is not None
    real = ev[ev.event.isin(["appear", "disappear"])]
    assert len(real) == 2 * len(truth.events)      # no false events (edges are enter/exit)


def test_tracks_save_load_lossless(tracks, tmp_path):
    p = tracks.save(tmp_path / "t.csv")
    back = Tracks.load(p)
    assert back.table.equals(tracks.table)
    np.testing.assert_array_equal(back.drift, tracks.drift)
    assert back.events.equals(tracks.events)


def test_link_memory_bridges_a_missed_detection():
    import pandas as pd

    rows = [(f, 10.0 + 0.1 * f, 10.0) for f in range(5) if f != 2] + \
           [(f, 40.0, 10.0) for f in range(5)]
    t = pd.DataFrame(rows, columns=["frame", "x", "y"])
    out = link(t, max_disp=2.0, memory=1)
    assert out["track"].nunique() == 2
    assert link(t, max_disp=2.0, memory=0)["track"].nunique() == 3
    with pytest.raises(InvalidParameterError):
        link(t, max_disp=0)


def test_bad_series_input():
    one = hs.signals.Signal2D(np.random.default_rng(0).random((1, 32, 32)))
    with pytest.raises(InvalidImageError, match="one frame"):
        estimate_drift(one)
    with pytest.raises(InvalidImageError, match="one time"):
        estimate_drift(hs.signals.Signal2D(np.zeros((32, 32))))
    with pytest.raises(InvalidImageError, match="different shapes"):
        estimate_drift([np.zeros((32, 32)), np.zeros((32, 40))])
    rng = np.random.default_rng(1)
    unrelated = np.stack([rng.random((64, 64)), rng.random((64, 64))])
    with pytest.raises(InvalidImageError, match="field of view"):
        estimate_drift(unrelated)


def test_find_atoms_series_table(sample):
    s, truth = sample
    t = find_atoms_series(s.inav[:2], drift=truth.drift[:2])
    assert set(t.frame) == {0, 1}
    assert {"time", "x_corr", "y_corr", "x_err"} <= set(t.columns)
    assert t.time.max() == pytest.approx(truth.frame_time)


def test_cli_track(sample, tmp_path):
    from causalspy.cli import main

    s, _ = sample
    s.inav[:4].save(tmp_path / "series.hspy")
    assert main(["track", str(tmp_path / "series.hspy"), "--out", str(tmp_path / "t.csv"),
                 "--plot", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t_events.csv").exists() and (tmp_path / "t.png").stat().st_size > 0
    assert Tracks.load(tmp_path / "t.csv").table["frame"].nunique() == 4
    hs.signals.Signal2D(np.zeros((32, 32))).save(tmp_path / "img.hspy")
    assert main(["track", str(tmp_path / "img.hspy"), "--out", str(tmp_path / "x.csv")]) == 2
