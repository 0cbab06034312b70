"""The in-situ 2H -> 1T series generator: truth consistent with what the frames show."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from causalspy.data import HAZARD_DESCRIPTORS, insitu_series
from causalspy.exceptions import InvalidParameterError
from causalspy.signals import AtomicSeries, LazyAtomicSeries


@pytest.fixture(scope="module")
def sample():
    return insitu_series(n_frames=24, shape=(192, 192), hazard={"vacancy_density": 2.0},
                         hops=2, vacancy_fraction=0.06, seed=3)


def test_signal_axes_and_determinism(sample):
    s, truth = sample
    assert isinstance(s, AtomicSeries) and s.data.shape == (24, 192, 192)
    t = s.axes_manager.navigation_axes[0]
    assert (t.name, t.units, t.scale) == ("time", "s", 1.0)
    assert s.axes_manager.signal_axes[0].units == "nm"
    assert s.axes_manager.signal_axes[0].scale == pytest.approx(0.316 / 20)
    again = insitu_series(n_frames=24, shape=(192, 192), hazard={"vacancy_density": 2.0},
                          hops=2, vacancy_fraction=0.06, seed=3)
    np.testing.assert_array_equal(again.signal.data, s.data)
    lazy = insitu_series(n_frames=24, shape=(192, 192), hazard={"vacancy_density": 2.0},
                         hops=2, vacancy_fraction=0.06, seed=3, lazy=True)
    assert isinstance(lazy.signal, LazyAtomicSeries)
    np.testing.assert_array_equal(lazy.signal.data[[0, 23]].compute(), s.data[[0, 23]])


def test_truth_tables_consistent(sample):
    _, tr = sample
    sites = tr.sites
    assert tr.phase.shape == (24, len(sites))
    assert (sites["site"].to_numpy() == np.arange(len(sites))).all()
    assert set(HAZARD_DESCRIPTORS) <= set(sites.columns)
    nuc = tr.nuclei
    assert 1 <= len(nuc) <= 3
    assert sites["nucleated_first"].sum() == len(nuc)
    assert (nuc["frame"] >= tr.params["transition_start"]).all()
    assert tr.first_transition_frame == nuc["frame"].min()
    # nothing before the first nucleus; the phase never flips back; monotone growth
    assert not tr.is_1t()[: tr.first_transition_frame].any()
    assert (np.diff(tr.is_1t().astype(int), axis=0) >= 0).all()
    tf = sites["transition_frame"].to_numpy()
    on = tf >= 0
    assert (tr.phase[tf[on], np.flatnonzero(on)] == "1T").all()
    assert np.isinf(sites.loc[~on, "nucleation_time"]).all()
    # a nucleus is 1T at its own frame before any other site within its disc
    for _, n in nuc.iterrows():
        assert tf[int(n["site"])] == n["frame"]
    # hazard = h0 exp(beta z)
    h = tr.params["h0"] * np.exp(2.0 * sites["z_vacancy_density"])
    np.testing.assert_allclose(sites["hazard"], h, rtol=1e-12)
    # drift: linear + walk, sub-pixel steps
    assert tr.drift.shape == (24, 2) and (tr.drift[0] == 0).all()
    assert np.abs(np.diff(tr.drift, axis=0)).max() < 1.0


def test_descriptors_match_structure(sample):
    _, tr = sample
    c = tr.columns_at(0)
    a = tr.params["a_px"]
    # vacancy distance: nearest other empty lattice site (metal or 2H chalcogen), in a
    lat = c[c["kind"].isin(["metal", "chalcogen"])]
    vac = lat[~lat["present"]][["x0", "y0"]].to_numpy()
    xy = tr.sites[["x", "y"]].to_numpy()
    d, _ = cKDTree(vac).query(xy, k=2)
    self_vac = (tr.sites["defect"] == "vacancy").to_numpy()
    near = np.where(self_vac, d[:, 1], d[:, 0]) / a
    # (columns never in view are not in the table: compare where the nearest is surely seen)
    inner = (near < 1.5) & tr.sites["candidate"].to_numpy()
    assert inner.sum() > 10
    np.testing.assert_allclose(tr.sites["vacancy_distance"].to_numpy()[inner], near[inner],
                               atol=1e-9)
    # strain: the dilatation of the metal lattice, measured from neighbour distances
    s = tr.sites
    assert s["strain"].std() == pytest.approx(tr.params["strain"], rel=0.5)


def test_frames_show_the_transition(sample):
    s, tr = sample
    k = tr.n_frames - 1
    c = tr.columns_at(k)
    new = c[(c["kind"] == "chalcogen_1T") & c["present"] & c["visible"]]
    old = c[(c["kind"] == "chalcogen_1T") & ~c["present"] & c["visible"]]
    assert len(new) > 3 and len(old) > 3
    img = s.data[k]

    def value(rows):
        x = np.clip(np.rint(rows["x"]).astype(int), 0, img.shape[1] - 1)
        y = np.clip(np.rint(rows["y"]).astype(int), 0, img.shape[0] - 1)
        return img[y, x]

    # a 1T chalcogen column is bright where its cell switched and dark elsewhere
    assert np.median(value(new)) > 5 * np.median(value(old))


def test_hazard_drives_nucleation_and_none_is_uniform():
    hot, flat = [], []
    for seed in range(6):
        tr = insitu_series(n_frames=20, shape=(256, 256), hazard={"vacancy_density": 3.0},
                           n_nuclei=3, seed=seed, noise=False, lazy=True).truth
        hot.append(tr.sites.loc[tr.sites["nucleated_first"], "z_vacancy_density"].to_numpy())
        tr0 = insitu_series(n_frames=20, shape=(256, 256), hazard=None, n_nuclei=3,
                            seed=seed, noise=False, lazy=True).truth
        flat.append(tr0.sites.loc[tr0.sites["nucleated_first"], "z_vacancy_density"].to_numpy())
        assert tr0.sites["hazard"].nunique() == 1
    assert np.mean(np.concatenate(hot)) > 1.5        # nuclei sit on vacancy-rich sites
    assert abs(np.mean(np.concatenate(flat))) < 0.8  # no preference without a hazard


def test_hops_recorded(sample):
    _, tr = sample
    assert len(tr.hops) == 2
    for _, h in tr.hops.iterrows():
        before = tr.columns_at(h["frame"] - 1).set_index("column")
        after = tr.columns_at(h["frame"]).set_index("column")
        assert before.loc[h["column_from"], "present"] and not after.loc[h["column_from"],
                                                                         "present"]
        assert not before.loc[h["column_to"], "present"] and after.loc[h["column_to"],
                                                                        "present"]


def test_bad_parameters():
    with pytest.raises(InvalidParameterError, match="Unknown hazard descriptor"):
        insitu_series(hazard={"temperature": 1.0})
    with pytest.raises(InvalidParameterError, match="n_frames"):
        insitu_series(n_frames=1)
    with pytest.raises(InvalidParameterError, match="lattice parameters"):
        insitu_series(shape=(40, 40))
    with pytest.raises(InvalidParameterError, match="finite"):
        insitu_series(hazard={"strain": float("nan")})
