"""Tests for the structural causal models in ``causalspy.data.scm``."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis

from causalspy.data.scm import (
    SCMGroundTruth,
    SCMSample,
    doped_ferroelectric,
    hidden_confounder,
    linear_sem,
    render_perovskite,
    simpsons_paradox,
)
from causalspy.exceptions import InvalidParameterError

MODELS = {
    "linear_sem": lambda n, seed, **kw: linear_sem(n, n_vars=8, density=0.4, seed=seed, **kw),
    "doped_ferroelectric": lambda n, seed, **kw: doped_ferroelectric(n=n, seed=seed, **kw),
    "hidden_confounder": lambda n, seed, **kw: hidden_confounder(n=n, seed=seed, **kw),
    "simpsons_paradox": lambda n, seed, **kw: simpsons_paradox(n=n, seed=seed, **kw),
}


def _ols(y: np.ndarray, xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Slopes (without the intercept) and residuals of ``y ~ 1 + xs``."""
    design = np.column_stack([np.ones_like(y), *xs])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef[1:], y - design @ coef


def _values(sample: SCMSample, name: str) -> np.ndarray:
    if name in sample.data:
        return sample.data[name].to_numpy(dtype=float)
    return sample.hidden_data[name].to_numpy(dtype=float)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("model", list(MODELS))
def test_same_seed_same_sample(model):
    a = MODELS[model](500, 7)
    b = MODELS[model](500, 7)
    c = MODELS[model](500, 8)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert a.edges == b.edges and a.weights == b.weights
    assert not np.allclose(a.data.to_numpy(float), c.data.to_numpy(float))


def test_linear_sem_graph_depends_on_seed_and_generator():
    graphs = {tuple(sorted(linear_sem(50, n_vars=8, seed=s).edges)) for s in range(6)}
    assert len(graphs) > 1
    rng = np.random.default_rng(3)
    s = linear_sem(50, seed=rng)
    assert s.params["seed"] is None and len(s) == 50


# --------------------------------------------------------------------------- graph


@pytest.mark.parametrize("model", list(MODELS))
def test_adjacency_matches_edges(model):
    s = MODELS[model](200, 1)
    b = s.adjacency()
    cols = s.columns
    assert b.shape == (len(cols), len(cols))
    assert int((b != 0).sum()) == len(s.observed_edges)
    for cause, effect in s.observed_edges:
        assert b[cols.index(cause), cols.index(effect)] == s.weights[(cause, effect)]
        assert b[cols.index(effect), cols.index(cause)] == 0
    # the full graph (hidden variables included) is a DAG with every edge
    full = s.adjacency(s.nodes)
    assert int((full != 0).sum()) == len(s.edges)
    assert nx.is_directed_acyclic_graph(s.to_networkx())
    # a custom order permutes rows and columns together
    order = cols[::-1]
    np.testing.assert_array_equal(s.adjacency(order), b[::-1, ::-1])


def test_linear_sem_structure():
    s = linear_sem(100, n_vars=10, density=1.0, seed=4, signed=False)
    assert s.columns == [f"x{k}" for k in range(10)]
    assert len(s.edges) == 45  # complete DAG
    order = s.params["causal_order"]
    assert sorted(order) == s.columns
    b = s.adjacency(order)
    assert np.all(np.tril(b) == 0)  # strictly upper triangular in the causal order
    mags = np.abs(list(s.weights.values()))
    assert np.all((mags >= 0.5) & (mags <= 1.5))
    assert all(w > 0 for w in s.weights.values())
    assert linear_sem(100, n_vars=6, density=0.0, seed=4).edges == []
    signed = linear_sem(100, n_vars=12, density=1.0, seed=4)
    assert any(w < 0 for w in signed.weights.values())


