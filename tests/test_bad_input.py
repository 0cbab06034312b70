"""Bad input gets a clear causalspy error that says what to do; inputs are never modified."""

import hyperspy.api as hs
import numpy as np
import pytest

import causalspy
from causalspy import (
    CausalspyError,
    InvalidImageError,
    InvalidParameterError,
    NoColumnsFoundError,
)


def _lattice():
    from causalspy.data import square_lattice

    s, _ = square_lattice(shape=(120, 120), counts=1e4, seed=0)
    return s


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels(bad):
    s = _lattice()
    s.data[10, 10] = bad
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        s.find_atoms()


def test_non_finite_outside_central_crop():
    s = _lattice()
    s.data[0, 0] = np.nan
    with pytest.raises(InvalidImageError, match="nan_to_num"):
        causalspy.find_atoms(s.data)


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_image(value):
    with pytest.raises(InvalidImageError, match="constant"):
        causalspy.find_atoms(np.full((64, 64), value))


def test_tiny_image():
    with pytest.raises(InvalidImageError, match="at least"):
        causalspy.find_atoms(np.random.default_rng(0).random((5, 40)))


def test_image_smaller_than_spacings():
    s = _lattice()
    with pytest.raises((InvalidParameterError, NoColumnsFoundError), match="spacing|separation"):
        causalspy.find_atoms(s.data[:30, :30], separation=18)


@pytest.mark.parametrize("shape", [(100,), (3, 40, 40), (2, 2, 30, 30)])
def test_wrong_dimensionality_array(shape):
    with pytest.raises(InvalidImageError, match="2D"):
        causalspy.find_atoms(np.random.default_rng(0).random(shape))


def test_stack_signal_says_which_frame():
    s = hs.signals.Signal2D(np.random.default_rng(0).random((3, 40, 40)))
    s.set_signal_type("atomic_resolution")
    with pytest.raises(InvalidImageError, match=r"inav\[0\]"):
        s.find_atoms()


def test_spectrum_signal():
    s = hs.signals.Signal1D(np.random.default_rng(0).random((40, 40)))
    with pytest.raises(InvalidImageError, match="signal dimension"):
        causalspy.find_atoms(s)


def test_complex_data():
    with pytest.raises(InvalidImageError, match="complex"):
        causalspy.find_atoms(np.ones((40, 40), dtype=complex))


def test_complex_signal():
    s = hs.signals.ComplexSignal2D(np.ones((40, 40), dtype=complex))
    with pytest.raises(InvalidImageError, match="amplitude"):
        causalspy.find_atoms(s)


@pytest.mark.parametrize("sep", [0.5, -3, np.nan, 1e6])
def test_impossible_separation(sep):
    s = _lattice()
    with pytest.raises(InvalidParameterError, match="separation"):
        s.find_atoms(separation=sep)


@pytest.mark.parametrize("kw", [{"refine": "bogus"}, {"edge": "nope"}, {"nsigma": -1},
                                {"noise": "gauss"}])
def test_bad_options(kw):
    s = _lattice()
    with pytest.raises(InvalidParameterError):
        s.find_atoms(**kw)


def test_pure_noise_has_no_columns():
    rng = np.random.default_rng(3)
    img = rng.poisson(20.0, size=(200, 200)).astype(float)
    with pytest.raises(NoColumnsFoundError, match="separation|No columns"):
        causalspy.find_atoms(img)


def test_errors_are_value_errors_with_advice():
    # one base type for callers (CLI, napari) to catch
    assert issubclass(InvalidImageError, CausalspyError)
    assert issubclass(CausalspyError, ValueError)


def test_input_never_modified():
    s = _lattice()
    s.data = s.data.astype(np.float32)
    before = s.data.copy()
    meta = s.metadata.as_dictionary()
    scale = s.axes_manager[0].scale
    s.find_atoms()
    s.find_atoms(invert=True, separation=18)
    np.testing.assert_array_equal(s.data, before)
    assert s.data.dtype == np.float32
    assert s.metadata.as_dictionary() == meta
    assert s.axes_manager[0].scale == scale
    arr = before.copy()
    causalspy.find_atoms(arr)
    np.testing.assert_array_equal(arr, before)
