"""The Atoms result: lossless save/load, dataframe, plot, selection."""

import json

import numpy as np
import pandas as pd
import pytest

from causalspy import Atoms, FileReadError


@pytest.fixture(scope="module")
def atoms(hexagonal_sample):
    s, _ = hexagonal_sample
    return s.find_atoms()


def test_lossless_roundtrip(tmp_path, atoms):
    f = atoms.save(tmp_path / "atoms.csv")
    assert f.exists() and (tmp_path / "atoms.csv.json").exists()
    b = Atoms.load(f)
    ta, tb = atoms.to_dataframe(), b.to_dataframe()
    assert list(ta.columns) == list(tb.columns)
    assert (ta.dtypes == tb.dtypes).all()
    for c in ta.columns:
        va, vb = ta[c].to_numpy(), tb[c].to_numpy()
        if va.dtype.kind == "f":
            # bit for bit, NaN included
            assert np.array_equal(va.view(np.int64), vb.view(np.int64)), c
        else:
            assert np.array_equal(va, vb), c
    assert b.calibration == atoms.calibration
    assert b.metadata == json.loads(json.dumps(atoms.metadata))
    np.testing.assert_array_equal(b.lattice_vectors, atoms.lattice_vectors)
    pd.testing.assert_frame_equal(b.vacancies, atoms.vacancies)
    assert len(atoms.vacancies) > 0


def test_bare_csv_loads(tmp_path):
    f = tmp_path / "plain.csv"
    pd.DataFrame({"x": [1.0, 2.5], "y": [3.0, 4.0]}).to_csv(f, index=False)
    a = Atoms.load(f)
    assert len(a) == 2
    assert a.calibration["x_units"] == "px"


def test_bad_files(tmp_path):
    with pytest.raises(FileReadError, match="No such file"):
        Atoms.load(tmp_path / "missing.csv")
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(FileReadError, match="'x' and 'y'"):
        Atoms.load(f)
    g = tmp_path / "good.csv"
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_csv(g, index=False)
    (tmp_path / "good.csv.json").write_text("{not json")
    with pytest.raises(FileReadError, match="JSON"):
        Atoms.load(g)


def test_save_needs_csv(tmp_path, atoms):
    with pytest.raises(ValueError, match="csv"):
        atoms.save(tmp_path / "atoms.xlsx")


def test_dataframe_is_a_copy(atoms):
    df = atoms.to_dataframe()
    df["x"] = 0.0
    assert not (atoms.to_dataframe()["x"] == 0).all()


def test_required_columns(atoms):
    cols = set(atoms.to_dataframe().columns)
    for c in ["x", "y", "x_err", "y_err", "sigma", "amplitude", "background", "intensity",
              "sublattice", "x_cal", "y_cal", "edge", "dopant"]:
        assert c in cols


def test_select_and_sublattice(atoms):
    s0 = atoms.sublattice(0)
    assert len(s0) > 0 and set(s0.to_dataframe()["sublattice"]) == {0}
    assert len(atoms.select(np.zeros(len(atoms), bool))) == 0


def test_plot(atoms):
    ax = atoms.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "sublattice 0" in labels and "sublattice 1" in labels
    assert "vacancy" in labels
    ax2 = atoms.plot(color_by="intensity")
    assert ax2 is not ax
    import matplotlib.pyplot as plt

    plt.close("all")


def test_repr(atoms):
    assert "columns" in repr(atoms) and "sublattice" in repr(atoms)