def test_to_networkx():
    s = hidden_confounder(n=100)
    g = s.to_networkx()
    assert set(g.nodes) == {"thickness", "intensity_A", "exx", "volume", "p_mag"}
    assert g.nodes["thickness"]["hidden"] and not g.nodes["exx"]["hidden"]
    assert g.edges["exx", "p_mag"]["weight"] == s.weights[("exx", "p_mag")]
    assert g.graph["bidirected"] == [("intensity_A", "exx")]
    g_obs = s.to_networkx(include_hidden=False)
    assert "thickness" not in g_obs
    assert set(g_obs.edges) == set(s.observed_edges)


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("model", list(MODELS))
def test_structural_equations_hold_exactly(model):
    s = MODELS[model](300, 2)
    for v in s.nodes:
        x = s.intercepts[v] + s.noise[v].to_numpy()
        for p in s.parents(v):
            x = x + s.weights[(p, v)] * _values(s, p)
        np.testing.assert_allclose(_values(s, v), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("model", "seed"),
    [("doped_ferroelectric", 0), ("hidden_confounder", 0), ("simpsons_paradox", 0)]
    + [("linear_sem", s) for s in range(3)],
)
def test_regression_on_true_parents_recovers_weights(model, seed):
    s = MODELS[model](20_000, seed)
    n_checked = 0
    for v in s.nodes:
        parents = s.parents(v)
        if not parents:
            continue
        coef, _ = _ols(_values(s, v), [_values(s, p) for p in parents])
        true = np.array([s.weights[(p, v)] for p in parents])
        np.testing.assert_allclose(coef, true, rtol=0.05, err_msg=f"{model}: parents of {v}")
        n_checked += len(parents)
    assert n_checked == len(s.edges)


@pytest.mark.parametrize(
    ("noise", "lo", "hi"),
    [
        ("laplace", 2.0, 4.5),
        ("exponential", 3.5, 9.0),
        ("uniform", -1.3, -1.0),
        ("gaussian", -0.25, 0.25),
    ],
)
def test_noise_kurtosis(noise, lo, hi):
    s = doped_ferroelectric(n=20_000, seed=1, noise=noise)
    for v in ("intensity_A", "volume", "p_mag", "tetragonality"):
        parents = s.parents(v)
        y = s.data[v].to_numpy()
        resid = _ols(y, [s.data[p].to_numpy() for p in parents])[1] if parents else y - y.mean()
        k = kurtosis(resid)  # excess kurtosis
        assert lo < k < hi, f"{noise} residuals of {v}: excess kurtosis {k:.2f}"


def test_doped_ferroelectric_magnitudes_and_nuisance():
    s = doped_ferroelectric(n=20_000, seed=0)
    d = s.data
    assert list(d.columns) == [
        "intensity_A",
        "intensity_B",
        "volume",
        "p_mag",
        "tetragonality",
        "x_position",
    ]
    means = d.mean()
    assert means["intensity_A"] == pytest.approx(1e4, rel=0.01)
    assert means["volume"] == pytest.approx(0.16, rel=0.01)
    assert means["p_mag"] == pytest.approx(20.0, rel=0.02)
    assert means["tetragonality"] == pytest.approx(1.02, abs=1e-3)
    assert d["p_mag"].min() > 0
    assert not any("x_position" in e for e in s.edges)
    assert d.corr()["x_position"].drop("x_position").abs().max() < 0.03
    assert s.units["volume"] == "nm^2" and s.units["p_mag"] == "pm"


def test_total_effect_matches_interventional_regression():
    # intensity_A is a root, so regressing a descendant on it alone gives its total effect
    s = doped_ferroelectric(n=20_000, seed=3)
    te = s.total_effect("intensity_A", "tetragonality")
    assert te == pytest.approx(2e-6 * 2000.0 * 1e-3)
    slope = _ols(s.data["tetragonality"].to_numpy(), [s.data["intensity_A"].to_numpy()])[0][0]
    assert slope == pytest.approx(te, rel=0.05)
    assert s.total_effect("x_position", "p_mag") == 0.0
    assert s.total_effect("p_mag", "volume") == 0.0  # no effect against the arrows
    assert s.total_effect("volume", "volume") == 1.0


