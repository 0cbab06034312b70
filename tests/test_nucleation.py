"""Nucleation-site prediction: descriptors, labels, models and validation against truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from causalspy.data import hexagonal
from causalspy.dynamics import _hazard as hz
from causalspy.dynamics.nucleation import (
    DESCRIPTORS,
    NoTransitionError,
    predict_nucleation,
    site_descriptors,
    transition_labels,
)
from causalspy.exceptions import CausalspyError, InvalidParameterError

A_PX = 20.0


# --------------------------------------------------------------------------- descriptors
@pytest.fixture(scope="module")
def static():
    s, truth = hexagonal(cells=(14, 14), a_px=A_PX, sigma_px=2.5, vacancy_fraction=0.03,
                         dopant_fraction=0.03, seed=2)
    return s, truth, site_descriptors(s)


def test_site_descriptors_match_truth(static):
    s, truth, sd = static
    c = truth.columns
    metal = c[c["site"] == "metal"][["x", "y"]].to_numpy()
    d, _ = cKDTree(metal).query(sd[["x", "y"]].to_numpy())
    assert d.max() < 1.0          # one row per metal site, on it
    assert len(sd) == len(metal)
    use = ~sd["flag"].to_numpy()
    assert use.sum() > 0.5 * len(sd)
    assert np.isfinite(sd.loc[use, list(DESCRIPTORS)].to_numpy()).all()
    # distance to the nearest vacancy (either sublattice), from what is seen, vs truth
    vac = c[c["defect"] == "vacancy"][["x", "y"]].to_numpy()
    dt, _ = cKDTree(vac).query(sd[["x", "y"]].to_numpy())
    true = np.minimum(dt / A_PX, 6.0)
    # sites whose nearest true vacancy is itself measurable (not in the border band)
    inner = use & (dt < 3 * A_PX)
    err = np.abs(true[inner] - sd["vacancy_distance"].to_numpy()[inner])
    assert np.median(err) < 0.05 and (err < 0.1).mean() > 0.9
    # a metal site next to a vacancy sees it in its density
    close = inner & (dt > 0.5 * A_PX) & (dt < 1.2 * A_PX)
    assert (sd["vacancy_density"].to_numpy()[close] > 0).all()
    # metal vacancies: intensity 0; every other interior column near 1
    mv = sd["defect"].to_numpy() == "vacancy"
    assert (sd.loc[mv & use, "intensity"] == 0).all()
    normal = use & (sd["defect"].to_numpy() == "none")
    assert np.median(np.abs(sd.loc[normal, "intensity"] - 1)) < 0.05


def test_site_descriptors_input_unchanged_and_from_descriptors(static):
    s, _, sd = static
    from causalspy.descriptors import hexagonal_descriptors

    before = s.data.copy()
    desc = hexagonal_descriptors(s.find_atoms())
    t0 = desc.to_dataframe()
    sd2 = site_descriptors(desc)
    np.testing.assert_array_equal(s.data, before)
    pd.testing.assert_frame_equal(desc.to_dataframe(), t0)
    assert len(sd2) == len(sd)
    with pytest.raises(InvalidParameterError, match="radius"):
        site_descriptors(desc, radius=0)
    with pytest.raises(InvalidParameterError, match="hexagonal Descriptors"):
        site_descriptors("image.png")


# --------------------------------------------------------------------------- labels
def _line_sites(n=30):
    return np.column_stack([np.arange(n) * A_PX, np.zeros(n)])


def test_transition_labels_nuclei_growth_and_censoring():
    xy = _line_sites(30)
    nw, ns = 6, 30
    P = np.zeros((nw, ns))
    # nucleus A at site 5 in window 1, growing one site per window each way
    for w in range(1, nw):
        P[w, max(0, 5 - (w - 1)):5 + w] = 1
    # nucleus B at sites 20-21 in window 3, growing
    for w in range(3, nw):
        P[w, 20 - (w - 3):22 + (w - 3)] = 1
    # a one-window misreading at site 28 (1T in window 2, 2H in window 3) is no nucleus
    P[2, 28] = 1
    P[4, 10] = np.nan    # an unseen site-window does not break a flip
    lab = transition_labels(P, xy, A_PX)
    assert lab.loc[5, "label"] == 1 and lab.loc[5, "event_window"] == 1
    assert set(np.flatnonzero(lab["label"])) == {5, 20, 21}
    assert lab.loc[20, "nucleus"] == lab.loc[21, "nucleus"] != lab.loc[5, "nucleus"]
    # a site reached by growth is censored the window before, not counted as negative
    assert lab.loc[7, "flip_window"] == 3 and lab.loc[7, "last_window"] == 2
    assert lab.loc[7, "label"] == 0
    assert lab.loc[28, "flip_window"] == -1 and lab.loc[28, "last_window"] == nw - 1
    assert lab.loc[0, "last_window"] == nw - 1 or lab.loc[0, "flip_window"] >= 0


# --------------------------------------------------------------------------- models
def _synthetic_sites(beta, n=900, nw=8, seed=0):
    """Sites on a grid with descriptors and nucleation events drawn from a known hazard."""
    rng = np.random.default_rng(seed)
    side = int(np.sqrt(n))
    yy, xx = np.mgrid[0:side, 0:side]
    xy = np.column_stack([xx.ravel(), yy.ravel()]).astype(float) * A_PX
    X = rng.normal(size=(len(xy), len(beta)))
    eta = -5.0 + X @ np.asarray(beta)
    h = 1 / (1 + np.exp(-eta))
    ev = rng.random((len(xy), nw)) < h[:, None]
    first = np.where(ev.any(1), ev.argmax(1), -1)
    y = (first >= 0).astype(int)
    last = np.where(y == 1, first, nw - 1)
    return X, y, first, last, nw, xy


@pytest.mark.parametrize("kind", ["hazard", "logistic"])
def test_models_recover_drivers_and_chance(kind):
    feats = ["a", "b", "c"]
    X, y, ev, last, nw, xy = _synthetic_sites([1.0, -0.7, 0.0])
    m = hz.fit_model(kind, X, y, ev, last, nw, feats, C=1.0)
    assert m.coef[0] > 0.5 and m.coef[1] < -0.3 and abs(m.coef[2]) < 0.3
    blocks = hz.spatial_blocks(xy, (3, 3))
    p = hz.cross_validate(kind, X, y, ev, last, nw, feats, xy, blocks, 2 * A_PX, 1.0)
    assert hz.auc(y, p) > 0.7
    # no relation: the out-of-block AUC stays near 0.5 (not biased by the folds)
    X0, y0, ev0, last0, _, _ = _synthetic_sites([0.0, 0.0, 0.0], seed=3)
    rng = np.random.default_rng(0)
    aucs = [hz.auc(y0, hz.cross_validate(kind, X0[rng.permutation(len(y0))], y0, ev0, last0,
                                         nw, feats, xy, blocks, 2 * A_PX, 1.0))
            for _ in range(8)]
    assert abs(np.mean(aucs) - 0.5) < 0.06


def test_auc_and_top_k():
    y = np.array([0, 0, 1, 1])
    assert hz.auc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert hz.auc(y, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert hz.auc(y, np.ones(4)) == 0.5
    assert np.isnan(hz.auc(np.zeros(4), np.arange(4)))
    xy = _line_sites(10)
    hit, chance = hz.top_k(np.arange(10.0), xy, xy[[9]], 1, 1.0)
    assert hit == 1.0 and chance == pytest.approx(0.1)


# --------------------------------------------------------------------------- bad input
def test_bad_input_no_transition_and_frames():
    from causalspy.data import drifting_series

    s, _ = drifting_series(n_frames=4, cells=(10, 10), hops=0, seed=0)
    data0 = s.data.copy()
    with pytest.raises(NoTransitionError, match="No phase transition"):
        predict_nucleation(s, before=2)
    np.testing.assert_array_equal(s.data, data0)
    for bad in (0, 4, 7, -1, 1.5, "2"):
        with pytest.raises(InvalidParameterError, match="before"):
            predict_nucleation(s, before=bad)
    with pytest.raises(InvalidParameterError, match="model"):
        predict_nucleation(s, before=2, model="forest")
    with pytest.raises(CausalspyError):
        predict_nucleation(s.data[0], before=1)
