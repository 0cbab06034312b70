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
    P[4, 7] = np.nan     # an unseen site-window does not break a flip
    # a site next to nucleus A whose phase can never be read (a vacancy, say)
    xy = np.vstack([xy, [5 * A_PX, 0.9 * A_PX]])
    P = np.column_stack([P, np.full(nw, np.nan)])
    lab = transition_labels(P, xy, A_PX)
    assert lab.loc[5, "label"] == 1 and lab.loc[5, "event_window"] == 1
    # the nucleus is a place: the sites within core_radius of a new region's centroid,
    # whether read as 1T then (5), later (4, 6) or never (30)
    assert set(np.flatnonzero(lab["label"] == 1)) == {4, 5, 6, 20, 21, 30}
    assert lab.loc[30, "flip_window"] == -1 and lab.loc[6, "event_window"] == 1
    assert lab.loc[20, "nucleus"] == lab.loc[21, "nucleus"] != lab.loc[5, "nucleus"]
    # a site reached by growth is censored the window before, not counted as negative
    assert lab.loc[7, "flip_window"] == 3 and lab.loc[7, "last_window"] == 2
    assert lab.loc[7, "label"] == -1
    # a misread window is no flip: the site stays a control, at risk to the end
    assert lab.loc[28, "flip_window"] == -1 and lab.loc[28, "last_window"] == nw - 1
    assert lab.loc[28, "label"] == 0


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


def test_drivers_claim_only_real_effects():
    """Ten descriptors: with none driving the hazard no effect is claimed (simultaneous
    intervals); the real drivers come out with their signs."""
    from causalspy.dynamics.nucleation import _drivers

    feats = [f"d{k}" for k in range(10)]
    for beta, want in (([0.0] * 10, {}), ([1.0, -0.8] + [0.0] * 8, {"d0": "raises",
                                                                      "d1": "lowers"})):
        X, y, ev, last, nw, xy = _synthetic_sites(beta, seed=5)
        tr = {"X": X, "y": y, "event": ev, "last": last, "nw": nw, "xy": xy}
        m = hz.fit_model("hazard", X, y, ev, last, nw, feats, C=1.0)
        df, _ = _drivers("hazard", m, tr, feats, 1.0, A_PX, 200, 1.0,
                         np.random.default_rng(0), False, 0, 0)
        claims = {r.descriptor: r.effect for r in df.itertuples() if r.effect != "no evidence"}
        assert claims == want


def test_incident_auc_unbiased_under_informative_censoring():
    """Growth removes sites from the risk sets depending on the score (as it does near the
    edge of the view, or around nuclei when the hazard varies smoothly): the incident AUC of
    a score unrelated to the hazard stays at 0.5, the nucleation-vs-survivors AUC does not;
    a score that does drive the hazard is seen by both."""
    rng = np.random.default_rng(0)
    inc, cum, inc_drv = [], [], []
    for _ in range(150):
        n = 200
        s = rng.normal(size=n)
        lab = np.zeros(n, int)
        ev = np.full(n, -1)
        last = np.full(n, 9)
        cens = rng.random(n) < 1 / (1 + np.exp(-2 * s))
        last[cens] = rng.integers(0, 9, cens.sum())
        lab[cens] = -1
        lab_d, ev_d, last_d = lab.copy(), ev.copy(), last.copy()
        for w in range(10):   # one nucleus per window among the sites at risk
            risk = np.flatnonzero((last >= w) & (lab != 1))
            i = rng.choice(risk)
            lab[i], ev[i], last[i] = 1, w, w
            risk = np.flatnonzero((last_d >= w) & (lab_d != 1))
            p = np.exp(1.5 * s[risk])
            i = rng.choice(risk, p=p / p.sum())
            lab_d[i], ev_d[i], last_d[i] = 1, w, w
        inc.append(hz.auc_incident(lab, ev, last, s))
        cum.append(hz.auc(lab, s))
        inc_drv.append(hz.auc_incident(lab_d, ev_d, last_d, s))
    assert abs(np.mean(inc) - 0.5) < 0.02
    assert np.mean(cum) > 0.56
    assert np.mean(inc_drv) > 0.8
    # ties count half; weights are multiplicities
    lab = np.array([1, 0, 0, -1])
    assert hz.auc_incident(lab, np.array([0, -1, -1, -1]), np.array([0, 3, 3, 0]),
                           np.array([2.0, 1.0, 2.0, 5.0])) == pytest.approx(0.5)
    assert hz.auc_incident(lab, np.array([0, -1, -1, -1]), np.array([0, 3, 3, 0]),
                           np.array([2.0, 1.0, 2.0, 5.0]),
                           np.array([1.0, 1.0, 0.0, 1.0])) == pytest.approx(0.5)
    assert hz.auc_incident(lab, np.array([0, -1, -1, -1]), np.array([0, 3, 3, -1]),
                           np.array([2.0, 1.0, 3.0, 5.0]),
                           np.array([1.0, 3.0, 1.0, 1.0])) == pytest.approx(0.75)


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

    s, _ = drifting_series(n_frames=4, cells=(12, 12), a_px=16.0, hops=0, seed=0)
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


