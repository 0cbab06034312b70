"""causalspy.bayes: wall fits, diagnostics, model comparison, information gain, files, CLI.

Fits share compiled samplers (same model, prior families, settings and padded
length), so the whole file pays for two compilations (tanh, linear).
"""

import argparse
import json

import numpy as np
import pytest

from causalspy.exceptions import CausalspyError, FileReadError, InvalidParameterError

pytest.importorskip("numpyro")
pytest.importorskip("arviz")

from causalspy.bayes import (  # noqa: E402
    MODELS,
    Posterior,
    PriorSpec,
    cache_info,
    compare,
    fit,
    get_model,
    parse_prior,
    parse_priors,
    sequential_update,
    synthetic_profile,
    synthetic_wall,
)

FAST = {"chains": 4, "warmup": 300, "draws": 500}
PHYS = ["P_s", "x0", "w", "b"]


def _inside(post, truth, names):
    s = post.summary()
    return {n: bool(s.loc[n, "hdi_low"] <= truth[n] <= s.loc[n, "hdi_high"]) for n in names}


@pytest.fixture(scope="module")
def wall():
    return synthetic_wall(n=200, P_s=1.0, x0=9.0, w=1.5, b=0.2, noise=0.1, seed=0)


@pytest.fixture(scope="module")
def wall_post(wall):
    x, y, _ = wall
    return fit(x, y, "tanh", priors=["w=LogNormal(0, 1)"], x_unit="nm", y_unit="pm", seed=1,
               **FAST)


# ------------------------------------------------------------------ priors (no sampling)
def test_parse_prior():
    assert parse_prior("w=LogNormal(0, 1)") == ("w", PriorSpec("LogNormal", (0.0, 1.0)))
    assert parse_prior(" x0 = normal(1e-1,2) ")[1] == PriorSpec("Normal", (0.1, 2.0))
    pri = parse_priors('w=LogNormal(0,1); b=Normal(0,3)')
    assert set(pri) == {"w", "b"} and str(pri["b"]) == "Normal(0, 3)"
    assert parse_priors({"w": "HalfNormal(2)"})["w"].support == "positive"


@pytest.mark.parametrize("text, match", [
    ("w LogNormal(0,1)", "name=Family"),
    ("w=Lognorm(0,1)", "Unknown prior family"),
    ("w=LogNormal(0)", "takes 2 parameter"),
    ("w=LogNormal(0,-1)", "must be > 0"),
    ("x0=Uniform(3, 1)", "low must be < high"),
    ("w=Normal(0, a)", "numbers"),
    ("w=LogNormal(0, nan)", "finite"),
])
def test_bad_prior_text(text, match):
    with pytest.raises(InvalidParameterError, match=match):
        parse_prior(text)


def test_prior_support_and_names(wall):
    x, y, _ = wall
    m = get_model("tanh")
    with pytest.raises(InvalidParameterError, match="must be positive"):
        m.priors_for(x, y, parse_priors(["w=Normal(0, 1)"]))
    with pytest.raises(InvalidParameterError, match="does not have"):
        m.priors_for(x, y, parse_priors(["width=LogNormal(0, 1)"]))
    ok = m.priors_for(x, y, parse_priors(["w=Uniform(0.1, 5)"]))
    assert list(ok) == ["P_s", "x0", "w", "b", "sigma"]


def test_models_are_documented_and_evaluate():
    for name, m in MODELS.items():
        p = {q.name: 0.5 for q in m.params}
        x, y, truth = synthetic_profile(name, p, n=30, x_range=(0.1, 1.0), noise=0.01, seed=0)
        assert np.all(np.isfinite(y)) and truth["sigma"] == 0.01
        assert m.equation and all(q.meaning for q in m.params)
        assert set(m.priors_for(x, y)) == set(m.names)
    with pytest.raises(InvalidParameterError, match="Unknown model"):
        get_model("sigmoid")


