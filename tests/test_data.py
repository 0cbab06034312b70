"""Tests for the synthetic ground-truth image generators in ``causalspy.data``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalspy.data import GroundTruth, Z, hexagonal, perovskite, render_columns, square_lattice
from causalspy.exceptions import InvalidParameterError

BASE_COLUMNS = ["x", "y", "sublattice", "species", "counts", "present", "sigma", "edge"]


def _centroid(img: np.ndarray) -> tuple[float, float]:
    yy, xx = np.indices(img.shape)
    total = img.sum()
    return float((img * xx).sum() / total), float((img * yy).sum() / total)


# --------------------------------------------------------------------------- renderer


@pytest.mark.parametrize(
    ("x", "y", "sigma"),
    [(100.3, 57.8, 3.0), (64.0, 70.0, 1.5), (80.71, 90.49, 5.2), (120.5, 40.5, 2.2)],
)
def test_render_single_gaussian_sum_and_centroid(x, y, sigma):
    counts = 12345.0
    img = render_columns((160, 200), [x], [y], [counts], sigma)
    assert img.dtype == np.float64
    assert img.shape == (160, 200)
    assert img.sum() == pytest.approx(counts, rel=1e-6)
    cx, cy = _centroid(img)
    assert abs(cx - x) < 1e-6
    assert abs(cy - y) < 1e-6


def test_render_peak_pixel_convention():
    img = render_columns((20, 10), [3.0], [5.0], [100.0], 1.0)
    assert np.unravel_index(np.argmax(img), img.shape) == (5, 3)
    # Symmetric about the peak pixel: exactly centred on it.
    np.testing.assert_allclose(img[5, 2], img[5, 4], rtol=1e-12)
    np.testing.assert_allclose(img[4, 3], img[6, 3], rtol=1e-12)
    # A centre on a pixel corner spreads equally on four pixels.
    img = render_columns((20, 20), [7.5], [9.5], [100.0], 1.0)
    quad = img[9:11, 7:9]
    np.testing.assert_allclose(quad, quad[0, 0], rtol=1e-12)
    assert quad.sum() == pytest.approx(4 * img.max())


def test_render_exact_pixel_integration():
    """A pixel's value is the Gaussian integrated over it, not sampled at its centre."""
    from scipy.special import erf

    x0, y0, s, n = 10.2, 11.7, 0.8, 1000.0
    img = render_columns((24, 24), [x0], [y0], [n], s)

    def frac(k, c):
        return 0.5 * (erf((k + 0.5 - c) / (np.sqrt(2) * s)) - erf((k - 0.5 - c) / (np.sqrt(2) * s)))

    for r, c in [(12, 10), (11, 11), (14, 8)]:
        assert img[r, c] == pytest.approx(n * frac(c, x0) * frac(r, y0), rel=1e-10)


def test_render_batches_and_background_match():
    rng = np.random.default_rng(3)
    n = 500
    x = rng.uniform(-10, 110, n)
    y = rng.uniform(-10, 90, n)
    counts = rng.uniform(0, 100, n)
    sigma = rng.uniform(0.7, 3.0, n)
    a = render_columns((80, 100), x, y, counts, sigma, 2.5)
    b = render_columns((80, 100), x, y, counts, sigma, 2.5, batch_size=7)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    c = sum(
        render_columns((80, 100), x[i : i + 1], y[i : i + 1], counts[i], sigma[i])
        for i in range(0, n, 50)
    )
    assert c.shape == a.shape
    assert a.min() >= 2.5
    # Columns far outside the image contribute nothing.
    empty = render_columns((10, 10), [-100.0, 500.0], [5.0, 5.0], [1e4, 1e4], 2.0)
    assert not empty.any()


def test_render_flux_conserved_for_many_columns():
    g = np.arange(20.0, 180.0, 10.0)
    xx, yy = np.meshgrid(g, g)
    img = render_columns((200, 200), xx.ravel(), yy.ravel(), 50.0, 2.0)
    assert img.sum() == pytest.approx(50.0 * xx.size, rel=1e-9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"counts": [-1.0]},
        {"sigma": 0.0},
        {"x": [np.nan]},
        {"shape": (0, 10)},
        {"background": -1.0},
    ],
)
def test_render_rejects_bad_input(kwargs):
    args = {"shape": (10, 10), "x": [5.0], "y": [5.0], "counts": [10.0], "sigma": 1.0}
    args.update(kwargs)
    with pytest.raises(InvalidParameterError):
        render_columns(**args)


