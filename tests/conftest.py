import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def perovskite_sample():
    from causalspy.data import perovskite

    return perovskite(cells=(12, 12), counts=1e4, seed=3, domains="180", displacement_pm=20.0)


@pytest.fixture(scope="session")
def hexagonal_sample():
    from causalspy.data import hexagonal

    return hexagonal(cells=(16, 16), counts=1e4, seed=5, dopant_fraction=0.03,
                     vacancy_fraction=0.03)


@pytest.fixture(scope="session")
def square_sample():
    from causalspy.data import square_lattice

    return square_lattice(shape=(360, 360), spacing=18.0, sigma=3.5, counts=1e4, jitter=0.3,
                          seed=11)


def interior(truth_df, shape, margin):
    h, w = shape
    x, y = truth_df["x"].to_numpy(), truth_df["y"].to_numpy()
    return (x > margin) & (y > margin) & (x < w - 1 - margin) & (y < h - 1 - margin)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
