"""Files through RosettaSciIO keep calibration; float16 and integer data work."""

import hyperspy.api as hs
import numpy as np
import pytest

import causalspy
from causalspy.data import square_lattice


@pytest.fixture(scope="module")
def sample():
    s, truth = square_lattice(shape=(180, 200), counts=2e4, seed=21, jitter=0.3,
                              pixel_size_nm=0.0093)
    s.axes_manager[0].offset = 1.5
    s.axes_manager[1].offset = -0.25
    return s, truth


@pytest.mark.parametrize("ext", ["hspy", "zspy", "tif", "emd"])
def test_formats_keep_calibration(tmp_path, sample, ext):
    s, _ = sample
    f = tmp_path / f"img.{ext}"
    s.save(f)
    s2 = hs.load(f, signal_type="atomic_resolution")
    atoms = s2.find_atoms()
    ref = s.find_atoms()
    assert len(atoms) == len(ref)
    np.testing.assert_allclose(atoms.positions, ref.positions, atol=1e-6)
    cal = atoms.calibration
    assert cal["x_scale"] == pytest.approx(0.0093, rel=1e-5)
    assert cal["y_scale"] == pytest.approx(0.0093, rel=1e-5)
    assert cal["x_units"] == "nm"
    if ext in ("hspy", "zspy", "emd"):
        assert cal["x_offset"] == pytest.approx(1.5)
        assert cal["y_offset"] == pytest.approx(-0.25)
    t = atoms.to_dataframe()
    np.testing.assert_allclose(t["x_cal"], cal["x_offset"] + cal["x_scale"] * t["x"])


@pytest.mark.parametrize("lazy", [False, True])
def test_lazy_load(tmp_path, sample, lazy):
    s, _ = sample
    f = tmp_path / "img.zspy"
    s.save(f)
    s2 = hs.load(f, signal_type="atomic_resolution", lazy=lazy)
    atoms = s2.find_atoms()
    ref = s.find_atoms()
    assert len(atoms) == len(ref)


@pytest.mark.parametrize("dtype", [np.float16, np.uint8, np.uint16, np.int16, np.int32,
                                   np.float32])
def test_dtypes_no_overflow(sample, dtype):
    s, truth = sample
    data = s.data
    if dtype == np.uint8:
        data = data / data.max() * 250  # fit the range
    if np.issubdtype(dtype, np.integer):
        data = np.rint(data)
    ref = causalspy.find_atoms(np.asarray(data, dtype=np.float64))
    conv = np.asarray(data).astype(dtype)
    atoms = causalspy.find_atoms(conv)
    assert len(atoms) == len(ref)
    # positions agree within a fraction of their errors (quantisation of float16/uint8 only)
    d = np.hypot(*(np.sort(atoms.positions, axis=0) - np.sort(ref.positions, axis=0)).T)
    err = np.median(ref.to_dataframe()["x_err"])
    assert np.median(d) < 0.5 * err
    # float16 data near its maximum: the sum of a window must not overflow
    if dtype == np.float16:
        big = (np.asarray(data, float) / np.max(data) * 6.0e4).astype(np.float16)
        assert np.isfinite(big).all()
        a2 = causalspy.find_atoms(big)
        assert len(a2) == len(ref)


def test_signal_dtype_float16(sample):
    s, _ = sample
    s16 = s.deepcopy()
    s16.change_dtype("float16")
    atoms = s16.find_atoms()
    assert len(atoms) == len(s.find_atoms())
    assert s16.data.dtype == np.float16
