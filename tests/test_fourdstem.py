"""4D-STEM: signal type, one-pass CoM/virtual detectors, DPC against ground truth."""

from __future__ import annotations

import hyperspy.api as hs
import numpy as np
import pytest

from causalspy.data import fourd_stem
from causalspy.exceptions import InvalidImageError, InvalidParameterError
from causalspy.multimodal import (
    annular_detector,
    bad_pixel_mask,
    center_of_mass,
    dpc,
    fourd_descriptor_maps,
    virtual_images,
)
from causalspy.multimodal.fourdstem import Detector, _plane_fit
from causalspy.signals import Diffraction4D, LazyDiffraction4D


@pytest.fixture(scope="module")
def sample():
    return fourd_stem(scan_shape=(40, 40), detector_shape=(48, 48), rotation_deg=25.0, seed=3)


def test_signal_type_registered(capsys):
    hs.print_known_signal_types()
    assert "diffraction_4d" in capsys.readouterr().out
    s = hs.signals.Signal2D(np.zeros((3, 3, 8, 8)))
    s.set_signal_type("diffraction_4d")
    assert isinstance(s, Diffraction4D)
    lz = hs.signals.Signal2D(np.zeros((3, 3, 8, 8))).as_lazy()
    lz.set_signal_type("diffraction_4d")
    assert isinstance(lz, LazyDiffraction4D)


