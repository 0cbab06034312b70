"""Co-registration against known transforms, mapping onto cells, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hyperspy.signals import Signal2D

from causalspy.data import eels_spectrum_image, perovskite
from causalspy.descriptors import Descriptors
from causalspy.exceptions import InvalidImageError, InvalidParameterError
from causalspy.multimodal import Registration, coregister, map_to_cells, register


@pytest.fixture(scope="module")
def sample():
    return eels_spectrum_image(cells=(20, 20), seed=5)


@pytest.mark.parametrize("kw", [
    {"rotation_deg": 7.0, "si_pixel": 2.0, "drift_px": (5.3, -3.7)},
    {"rotation_deg": -31.0, "si_pixel": 1.6, "drift_px": (-8.2, 6.1)},
    {"rotation_deg": 95.0, "si_pixel": 2.5, "drift_px": (2.5, 9.0)},
])
def test_registration_error_below_a_tenth_of_a_pixel(kw):
    d = eels_spectrum_image(cells=(20, 20), seed=1, **kw)
    before = d.adf.data.copy()
    reg = register(d.haadf, d.adf)
    err = reg.error_px(d.truth.transform)
    assert err < 0.1  # target < 0.5 px
    assert reg.rotation_deg == pytest.approx(kw["rotation_deg"], abs=0.05)
    assert reg.scale == pytest.approx(kw["si_pixel"], rel=2e-3)
    np.testing.assert_allclose(reg.shift, kw["drift_px"], atol=0.1)
    assert 0 < reg.uncertainty_px < 0.2 and reg.ncc > 0.9
    np.testing.assert_array_equal(d.adf.data, before)


def test_registration_without_calibration_estimates_the_scale(sample):
    reg = register(np.asarray(sample.haadf.data), np.asarray(sample.adf.data))
    assert reg.error_px(sample.truth.transform) < 0.1
    sim = register(sample.haadf, sample.adf, model="similarity", rotation=7.0)
    assert sim.error_px(sample.truth.transform) < 0.1
    assert "rotation" in repr(sim) and sim.to_dict()["scale"] == pytest.approx(2.0, rel=1e-3)


def test_map_to_cells_recovers_per_cell_truth(sample):
    true = sample.truth
    cells = true.cells
    reg = Registration(true.transform, moving_shape=sample.adf.data.shape,
                       reference_shape=sample.haadf.data.shape)
    maps = {"edge_shift": true.maps["edge_shift"], "plasmon": true.maps["plasmon"]}
    pos = cells[["x", "y"]].to_numpy()
    out = map_to_cells(maps, pos, reg)
    got = out["edge_shift"].to_numpy()
    have = np.isfinite(got)
    assert have.sum() > 0.5 * len(cells)
    # every pixel carries the spectrum of its nearest cell: the Voronoi mean is exact
    np.testing.assert_allclose(got[have], cells["edge_shift_true"].to_numpy()[have], atol=1e-12)
    win = map_to_cells(maps, pos, reg, mode="window", radius=3.0, errors=True)
    ok = np.isfinite(win["plasmon"].to_numpy())
    np.testing.assert_allclose(win["plasmon"].to_numpy()[ok],
                               cells["plasmon_true"].to_numpy()[ok], atol=1e-12)
    assert "plasmon_sem" in win.to_dataframe()


def test_cells_at_the_field_edge_need_most_of_their_pixels(sample):
    """A cell mostly outside the spectrum image would otherwise be represented by a pixel or
    two on its Voronoi border, which carry the neighbouring cell's spectrum."""
    true = sample.truth
    cells = true.cells
    reg = Registration(true.transform, moving_shape=sample.adf.data.shape,
                       reference_shape=sample.haadf.data.shape)
    # measured positions: 0.3 px off the true ones, so border pixels change owner
    pos = cells[["x", "y"]].to_numpy() + np.random.default_rng(0).normal(0, 0.3, (len(cells), 2))
    maps = {"edge_shift": true.maps["edge_shift"]}
    truth = cells["edge_shift_true"].to_numpy()
    spread = np.nanstd(truth)
    unit = cells["unit"].to_numpy(bool)

    def worst(out):
        got = out["edge_shift"].to_numpy()
        ok = np.isfinite(got) & unit
        return np.max(np.abs(got[ok] - truth[ok])) / spread, ok.sum()

    bad, n_all = worst(map_to_cells(maps, pos, reg, min_coverage=0))
    out = map_to_cells(maps, pos, reg)
    good, n_kept = worst(out)
    assert bad > 0.8  # some edge cell carries mostly its neighbour's value
    assert good < 0.3 and n_kept > 0.85 * n_all  # as good as the interior cells
    assert out.metadata["multimodal"][-1]["cells_dropped_at_field_edge"] > 0