def test_total_effect_sums_paths_on_a_hand_made_graph():
    weights = {
        ("a", "b"): 2.0,
        ("b", "c"): 3.0,
        ("a", "c"): 5.0,
        ("c", "d"): 0.5,
        ("a", "d"): -1.0,
        ("h", "b"): 7.0,
        ("h", "d"): 11.0,
    }
    s = SCMSample(
        data=pd.DataFrame({k: np.zeros(3) for k in "abcd"}),
        edges=list(weights),
        weights=weights,
        hidden=["h"],
    )
    # a->b->c->d: 2*3*0.5 = 3; a->c->d: 5*0.5 = 2.5; a->d: -1
    assert s.total_effect("a", "d") == pytest.approx(4.5)
    assert s.total_effect("a", "c") == pytest.approx(11.0)
    assert s.total_effect("h", "d") == pytest.approx(7.0 * 3.0 * 0.5 + 11.0)
    assert s.total_effect("b", "a") == 0.0
    # brute force over all directed paths agrees for every pair
    g = s.to_networkx()
    for u, v in itertools.permutations(s.nodes, 2):
        brute = sum(
            np.prod([weights[e] for e in itertools.pairwise(path)])
            for path in nx.all_simple_paths(g, u, v)
        )
        assert s.total_effect(u, v) == pytest.approx(brute)
    with pytest.raises(InvalidParameterError, match="Unknown variable"):
        s.total_effect("a", "zz")


def test_hidden_confounder():
    s = hidden_confounder(n=20_000, seed=0)
    assert s.hidden == ["thickness"]
    assert "thickness" not in s.data.columns
    assert list(s.hidden_data.columns) == ["thickness"]
    assert s.bidirected == [("intensity_A", "exx")]
    assert ("intensity_A", "volume") in s.observed_edges and ("exx", "p_mag") in s.observed_edges
    assert ("thickness", "intensity_A") in s.edges and ("thickness", "exx") in s.edges
    assert set(s.observed_edges) == {("intensity_A", "volume"), ("exx", "p_mag")}
    # correlated, yet no causal effect either way
    assert s.data["intensity_A"].corr(s.data["exx"]) > 0.4
    assert s.total_effect("intensity_A", "exx") == 0.0
    assert s.total_effect("exx", "intensity_A") == 0.0
    assert s.adjacency().shape == (4, 4)
    # adjusting for the hidden thickness removes the spurious association
    coef, _ = _ols(
        s.data["exx"].to_numpy(),
        [s.data["intensity_A"].to_numpy(), s.hidden_data["thickness"].to_numpy()],
    )
    assert abs(coef[0]) < 5e-8
    assert (s.data["intensity_A"] > 0).all() and (s.hidden_data["thickness"] > 0).all()


def test_simpsons_paradox_signs():
    s = simpsons_paradox(seed=0)
    d = s.data
    assert d["domain"].dtype == np.int64 and set(d["domain"].unique()) == {0, 1}
    assert d["strain"].corr(d["p_mag"]) < -0.5  # pooled: negative
    for k in (0, 1):
        g = d[d["domain"] == k]
        slope = _ols(g["p_mag"].to_numpy(), [g["strain"].to_numpy()])[0][0]
        assert slope > 0 and slope == pytest.approx(500.0, rel=0.1)
    # adjusting for the domain recovers the true (positive) effect
    coef, _ = _ols(d["p_mag"].to_numpy(), [d["strain"].to_numpy(), d["domain"].to_numpy()])
    assert coef[0] == pytest.approx(s.total_effect("strain", "p_mag"), rel=0.1)
    assert s.total_effect("strain", "p_mag") == 500.0
    assert s.total_effect("domain", "p_mag") == pytest.approx(-15.0 + 0.01 * 500.0)


# --------------------------------------------------------------------------- shd


