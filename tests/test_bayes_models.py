"""causalspy.bayes model variants (charged wall, coupled order parameters) and
priors from a causal graph, against ground truth."""

import numpy as np
import pandas as pd
import pytest

from causalspy.exceptions import InvalidParameterError

pytest.importorskip("numpyro")
pytest.importorskip("arviz")

from causalspy.bayes import (  # noqa: E402
    MODELS,
    Posterior,
    causal_model,
    compare,
    fit,
    fit_causal,
    get_model,
    parent_signs,
    synthetic_profile,
)
from causalspy.causal.graph import CausalGraph  # noqa: E402

FAST = {"chains": 4, "warmup": 300, "draws": 500}


def _inside(post, truth):
    s = post.summary()
    return {n: bool(s.loc[n, "hdi_low"] <= truth[n] <= s.loc[n, "hdi_high"]) for n in truth}


# ------------------------------------------------------------------ wall variants
COUPLED = {"P_s": 1.0, "x0": 9.0, "w": 1.2, "b": 0.1, "eta_inf": 0.06, "d_eta": 0.02,
           "kappa": 1.0}


@pytest.fixture(scope="module")
def coupled():
    x, y, truth = synthetic_profile("coupled", COUPLED, noise=(0.08, 0.003), seed=1)
    return x, y, truth, fit(x, y, "coupled", seed=0, **FAST)


def test_coupled_shares_position_and_width(coupled, tmp_path):
    x, y, truth, post = coupled
    assert y.shape == (2, 200) and post.names[-2:] == ["sigma", "sigma_eta"]
    inside = _inside(post, truth)
    assert sum(inside.values()) >= len(inside) - 1, post
    s = post.summary()
    assert post.converged, post
    # the strain channel sharpens the wall: x0 and w better than from P alone
    alone = fit(x, y[0], "tanh", seed=0, **FAST).summary()
    assert s.loc["w", "sd"] < alone.loc["w", "sd"]
    assert abs(s.loc["kappa", "mean"] - 1) < 3 * s.loc["kappa", "sd"]
    axes = post.plot(truth=truth)
    assert len(axes) == 2
    back = Posterior.load(post.save(tmp_path / "c.nc"))
    assert back.y.shape == (2, 200) and back.summary().equals(s)
    ll = post.idata.log_likelihood["y"]
    assert ll.shape[-1] == 400


def test_coupled_bad_shapes(coupled):
    x, y, _, _ = coupled
    with pytest.raises(InvalidParameterError, match=r"shape \(2, 200\)"):
        fit(x, y[0], "coupled", **FAST)
    flat = y.copy()
    flat[1] = 0.05
    with pytest.raises(InvalidParameterError, match="eta"):
        fit(x, flat, "coupled", **FAST)


def test_charged_wall_two_length_scales():
    truth_p = {"P_s": 1.0, "x0": 9.0, "w": 0.5, "lam": 4.0, "a": 0.5, "b": 0.1}
    x, y, truth = synthetic_profile("charged", truth_p, noise=0.05, seed=1)
    post = fit(x, y, "charged", seed=0, **FAST)
    inside = _inside(post, truth)
    assert sum(inside.values()) >= len(inside) - 1, post
    # a screened tail is visible: the single-width neutral wall is clearly worse
    c = compare([post, fit(x, y, "tanh", seed=0, **FAST)])
    assert c.best == "charged", c
    pri = post.as_prior()
    assert pri["a"].family == "TruncatedNormal" and pri["a"].bounds == (0.0, 1.0)
    m = get_model("charged")
    with pytest.raises(InvalidParameterError, match="fraction"):
        m.priors_for(x, y, {"a": pri["b"]})


def test_variants_documented():
    for name in ("tanh", "tanh_slope", "charged", "coupled"):
        m = MODELS[name]
        assert m.kind == "wall" and m.equation and all(p.meaning for p in m.all_params)


# ------------------------------------------------------------------ priors from a causal graph
@pytest.fixture(scope="module")
def causal_data():
    rng = np.random.default_rng(0)
    n = 300
    a = rng.normal(2, 1, n)
    c = rng.normal(-1, 0.5, n)
    d = rng.normal(0, 1, n)
    y = 1 + 0.8 * a - 1.5 * c + rng.normal(0, 0.3, n)
    df = pd.DataFrame({"a": a, "c": c, "d": d, "y": y})
    edges = pd.DataFrame({"source": ["a", "c", "d", "y"], "target": ["y", "y", "a", "d"],
                          "type": ["directed", "directed", "directed", "undirected"],
                          "weight": [0.5, -0.4, 0.1, 0.2]})
    return df, CausalGraph(["a", "c", "d", "y"], edges)


def test_causal_model_structure(causal_data):
    df, g = causal_data
    assert parent_signs(g, "y") == {"a": 1, "c": -1}  # d - y is undirected: not a parent
    m = causal_model(g, "y", data=df)
    assert m.inputs == ("a", "c") and m.names == ["b0", "k_a", "k_c", "sigma"]
    assert "- k_c*(c - mean)" in m.equation
    X = df[["a", "c"]].to_numpy()
    pri = m.priors_for(X, df["y"].to_numpy())
    assert pri["k_a"].family == "HalfNormal" and pri["k_c"].family == "HalfNormal"
    assert pri["b0"].family == "Normal"
    m0 = causal_model(g, "y", data=df, signs={"c": 0})
    assert m0.priors_for(X, df["y"].to_numpy())["k_c"].family == "Normal"
    with pytest.raises(InvalidParameterError, match="no directed parents"):
        causal_model(g, "c")
    with pytest.raises(InvalidParameterError, match="not a variable"):
        causal_model(g, "z")
    with pytest.raises(InvalidParameterError, match="not a parent"):
        causal_model(g, "y", signs={"d": 1})
    with pytest.raises(InvalidParameterError, match="must be positive"):
        m.priors_for(X, df["y"].to_numpy(), {"k_a": pri["b0"]})


def test_fit_causal_recovers_signed_effects(causal_data, tmp_path):
    df, g = causal_data
    post = fit_causal(g, df, "y", seed=0, **FAST)
    assert post.converged, post
    s = post.summary()
    assert s.loc["k_a", "hdi_low"] <= 0.8 <= s.loc["k_a", "hdi_high"], post
    assert s.loc["k_c", "hdi_low"] <= 1.5 <= s.loc["k_c", "hdi_high"], post
    back = Posterior.load(post.save(tmp_path / "causal.nc"))
    assert back.model.equation == post.model.equation and back.x.shape == (300, 2)
    np.testing.assert_allclose(back.predict()["mean"], post.predict()["mean"])
    post.plot()
    # the graph's sign contradicts the data: the constrained effect is pinned at ~0
    wrong = fit_causal(g, df, "y", signs={"a": -1}, seed=0, **FAST).summary()
    assert wrong.loc["k_a", "mean"] < 0.05
    bad = df.copy()
    bad.loc[3, "a"] = np.nan  # NaN rows are dropped, not fitted
    assert fit_causal(g, bad, "y", seed=0, **FAST).x.shape == (299, 2)
