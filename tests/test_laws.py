"""Parsimonious laws (SINDy): recovery of known kinetics and fields, intervals, files, bad input."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from causalspy import InvalidParameterError
from causalspy.exceptions import CausalspyError
from causalspy.laws import Law, discover, discover_field, synthetic
from causalspy.laws.cli import add_laws_parser

CASES = [(synthetic.logistic, "poly2"), (synthetic.landau_khalatnikov, "poly3")]


def assert_law_matches(law: Law, truth: dict, rtol: float) -> None:
    """Same active terms as the truth (no spurious, none missing), each within rtol."""
    for target, true_terms in truth.items():
        found = law.coefficients[target]
        assert set(found) == set(true_terms), (found, true_terms)
        for term, value in true_terms.items():
            assert found[term] == pytest.approx(value, rel=rtol), (term, found[term], value)


@pytest.fixture(scope="module")
def fitted():
    """One law per case and seed (fitted once for the module)."""
    out = {}
    for gen, lib in CASES:
        for seed in range(3):
            s = gen(n=100, noise=0.01, seed=seed)
            out[gen.__name__, seed] = (s, discover(s.data, time="t", library=lib, seed=seed))
    return out


@pytest.mark.parametrize("name", ["logistic", "landau_khalatnikov"])
@pytest.mark.parametrize("seed", range(3))
def test_ode_recovered_within_5_percent(fitted, name, seed):
    s, law = fitted[name, seed]
    assert_law_matches(law, s.truth, rtol=0.05)


@pytest.mark.parametrize("name", ["logistic", "landau_khalatnikov"])
def test_ensemble_intervals_contain_truth(fitted, name):
    for seed in range(3):
        s, law = fitted[name, seed]
        ivs, inc = law.coefficient_intervals, law.inclusion_probabilities
        for target, terms in s.truth.items():
            for term, value in terms.items():
                lo, hi = ivs[target][term]
                assert lo <= value <= hi, (term, lo, hi, value)
                assert inc[target][term] >= 0.95


def test_other_criteria_and_fixed_threshold():
    s = synthetic.logistic(noise=0.01, seed=0)
    for crit in ("bic", "cv"):
        assert_law_matches(discover(s.data, criterion=crit, ensemble=False), s.truth, 0.05)
    law = discover(s.data, threshold=0.1, ensemble=False)
    assert_law_matches(law, s.truth, 0.05)
    assert np.all(np.isnan(law.intervals))


def test_simulate_follows_the_data(fitted):
    s, law = fitted["logistic", 0]
    sim = law.simulate(s.data["t"], s.clean[0])
    assert list(sim.columns) == ["t", "f"]
    assert np.max(np.abs(sim["f"] - s.clean)) < 0.02
    assert law.simulate([0, 1], {"f": 0.1})["f"].iloc[-1] > 0.1


def test_equations_and_latex(fitted):
    _, law = fitted["landau_khalatnikov", 0]
    (eq,) = law.equations(3)
    assert eq.startswith("dP/dt = 1") and "- 1 P^3" in eq
    (tex,) = law.latex(3)
    assert r"\frac{\mathrm{d}P}{\mathrm{d}t}" in tex and "P^{3}" in tex
    df = law.to_dataframe()
    assert list(df.columns) == ["target", "term", "coefficient", "low", "high", "inclusion",
                                "active"]
    assert df["active"].sum() == 2 and len(df) == 4


def test_save_load_lossless(fitted, tmp_path):
    _, law = fitted["logistic", 1]
    law2 = Law.load(law.save(tmp_path / "law.json"))
    assert law2.terms == law.terms and law2.targets == law.targets
    np.testing.assert_array_equal(law2.coef, law.coef)
    np.testing.assert_array_equal(law2.intervals, law.intervals)
    np.testing.assert_array_equal(law2.inclusion, law.inclusion)
    np.testing.assert_array_equal(law2.powers, law.powers)
    for k in law.data:
        np.testing.assert_array_equal(law2.data[k], law.data[k])
    assert law2.equations() == law.equations() and law2.params == json.loads(
        json.dumps(law.params))
    pd.testing.assert_frame_equal(law2.simulate([0, 2, 4], [0.1]), law.simulate([0, 2, 4], [0.1]))
    d = json.loads((tmp_path / "law.json").read_text())
    assert d["coefficients"] == law.coefficients


def test_allen_cahn_field():
    s = synthetic.allen_cahn(nx=64, nt=81, noise=0.01, seed=0)
    law = discover_field(s.data["u"], s.data["t"], s.data["x"], K=200, n_models=50, seed=0)
    assert law.kind == "field"
    assert_law_matches(law, s.truth, rtol=0.10)
    assert law.equations()[0].startswith("u_t = ")
    assert "u_{xx}" in law.latex()[0]
    with pytest.raises(InvalidParameterError, match="ODE"):
        law.simulate([0, 1], [0.0])


def test_allen_cahn_2d_shapes_and_bad_field():
    s = synthetic.allen_cahn(nx=32, nt=41, seed=1)
    u, t, x = s.data["u"], s.data["t"], s.data["x"]
    with pytest.raises(InvalidParameterError, match="shape"):
        discover_field(u[..., None], t, x)
    with pytest.raises(InvalidParameterError, match="increasing"):
        discover_field(u, t[::-1], x)
    with pytest.raises(InvalidParameterError, match="values"):
        discover_field(u, t[:-1], x)
    bad = u.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN"):
        discover_field(bad, t, x)
    with pytest.raises(InvalidParameterError, match="constant"):
        discover_field(np.ones_like(u), t, x)
    u2 = np.repeat(u[:, None, :], 16, axis=1)  # a 2D field, constant along y
    law = discover_field(u2, t, x, np.arange(16.0), K=60, ensemble=False)
    assert "u_22" in law.terms and law.params["spatial_dims"] == 2


def test_inputs_not_modified_and_rng_restored():
    s = synthetic.logistic(seed=3)
    before = s.data.copy()
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    discover(s.data, n_models=20)
    assert np.random.random() == expected  # noqa: NPY002
    pd.testing.assert_frame_equal(s.data, before)
    a = discover(s.data, n_models=20, seed=5)
    b = discover(s.data, n_models=20, seed=5)
    np.testing.assert_array_equal(a.intervals, b.intervals)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.assign(f=d["f"].where(d.index != 5)), "NaN"),
    (lambda d: d.iloc[:10], "too few"),
    (lambda d: d.iloc[::-1], "increase"),
    (lambda d: d.assign(t=np.r_[0.0, d["t"].to_numpy()[:-1]].clip(0.1)), "increase"),
    (lambda d: d.assign(g=1.0), "constant"),
])
def test_bad_series(change, match):
    d = change(synthetic.logistic(seed=0).data)
    with pytest.raises(InvalidParameterError, match=match):
        discover(d, time="t")


def test_bad_options():
    d = synthetic.logistic(seed=0).data
    for kw, match in [({"columns": ["f", "nope"]}, "Unknown"), ({"time": "time"}, "time"),
                      ({"library": "fourier"}, "library"), ({"criterion": "aic"}, "criterion"),
                      ({"threshold": 2.0}, "threshold"), ({"smoothing": 4}, "window"),
                      ({"n_models": 3}, "n_models")]:
        with pytest.raises(InvalidParameterError, match=match):
            discover(d, **kw)
    with pytest.raises(InvalidParameterError, match="DataFrame"):
        discover(np.zeros((100, 2)))


def test_custom_pysindy_library_not_modified():
    import pysindy as ps

    lib = ps.PolynomialLibrary(degree=2)
    s = synthetic.logistic(seed=0)
    law = discover(s.data, library=lib, ensemble=False)
    assert_law_matches(law, s.truth, 0.05)
    assert not hasattr(lib, "n_output_features_")


def _parser():
    p = argparse.ArgumentParser(prog="causalspy")
    add_laws_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_handler(tmp_path, capsys):
    s = synthetic.landau_khalatnikov(seed=0)
    s.data.rename(columns={"t": "time"}).assign(other=np.arange(100.0) ** 0.5).to_csv(
        tmp_path / "series.csv", index=False)
    args = _parser().parse_args(["laws", str(tmp_path / "series.csv"), "--time", "time",
                                 "--columns", "P", "--library", "poly3", "--out",
                                 str(tmp_path / "law.json")])
    assert args.func(args) == 0
    assert "dP/dt" in capsys.readouterr().out
    d = json.loads((tmp_path / "law.json").read_text())
    assert set(d["coefficients"]["P"]) == {"P", "P^3"}
    assert d["equations"][0].startswith("dP/dt")
    bad = _parser().parse_args(["laws", str(tmp_path / "missing.csv")])
    with pytest.raises(CausalspyError, match="No such file"):
        bad.func(bad)
    bad = _parser().parse_args(["laws", str(tmp_path / "series.csv"), "--columns", "zz"])
    with pytest.raises(CausalspyError):
        bad.func(bad)


def test_import_is_light():
    code = ("import sys, causalspy, causalspy.laws; "
            "assert 'pysindy' not in sys.modules, 'pysindy imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)