def test_coregister_into_descriptors_with_units_and_provenance(sample, tmp_path):
    from causalspy.multimodal import spectral_descriptor_maps

    desc = sample.haadf.find_atoms().descriptors(structure="perovskite")
    n_before = len(desc.to_dataframe().columns)
    maps = spectral_descriptor_maps(sample.low_loss, plasmon=(15, 45))
    out = coregister(desc, maps, reference=sample.haadf, moving=sample.adf, prefix="eels_")
    t = out.to_dataframe()
    assert {"eels_plasmon", "eels_plasmon_err"} <= set(t.columns)
    assert len(t.columns) == n_before + 2 and len(t) == len(desc)
    assert len(desc.to_dataframe().columns) == n_before  # the input is not modified
    assert "multimodal" not in desc.metadata
    assert out.units["eels_plasmon"] == "eV" and out.units["area"] == desc.units["area"]
    prov = out.metadata["multimodal"][-1]
    assert prov["registration"]["ncc"] > 0.9 and prov["cells_with_data"] > 0
    # the per-cell error is the error of the mean: much below the per-pixel error
    pix_err = np.nanmedian(maps.get_map("plasmon_err").data)
    assert np.nanmedian(t["eels_plasmon_err"]) < 0.5 * pix_err
    # cell means track the truth per cell
    from causalspy.data import match_columns

    tc = sample.truth.cells
    m = match_columns(t[["x", "y"]].to_numpy(), tc[["x", "y"]].to_numpy(), 3.0)
    a = t["eels_plasmon"].to_numpy()[m.found_index]
    b = tc["plasmon_peak_true"].to_numpy()[m.true_index]
    ok = np.isfinite(a)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.98
    path = out.save(tmp_path / "multi.csv")
    back = Descriptors.load(path)
    np.testing.assert_array_equal(back["eels_plasmon"].to_numpy(), t["eels_plasmon"].to_numpy())
    assert back.metadata["multimodal"][-1]["names"] == ["eels_plasmon", "eels_plasmon_err"]


def test_simultaneous_map_through_calibrations_only():
    s, _ = perovskite(cells=(6, 6), cell_px=16.0, seed=0)
    atoms = s.find_atoms()
    img = Signal2D(np.asarray(s.data, float))
    for a, b in zip(img.axes_manager.signal_axes, s.axes_manager.signal_axes, strict=True):
        a.scale, a.offset, a.units = b.scale, b.offset, b.units
    img.metadata.General.title = "HAADF copy"
    out = map_to_cells(img, atoms, mode="window", radius=1.0)
    col = out["HAADF_copy"].to_numpy()
    # the same grid through the calibrations: the mean within 1 px of each column is bright
    assert np.isfinite(col).all()
    assert (col > np.median(s.data)).mean() > 0.9
    assert out.to_dataframe()["column_index"].tolist() == list(range(len(atoms)))


# ------------------------------------------------------------------ bad input
def test_grids_that_do_not_overlap(sample):
    far = sample.truth.transform.copy()
    far[:, 2] += 5000.0
    reg = Registration(far, moving_shape=sample.adf.data.shape,
                       reference_shape=sample.haadf.data.shape)
    with pytest.raises(InvalidParameterError, match="do not overlap"):
        map_to_cells({"a": np.ones(sample.adf.data.shape)}, sample.truth.cells[["x", "y"]].
                     to_numpy(), reg)
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidParameterError, match="correlate|overlap"):
        register(sample.haadf, rng.normal(size=(80, 80)), scale=2.0)


def test_bad_images_give_clear_errors(sample):
    img = np.asarray(sample.haadf.data, float)
    bad = img.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        register(bad, sample.adf)
    with pytest.raises(InvalidImageError, match="2D"):
        register(np.ones((4, 40, 40)), sample.adf)
    with pytest.raises(InvalidImageError, match="constant"):
        register(np.ones((40, 40)), sample.adf)
    with pytest.raises(InvalidImageError, match="single 2D image"):
        register(sample.core_loss, sample.adf)
    with pytest.raises(InvalidParameterError, match="model"):
        register(sample.haadf, sample.adf, model="projective")
    with pytest.raises(InvalidParameterError, match="mode"):
        map_to_cells({"a": img}, [[1.0, 2.0]], mode="nearest")
    with pytest.raises(InvalidParameterError, match="No map"):
        map_to_cells({"a": img}, [[1.0, 2.0]], names=["b"])
    with pytest.raises(InvalidParameterError, match="cells must be"):
        map_to_cells({"a": img}, np.ones(5))


# ------------------------------------------------------------------ command line
def test_cli_coregister_matches_the_api(sample, tmp_path, capsys):
    from causalspy.cli import main
    from causalspy.multimodal import spectral_descriptor_maps

    desc = sample.haadf.find_atoms().descriptors(structure="perovskite")
    desc.save(tmp_path / "cells.csv")
    maps = spectral_descriptor_maps(sample.low_loss, plasmon=(15, 45))
    maps.save(tmp_path / "low_maps.hspy")
    sample.haadf.save(tmp_path / "haadf.hspy")
    sample.adf.save(tmp_path / "adf.hspy")
    sample.low_loss.save(tmp_path / "si.hspy")
    f = {k: str(tmp_path / k) for k in ("cells.csv", "low_maps.hspy", "haadf.hspy", "adf.hspy",
                                         "si.hspy", "out.csv")}
    assert main(["coregister", f["cells.csv"], f["low_maps.hspy"], "--reference",
                 f["haadf.hspy"], "--moving", f["adf.hspy"], "--out", f["out.csv"]]) == 0
    assert "registration: scale 2.0" in capsys.readouterr().out
    got = Descriptors.load(f["out.csv"])
    ref = coregister(desc, maps, reference=sample.haadf, moving=sample.adf)
    np.testing.assert_allclose(got["plasmon"].to_numpy(), ref["plasmon"].to_numpy(),
                               rtol=1e-9, equal_nan=True)
    assert got.units["plasmon"] == "eV" and np.isfinite(got["plasmon"]).sum() > 50
    bad = [
        (["nope.csv", f["low_maps.hspy"]], "No such file"),
        ([f["cells.csv"], f["low_maps.hspy"], "--reference", f["haadf.hspy"]], "--moving"),
        ([f["cells.csv"], f["si.hspy"]], "not a set of 2D maps"),
        ([f["haadf.hspy"], f["low_maps.hspy"]], "descriptor table"),
    ]
    for argv, match in bad:
        assert main(["coregister", *argv, "--out", str(tmp_path / "x.csv")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, (argv, err)