def test_shd():
    s = doped_ferroelectric(n=10)
    true = s.observed_edges
    assert s.shd(true) == 0
    assert s.shd(s.adjacency()) == 0
    assert s.shd([(b, a) if (a, b) == true[0] else (a, b) for a, b in true]) == 1  # reversed
    assert s.shd(true[1:]) == 1  # missing
    assert s.shd([*true, ("x_position", "p_mag")]) == 1  # extra
    assert s.shd([*true, ("x_position", "p_mag")], ignore=["x_position"]) == 0
    assert s.shd(true[1:], undirected=[true[0]]) == 1  # unoriented
    assert s.shd([], undirected=[]) == len(true)
    with pytest.raises(InvalidParameterError, match="shape"):
        s.shd(np.zeros((3, 3)))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: linear_sem(1), "n .* >= 2"),
        (lambda: linear_sem(2.5), "n .* integer"),
        (lambda: linear_sem(True), "n .* integer"),
        (lambda: linear_sem(100, n_vars=1), "n_vars .* >= 2"),
        (lambda: linear_sem(100, density=1.5), r"density .*\[0, 1\]"),
        (lambda: linear_sem(100, density=-0.1), r"density .*\[0, 1\]"),
        (lambda: linear_sem(100, density=float("nan")), "density"),
        (lambda: linear_sem(100, noise="cauchy"), "noise must be one of"),
        (lambda: linear_sem(100, noise=3), "noise must be one of"),
        (lambda: linear_sem(100, weight_range=(1.5, 0.5)), "weight_range"),
        (lambda: linear_sem(100, weight_range=(0.0, 1.0)), "weight_range"),
        (lambda: linear_sem(100, weight_range=5), "weight_range"),
        (lambda: linear_sem(100, seed=-1), "seed"),
        (lambda: doped_ferroelectric(n=1), "n .* >= 2"),
        (lambda: doped_ferroelectric(noise="poisson"), "noise must be one of"),
        (lambda: hidden_confounder(n=0), "n .* >= 2"),
        (lambda: simpsons_paradox(n=-5), "n .* >= 2"),
        (lambda: simpsons_paradox(noise=None), "noise must be one of"),
        (lambda: doped_ferroelectric(n=10).adjacency(["volume", "nope"]), "Unknown variable"),
        (lambda: doped_ferroelectric(n=10).adjacency(["volume", "volume"]), "repeats"),
    ],
)
def test_bad_parameters(call, match):
    with pytest.raises(InvalidParameterError, match=match):
        call()


# --------------------------------------------------------------------------- causal-learn


def test_directlingam_recovers_doped_ferroelectric():
    lingam = pytest.importorskip("causallearn.search.FCMBased.lingam")
    s = doped_ferroelectric(n=5000, seed=0)
    cols = s.columns
    m = lingam.DirectLiNGAM()
    m.fit(s.data.to_numpy())
    est = np.asarray(m.adjacency_matrix_)
    # causal-learn's convention: est[i, j] is the effect of j ON i (effect in the row)
    i_vol, i_int = cols.index("volume"), cols.index("intensity_A")
    assert est[i_vol, i_int] == pytest.approx(2e-6, rel=0.1)
    assert est[i_int, i_vol] == 0
    assert s.shd(est.T, ignore=["x_position"]) == 0
    assert s.shd(est.T) == 0  # and the nuisance got no edge
    # the weights come back in the units of the data
    np.testing.assert_allclose(est.T[est.T != 0], s.adjacency()[est.T != 0], rtol=0.1)


# --------------------------------------------------------------------------- rendering


def test_render_perovskite_truth_is_exact():
    sample = doped_ferroelectric(n=50, seed=4)
    signal, truth = render_perovskite(sample, cells=(6, 7), seed=1, noise=False)
    assert isinstance(truth, SCMGroundTruth)
    assert signal.metadata.Signal.signal_type == "atomic_resolution"
    assert [ax.units for ax in signal.axes_manager.signal_axes] == ["nm", "nm"]
    cells = truth.cells
    assert len(cells) == 42 and set(cells[["cell_i", "cell_j"]].itertuples(index=False)) == {
        (i, j) for i in range(6) for j in range(7)
    }
    units = cells[cells["unit"]]
    assert len(units) == 3 * 4 == truth.params["n_units"]
    assert (units["cell_i"] % 2 == 0).all() and (units["cell_j"] % 2 == 0).all()
    u = units.sort_values("row")
    d = sample.data.iloc[: len(u)]
    np.testing.assert_allclose(u["area_nm2"], d["volume"], rtol=1e-10)
    np.testing.assert_allclose(u["tetragonality_true"], d["tetragonality"], rtol=1e-10)
    np.testing.assert_allclose(u["p_mag_pm"], d["p_mag"], rtol=1e-10)
    np.testing.assert_allclose(u["intensity_A_true"], d["intensity_A"], rtol=1e-12)
    np.testing.assert_allclose(u["intensity_B_true"], d["intensity_B"], rtol=1e-12)
    # x_position is the true position of the cell centre (nm)
    px = signal.axes_manager.signal_axes[0].scale
    np.testing.assert_allclose(u["x_position"], (u["x"] - u["dx_pm"] * 1e-3 / px) * px)
    # the site table is consistent with the image: total counts
    sites = truth.columns
    assert len(sites) == 7 * 8 + 42
    b = sites[sites["sublattice"] == 1]
    np.testing.assert_allclose(b["x"].to_numpy(), cells["x"].to_numpy())
    expected = sites["counts"].sum() + truth.params["background"] * signal.data.size
    assert signal.data.sum() == pytest.approx(expected, rel=1e-3)
    # deterministic, with Poisson noise when asked
    s1, _ = render_perovskite(doped_ferroelectric, cells=(4, 4), seed=2)
    s2, _ = render_perovskite(doped_ferroelectric, cells=(4, 4), seed=2)
    np.testing.assert_array_equal(s1.data, s2.data)
    assert np.all(s1.data == np.round(s1.data))
    # dose scales every column's counts, not the sample
    _, t10 = render_perovskite(sample, cells=(6, 7), seed=1, noise=False, dose=10.0)
    np.testing.assert_allclose(t10.columns["counts"], 10.0 * sites["counts"])
    pd.testing.assert_frame_equal(t10.sample.data, truth.sample.data)


