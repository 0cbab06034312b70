"""Large and lazy images: Dask tiles give the same columns as one eager pass."""

import numpy as np
import pytest

import causalspy
from causalspy.data import match_columns, square_lattice


@pytest.fixture(scope="module")
def big():
    return square_lattice(shape=(700, 650), spacing=18.0, counts=1e4, jitter=0.3, seed=9)


def _compare(a, b, tol=1e-3):
    m = match_columns(a.positions, b.positions, 2.0)
    assert m.recall == 1.0 and m.precision == 1.0
    d = np.hypot(*(a.positions[m.found_index] - b.positions[m.true_index]).T)
    # same column, same neighbourhood: positions agree far below their errors
    err = np.median(a.to_dataframe()["x_err"])
    assert np.median(d) < 0.05 * err + tol * 0
    # columns at tile margins see a slightly different neighbourhood in the joint fit
    assert d.max() < err


def test_tiles_match_eager(big):
    s, truth = big
    eager = s.find_atoms()
    tiled = s.find_atoms(tile=256)
    assert tiled.metadata["parameters"]["tiled"] is True
    assert len(eager) == len(truth.present())
    _compare(eager, tiled)


def test_lazy_signal(big):
    s, truth = big
    sl = s.as_lazy()
    sl.data = sl.data.rechunk((300, 300))
    from causalspy.signals import LazyAtomicResolution

    assert isinstance(sl, LazyAtomicResolution)
    lazy = sl.find_atoms(tile=300)
    m = match_columns(lazy.positions, truth.present()[["x", "y"]].to_numpy(), 5.0)
    assert m.recall == 1.0 and m.precision == 1.0
    assert lazy.calibration["x_units"] == "nm"


def test_dask_array_input(big):
    import dask.array as da

    s, truth = big
    a = causalspy.find_atoms(da.from_array(s.data, chunks=256))
    assert len(a) == len(truth.present())


def test_distributed_cluster(big):
    distributed = pytest.importorskip("distributed")
    s, truth = big
    sl = s.as_lazy()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        a = sl.find_atoms(tile=256)
    assert len(a) == len(truth.present())
