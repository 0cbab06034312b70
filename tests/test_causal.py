"""Causal discovery against known graphs: methods, priors, confidence, effects, warnings."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from causalspy import InvalidParameterError
from causalspy.causal import CausalGraph, Prior, discover, pairwise


def chain_data(n=3000, seed=0):
    """a -> b -> c -> d and a -> d (two paths a ~> d), Laplace noise."""
    rng = np.random.default_rng(seed)
    a = rng.laplace(size=n)
    b = 0.8 * a + rng.laplace(size=n)
    c = -0.7 * b + rng.laplace(size=n)
    d = 0.5 * a + 0.6 * c + rng.laplace(size=n)
    truth = {("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")}
    total_ad = 0.5 + 0.8 * -0.7 * 0.6
    return pd.DataFrame({"a": a, "b": b, "c": c, "d": d}), truth, total_ad


def shd(graph: CausalGraph, truth: set) -> int:
    """Structural Hamming distance for a directed result: missing + extra + reversed."""
    found = set(graph.directed_edges())
    other = {frozenset((r.source, r.target)) for r in graph.edges.itertuples()
             if r.type != "directed"}
    d = 0
    for a, b in truth:
        if (a, b) in found:
            continue
        d += 1  # missing, reversed or unoriented
    for a, b in found:
        if (a, b) not in truth and (b, a) not in truth:
            d += 1
    d += sum(1 for e in other if tuple(e) not in truth and tuple(e)[::-1] not in truth)
    return d


def test_lingam_recovers_dag_and_effects():
    df, truth, total_ad = chain_data()
    g = discover(df, method="lingam")
    assert shd(g, truth) == 0
    eff = g.effects.set_index(["cause", "effect"])
    r = eff.loc[("a", "d")]
    # total effect over both paths, not double counted, inside its 95 % interval
    assert r["total_low"] <= total_ad <= r["total_high"]
    assert r["direct"] == pytest.approx(0.5, abs=0.1)
    assert eff.loc[("b", "c"), "total"] == pytest.approx(-0.7, abs=0.05)
    assert not g.warnings


def test_pc_and_ges_report_unoriented_edges():
    rng = np.random.default_rng(1)
    n = 3000
    a = rng.normal(size=n)
    b = 0.8 * a + rng.normal(size=n)
    c = 0.8 * b + rng.normal(size=n)  # chain: not orientable from CI tests
    df = pd.DataFrame({"a": a, "b": b, "c": c})
    for method in ("pc", "ges"):
        g = discover(df, method=method)
        assert set(g.edges["type"]) == {"undirected"}, method
        assert any("not identifiable" in w for w in g.warnings)
        # a tier prior orients them
        g2 = discover(df, method=method, prior=Prior(tiers=[["a"], ["b"], ["c"]]))
        assert set(g2.directed_edges()) == {("a", "b"), ("b", "c")}, method
        assert not any("not identifiable" in w for w in g2.warnings)


def test_collider_oriented_by_pc():
    rng = np.random.default_rng(2)
    n = 3000
    a, b = rng.normal(size=n), rng.normal(size=n)
    c = a + b + rng.normal(size=n)
    g = discover(pd.DataFrame({"a": a, "b": b, "c": c}), method="pc")
    assert set(g.directed_edges()) == {("a", "c"), ("b", "c")}


def test_fci_marks_hidden_confounder():
    rng = np.random.default_rng(3)
    n = 4000
    hidden = rng.normal(size=n)
    a, b = rng.normal(size=n), rng.normal(size=n)
    x = a + hidden + 0.5 * rng.normal(size=n)
    y = b + hidden + 0.5 * rng.normal(size=n)
    df = pd.DataFrame({"a": a, "x": x, "y": y, "b": b})
    g = discover(df, method="fci")
    assert g.has_edge("x", "y", type="bidirected")
    assert any("Hidden confounder" in w for w in g.warnings)
    # PC cannot express it
    assert not discover(df, method="pc").has_edge("x", "y", type="bidirected")


@pytest.mark.parametrize("method", ["lingam", "pc", "ges", "hc", "fci"])
def test_every_method_honours_priors(method):
    df, truth, _ = chain_data(n=2000, seed=4)
    prior = Prior(tiers=[["d"], ["a", "b", "c"]], forbidden=[("a", "b")], required=[("d", "c")])
    g = discover(df, method=method, prior=prior)
    e = g.edges
    # no edge into an earlier tier, no forbidden edge, the required edge present
    directed = set(g.directed_edges())
    assert all(not (t == "d") for s, t in directed), directed
    assert ("a", "b") not in directed
    assert ("d", "c") in directed
    assert not ((e["source"] == "a") & (e["target"] == "b")).any()


def test_hill_climbing_seeded_and_reproducible():
    df, truth, _ = chain_data(n=2000, seed=5)
    g1 = discover(df, method="hc", seed=3)
    g2 = discover(df, method="hc", seed=3)
    assert g1.directed_edges() == g2.directed_edges()
    skeleton = {frozenset(e) for e in g1.directed_edges()}
    assert skeleton == {frozenset(e) for e in truth}


def test_bootstrap_confidence():
    df, truth, _ = chain_data(n=1500, seed=6)
    g = discover(df, method="lingam", bootstrap=12, seed=1)
    e = g.to_dataframe()
    assert e["confidence"].between(0, 1).all() and e["stability"].between(0, 1).all()
    true_rows = e[[(s, t) in truth for s, t in zip(e["source"], e["target"], strict=True)]]
    assert (true_rows["confidence"] >= 0.8).all()


def test_effect_of_intervention():
    df, _, total_ad = chain_data(n=3000, seed=7)
    g = discover(df, method="lingam")
    r = g.effect_of({"a": "+1sigma"}, on="d")
    sd_a = df["a"].std(ddof=0)
    assert r["low"] <= total_ad * sd_a <= r["high"]
    assert g.effect_of({"d": 2.0}, on="a")["change"] == 0.0  # no effect on a cause
    with pytest.raises(InvalidParameterError):
        g.effect_of({"a": "+1 banana"}, on="d")


def test_simpsons_paradox_warning():
    rng = np.random.default_rng(8)
    n = 4000
    domain = rng.integers(0, 2, size=n).astype(float)
    strain = 2.0 * domain + rng.laplace(scale=0.5, size=n)
    p = 0.5 * strain - 3.0 * domain + rng.laplace(scale=0.3, size=n)
    df = pd.DataFrame({"domain": domain, "strain": strain, "p_mag": p})
    assert df[["strain", "p_mag"]].corr().iloc[0, 1] < 0
    g = discover(df, method="lingam", prior=Prior(tiers=[["domain"], ["strain", "p_mag"]]))
    eff = g.effects.set_index(["cause", "effect"]).loc[("strain", "p_mag")]
    assert eff["total"] > 0
    assert any("Simpson" in w for w in g.warnings)


def test_nuisance_warning():
    df, _, _ = chain_data(n=2000, seed=9)
    df["x_position"] = df["a"] * 0.5 + np.random.default_rng(0).laplace(size=len(df))
    g = discover(df, method="lingam", prior=Prior(tiers=[["x_position"], ["a", "b", "c", "d"]]))
    assert any("Nuisance variable x_position" in w for w in g.warnings)


def test_save_load_lossless(tmp_path):
    df, _, _ = chain_data(n=1500, seed=10)
    g = discover(df, method="lingam", bootstrap=5)
    f = g.save(tmp_path / "g.json")
    h = CausalGraph.load(f)
    pd.testing.assert_frame_equal(g.to_dataframe(), h.to_dataframe())
    pd.testing.assert_frame_equal(g.effects.reset_index(drop=True), h.effects)
    assert h.warnings == g.warnings and h.nodes == g.nodes and h.scales == g.scales


@pytest.mark.parametrize("bad, match", [
    (lambda df: df.assign(s="x"), "Non-numeric"),
    (lambda df: df.assign(n=np.nan), "only NaN"),
    (lambda df: df.assign(k=3.0), "constant"),
    (lambda df: df.assign(a2=2 * df["a"]), "duplicates"),
    (lambda df: df.assign(s=df["a"] + df["b"]), "collinear"),
    (lambda df: df.iloc[:30], "rows"),
])
def test_bad_tables(bad, match):
    df, _, _ = chain_data(n=500, seed=11)
    with pytest.raises(InvalidParameterError, match=match):
        discover(bad(df))


@pytest.mark.parametrize("prior, match", [
    (Prior(required=[("a", "b")], forbidden=[("a", "b")]), "both required and forbidden"),
    (Prior(required=[("a", "b"), ("b", "c"), ("c", "a")]), "cycle"),
    (Prior(tiers=[["a"], ["a", "b"]]), "two tiers"),
    (Prior(forbidden=[("a", "zzz")]), "unknown"),
    (Prior(tiers=[["b"], ["a"]], required=[("a", "b")]), "tier order"),
])
def test_contradictory_priors(prior, match):
    df, _, _ = chain_data(n=500, seed=12)
    with pytest.raises(InvalidParameterError, match=match):
        discover(df, prior=prior)


def test_unknown_method_and_columns():
    df, _, _ = chain_data(n=500, seed=13)
    with pytest.raises(InvalidParameterError, match="Unknown method"):
        discover(df, method="magic")
    with pytest.raises(InvalidParameterError, match="Unknown column"):
        discover(df, columns=["a", "nope"])


def test_pairwise():
    rng = np.random.default_rng(14)
    x = rng.uniform(-2, 2, size=250)
    y = x**3 + 0.5 * x + rng.uniform(-1, 1, size=250)
    assert pairwise(x, y, "anm")["direction"] == "x->y"
    assert pairwise(y, x, "anm")["direction"] == "y->x"
    xi = rng.uniform(0, 1, size=2000)
    yi = np.exp(3 * xi) + 0.01 * rng.normal(size=2000)
    assert pairwise(xi, yi, "igci")["direction"] == "x->y"
    with pytest.raises(InvalidParameterError):
        pairwise(x[:5], y[:5])


def test_descriptors_end_to_end():
    from causalspy.data import perovskite

    s, _ = perovskite(cells=(10, 10), seed=1, a_site_disorder=0.2)
    cells = s.find_atoms().descriptors()
    g = discover(cells, method="lingam", columns=["intensity_A", "intensity_B", "area",
                                                  "p_mag", "tetragonality"])
    assert set(g.nodes) == {"intensity_A", "intensity_B", "area", "p_mag", "tetragonality"}
    assert g.n_samples == int((~cells["flag"]).sum())
    # default variables leave out what this HAADF image cannot give (tilt needs O columns);
    # asking for it by name is still a clear error
    assert cells["tilt"].isna().all()
    from causalspy.causal.preprocess import prepare_table

    default = prepare_table(cells, min_per_variable=1)
    assert "tilt" not in default and {"p_mag", "tetragonality"} <= set(default)
    with pytest.raises(InvalidParameterError, match="only NaN"):
        discover(cells, method="lingam", columns=["p_mag", "tilt"])


def test_cli(tmp_path):
    df, truth, _ = chain_data(n=2000, seed=15)
    f = tmp_path / "t.csv"
    df.to_csv(f, index=False)
    out = tmp_path / "g.json"
    r = subprocess.run([sys.executable, "-m", "causalspy.cli", "causal", str(f), "--out", str(out),
                        "--bootstrap", "5", "--tiers", "a;b,c,d", "--forbid", "d:c"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import json

    d = json.loads(out.read_text())
    assert set(d) >= {"nodes", "edges", "warnings"}
    assert all(set(e) >= {"source", "target", "type", "weight", "confidence"} for e in d["edges"])
    r = subprocess.run([sys.executable, "-m", "causalspy.cli", "causal", str(f), "--out", str(out),
                        "--require", "a:b", "--forbid", "a:b"], capture_output=True, text=True)
    assert r.returncode == 2 and "both required and forbidden" in r.stderr
    assert "Traceback" not in r.stderr


def test_fast_lingam_matches_causal_learn():
    from causallearn.search.FCMBased import lingam

    from causalspy.causal.fastlingam import direct_lingam

    rng = np.random.default_rng(16)
    n, p = 3000, 7
    B = np.tril(rng.uniform(0.5, 1.5, (p, p)) * rng.choice([-1, 1], (p, p))
                * (rng.random((p, p)) < 0.4), -1)
    perm = rng.permutation(p)
    X = np.linalg.solve(np.eye(p) - B, rng.laplace(size=(n, p)).T).T[:, perm]
    Bf, order = direct_lingam(X)
    m = lingam.DirectLiNGAM()
    m.fit(X)
    assert order == list(m.causal_order_)
    np.testing.assert_allclose(Bf, m.adjacency_matrix_, atol=1e-10)


def _grid_descriptors(n_side=24, seed=17):
    """Cells on a grid: in the left half a -> b (weight 1), in the right half independent."""
    from causalspy.descriptors import Descriptors

    rng = np.random.default_rng(seed)
    ci, cj = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="xy")
    ci, cj = ci.ravel(), cj.ravel()
    a = rng.laplace(size=ci.size)
    left = ci < n_side // 2
    b = np.where(left, 1.0 * a, 0.0) + rng.laplace(size=ci.size)
    t = pd.DataFrame({"x": ci * 10.0, "y": cj * 10.0, "a": a, "b": b, "cell_i": ci, "cell_j": cj,
                      "flag": np.zeros(ci.size, bool)})
    return Descriptors(t, lattice={"t1": [10, 0], "t2": [0, 10], "origin": [0, 0]},
                       calibration={"x_scale": 0.04, "y_scale": 0.04, "x_units": "nm"})


def test_local_causal_maps_find_where_the_edge_is():
    from causalspy.causal import local_causal_maps

    d = _grid_descriptors(n_side=32)
    m = local_causal_maps(d, [("a", "b")], window=12, stride=4, min_samples=40)
    direction = m.get_map("a->b:direction").data
    centre_i = 12 / 2 + 4 * np.arange(direction.shape[1])  # window centres in cells
    left, right = centre_i < 16 - 6, centre_i > 16 + 6  # windows fully on one side
    # the relation is found where it exists (mostly oriented a -> b) and not elsewhere
    assert (direction[:, left] != 0).mean() > 0.9
    assert (direction[:, left] == 1).mean() > 0.6
    assert (direction[:, right] != 0).mean() < 0.2
    assert m.axes_manager.signal_axes[0].units == "nm"
    with pytest.raises(InvalidParameterError, match="Unknown descriptor"):
        local_causal_maps(d, [("a", "zz")])
    with pytest.raises(InvalidParameterError, match="larger window"):
        local_causal_maps(d, [("a", "b")], window=3)


def test_analyze_writes_report(tmp_path):
    from causalspy.data import perovskite

    s, _ = perovskite(cells=(10, 10), seed=3, a_site_disorder=0.2)
    f = tmp_path / "img.hspy"
    s.save(f)
    r = subprocess.run([sys.executable, "-m", "causalspy.cli", "analyze", str(f), "--structure",
                        "perovskite", "--out", str(tmp_path / "out"), "--bootstrap", "3"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 3
    assert "Causal graph" in html and "Parameters" in html
    for name in ("atoms.csv", "cells.csv", "graph.json", "descriptor_maps.hspy"):
        assert (tmp_path / "out" / name).exists()


def test_descriptor_maps_causal_graph():
    from causalspy.data import perovskite

    s, _ = perovskite(cells=(12, 12), seed=2, a_site_disorder=0.2)
    maps = s.find_atoms().descriptors().to_maps()
    g = maps.causal_graph(columns=["intensity_A", "area", "p_mag"], method="lingam")
    assert set(g.nodes) == {"intensity_A", "area", "p_mag"}
    assert g.n_samples == int(maps.metadata.Descriptors.valid.sum())