# ------------------------------------------------------------------ bad input (no sampling)
def test_bad_input(wall):
    x, y, _ = wall
    y_nan = y.copy()
    y_nan[5] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN"):
        fit(x, y_nan, "tanh", **FAST)
    with pytest.raises(InvalidParameterError, match="more points than parameters"):
        fit(x[:5], y[:5], "tanh", **FAST)
    with pytest.raises(InvalidParameterError, match="no variation"):
        fit(x, np.ones_like(x), "tanh", **FAST)
    with pytest.raises(InvalidParameterError, match="differ in length"):
        fit(x, y[:-1], "tanh", **FAST)
    with pytest.raises(InvalidParameterError, match="must be positive"):
        fit(x, y, "tanh", priors=["w=Normal(1, 1)"], **FAST)
    with pytest.raises(InvalidParameterError, match="chains"):
        fit(x, y, "tanh", chains=0)
    with pytest.raises(InvalidParameterError, match="yerr"):
        fit(x, y, "tanh", yerr=-np.ones_like(y), **FAST)
    assert issubclass(InvalidParameterError, CausalspyError)


# ------------------------------------------------------------------ fits
def test_tanh_recovery_and_diagnostics(wall, wall_post):
    _, _, truth = wall
    post = wall_post
    assert all(_inside(post, truth, PHYS + ["sigma"]).values()), post
    d = post.diagnostics
    assert d["r_hat_max"] < 1.01 and d["divergences"] == 0, post
    assert post.converged and not post.warnings
    s = post.summary()
    assert list(s.columns[:4]) == ["mean", "sd", "hdi_low", "hdi_high"]
    assert s.loc["w", "unit"] == "nm" and s.loc["P_s", "unit"] == "pm"
    assert s.loc["w", "prior"] == "LogNormal(0, 1)"
    assert abs(s.loc["x0", "mean"] - 9.0) < 0.2 and s.loc["x0", "sd"] < 0.1
    assert "converged" in repr(post)


def test_seed_reproducible_and_compilation_cached(wall, wall_post):
    x, y, _ = wall
    before = cache_info()
    again = fit(x, y, "tanh", priors={"w": "LogNormal(0, 1)"}, x_unit="nm", y_unit="pm",
                seed=1, **FAST)
    assert cache_info()["hits"] == before["hits"] + 1
    assert cache_info()["misses"] == before["misses"]
    np.testing.assert_array_equal(again.samples("w"), wall_post.samples("w"))


def test_calibration_small():
    """Truth inside the 90 % HDI for most parameters over a few random walls
    (the >= 50-wall calibration is in benchmarks/bench_bayes.py)."""
    rng = np.random.default_rng(7)
    hits, total = 0, 0
    for k in range(4):
        t = {"P_s": rng.uniform(0.5, 2), "x0": rng.uniform(6, 14), "w": rng.uniform(0.5, 3),
             "b": rng.normal(0, 0.5)}
        x, y, truth = synthetic_wall(n=200, noise=0.15, seed=100 + k, **t)
        # R-hat near 1.01 is itself noisy at 4 x 500 draws: use the default 1000
        post = fit(x, y, "tanh", seed=k, **{**FAST, "draws": 1000})
        assert post.diagnostics["r_hat_max"] < 1.01, post
        inside = _inside(post, truth, PHYS + ["sigma"])
        hits += sum(inside.values())
        total += len(inside)
    assert hits >= total - 4, f"{hits}/{total} truths inside the 90 % HDI"


def test_compare_prefers_wall_on_clear_data(wall, wall_post):
    x, y, _ = wall
    lin = fit(x, y, "linear", seed=0, **FAST)
    c = compare({"tanh": wall_post, "linear": lin})
    assert c.best == "tanh" and c.decided
    assert c.weights["tanh"] > 0.9
    assert c.verdict.startswith("tanh is preferred")
    assert set(c.table.index) == {"tanh", "linear"}
    c2 = compare([wall_post, lin], ic="waic")
    assert c2.best == "tanh"


