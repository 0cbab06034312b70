"""causalspy.bayes on maps: wall profiles from descriptor_maps, wall detection,
and the structured GP (physics + residual), against ground truth."""

import numpy as np
import pytest

from causalspy.exceptions import FileReadError, InvalidParameterError

pytest.importorskip("numpyro")
pytest.importorskip("arviz")

from causalspy.bayes import (  # noqa: E402
    MapPosterior,
    detect_wall,
    fit_map,
    synthetic_map,
    synthetic_wall_maps,
    wall_profile,
)


@pytest.fixture(scope="module")
def wall_maps():
    return synthetic_wall_maps(seed=0)


# ------------------------------------------------------------------ profiles (no sampling)
def test_detect_wall_finds_position_and_orientation(wall_maps):
    maps, truth = wall_maps
    for method in ("sign", "gradient"):
        a, b, info = detect_wall(maps, "dx", method=method)
        n = np.array(info["normal"])
        assert abs(n @ np.array(truth["normal"])) > 0.99, (method, info)
        # the detected centre lies on the true wall (within half a cell)
        c = np.array(info["centre"]) - np.array(truth["centre"])
        assert abs(c @ np.array(truth["normal"])) < 0.2, (method, info)
    with pytest.raises(InvalidParameterError, match="does not change sign"):
        detect_wall(np.abs(maps.inav[0].data), method="sign")


def test_wall_profile_band_statistics(wall_maps):
    maps, truth = wall_maps
    c = np.array(truth["centre"])
    n = np.array(truth["normal"])
    a, b = c - 6 * n, c + 6 * n
    p = wall_profile(maps, "dx", a, b, width=4.0)
    t = p.table
    assert p.units == "nm" and p.value_unit == "pm" and p.name == "dx"
    # calibrated distance: the wall is half-way along the 12 nm line
    assert t["distance"].max() == pytest.approx(12.0, abs=0.4)
    far = t[np.abs(t["distance"] - 6) > 3]
    np.testing.assert_allclose(np.abs(far["mean"]), truth["P_s"], atol=4 * far["sem"].max())
    # band sd is the pixel noise, the sem shrinks with the number averaged
    assert far["sd"].median() == pytest.approx(truth["sigma"], rel=0.3)
    np.testing.assert_allclose(t["sem"], t["sd"] / np.sqrt(t["n"]))
    assert (t["n"] >= 5).all()
    # the band mean follows the tanh profile
    model = truth["P_s"] * np.tanh((t["distance"] - 6) / truth["w"])
    assert np.sqrt(np.mean((t["mean"] - model) ** 2)) < 2.0
    # points sit at the mean projected position of their pixels
    assert np.all(np.diff(t["distance"]) > 0)
    # a line is a band one pixel wide: no per-point errors, invalid cells skipped
    line = wall_profile(maps, "dx", a, b)
    assert line.yerr is None and (line.table["n"] <= 2).all()
    assert len(line.table) <= len(t)
    # default: detect the wall
    auto = wall_profile(maps, "dx", width=2.0)
    assert len(auto.table) > 20


def test_wall_profile_bad_input(wall_maps):
    maps, _ = wall_maps
    with pytest.raises(InvalidParameterError, match="No descriptor"):
        wall_profile(maps, "pz", (0, 0), (5, 5))
    with pytest.raises(InvalidParameterError, match="both"):
        wall_profile(maps, "dx", (0, 0))
    with pytest.raises(InvalidParameterError, match="same point"):
        wall_profile(maps, "dx", (1, 1), (1, 1))
    with pytest.raises(InvalidParameterError, match="fewer than 3"):
        wall_profile(maps, "dx", (-50, -50), (-40, -40), width=1.0)
    z = maps.inav[0].data.copy()
    before = z.copy()
    wall_profile(z, None, (0, 0), (30, 10), width=2)  # plain arrays work, in pixels
    np.testing.assert_array_equal(z, before)


def test_profile_fit_recovers_wall(wall_maps):
    maps, truth = wall_maps
    c, n = np.array(truth["centre"]), np.array(truth["normal"])
    p = wall_profile(maps, "dx", c - 6 * n, c + 6 * n, width=4.0)
    post = p.fit("tanh", chains=4, warmup=300, draws=500, seed=0)
    s = post.summary()
    assert s.loc["w", "unit"] == "nm" and s.loc["P_s", "unit"] == "pm"
    for k, v in (("P_s", truth["P_s"]), ("w", truth["w"]), ("x0", 6.0)):
        assert abs(s.loc[k, "mean"] - v) < 3 * s.loc[k, "sd"], post