# --------------------------------------------------------------------------- vs generator truth
def _truth_rows(hazard, seed, horizon=10):
    """Generator descriptors and truth labels (no images) over ``horizon`` frames from the
    first nucleus: 1 nucleation site, 0 still 2H at the end, -1 reached by growth first;
    only the sites that may nucleate."""
    from causalspy.data import insitu_series

    _, tr = insitu_series(n_frames=22, shape=(288, 288), n_nuclei=15, min_separation=2.5,
                          growth_speed=0.3, hazard=hazard, lazy=True, seed=seed)
    s = tr.sites[tr.sites["candidate"]]
    t0 = tr.first_transition_frame
    tf = s["transition_frame"].to_numpy()
    flipped = (tf >= 0) & (tf < t0 + horizon)
    lab = np.where(s["nucleated_first"] & flipped, 1, np.where(flipped, -1, 0))
    last = np.where(lab == 1, tf - t0, np.where(lab == 0, horizon - 1, tf - t0 - 1))
    names = ["strain", "vacancy_density", "vacancy_distance", "dopant_density",
             "dopant_distance"]
    return (s[names].to_numpy(float), lab, np.where(lab == 1, last, -1), np.clip(last, 0, None),
            s[["x", "y"]].to_numpy(float), names, s["hazard"].to_numpy(float))