# --------------------------------------------------------------------------- common


GENERATORS = {
    "square": lambda **kw: square_lattice(shape=(180, 144), **kw),
    "perovskite": lambda **kw: perovskite(cells=(6, 8), **kw),
    "perovskite_abf": lambda **kw: perovskite(cells=(5, 5), contrast="abf", **kw),
    "hexagonal": lambda **kw: hexagonal(cells=(8, 8), dopant_fraction=0.05, **kw),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_determinism(name):
    gen = GENERATORS[name]
    s1, t1 = gen(seed=11)
    s2, t2 = gen(seed=11)
    s3, t3 = gen(seed=12)
    np.testing.assert_array_equal(s1.data, s2.data)
    pd.testing.assert_frame_equal(t1.columns, t2.columns)
    assert not np.array_equal(s1.data, s3.data)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_signal_and_truth_structure(name):
    s, truth = GENERATORS[name](seed=0)
    assert s.metadata.Signal.signal_type == "atomic_resolution"
    assert type(s).__name__ == "AtomicResolution"
    assert s.data.dtype in (np.float64, np.float32)
    assert np.all(np.isfinite(s.data))
    assert np.all(s.data >= 0)
    ax_x, ax_y = s.axes_manager.signal_axes
    assert (ax_x.name, ax_y.name) == ("x", "y")
    assert (ax_x.size, ax_y.size) == (s.data.shape[1], s.data.shape[0])
    for ax in (ax_x, ax_y):
        assert ax.units == "nm"
        assert ax.offset == 0
        assert ax.scale == pytest.approx(truth.params["pixel_size_nm"])
    assert s.metadata.General.title.startswith("Synthetic")
    stored = s.metadata.Sample.causalspy_truth_parameters.as_dictionary()
    assert stored["generator"] == truth.params["generator"]
    assert stored["seed"] == 0

    assert isinstance(truth, GroundTruth)
    cols = truth.columns
    assert list(cols.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    assert cols["present"].dtype == bool
    assert cols["edge"].dtype == bool
    assert (cols.loc[~cols["present"], "counts"] == 0).all()
    assert (cols.loc[cols["present"], "counts"] > 0).all()
    present = truth.present()
    assert present["present"].all()
    assert len(present) == int(cols["present"].sum())
    assert truth.positions().shape == (len(present), 2)
    # Sites inside the image; edge flag as documented.
    h, w = s.data.shape
    assert cols["x"].between(-0.5 - 3, w - 0.5 + 3).all()
    dist = np.minimum.reduce(
        [cols["x"] + 0.5, w - 0.5 - cols["x"], cols["y"] + 0.5, h - 0.5 - cols["y"]]
    )
    np.testing.assert_array_equal(cols["edge"].to_numpy(), dist < 1.5 * cols["sigma"])


@pytest.mark.parametrize("name", ["square", "perovskite", "hexagonal"])
def test_noise_free_image_matches_truth(name):
    s, truth = GENERATORS[name](seed=4, noise=False)
    cols = truth.columns
    bg = truth.params["background"]
    expected = render_columns(s.data.shape, cols["x"], cols["y"], cols["counts"], cols["sigma"], bg)
    np.testing.assert_allclose(s.data, expected, rtol=1e-12)
    # Poisson noise around the same expectation.
    noisy, _ = GENERATORS[name](seed=4, noise=True)
    assert np.array_equal(noisy.data, np.round(noisy.data))
    assert noisy.data.sum() == pytest.approx(expected.sum(), rel=5 * expected.sum() ** -0.5)


# --------------------------------------------------------------------------- square lattice


def test_square_lattice_defaults():
    s, truth = square_lattice(noise=False)
    cols = truth.columns
    assert s.data.shape == (540, 540)
    assert len(cols) == 900
    assert (cols["sublattice"] == 0).all()
    assert (cols["species"] == "X").all()
    assert cols["x"].min() == pytest.approx(8.5)
    assert cols["x"].max() == pytest.approx(530.5)
    assert not cols["edge"].any()
    # No jitter: exactly on the lattice.
    np.testing.assert_allclose(np.diff(np.unique(cols["x"])), 18.0)
    assert s.axes_manager.signal_axes[0].scale == pytest.approx(0.02)
    # Total flux: every column's counts, minus the tails that fall off the image.
    from scipy.stats import norm

    def on_image(c):
        return norm.cdf((539.5 - c) / 3.5) - norm.cdf((-0.5 - c) / 3.5)

    kept = (1e4 * on_image(cols["x"]) * on_image(cols["y"])).sum()
    assert s.data.sum() == pytest.approx(kept, rel=1e-8)


def test_square_lattice_jitter():
    _, truth = square_lattice(shape=(360, 360), jitter=0.5, seed=2)
    d = truth.columns[["x", "y"]].to_numpy() - truth.columns[["x_ideal", "y_ideal"]].to_numpy()
    assert d.std() == pytest.approx(0.5, rel=0.1)
    assert abs(d.mean()) < 0.1


def test_square_lattice_peak_at_column():
    s, truth = square_lattice(shape=(64, 64), spacing=20.0, margin=10.5, sigma=2.0, noise=False)
    r = truth.columns.iloc[0]
    assert (r.x, r.y) == (10.0, 10.0)
    assert s.data[10, 10] == s.data[:20, :20].max()


# --------------------------------------------------------------------------- perovskite


def test_perovskite_geometry_and_counts_ratio():
    s, truth = perovskite(cells=(6, 8), cell_px=24.0, domains="none", oxygen=True, noise=False)
    cols = truth.columns
    assert s.data.shape == (6 * 24, 8 * 24)
    assert s.axes_manager.signal_axes[0].scale == pytest.approx(0.4 / 24)
    counts = cols.groupby("sublattice")["counts"].first()
    assert counts[0] == pytest.approx(1e4)
    assert counts[1] / counts[0] == pytest.approx((Z["Ti"] / Z["Pb"]) ** 1.7)
    assert counts[2] / counts[0] == pytest.approx((Z["O"] / Z["Pb"]) ** 1.7)
    assert (cols.groupby("sublattice").size() == [48, 48, 96]).all()
    a = cols[cols.sublattice == 0]
    assert np.ptp(a["x"]) == pytest.approx(7 * 24)
    # Centred: A/B pattern spans [0, 7.5 cells]; equal margins both sides.
    b = cols[cols.sublattice == 1]
    left = a["x"].min() + 0.5
    right = s.data.shape[1] - 0.5 - (b["x"] - b["dx"]).max()
    assert left == pytest.approx(right)
    # B displaced by +20 pm along y (pixel size 16.67 pm) everywhere.
    np.testing.assert_allclose(b["dy"], 20e-3 / (0.4 / 24))
    np.testing.assert_allclose(b["dx"], 0.0)
    np.testing.assert_allclose(b["x"], a["x"].to_numpy() + 12.0)
    np.testing.assert_allclose(b["y"], a["y"].to_numpy() + 12.0 + 1.2)
    assert (cols.loc[cols.sublattice != 1, "domain"] == -1).all()
    assert set(cols.loc[cols.sublattice == 0, "species"]) == {"Pb"}


def test_perovskite_180_domains():
    disp_pm = 30.0
    _, truth = perovskite(cells=(8, 20), displacement_pm=disp_pm, domains="180")
    d_px = disp_pm * 1e-3 / truth.params["pixel_size_nm"]
    b = truth.columns[truth.columns.sublattice == 1]
    w = truth.params["domain_width_cells"]
    assert w == 5
    xc = b["cell_j"] + 0.5
    walls = np.arange(w, 20, w)
    far = np.abs(xc.to_numpy()[:, None] - walls[None, :]).min(axis=1) >= 1.5
    expected_sign = np.where((xc // w) % 2 == 0, 1.0, -1.0)
    np.testing.assert_allclose(b["dy"][far], expected_sign[far] * d_px, rtol=1e-2)
    np.testing.assert_allclose(b["dx"], 0.0, atol=1e-12)
    # Displacement is uniform along the stripes (y) and smaller at walls.
    assert (np.abs(b["dy"][~far]) < d_px).all()
    assert set(b["domain"]) == {0, 1, 2, 3}
    signs = b.groupby("domain")["dy"].mean()
    assert (np.sign(signs).to_numpy() == [1, -1, 1, -1]).all()


def test_perovskite_90_and_mixed_domains():
    _, truth = perovskite(cells=(12, 12), displacement_pm=20.0, domains="90")
    d_px = truth.params["displacement_px"]
    b = truth.columns[truth.columns.sublattice == 1]
    mag = np.hypot(b["dx"], b["dy"])
    np.testing.assert_allclose(mag, d_px, rtol=1e-9)
    even = b[b.domain % 2 == 0]
    odd = b[b.domain % 2 == 1]
    assert (even["dx"] > 0).all() and (even["dx"] > np.abs(even["dy"]) - 1e-9).all()
    assert (odd["dy"] > 0).all() and (odd["dy"] > np.abs(odd["dx"]) - 1e-9).all()
    # 45-degree walls: the domain id depends on cell_i + cell_j only.
    assert (b.groupby(b.cell_i + b.cell_j)["domain"].nunique() == 1).all()

    _, truth = perovskite(cells=(8, 16), domains="mixed")
    b = truth.columns[truth.columns.sublattice == 1]
    left = b[b.cell_j < 8]
    right = b[b.cell_j >= 8]
    np.testing.assert_allclose(left["dx"], 0.0, atol=1e-12)
    assert (right["dx"] > 0.1).any()
    assert set(left["domain"]).isdisjoint(set(right["domain"]))


def test_perovskite_a_site_disorder():
    _, truth = perovskite(cells=(10, 10), a_site_disorder=0.3, seed=5, noise=False)
    a = truth.columns[truth.columns.sublattice == 0]
    sr = a[a.species == "Sr"]
    assert len(sr) == 30
    assert set(a.species) == {"Pb", "Sr"}
    assert sr["counts"].iloc[0] == pytest.approx(1e4 * (Z["Sr"] / Z["Pb"]) ** 1.7)
    _, truth = perovskite(cells=(4, 4), species=("Sr", "Ti", "O"), a_site_disorder=1.0)
    assert set(truth.columns.loc[truth.columns.sublattice == 0, "species"]) == {"Ba"}


def test_perovskite_abf():
    s, truth = perovskite(cells=(6, 6), contrast="abf", noise=False, background=2.0)
    cols = truth.columns
    assert truth.params["oxygen"] is True
    assert set(cols["sublattice"]) == {0, 1, 2}
    counts = cols.groupby("sublattice")["counts"].first()
    assert counts[1] / counts[0] == pytest.approx((Z["Ti"] / Z["Pb"]) ** 0.5)
    assert counts[2] / counts[0] == pytest.approx((Z["O"] / Z["Pb"]) ** 0.5)
    img = s.data
    assert img.min() > 0
    # Dark columns: the A site is a local minimum.
    a = cols[(cols.sublattice == 0) & ~cols.edge].iloc[0]
    r, c = int(round(a.y)), int(round(a.x))
    assert img[r, c] == img[r - 3 : r + 4, c - 3 : c + 4].min()
    assert img.max() == pytest.approx(truth.params["bright_level"], rel=0.3)
    noisy, _ = perovskite(cells=(6, 6), contrast="abf")
    assert noisy.data.min() >= 0


# --------------------------------------------------------------------------- hexagonal


def test_hexagonal_geometry_and_counts():
    s, truth = hexagonal(cells=(10, 12), dopant_fraction=0, vacancy_fraction=0, noise=False)
    cols = truth.columns
    assert s.data.shape == (round(10 * 20 * np.sqrt(3) / 2), 12 * 20)
    assert s.axes_manager.signal_axes[0].scale == pytest.approx(0.316 / 20)
    metal = cols[cols.site == "metal"]
    chalc = cols[cols.site == "chalcogen"]
    assert (metal.sublattice == 0).all() and (chalc.sublattice == 1).all()
    assert len(metal) == len(chalc) == 120
    assert (cols.defect == "none").all()
    assert metal["counts"].iloc[0] == pytest.approx(1e4)
    assert chalc["counts"].iloc[0] == pytest.approx(1e4 * 2 * (16 / 42) ** 1.7)
    # Nearest-neighbour distances: a/sqrt(3) metal-chalcogen, a metal-metal.
    from scipy.spatial import cKDTree

    d, _ = cKDTree(chalc[["x", "y"]]).query(metal[["x", "y"]])
    np.testing.assert_allclose(d, 20 / np.sqrt(3), rtol=1e-9)
    d, _ = cKDTree(metal[["x", "y"]]).query(metal[["x", "y"]], k=2)
    np.testing.assert_allclose(d[:, 1], 20.0, rtol=1e-9)
    h, w = s.data.shape
    assert cols["x"].between(-0.5, w - 0.5).all() and cols["y"].between(-0.5, h - 0.5).all()


def test_hexagonal_defects():
    s, truth = hexagonal(cells=(30, 30), dopant_fraction=0.03, vacancy_fraction=0.04, seed=9)
    cols = truth.columns
    for site in ("metal", "chalcogen"):
        c = cols[cols.site == site]
        assert (c.defect == "dopant").mean() == pytest.approx(0.03, abs=1 / len(c))
        assert (c.defect == "vacancy").mean() == pytest.approx(0.04, abs=1 / len(c))
    vac = cols[cols.defect == "vacancy"]
    assert (vac["counts"] == 0).all() and (~vac["present"]).all()
    assert (vac["species"] == "vacancy").all()
    assert (cols.loc[cols.defect != "vacancy", "present"]).all()
    dm = cols[(cols.defect == "dopant") & (cols.site == "metal")]
    dx = cols[(cols.defect == "dopant") & (cols.site == "chalcogen")]
    assert (dm.species == "W").all() and (dx.species == "SSe").all()
    assert dm["counts"].iloc[0] == pytest.approx(1e4 * (74 / 42) ** 1.7)
    assert dx["counts"].iloc[0] == pytest.approx(1e4 * ((16 / 42) ** 1.7 + (34 / 42) ** 1.7))
    # Defects kept apart (no neighbours) and off the border.
    from scipy.spatial import cKDTree

    defects = cols[cols.defect != "none"]
    assert not defects["edge"].any()
    pairs = cKDTree(defects[["x", "y"]]).query_pairs(1.05 * 20.0)
    assert len(pairs) == 0
    # The vacancy is dark in the noise-free image.
    clean, t = hexagonal(
        cells=(30, 30), dopant_fraction=0.03, vacancy_fraction=0.04, seed=9, noise=False
    )
    v = t.columns[(t.columns.defect == "vacancy") & (t.columns.site == "metal")].iloc[0]
    assert clean.data[int(round(v.y)), int(round(v.x))] < 0.2 * clean.data.max()


def test_hexagonal_too_many_defects():
    with pytest.raises(InvalidParameterError, match="neighbouring"):
        hexagonal(cells=(10, 10), dopant_fraction=0.4, vacancy_fraction=0.4)


# --------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    ("func", "kwargs", "match"),
    [
        (square_lattice, {"counts": -1.0}, "counts must be a finite number > 0"),
        (square_lattice, {"sigma": 0}, "sigma"),
        (square_lattice, {"shape": (4, 100)}, "shape must be a pair of integers >= 8"),
        (square_lattice, {"jitter": -0.1}, "jitter"),
        (square_lattice, {"margin": 400.0}, "margin"),
        (square_lattice, {"counts": float("nan")}, "counts"),
        (square_lattice, {"seed": "abc"}, "seed"),
        (perovskite, {"counts": -5.0}, "counts must be a finite number > 0"),
        (perovskite, {"cells": (1, 10)}, "cells must be a pair of integers >= 2"),
        (perovskite, {"cells": (10,)}, "cells"),
        (perovskite, {"domains": "45"}, "'none', '180', '90', 'mixed'"),
        (perovskite, {"contrast": "bf"}, "'haadf', 'abf'"),
        (perovskite, {"species": ("Pb", "Xx", "O")}, "Xx.*not a known element.*Pb"),
        (perovskite, {"species": ("Pb", "Ti")}, "three element symbols"),
        (perovskite, {"a_site_disorder": 1.5}, r"\[0, 1\]"),
        (perovskite, {"a_site_substituent": "Unobtainium"}, "not a known element"),
        (perovskite, {"displacement_pm": -1.0}, "displacement_pm"),
        (hexagonal, {"counts": -1.0}, "counts"),
        (hexagonal, {"cells": (2, 1)}, "cells must be a pair of integers >= 2"),
        (hexagonal, {"metal": "mo"}, "not a known element"),
        (hexagonal, {"dopant": ("W", "Qq")}, "not a known element"),
        (hexagonal, {"dopant": "W"}, "pair of element symbols"),
        (hexagonal, {"vacancy_fraction": -0.1}, "vacancy_fraction"),
        (hexagonal, {"dopant_fraction": 0.7, "vacancy_fraction": 0.7}, "<= 1"),
    ],
)
def test_bad_parameters(func, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        func(**kwargs)


def test_element_table():
    for el, z in {"Pb": 82, "Ba": 56, "Sr": 38, "Ti": 22, "O": 8, "Mo": 42, "S": 16}.items():
        assert Z[el] == z
    # Domain names accept ints and case-insensitive strings.
    _, t = perovskite(cells=(3, 3), domains=180)
    assert t.params["domains"] == "180"
    _, t = perovskite(cells=(3, 3), contrast="HAADF")
    assert t.params["contrast"] == "haadf"