def test_compare_undecided_and_linear_data():
    # a wall 30x wider than the field of view is indistinguishable from a gradient
    x, y, _ = synthetic_wall(n=120, P_s=1.0, x0=10.0, w=60.0, b=0.0, noise=0.1, seed=3)
    c = compare([fit(x, y, "tanh", seed=0, **FAST), fit(x, y, "linear", seed=0, **FAST)])
    assert c.best is None and c.verdict.startswith("undecided"), c
    # linear truth: the wall model must not be picked
    x, y, _ = synthetic_profile("linear", {"b": 0.3, "s": 0.05}, n=150, noise=0.1, seed=4)
    c = compare([fit(x, y, "tanh", seed=0, **FAST), fit(x, y, "linear", seed=0, **FAST)])
    assert c.best != "tanh", c


def test_compare_rejects_different_data(wall, wall_post):
    x, y, _ = wall
    with pytest.raises(InvalidParameterError, match="at least two"):
        compare([wall_post])
    m = get_model("linear")
    rng = np.random.default_rng(0)
    other = Posterior.from_samples(
        m, m.priors_for(x[:150], y[:150]), x[:150], y[:150], None,
        {n: rng.normal(1, 0.1, (2, 50)) for n in m.names}, {"diverging": np.zeros((2, 50), bool)},
        settings={})
    with pytest.raises(InvalidParameterError, match="different data"):
        compare([wall_post, other])


def test_information_gain_positive_and_grows_with_data(wall, wall_post):
    x, y, _ = wall
    g200 = wall_post.information_gain()
    idx = np.arange(0, 200, 4)
    g50 = fit(x[idx], y[idx], "tanh", priors=["w=LogNormal(0, 1)"], seed=1,
              **FAST).information_gain()
    for n in PHYS + ["sigma", "total"]:
        assert g50[n] > 0 and g200[n] > 0, (n, g50, g200)
    assert g200["total"] > g50["total"] + 2
    assert g200["x0"] > g50["x0"] and g200["w"] > g50["w"]


def test_sequential_update_reduces_sd():
    data = [synthetic_wall(n=80, w=1.5, noise=0.15, seed=s)[:2] for s in (11, 12)]
    res = sequential_update(data, "tanh", labels=["image A", "image B"], seed=0, **FAST)
    t = res.table
    assert list(t["label"]) == ["image A", "image B"]
    for n in PHYS:
        assert t.loc[1, f"{n}_sd"] < t.loc[0, f"{n}_sd"], t[[f"{n}_sd" for n in PHYS]]
    assert (t["info_gain_total"] > 0).all()
    # the first step learns more (from a vague prior) than the second adds
    assert t.loc[0, "info_gain_total"] > t.loc[1, "info_gain_total"]
    assert res.final.priors["x0"].family == "Normal"
    assert res.final.priors["sigma"].family == "HalfNormal"  # noise is per image


# ------------------------------------------------------------------ results and files
def test_unconverged_is_reported_not_clean(wall):
    x, y, _ = wall
    m = get_model("tanh")
    pri = m.priors_for(x, y)
    rng = np.random.default_rng(0)
    # two chains stuck in different places, with divergences
    samples = {n: np.stack([rng.normal(1.0, 0.01, 200), rng.normal(2.0, 0.01, 200)])
               for n in m.names}
    samples["x0"] = samples["x0"] + 8.0
    extra = {"diverging": np.zeros((2, 200), bool)}
    extra["diverging"][0, :7] = True
    post = Posterior.from_samples(m, pri, x, y, None, samples, extra, settings={})
    assert not post.converged
    text = " ".join(post.warnings)
    assert "7 divergent" in text and "R-hat" in text and "not converged" in text
    assert "NOT CONVERGED" in repr(post)