@pytest.mark.parametrize("hazard", [{"strain": 2.5, "vacancy_density": 1.0}, None])
def test_model_on_generator_truth(hazard):
    """Fitted on 6 series, validated on 4 others (incident AUC, series never share a risk
    set): the true drivers come out with the right sign and AUC >= 0.85, near the oracle
    (the generator's own hazard); with no dependence the interval covers 0.5. Shuffled
    scores sit at 0.5 in both."""
    rows = [_truth_rows(hazard, seed) for seed in range(10)]
    names = rows[0][5]
    X, y, ev, last = (np.concatenate([r[k] for r in rows[:6]]) for k in range(4))
    nw = int(last.max()) + 1
    m = hz.fit_model("hazard", X, y, ev, last, nw, names, C=1.0)
    test = rows[6:]
    Xt, yt = np.concatenate([r[0] for r in test]), np.concatenate([r[1] for r in test])
    evt = np.concatenate([np.where(r[2] >= 0, r[2] + 100 * k, -1) for k, r in enumerate(test)])
    lastt = np.concatenate([r[3] + 100 * k for k, r in enumerate(test)])
    xy = np.concatenate([r[4] + [1e6 * k, 0] for k, r in enumerate(test)])
    p = m.predict(Xt, nw)
    a = hz.auc_incident(yt, evt, lastt, p)
    rng = np.random.default_rng(0)
    boots = hz.tile_bootstrap_auc(yt, p, hz.tiles(xy, 4 * A_PX), 300, rng, evt, lastt)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    oracle = hz.auc_incident(yt, evt, lastt, np.concatenate([r[6] for r in test]))
    shuffled = [hz.auc_incident(yt, evt, lastt, p[rng.permutation(len(p))]) for _ in range(200)]
    assert abs(np.mean(shuffled) - 0.5) < 0.03
    coef = dict(zip(names, m.coef, strict=True))
    if hazard:
        assert coef["strain"] > 0.5 and coef["vacancy_density"] > 0.3
        assert a >= 0.85 and a > oracle - 0.05 and lo > 0.5
    else:
        assert max(abs(c) for c in coef.values()) < 0.5
        assert lo <= 0.5 <= hi


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def series_run():
    from causalspy.data import insitu_series

    s, tr = insitu_series(n_frames=14, shape=(256, 256), n_nuclei=15, min_separation=2.5,
                          growth_speed=0.3, hazard={"strain": 2.0, "vacancy_density": 1.5},
                          seed=2)
    data0 = s.data.copy()
    b = tr.first_transition_frame
    res = predict_nucleation(s, before=b, after=b + 6, n_boot=20, n_shuffle=5, causal_boot=5)
    return s, tr, data0, res


def test_pipeline_sees_what_the_generator_made(series_run):
    s, tr, data0, res = series_run
    np.testing.assert_array_equal(s.data, data0)      # input untouched
    t = res.sites
    use = np.isfinite(t["probability"]).to_numpy()
    assert use.sum() >= 70
    d, j = cKDTree(tr.sites[["x", "y"]].to_numpy()).query(t[["x", "y"]].to_numpy())
    assert d.max() < 1.0                                 # frame-0 coordinates, drift removed
    truth = tr.sites.iloc[j]
    # sites whose neighbourhood the view cuts are left out (biased descriptors): every
    # site used is one the generator let nucleate
    x0, x1, y0, y1 = res.metadata["box"]
    xy = t.loc[use, ["x", "y"]].to_numpy()
    edge = np.minimum.reduce([xy[:, 0] - x0, x1 - xy[:, 0], xy[:, 1] - y0, y1 - xy[:, 1]])
    assert edge.min() >= res.metadata["radius"] * res.metadata["a_px"] - 1e-6
    assert truth["candidate"].to_numpy()[use].all()
    # descriptors measured on the drift-corrected mean image vs the generator's own
    for name in ("strain", "vacancy_density"):
        r = np.corrcoef(t.loc[use, name], truth.loc[use, name])[0, 1]
        assert r > 0.8, (name, r)
    # flips: where a site is read as 1T in a window, the truth has 1T there by the end of
    # that window (at the site or a neighbour: a metal's phase is read from the chalcogen
    # columns around it, which belong to its neighbours' cells too)
    wins = res.metadata["windows"]
    flipped = np.flatnonzero(use & (t["flip_window"] >= 0).to_numpy())
    assert len(flipped) >= 3
    tf = tr.sites["transition_frame"].to_numpy()
    txy = tr.sites[["x", "y"]].to_numpy()
    ok = []
    for i in flipped:   # a handful of sites
        end = wins[int(t.loc[i, "flip_window"])][1]
        on = (tf >= 0) & (tf <= end)
        dmin = np.hypot(*(txy[on] - t.loc[i, ["x", "y"]].to_numpy(float)).T).min()
        ok.append(dmin < 1.2 * A_PX)
    assert np.mean(ok) > 0.85
    # every nucleus found sits next to a true one (the metal-site phase reads a
    # one-cell 1T region about a lattice parameter off its cell's metal)
    nuc = t[t["label"] == 1].groupby("nucleus")[["x", "y"]].mean().to_numpy()
    assert len(nuc) >= 2
    dn, _ = cKDTree(tr.nuclei[["x", "y"]].to_numpy()).query(nuc)
    assert (dn < 2.0 * A_PX).all()
    v = res.validation
    for k in ("auc", "auc_low", "auc_high", "shuffled_auc_mean", "p_value", "top_k_hit_rate",
              "top_k_chance", "n_nuclei", "predictable"):
        assert k in v
    assert v["auc_low"] <= v["auc"] <= v["auc_high"] or not np.isfinite(v["auc_low"])
    assert ("Predictable" in res.verdict) == res.predictable
    assert set(res.drivers["descriptor"]) == set(DESCRIPTORS)


