"""Property-based: random shapes, dtypes and values give a valid table or a documented error."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import causalspy
from causalspy import Atoms, CausalspyError

DTYPES = [np.float64, np.float32, np.float16, np.uint8, np.uint16, np.int16, np.int32, np.bool_]


def _check(result):
    assert isinstance(result, Atoms)
    t = result.to_dataframe()
    assert len(t) > 0
    assert np.isfinite(t[["x", "y"]].to_numpy()).all()
    h, w = result.metadata["source"]["shape"]
    assert (t["x"] > -1).all() and (t["x"] < w).all()
    assert (t["y"] > -1).all() and (t["y"] < h).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.integers(0, len(DTYPES) - 1).flatmap(
        lambda i: arrays(
            DTYPES[i],
            st.tuples(st.integers(1, 70), st.integers(1, 70)),
            elements=None if DTYPES[i] not in (np.float64, np.float32, np.float16)
            else st.one_of(
                st.floats(-1e4, 1e4, width=np.finfo(DTYPES[i]).bits),
                st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
            ),
        )
    )
)
def test_random_arrays(data):
    before = data.copy()
    try:
        res = causalspy.find_atoms(data)
    except CausalspyError as e:
        assert str(e)  # says something
    else:
        _check(res)
    np.testing.assert_array_equal(data, before)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    spacing=st.floats(9.0, 22.0),
    counts=st.floats(300.0, 3e4),
    dtype=st.sampled_from([np.float64, np.float32, np.float16, np.uint16, np.int32]),
)
def test_random_lattices(seed, spacing, counts, dtype):
    from causalspy.data import square_lattice

    s, truth = square_lattice(shape=(120, 130), spacing=spacing, sigma=0.2 * spacing,
                              counts=counts, seed=seed, jitter=0.3)
    data = s.data
    if np.issubdtype(dtype, np.integer):
        data = np.rint(data)
    data = data.astype(dtype)
    try:
        res = causalspy.find_atoms(data)
    except CausalspyError as e:
        assert str(e)
    else:
        _check(res)