# ------------------------------------------------------------------ structured GP
@pytest.fixture(scope="module")
def gp_case():
    z, truth = synthetic_map((40, 40), ell=5.0, seed=0)
    z = z.copy()
    z[5:9, 20:30] = np.nan  # a masked patch: filled by the GP with larger sd
    return z, truth, fit_map(z, "plane", seed=0)


def test_fit_map_separates_physics_and_residual(gp_case, tmp_path):
    z, truth, post = gp_case
    assert post.converged, post
    s = post.summary()
    for k in ("b", "s_x", "s_y", "sigma"):
        assert abs(s.loc[k, "mean"] - truth[k]) < 3 * s.loc[k, "sd"], post
    # the trend is pinned down by the data (the GP cannot carry a plane): its sd is
    # close to the noise-only least-squares value sigma / sqrt(n), not the GP's size
    assert s.loc["s_x", "sd"] < 3 * truth["sigma"] / np.sqrt(np.sum((np.arange(40) - 19.5) ** 2)
                                                            * 40), post
    # residual map correlates with the true residual and, like it, has no plane in it
    r = np.corrcoef(post.residual_mean.ravel(), truth["residual"].ravel())[0, 1]
    assert r > 0.99, r
    Y, X = np.mgrid[0:40, 0:40] - 19.5
    A = np.column_stack([np.ones(X.size), X.ravel(), Y.ravel()])
    coef = np.linalg.lstsq(A, post.residual_mean.ravel(), rcond=None)[0]
    assert np.all(np.abs(coef) < 1e-6), coef
    np.testing.assert_allclose(post.physics_mean, truth["physics"], atol=0.01)
    tot = truth["physics"] + truth["residual"]
    err = post.total_mean - tot
    assert np.sqrt(np.mean(err ** 2)) < 2 * truth["sigma"]
    # honest uncertainty: the noise-free map lies within its 90 % band almost everywhere,
    # and the masked patch is less certain than measured pixels. (By how much: the exact
    # GP with the generating kernel, SE length sqrt(2) * 5 px, amplitude 0.3, gives 1.45
    # for this 4-px-wide gap — a gap narrower than the correlation length is well
    # interpolated — so more than 1.5 would be over-stated uncertainty.)
    assert np.mean(np.abs(err) < 1.645 * post.total_sd) > 0.8
    ratio = post.total_sd[5:9, 20:30].mean() / post.total_sd[20:30, 5:15].mean()
    assert 1.3 < ratio < 1.7, ratio
    assert post.physics_mean.shape == z.shape and np.all(post.residual_sd > 0)
    fig = post.plot()
    assert len(fig.axes) >= 6
    back = MapPosterior.load(post.save(tmp_path / "map.nc"))
    np.testing.assert_array_equal(back.residual_mean, post.residual_mean)
    assert back.summary().equals(s) and back.model == "plane"


def test_fit_map_on_descriptor_maps_and_bad_input(wall_maps, tmp_path):
    maps, _ = wall_maps
    with pytest.raises(InvalidParameterError, match="name="):
        fit_map(maps)
    with pytest.raises(InvalidParameterError, match="Unknown map model"):
        fit_map(maps, "sphere", name="dx")
    with pytest.raises(InvalidParameterError, match="no variation"):
        fit_map(np.ones((10, 10)))
    with pytest.raises(InvalidParameterError, match="usable pixels"):
        fit_map(np.full((10, 10), np.nan))
    with pytest.raises(InvalidParameterError, match="does not have"):
        fit_map(np.random.default_rng(0).normal(size=(10, 10)), priors=["w=LogNormal(0,1)"])
    with pytest.raises(InvalidParameterError, match="must be positive"):
        fit_map(np.random.default_rng(0).normal(size=(10, 10)), priors=["ell=Normal(0,1)"])
    (tmp_path / "junk.nc").write_text("x")
    with pytest.raises(FileReadError):
        MapPosterior.load(tmp_path / "junk.nc")