def test_render_perovskite_other_models():
    _, t = render_perovskite(simpsons_paradox, cells=(6, 6), seed=0, noise=False)
    u = t.cells[t.cells["unit"]]
    np.testing.assert_array_equal(np.sign(u["dy_pm"]), np.where(u["domain"] == 1, -1.0, 1.0))
    _, t = render_perovskite(hidden_confounder, cells=(6, 6), seed=0, noise=False)
    u = t.cells[t.cells["unit"]]
    np.testing.assert_allclose(u["a_nm"] / t.params["a_nm"] - 1.0, u["exx"], atol=1e-12)
    np.testing.assert_allclose(u["area_nm2"], u["volume"], rtol=1e-10)
    assert t.sample.hidden == ["thickness"]


def test_render_perovskite_bad_input():
    with pytest.raises(InvalidParameterError, match="units"):
        render_perovskite(doped_ferroelectric(n=3), cells=(6, 6))
    with pytest.raises(InvalidParameterError, match="SCMSample"):
        render_perovskite("doped", cells=(4, 4))
    with pytest.raises(InvalidParameterError, match="cells"):
        render_perovskite(doped_ferroelectric, cells=(1, 4))
    with pytest.raises(InvalidParameterError, match="dose"):
        render_perovskite(doped_ferroelectric, cells=(4, 4), dose=0.0)
    bad = doped_ferroelectric(n=10)
    bad.data.loc[0, "volume"] = -1.0
    with pytest.raises(InvalidParameterError, match="cell lengths"):
        render_perovskite(bad, cells=(4, 4))


@pytest.mark.slow
def test_render_perovskite_end_to_end_descriptors():
    """find_atoms + perovskite descriptors measure the rendered SCM values."""
    from scipy.spatial import cKDTree

    from causalspy.atoms import find_atoms
    from causalspy.descriptors import compute_descriptors

    signal, truth = render_perovskite(doped_ferroelectric, cells=(12, 12), seed=1)
    desc = compute_descriptors(find_atoms(signal)).to_dataframe()
    units = truth.cells[truth.cells["unit"]].reset_index(drop=True)
    dist, j = cKDTree(desc[["x", "y"]].to_numpy()).query(units[["x", "y"]].to_numpy())
    assert dist.max() < 1.0  # every unit's B column was found
    m = desc.iloc[j].reset_index(drop=True)
    ok = ~m["flag"].to_numpy(bool)
    assert ok.sum() >= 0.8 * len(units)
    # (measured, true, unit scale, min correlation, tolerance on the median ratio)
    for measured, true, scale, min_corr, tol in [
        ("area", "volume", 1.0, 0.9, 0.01),
        ("tetragonality", "tetragonality", 1.0, 0.7, 0.01),
        ("p_mag_cal", "p_mag", 1e-3, 0.6, 0.06),  # about 2 pm noise per axis on 20 pm
        ("intensity_A", "intensity_A", 1.0, 0.95, 0.03),
    ]:
        x, y = m.loc[ok, measured].to_numpy(), units.loc[ok, true].to_numpy() * scale
        assert np.corrcoef(x, y)[0, 1] > min_corr, measured
        assert np.median(x / y) == pytest.approx(1.0, abs=tol), measured