def test_com_and_detectors_match_numpy():
    rng = np.random.default_rng(0)
    data = rng.poisson(50, (5, 6, 20, 24)).astype(np.uint16)
    s = Diffraction4D(data)
    cx, cy, tot = center_of_mass(s, center=(0.0, 0.0))
    ky, kx = np.indices((20, 24))
    d = data.astype(float)
    t = d.sum(axis=(2, 3))
    np.testing.assert_allclose(tot, t, rtol=1e-10)
    np.testing.assert_allclose(cx, (d * kx).sum(axis=(2, 3)) / t, rtol=1e-9)
    np.testing.assert_allclose(cy, (d * ky).sum(axis=(2, 3)) / t, rtol=1e-9)
    dets = [annular_detector("a", (20, 24), (11.5, 9.5), 0, 5),
            annular_detector("b", (20, 24), (11.5, 9.5), 5, 9),
            annular_detector("c", (20, 24), (11.5, 9.5), 2, 7),
            Detector("soft", rng.random((20, 24)))]
    im = virtual_images(s, dets)
    for det in dets:
        np.testing.assert_allclose(im[det.name], (d * det.weights).sum(axis=(2, 3)), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_edge_event_detectors_match_numpy(dtype):
    # realistic detector size: disks and annuli go through the summation-by-parts path
    from causalspy.multimodal._fourd_kernels import N_MOMENTS, prepare

    rng = np.random.default_rng(1)
    data = (rng.random((4, 5, 64, 64)) * 100).astype(dtype)
    c = (31.3, 32.6)
    rect = np.zeros((64, 64), np.float32)
    rect[5:20, 40:60] = 2.5                       # a user-defined (weighted) region
    dets = [annular_detector("bf", (64, 64), c, 0, 8),
            annular_detector("adf", (64, 64), c, 10, 30),
            annular_detector("overlap", (64, 64), c, 6, 12),
            Detector("rect", rect),
            Detector("soft", rng.random((64, 64)))]  # changes everywhere: dense path
    args, cols = prepare((64, 64), dets, None, c)
    assert args[0].shape[0] == 2 and args[-3] == 4    # soft (padded) dense, four by edges
    assert len(set(cols.values())) == 5 and min(cols.values()) == N_MOMENTS
    mask = np.zeros((64, 64), bool)
    mask[[3, 30, 33], [7, 31, 40]] = True           # dead pixels, two inside the disks
    bad = data.astype(np.float64)
    bad[..., mask] = np.nan
    d = np.where(mask, 0.0, data.astype(np.float64))
    for arr, m in ((data, None), (bad, mask)):
        ref = d if m is not None else data.astype(np.float64)
        im = virtual_images(Diffraction4D(arr), dets, mask=m)
        for det in dets:
            np.testing.assert_allclose(im[det.name], (ref * det.weights).sum(axis=(2, 3)),
                                       rtol=2e-6)
        cx, cy, tot = center_of_mass(Diffraction4D(arr), mask=m, center=(0.0, 0.0))
        ky, kx = np.indices((64, 64))
        np.testing.assert_allclose(cx, (ref * kx).sum(axis=(2, 3)) / ref.sum(axis=(2, 3)),
                                   rtol=1e-6)
        np.testing.assert_allclose(cy, (ref * ky).sum(axis=(2, 3)) / ref.sum(axis=(2, 3)),
                                   rtol=1e-6)


def test_dpc_recovers_field_rotation_and_charge(sample):
    s, truth = sample
    before = s.data.copy()
    r = s.dpc()
    assert np.array_equal(s.data, before)                       # input untouched
    assert abs(np.rad2deg(r.rotation) - 25.0) < 1.0
    assert r.flip is False
    # a plane over the scan is not identifiable from descan: compare without it
    tx = truth.field_x - _plane_fit(truth.field_x)
    ty = truth.field_y - _plane_fit(truth.field_y)
    err = np.sqrt(np.mean((r.dpc_x - tx) ** 2 + (r.dpc_y - ty) ** 2) / 2)
    noise = np.sqrt(np.mean(r.com_noise ** 2))
    assert err < 1.2 * noise, (err, noise)                       # at the Poisson limit
    assert np.corrcoef(r.charge.ravel(), truth.charge.ravel())[0, 1] > 0.95
    assert np.corrcoef(r.potential.ravel(), truth.potential.ravel())[0, 1] > 0.8
    # the virtual ADF sees the atoms
    assert np.corrcoef(r.images["vadf"].ravel(), truth.potential.ravel())[0, 1] > 0.8


def test_dpc_with_known_descan_is_at_noise_limit(sample):
    s, truth = sample
    r = dpc(s, descan=(truth.descan_x, truth.descan_y), rotation=truth.rotation, flip=False,
            center=truth.center)
    err = np.sqrt(np.mean((r.dpc_x - truth.field_x) ** 2 + (r.dpc_y - truth.field_y) ** 2) / 2)
    assert err < 1.15 * np.sqrt(np.mean(r.com_noise ** 2))


def test_flip_and_rotation_found():
    s, truth = fourd_stem(scan_shape=(32, 32), detector_shape=(48, 48), rotation_deg=-120.0,
                          flip=True, seed=5)
    r = dpc(s)
    assert r.flip is True
    d = (np.rad2deg(r.rotation) - (-120.0) + 180) % 360 - 180
    assert abs(d) < 1.5


def test_lazy_equals_eager_and_distributed():
    s, _ = fourd_stem(scan_shape=(24, 24), detector_shape=(48, 48), seed=1, lazy=True, chunks=8)
    eager = Diffraction4D(np.asarray(s.data.compute()))
    c = (23.6, 23.4)
    dets = [annular_detector("vbf", (48, 48), c, 0, 8), annular_detector("vadf", (48, 48), c, 10, 20)]
    a = fourd_descriptor_maps(s, center=c, detectors=dets)
    b = fourd_descriptor_maps(eager, center=c, detectors=dets)
    assert a.descriptor_names == b.descriptor_names
    np.testing.assert_allclose(a.data, b.data, rtol=1e-9, atol=1e-12)
    # with the defaults, lazy and eager data sample different patterns for the centre
    # (whole chunks vs a strided grid): the DPC field does not depend on it
    a0, b0 = fourd_descriptor_maps(s), fourd_descriptor_maps(eager)
    for name in ("dpc_x", "dpc_y", "charge"):
        np.testing.assert_allclose(a0.get_map(name).data, b0.get_map(name).data, atol=1e-9)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        d = fourd_descriptor_maps(s, center=c, detectors=dets)
        d0 = fourd_descriptor_maps(s)
    np.testing.assert_allclose(d.data, b.data, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d0.data, a0.data, rtol=1e-9, atol=1e-12)


def test_descriptor_maps_signal_roundtrip(sample, tmp_path):
    s, _ = sample
    m = s.descriptor_maps()
    assert m.metadata.Signal.signal_type == "descriptor_maps"
    for name in ("com_x", "com_y", "dpc_x", "dpc_y", "charge", "potential", "vbf", "vadf"):
        assert name in m.descriptor_names
    ax = m.axes_manager.signal_axes[0]
    assert ax.units == "nm" and ax.scale == pytest.approx(0.02)
    m.save(tmp_path / "m.hspy")
    back = hs.load(tmp_path / "m.hspy")
    assert back.metadata.Signal.signal_type == "descriptor_maps"
    np.testing.assert_array_equal(back.data, m.data)
    assert back.descriptor_names == m.descriptor_names


def test_nmf_loadings_separate_two_phases():
    rng = np.random.default_rng(0)
    a = np.zeros((16, 16))
    a[4:8, 4:8] = 1
    b = np.zeros((16, 16))
    b[9:13, 9:13] = 1
    frac = np.zeros((12, 12))
    frac[:, 6:] = 1.0
    lam = 200 * (frac[..., None, None] * a + (1 - frac)[..., None, None] * b) + 1
    s = Diffraction4D(rng.poisson(lam).astype(np.float32))
    m = fourd_descriptor_maps(s, decomposition=2)
    loads = [m.get_map(n).data for n in ("nmf_0", "nmf_1")]
    r = [abs(np.corrcoef(ld.ravel(), frac.ravel())[0, 1]) for ld in loads]
    assert min(r) > 0.95
    assert not hasattr(s, "learning_results") or s.learning_results.factors is None
    m = fourd_descriptor_maps(LazyDiffraction4D(s.data).as_lazy(), decomposition=2)
    r = [abs(np.corrcoef(m.get_map(n).data.ravel(), frac.ravel())[0, 1])
         for n in ("nmf_0", "nmf_1")]
    assert min(r) > 0.95  # lazy: chunk-wise MiniBatchNMF


def test_dead_pixels_need_a_mask():
    s, _ = fourd_stem(scan_shape=(8, 8), detector_shape=(48, 48), seed=2)
    bad = s.deepcopy()
    bad.data[:, :, 3, 7] = np.nan
    with pytest.raises(InvalidImageError, match="mask"):
        dpc(bad)
    mask = np.zeros((48, 48), bool)
    mask[3, 7] = True
    r = dpc(bad, mask=mask)
    ref = s.deepcopy()
    ref.data[:, :, 3, 7] = 0
    r0 = dpc(ref)
    np.testing.assert_allclose(r.com_x, r0.com_x, atol=1e-9)
    np.testing.assert_allclose(r.images["vbf"], r0.images["vbf"], rtol=1e-9)


@pytest.mark.parametrize("data, match", [
    (np.zeros((4, 5, 6)), "2 scan"),
    (np.zeros((3, 3, 8, 8), complex), "complex"),
    (np.zeros((3, 3, 2, 2)), "too small"),
])
def test_bad_input(data, match):
    s = hs.signals.Signal2D(data) if data.ndim != 3 else hs.signals.Signal1D(data)
    with pytest.raises(InvalidImageError, match=match):
        dpc(s)


def test_bad_detector_and_generator_parameters():
    with pytest.raises(InvalidParameterError):
        annular_detector("x", (8, 8), (4, 4), 5, 3)
    with pytest.raises(InvalidParameterError):
        fourd_stem(detector_shape=(16, 16), disk_radius=8)
    s = Diffraction4D(np.ones((3, 3, 8, 8)))
    with pytest.raises(InvalidParameterError, match="shape"):
        virtual_images(s, [Detector("w", np.ones((4, 4)))])


def test_cli_fourd(tmp_path):
    from causalspy.cli import main

    s, _ = fourd_stem(scan_shape=(16, 16), detector_shape=(48, 48), seed=0)
    s.save(tmp_path / "scan.hspy")
    assert main(["fourd", str(tmp_path / "scan.hspy"), "--out", str(tmp_path / "m.hspy"),
                 "--plot", str(tmp_path / "m.png")]) == 0
    m = hs.load(tmp_path / "m.hspy")
    assert "charge" in m.metadata.Descriptors.names and (tmp_path / "m.png").stat().st_size > 0
    assert main(["fourd", str(tmp_path / "nope.hspy"), "--out", str(tmp_path / "x.hspy")]) == 2
    hs.signals.Signal2D(np.zeros((8, 8))).save(tmp_path / "img.hspy")
    assert main(["fourd", str(tmp_path / "img.hspy"), "--out", str(tmp_path / "x.hspy")]) == 2


def test_bad_pixels_named_and_masked():
    s, _ = fourd_stem(scan_shape=(12, 12), detector_shape=(48, 48), seed=4)
    bad = s.deepcopy()
    bad.data[:, :, 24, 20] = 0.0                  # dead, inside the bright-field disk
    bad.data[:, :, 2, 40] = 5e4                   # hot, in the dark corner
    bad.data[:, :, 30, 9] = np.nan                # unreadable
    before = bad.data.copy()
    with pytest.raises(InvalidImageError, match=r"\(30, 9\).*bad_pixel_mask"):
        dpc(bad)
    m = bad_pixel_mask(bad)
    assert set(map(tuple, np.argwhere(m))) == {(24, 20), (2, 40), (30, 9)}
    bad.data[:, :, 30, 9] = 1.0
    with pytest.warns(UserWarning, match=r"\(24, 20\)"):
        dpc(bad)
    bad.data[:, :, 30, 9] = np.nan
    r = dpc(bad, mask=m)
    ref = s.deepcopy()
    ref.data[:, :, [24, 2, 30], [20, 40, 9]] = 0.0
    with pytest.warns(UserWarning, match="dead"):   # zeroed pixels look dead without a mask
        r0 = dpc(ref, center=r.center)
    np.testing.assert_allclose(r.com_x, r0.com_x, atol=1e-6)
    np.testing.assert_allclose(r.images["vbf"], r0.images["vbf"], rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(bad.data), np.isnan(before))   # input untouched
    assert np.array_equal(np.nan_to_num(bad.data), np.nan_to_num(before))


def test_zspy_and_hspy_lazy_read(tmp_path):
    s, _ = fourd_stem(scan_shape=(12, 12), detector_shape=(48, 48), seed=6)
    c = (23.5, 23.5)
    kw = {"center": c, "detectors": [annular_detector("vbf", (48, 48), c, 0, 8)]}
    ref = fourd_descriptor_maps(s, **kw)
    for ext in ("zspy", "hspy"):
        s.save(tmp_path / f"scan.{ext}")
        lz = hs.load(tmp_path / f"scan.{ext}", lazy=True)
        assert isinstance(lz, LazyDiffraction4D)          # signal type stored in the file
        m = lz.descriptor_maps(**kw)
        np.testing.assert_allclose(m.data, ref.data, rtol=1e-9, atol=1e-12)
        assert m.axes_manager.signal_axes[0].scale == pytest.approx(0.02)


def test_blockfile_read_through_rosettasciio(tmp_path):
    """A .blo (NanoMegas blockfile, uint8) scan: the signal type is set on load and the maps
    equal those of the same data in memory, also through ``causalspy fourd``."""
    from causalspy.cli import main

    s, _ = fourd_stem(scan_shape=(10, 10), detector_shape=(48, 48), counts=4e3, seed=2)
    raw = np.clip(np.rint(np.asarray(s.data)), 0, 255).astype(np.uint8)
    hs.signals.Signal2D(raw).save(tmp_path / "scan.blo")
    c = (23.5, 23.5)
    kw = {"center": c, "detectors": [annular_detector("vbf", (48, 48), c, 0, 8)]}
    ref = fourd_descriptor_maps(Diffraction4D(raw.astype(np.float32)), **kw)
    lz = hs.load(tmp_path / "scan.blo", lazy=True)
    lz.set_signal_type("diffraction_4d")
    assert isinstance(lz, LazyDiffraction4D)
    np.testing.assert_allclose(lz.descriptor_maps(**kw).data, ref.data, rtol=1e-6, atol=1e-6)
    assert main(["fourd", str(tmp_path / "scan.blo"), "--out", str(tmp_path / "m.hspy")]) == 0
    m = hs.load(tmp_path / "m.hspy")
    full = fourd_descriptor_maps(Diffraction4D(raw.astype(np.float32)))
    np.testing.assert_allclose(m.get_map("vbf").data, full.get_map("vbf").data, rtol=1e-6)


def test_to_pyxem_same_data_or_clear_error():
    s = Diffraction4D(np.ones((3, 3, 8, 8), np.float32))
    try:
        import pyxem  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pyxem"):
            s.to_pyxem()
        return
    p = s.to_pyxem()
    assert type(p).__name__ == "ElectronDiffraction2D"
    assert p.data is s.data and s.metadata.Signal.signal_type == "diffraction_4d"