def test_save_load_round_trip(tmp_path, wall_post):
    path = wall_post.save(tmp_path / "wall.nc")
    back = Posterior.load(path)
    for n in wall_post.names:
        np.testing.assert_array_equal(back.samples(n), wall_post.samples(n))
        assert back.samples(n).dtype == wall_post.samples(n).dtype
    np.testing.assert_array_equal(back.x, wall_post.x)
    np.testing.assert_array_equal(back.y, wall_post.y)
    assert back.priors == wall_post.priors and back.model is wall_post.model
    assert (back.x_unit, back.y_unit) == ("nm", "pm")
    np.testing.assert_array_equal(
        back.idata.log_likelihood["y"].values, wall_post.idata.log_likelihood["y"].values)
    assert back.summary().equals(wall_post.summary())
    d = back.to_dict()
    json.dumps(d)
    assert set(d["parameters"]["w"]) >= {"mean", "sd", "hdi_low", "hdi_high"}
    with pytest.raises(InvalidParameterError, match=".nc"):
        wall_post.save(tmp_path / "wall.json")
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(FileReadError):
        Posterior.load(tmp_path / "junk.nc")
    with pytest.raises(FileReadError, match="No such file"):
        Posterior.load(tmp_path / "missing.nc")


def test_plot(wall, wall_post):
    ax = wall_post.plot(truth=wall[2])
    assert len(ax.lines) >= 3 and "tanh" in ax.get_title()
    p = wall_post.predict()
    assert np.all(p["pred_low"] <= p["mean"]) and np.all(p["mean"] <= p["pred_high"])


# ------------------------------------------------------------------ command line
def _parser():
    from causalspy.bayes.cli import add_wall_parser

    p = argparse.ArgumentParser(prog="causalspy")
    add_wall_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_wall(tmp_path, wall):
    import pandas as pd

    x, y, _ = wall
    csv = tmp_path / "profile.csv"
    pd.DataFrame({"x": x, "p": y}).to_csv(csv, index=False)
    out = tmp_path / "out"
    args = _parser().parse_args(
        ["wall", str(csv), "--x", "x", "--y", "p", "--prior", "w=LogNormal(0,1)", "--seed", "1",
         "--chains", "4", "--warmup", "300", "--draws", "500", "--x-unit", "nm", "--y-unit", "pm",
         "--out", str(out)])
    assert args.func(args) == 0
    res = json.loads((out / "posterior.json").read_text())
    assert set(res["parameters"]) == {"P_s", "x0", "w", "b", "sigma"}
    for v in res["parameters"].values():
        assert v["hdi_low"] <= v["mean"] <= v["hdi_high"] and v["sd"] > 0
    assert res["converged"] is True and res["model"] == "tanh"
    assert (out / "fit.png").stat().st_size > 0
    assert Posterior.load(out / "posterior.nc").names == ["P_s", "x0", "w", "b", "sigma"]


def test_cli_wall_bad_input(tmp_path):
    import pandas as pd

    csv = tmp_path / "profile.csv"
    pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5, 6], "p": [0.0, 1, np.nan, 1, 1, 2, 2],
                  "ok": [0.0, 1, 1, 1, 1, 2, 2]}).to_csv(
        csv, index=False)
    p = _parser()
    for argv, exc, match in [
        (["--y", "q"], InvalidParameterError, "not in"),
        (["--y", "p"], InvalidParameterError, "NaN"),
        (["--y", "ok", "--prior", "w=Normal(0,1)"], InvalidParameterError, "positive"),
        (["--y", "ok", "--prior", "w=LogNormal(0)"], InvalidParameterError, "takes 2"),
    ]:
        args = p.parse_args(["wall", str(csv), "--x", "x", *argv, "--out", str(tmp_path)])
        with pytest.raises(exc, match=match):
            args.func(args)
    args = p.parse_args(["wall", str(tmp_path / "none.csv"), "--x", "x", "--y", "p",
                         "--out", str(tmp_path)])
    with pytest.raises(FileReadError):
        args.func(args)
