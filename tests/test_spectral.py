"""Per-pixel spectral descriptors against ground truth, lazy == eager, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hyperspy.signals import Signal1D, Signal2D

from causalspy.data import eels_spectrum_image
from causalspy.exceptions import InvalidImageError, InvalidParameterError
from causalspy.multimodal import (
    Edge,
    Integral,
    edge,
    eds_line,
    spectral_descriptor_maps,
    spectral_descriptors,
    spectral_loadings,
)


@pytest.fixture(scope="module")
def si():
    return eels_spectrum_image(cells=(12, 12), seed=3)


def _spectra(values, energy, scale=1.0, offset=0.0, units="eV"):
    s = Signal1D(np.asarray(values, float))
    ax = s.axes_manager.signal_axes[0]
    ax.scale, ax.offset, ax.units = scale, offset, units
    return s


def test_edge_shift_matches_truth_and_its_error_bar(si):
    maps, units = spectral_descriptors(si.core_loss, edges=["Ti_L23"])
    assert units["Ti_L23_shift"] == "eV" and units["Ti_L23_l3_l2"] == ""
    true = si.truth.maps["edge_shift"]
    est = maps["Ti_L23_shift"]
    # shifts are relative to the mean spectrum: compare after removing the mean
    d = (est - np.nanmean(est)) - (true - true.mean())
    rms = float(np.sqrt(np.nanmean(d**2)))
    err = float(np.nanmedian(maps["Ti_L23_shift_err"]))
    assert rms < 0.05  # eV, per pixel, at 0.25 eV per channel
    assert 0.6 < rms / err < 1.6  # the error bar is honest
    # the onset is the steepest rise of the L3 white line, about 1 eV above 456 eV
    assert 456.0 < np.nanmean(maps["Ti_L23_onset"]) < 457.5


def test_subchannel_shift_without_pixel_locking():
    """Noise-free spectra shifted by fractions of a channel come back to < 0.003 eV."""
    d = eels_spectrum_image(cells=(8, 8), seed=0, poisson=False)
    ref = np.asarray(d.core_loss.data, float).mean(axis=(0, 1))
    e = d.core_loss.axes_manager.signal_axes[0].axis
    shifts = np.array([-0.61, -0.2, 0.0, 0.05, 0.125, 0.37])  # eV; channels of 0.25 eV
    spec = np.stack([np.interp(e - s, e, ref) for s in shifts])[None]
    s = _spectra(spec, e, scale=e[1] - e[0], offset=e[0])
    maps, _ = spectral_descriptors(s, edges=["Ti_L23"], reference=ref)
    np.testing.assert_allclose(maps["Ti_L23_shift"][0], shifts, atol=3e-3)


def test_white_line_ratio_and_plasmon_follow_truth(si):
    maps, _ = spectral_descriptors(si.core_loss, edges=["Ti_L23"])
    cell = si.truth.cell_index.ravel()
    r = maps["Ti_L23_l3_l2"].ravel()
    nc = len(si.truth.cells)
    n = np.bincount(cell, minlength=nc)
    used = (n > 10) & si.truth.cells["unit"].to_numpy(bool)
    r_cell = (np.bincount(cell, r, minlength=nc) / np.maximum(n, 1))[used]
    t_cell = si.truth.cells["l3_l2_true"].to_numpy()[used]
    assert np.corrcoef(r_cell, t_cell)[0, 1] > 0.8
    m2, u2 = spectral_descriptors(si.low_loss, plasmon=(15, 45))
    assert u2["plasmon"] == "eV"
    d = m2["plasmon"] - si.truth.maps["plasmon_peak"]
    assert abs(np.mean(d)) < 0.05 and np.std(d) < 0.06  # eV
    assert 0.6 < np.std(d) / np.median(m2["plasmon_err"]) < 1.6


def test_eds_line_integral_with_linear_background():
    rng = np.random.default_rng(0)
    e = np.arange(0.2, 10.0, 0.01)  # keV
    area = np.array([2e4, 4e4, 8e4])
    line = eds_line("Fe_Ka")
    e0 = 6.4039
    sig = 0.13 / 2.3548
    bg = 300 - 15 * e
    peaks = area[:, None] * 0.01 * np.exp(-0.5 * ((e - e0) / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
    data = rng.poisson(bg[None] + peaks)[None].astype(float)
    s = _spectra(data, e, scale=0.01, offset=0.2, units="keV")
    maps, units = spectral_descriptors(s, integrals=[line])
    got, err = maps["Fe_Ka"][0], maps["Fe_Ka_err"][0]
    frac = 0.9832  # fraction of a Gaussian within +/- 1.2 FWHM
    assert np.all(np.abs(got - frac * area) < 4 * err)
    assert units["Fe_Ka"] == "counts"


def test_powerlaw_edge_integral():
    e = np.arange(400.0, 600.0, 0.5)
    bg = 1e9 * e**-3.0
    jump = 500.0 * (e >= 532)
    s = _spectra(np.stack([bg + jump, bg + 2 * jump])[None], e, scale=0.5, offset=400.0)
    integ = Integral("O_K_signal", (535.0, 565.0), "powerlaw", ((500.0, 530.0),))
    maps, _ = spectral_descriptors(s, integrals=[integ])
    np.testing.assert_allclose(maps["O_K_signal"][0], [500 * 61, 1000 * 61], rtol=2e-3)


def test_lazy_equals_eager_and_descriptor_maps(si):
    eager = spectral_descriptor_maps(si.core_loss, edges=["Ti_L23"])
    lazy_s = si.core_loss.as_lazy()
    lazy_s.data = lazy_s.data.rechunk((7, 9, -1))
    lazy = spectral_descriptor_maps(lazy_s, edges=["Ti_L23"])
    np.testing.assert_allclose(np.asarray(lazy.data), np.asarray(eager.data), rtol=1e-9,
                               equal_nan=True)
    assert eager.metadata.Signal.signal_type == "descriptor_maps"
    nav = si.core_loss.axes_manager.navigation_axes
    ax = eager.axes_manager.signal_axes[0]
    assert ax.scale == pytest.approx(nav[0].scale) and ax.units == "nm"
    assert eager.metadata.Descriptors.units[eager.descriptor_names.index("Ti_L23_shift")] == "eV"


def test_decomposition_loadings_follow_the_mixture():
    rng = np.random.default_rng(1)
    e = np.arange(100.0, 200.0, 1.0)
    a = np.exp(-0.5 * ((e - 130) / 5) ** 2) * 100 + 5
    b = np.exp(-0.5 * ((e - 170) / 8) ** 2) * 80 + 5
    frac = rng.uniform(0, 1, (20, 20))
    data = rng.poisson(frac[..., None] * a + (1 - frac[..., None]) * b).astype(float)
    s = _spectra(data, e, offset=100.0)
    before = s.data.copy()
    load = spectral_loadings(s, 2, "NMF")
    assert set(load) == {"nmf_0", "nmf_1"}
    best = max(abs(np.corrcoef(v.ravel(), frac.ravel())[0, 1]) for v in load.values())
    assert best > 0.95
    np.testing.assert_array_equal(s.data, before)
    assert s.learning_results.loadings is None
    m = spectral_descriptor_maps(s, decomposition=2)
    assert m.descriptor_names == ["nmf_0", "nmf_1"]
    lz = s.as_lazy()
    lz.data = lz.data.rechunk((5, 20, -1))
    load = spectral_loadings(lz, 2, "NMF")  # chunk-wise MiniBatchNMF, not per spectrum
    best = max(abs(np.corrcoef(v.ravel(), frac.ravel())[0, 1]) for v in load.values())
    assert best > 0.95


def test_edge_from_database_and_custom_edge():
    ti = edge("Ti_L23")
    assert ti.onset == 456.0 and ti.l2_onset == 462.0 and ti.l3 is not None
    ok = edge("O_K")
    assert ok.onset == 532.0 and ok.l3 is None
    assert edge("Ti_L23", units="keV").onset == pytest.approx(0.456)
    with pytest.raises(InvalidParameterError, match="database"):
        edge("Xx_K")
    with pytest.raises(InvalidParameterError, match="look like"):
        edge("TiL23")
    with pytest.raises(InvalidParameterError, match="database"):
        eds_line("Fe_Zz")
    custom = Edge("edge", 456.0, (425.0, 450.0), (450.0, 474.0))
    d = eels_spectrum_image(cells=(8, 8), seed=0, poisson=False)
    maps, _ = spectral_descriptors(d.core_loss, edges=[custom])
    assert set(maps) == {"edge_onset", "edge_shift", "edge_shift_err"}


# ------------------------------------------------------------------ bad input
def test_bad_input_gives_clear_errors(si):
    s = si.core_loss.inav[:6, :5].deepcopy()
    before = s.data.copy()
    with pytest.raises(InvalidImageError, match="bare array"):
        spectral_descriptors(np.asarray(s.data), edges=["Ti_L23"])
    nocal = s.deepcopy()
    nocal.set_signal_type("")
    ax = nocal.axes_manager.signal_axes[0]
    ax.units, ax.scale, ax.offset = "<undefined>", 1.0, 0.0
    with pytest.raises(InvalidImageError, match="no energy calibration"):
        spectral_descriptors(nocal, edges=["Ti_L23"])
    with pytest.raises(InvalidImageError, match="one signal"):
        spectral_descriptors(Signal2D(np.ones((20, 20))), edges=["Ti_L23"])
    with pytest.raises(InvalidImageError, match="navigation"):
        spectral_descriptor_maps(s.inav[:, 0], edges=["Ti_L23"])
    bad = s.deepcopy()
    bad.data[2, 3, 10] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        spectral_descriptors(bad, edges=["Ti_L23"])
    with pytest.raises(InvalidImageError, match="NaN"):
        spectral_descriptors(bad.as_lazy(), edges=["Ti_L23"])
    with pytest.raises(InvalidParameterError, match="window"):
        spectral_descriptors(s, plasmon=(15, 45))  # the core-loss axis starts at 420 eV
    with pytest.raises(InvalidParameterError, match="Nothing to measure"):
        spectral_descriptors(s)
    with pytest.raises(InvalidParameterError, match="before the edge"):
        spectral_descriptors(s, edges=[Edge("x", 456.0, (440.0, 460.0), (450.0, 474.0))])
    with pytest.raises(InvalidParameterError, match="reference"):
        spectral_descriptors(s, edges=["Ti_L23"], reference=np.ones(10))
    np.testing.assert_array_equal(s.data, before)


def test_lazy_generator_output_goes_through_dask():
    d = eels_spectrum_image(cells=(8, 8), seed=0, lazy=True)
    assert d.core_loss._lazy and d.low_loss._lazy
    m = spectral_descriptor_maps(d.low_loss, plasmon=(15, 45))
    assert np.all(np.isfinite(m.get_map("plasmon").data))
    assert abs(np.mean(m.get_map("plasmon").data - d.truth.maps["plasmon_peak"])) < 0.05


# ------------------------------------------------------------------ command line
def test_cli_spectral_matches_the_api(si, tmp_path, capsys):
    import hyperspy.api as hs

    from causalspy.cli import main

    si.core_loss.save(tmp_path / "core.hspy")
    si.low_loss.save(tmp_path / "low.hspy")
    assert main(["spectral", str(tmp_path / "core.hspy"), "--edges", "Ti_L23", "--out",
                 str(tmp_path / "core_maps.hspy"), "--plot", str(tmp_path / "core.png")]) == 0
    assert "Ti_L23_shift" in capsys.readouterr().out
    m = hs.load(tmp_path / "core_maps.hspy")
    assert m.metadata.Descriptors.names[:3] == ["Ti_L23_onset", "Ti_L23_shift",
                                                "Ti_L23_shift_err"]
    ref = spectral_descriptor_maps(si.core_loss, edges=["Ti_L23"])
    np.testing.assert_allclose(m.get_map("Ti_L23_shift").data, ref.get_map("Ti_L23_shift").data,
                               atol=1e-9, equal_nan=True)
    assert m.axes_manager.signal_axes[0].scale == pytest.approx(
        si.core_loss.axes_manager.navigation_axes[0].scale)  # the scan calibration
    assert (tmp_path / "core.png").stat().st_size > 0
    assert main(["spectral", str(tmp_path / "low.hspy"), "--plasmon", "15,45", "--eager",
                 "--out", str(tmp_path / "low_maps.zspy")]) == 0
    p = hs.load(tmp_path / "low_maps.zspy").get_map("plasmon").data
    assert abs(np.mean(p - si.truth.maps["plasmon_peak"])) < 0.05


def test_cli_spectral_bad_input_one_line(si, tmp_path, capsys):
    from causalspy.cli import main

    nocal = si.core_loss.inav[:4, :4].deepcopy()
    nocal.set_signal_type("")
    nocal.axes_manager.signal_axes[0].units = "<undefined>"
    nocal.save(tmp_path / "nocal.hspy")
    si.core_loss.inav[:4, :4].save(tmp_path / "core.hspy")
    Signal2D(np.ones((16, 16))).save(tmp_path / "img.hspy")
    out = str(tmp_path / "m.hspy")
    cases = [
        (["nope.hspy", "--edges", "Ti_L23"], "No such file"),
        ([str(tmp_path / "nocal.hspy"), "--edges", "Ti_L23"], "no energy calibration"),
        ([str(tmp_path / "img.hspy"), "--edges", "Ti_L23"], "one signal"),
        ([str(tmp_path / "core.hspy")], "Nothing to measure"),
        ([str(tmp_path / "core.hspy"), "--plasmon", "15"], "LO,HI"),
        ([str(tmp_path / "core.hspy"), "--plasmon", "15,45"], "window"),
        ([str(tmp_path / "core.hspy"), "--edges", "Xx_K"], "Edge names|No Xx"),
        ([str(tmp_path / "core.hspy"), "--edges", "Ti_L23", "--index", "3"], "out of range"),
    ]
    for argv, match in cases:
        assert main(["spectral", *argv, "--out", out]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("causalspy: error:"), err
        assert __import__("re").search(match, err), (argv, err)
    assert not (tmp_path / "m.hspy").exists()


def test_cli_spectral_eds_lines(tmp_path):
    import hyperspy.api as hs

    from causalspy.cli import main

    rng = np.random.default_rng(1)
    e = np.arange(0.2, 10.0, 0.01)  # keV
    area = rng.uniform(1e4, 8e4, (3, 4))
    sig = 0.13 / 2.3548
    peak = 0.01 * np.exp(-0.5 * ((e - 6.4039) / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
    data = rng.poisson((300 - 15 * e) + area[..., None] * peak).astype(float)
    _spectra(data, e, scale=0.01, offset=0.2, units="keV").save(tmp_path / "eds.hspy")
    assert main(["spectral", str(tmp_path / "eds.hspy"), "--eds-lines", "Fe_Ka", "--out",
                 str(tmp_path / "m.hspy")]) == 0
    m = hs.load(tmp_path / "m.hspy")
    got, err = m.get_map("Fe_Ka").data, m.get_map("Fe_Ka_err").data
    assert np.all(np.abs(got - 0.9832 * area) < 4 * err)  # 98.3 % of a Gaussian in +/-1.2 FWHM
