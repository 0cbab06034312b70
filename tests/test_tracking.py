"""Tracking through a 2H -> 1T series: links, phase flips and descriptors over time vs truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from causalspy.data import insitu_series
from causalspy.dynamics import (
    SeriesDescriptors,
    Tracks,
    correct_drift,
    link,
    series_descriptors,
    track_series,
)
from causalspy.dynamics.track import _assign
from causalspy.exceptions import InvalidImageError, InvalidParameterError


@pytest.fixture(scope="module")
def sample():
    return insitu_series(n_frames=6, shape=(144, 144), hazard={"vacancy_density": 1.5},
                         transition_start=1, growth_speed=1.0, n_nuclei=1, h0=1.0, seed=5)


@pytest.fixture(scope="module")
def tracks(sample):
    s, _ = sample
    return track_series(s, descriptors="hexagonal")


def _truth_column(tracks, truth):
    t = tracks.table
    col = np.full(len(t), -1)
    for f in range(truth.n_frames):
        c = truth.columns_at(f)
        c = c[c["present"]]
        m = t["frame"].to_numpy() == f
        d, j = cKDTree(c[["x", "y"]].to_numpy()).query(t.loc[m, ["x", "y"]].to_numpy())
        col[m] = np.where(d < 1.5, c["column"].to_numpy()[j], -1)
    return col


def test_links_follow_true_columns(sample, tracks):
    _, truth = sample
    assert np.abs(tracks.drift - truth.drift).max() < 0.15
    t = tracks.table.assign(col=_truth_column(tracks, truth)).sort_values(["track", "frame"])
    same = t["track"].to_numpy()[1:] == t["track"].to_numpy()[:-1]
    # columns cut by the border (edge) are placed > 1.5 px off; judge the others
    inner = same & ~(t["edge"].to_numpy()[1:] | t["edge"].to_numpy()[:-1])
    a, b = t["col"].to_numpy()[:-1][inner], t["col"].to_numpy()[1:][inner]
    assert inner.sum() > 200 and ((a >= 0) & (b >= 0)).mean() > 0.99
    assert np.mean((a == b) & (a >= 0)) >= 0.99


def test_phase_flips_where_the_1t_region_grows(sample, tracks):
    _, truth = sample
    ev = tracks.events
    flips = ev[ev["event"] == "phase_flip"]
    metal = tracks.table[tracks.table["site"] == "metal"]["track"].unique()
    fm = flips[flips["track"].isin(metal)]
    assert len(fm) >= 3
    xy0 = fm[["x", "y"]].to_numpy() - truth.drift[fm["frame"].to_numpy()]
    d, j = cKDTree(truth.sites[["x", "y"]].to_numpy()).query(xy0)
    assert d.max() < 1.5
    # the labels see a metal as 1T once all six chalcogen neighbours are (octahedral_frame)
    tf = truth.sites["octahedral_frame"].to_numpy()[j]
    lag = fm["frame"].to_numpy() - tf
    assert (tf >= 0).all() and (lag == 0).mean() > 0.5 and (np.abs(lag) <= 1).mean() > 0.8
    # new 1T chalcogen columns appear inside the grown region, not elsewhere
    app = ev[ev["event"] == "appear"]
    assert len(app) >= 3
    assert (app["frame"] >= truth.first_transition_frame).all()


def test_series_descriptors_table_and_maps(sample, tracks, tmp_path):
    s, truth = sample
    sd = series_descriptors(tracks)
    t = sd.table
    assert {"frame", "time", "track", "cell_i", "cell_j", "psi3", "exx"} <= set(t.columns)
    # a metal track keeps its cell in every frame (the grid is drift-corrected)
    m = t[(t["site"] == "metal") & (t["cell_i"] >= 0)]
    per_track = m.groupby("track")[["cell_i", "cell_j"]].nunique()
    assert (per_track.max(axis=1) == 1).mean() > 0.98
    maps = sd.to_maps(["psi3", "coordination"])
    assert len(maps) == truth.n_frames
    assert len({mp.data.shape for mp in maps}) == 1
    assert maps[0].metadata.Signal.signal_type == "descriptor_maps"
    # psi3 (1 in 2H, 0 in 1T) of the nucleus cell falls once it switched
    ms = sd.map_series("psi3")
    assert ms.axes_manager.navigation_axes[0].units == "s"
    assert ms.data.shape[0] == truth.n_frames
    first, last = np.nanmean(ms.data[0]), np.nanmean(ms.data[-1])
    assert last < first - 0.05
    p = sd.save(tmp_path / "sd.csv")
    back = SeriesDescriptors.load(p)
    pd.testing.assert_frame_equal(back.table, sd.table)
    with pytest.raises(InvalidParameterError, match="No descriptor"):
        sd.map_series("nope")


def test_tracks_save_load_and_plot(tracks, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    back = Tracks.load(tracks.save(tmp_path / "t.csv"))
    pd.testing.assert_frame_equal(back.table, tracks.table)
    pd.testing.assert_frame_equal(back.events, tracks.events)
    ax = tracks.plot(frame=3)
    assert ax.get_title().startswith("<Tracks")


def test_assignment_resolves_competing_candidates():
    # two columns close together move so that nearest-neighbour greed would swap them
    a = np.array([[0.0, 0.0], [2.0, 0.0]])
    b = np.array([[1.1, 0.0], [3.05, 0.0]])
    i, j = _assign(a, b, max_disp=1.5)
    pairs = dict(zip(i.tolist(), j.tolist(), strict=True))
    assert pairs == {0: 0, 1: 1}
    t = pd.DataFrame({"frame": [0, 0, 1, 1], "x": [0.0, 2.0, 1.1, 3.05], "y": 0.0})
    out = link(t, max_disp=1.5)
    assert out["track"].nunique() == 2


def test_bad_input(sample):
    s, _ = sample
    with pytest.raises(InvalidImageError, match="field of view"):
        correct_drift(s, np.tile([500.0, 0.0], (s.data.shape[0], 1)))
    with pytest.raises(InvalidParameterError, match="descriptor columns"):
        series_descriptors(Tracks(pd.DataFrame({"frame": [0, 1], "x": [1.0, 1.0],
                                                "y": [1.0, 1.0], "track": [0, 0]}),
                                  np.zeros((2, 2))))
    with pytest.raises(InvalidImageError, match="one frame"):
        track_series(s.inav[:1])
    with pytest.raises(InvalidImageError, match="one time"):
        series_descriptors(s.inav[0])


def test_unassigned_track_is_not_a_column_event():
    # a column present throughout, and a two-frame noise peak find_atoms left unassigned
    t = pd.DataFrame({"frame": [0, 1, 2, 3, 1, 2], "x": [5.0, 5.1, 5.0, 5.1, 20.0, 20.2],
                      "y": 5.0, "sublattice": [0, 0, 0, 0, -1, -1]})
    tk = Tracks(link(t, max_disp=2.0), np.zeros((4, 2)))
    assert tk.events["event"].tolist() == ["unassigned"]
    assert tk.events["frame"].tolist() == [1]