def test_result_io_map_and_reuse(series_run, tmp_path):
    from causalspy.dynamics import NucleationPrediction

    s, tr, _, res = series_run
    path = res.save(tmp_path / "nuc.csv")
    back = NucleationPrediction.load(path)
    pd.testing.assert_frame_equal(back.sites, res.sites)
    pd.testing.assert_frame_equal(back.drivers, res.drivers)
    assert back.verdict == res.verdict and repr(back) == repr(res)
    np.testing.assert_array_equal(back.image, res.image)
    np.testing.assert_array_equal(back.model.coef, res.model.coef)
    m = res.to_map()
    assert m.shape == s.data.shape[1:]
    inside = np.isfinite(m)
    assert 0.3 < inside.mean() < 1.0 and np.nanmax(m) <= 1.0
    # a reused result: same descriptors, a model fitted elsewhere, nothing recomputed
    again = predict_nucleation(back, before=res.metadata["before"], train=res, n_boot=10,
                               causal=False)
    np.testing.assert_allclose(again.sites["x"], res.sites["x"])
    assert again.validation["validated"]
    import matplotlib

    matplotlib.use("Agg")
    ax = res.plot()
    assert ax.get_title().startswith("nucleation probability")


def test_cli_nucleation(series_run, tmp_path):
    """The command on a series without a transition, with a saved model: map, table and an
    unvalidated summary (one atom finding: fast); bad input exits 2 with one line."""
    import json

    from causalspy.cli import main
    from causalspy.data import drifting_series

    _, _, _, res = series_run
    model = res.save(tmp_path / "model" / "nuc.csv")
    s, _ = drifting_series(n_frames=3, cells=(14, 14), a_px=16.0, hops=0, seed=1)
    f = tmp_path / "series.hspy"
    s.save(f)
    out = tmp_path / "out"
    code = main(["nucleation", str(f), "--before", "3", "--train", str(model), "--out",
                 str(out), "--bootstrap", "10", "--shuffle", "3", "--no-causal"])
    assert code == 0
    assert (out / "probability_map.png").stat().st_size > 1000
    table = pd.read_csv(out / "nucleation_sites.csv")
    assert np.isfinite(table["probability"]).sum() > 30
    v = json.loads((out / "validation.json").read_text())
    assert v["validation"]["validated"] is False and "Not validated" in v["verdict"]
    # no transition and no model: a clear error, exit 2
    assert main(["nucleation", str(f), "--before", "2", "--out", str(out)]) == 2
    assert main(["nucleation", str(f), "--before", "0", "--out", str(out)]) == 2


def test_penalized_logistic_is_scikit_learns():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 4))
    y = (rng.random(400) < 1 / (1 + np.exp(-(1.5 * Z[:, 0] - 2)))).astype(float)
    w = rng.integers(1, 4, 400).astype(float)
    coef, icpt = hz.penalized_logistic(Z, y, w, 0.3)
    ref = LogisticRegression(C=0.3, tol=1e-10, max_iter=2000).fit(Z, y, sample_weight=w)
    np.testing.assert_allclose(coef, ref.coef_[0], atol=1e-6)
    assert icpt == pytest.approx(ref.intercept_[0], abs=1e-6)
