"""Atom finding against ground truth: positions, uncertainties, detection, sublattices, chemistry."""

import numpy as np
import pandas as pd
import pytest

import causalspy
from causalspy.data import match_columns, perovskite, square_lattice
from conftest import interior


def _matched(atoms, truth_df, tol):
    m = match_columns(atoms.positions, truth_df[["x", "y"]].to_numpy(), tol)
    found = atoms.to_dataframe().iloc[m.found_index].reset_index(drop=True)
    true = truth_df.iloc[m.true_index].reset_index(drop=True)
    return m, found, true


def test_square_lattice_positions_at_cramer_rao(square_sample):
    s, truth = square_sample
    atoms = s.find_atoms()
    tp = truth.present()
    m, f, t = _matched(atoms, tp, 5.0)
    assert m.recall == 1.0 and m.precision == 1.0
    keep = interior(t, s.data.shape, 3.5 * 3.5 + 1).astype(bool)
    ex = (f["x"] - t["x"]).to_numpy()[keep]
    ey = (f["y"] - t["y"]).to_numpy()[keep]
    rms = np.sqrt(np.mean(ex**2 + ey**2))
    # textbook bound sqrt(2) sigma / sqrt(N); neighbours' shot noise adds ~7 % here
    bound = np.sqrt(2) * 3.5 / np.sqrt(1e4)
    assert rms < 1.25 * bound, (rms, bound)
    # reported errors are calibrated: pulls have unit spread
    px = ex / f["x_err"].to_numpy()[keep]
    py = ey / f["y_err"].to_numpy()[keep]
    assert 0.8 < np.std(px) < 1.25
    assert 0.8 < np.std(py) < 1.25
    # no bias
    assert abs(np.mean(ex)) < 4 * np.std(ex) / np.sqrt(len(ex))
    # widths and intensities recover the truth (pixel integration adds 1/12 px^2)
    assert np.median(f["sigma"]) == pytest.approx(np.sqrt(3.5**2 + 1 / 12), rel=0.01)
    assert np.median(f["intensity"]) == pytest.approx(1e4, rel=0.02)
    assert set(atoms.to_dataframe()["sublattice"]) == {0}


def test_low_dose_and_centre_of_mass():
    s, truth = square_lattice(shape=(360, 360), counts=500, jitter=0.3, seed=2)
    tp = truth.present()
    g = s.find_atoms(refine="gaussian")
    c = s.find_atoms(refine="com")
    n = s.find_atoms(refine="none")
    bound = np.sqrt(2) * 3.5 / np.sqrt(500)
    res = {}
    for name, atoms in [("gaussian", g), ("com", c), ("none", n)]:
        m, f, t = _matched(atoms, tp, 5.0)
        assert m.recall >= 0.99 and m.precision >= 0.99, name
        keep = interior(t, s.data.shape, 13).astype(bool)
        res[name] = np.sqrt(np.mean(((f["x"] - t["x"]) ** 2 + (f["y"] - t["y"]) ** 2)[keep]))
        if name != "none":
            pull = ((f["x"] - t["x"]) / f["x_err"])[keep]
            assert 0.8 < np.std(pull) < 1.25, name
    assert res["gaussian"] < 1.3 * bound
    assert res["gaussian"] < res["com"] < res["none"] + 0.05
    assert np.isnan(n.to_dataframe()["x_err"]).all()


def test_perovskite_sites_and_displacements(perovskite_sample):
    s, truth = perovskite_sample
    atoms = s.find_atoms()
    tp = truth.present()
    sep = atoms.metadata["parameters"]["separation"]
    assert sep == pytest.approx(24 / np.sqrt(2), rel=0.1)
    m, f, t = _matched(atoms, tp, 0.3 * sep)
    assert m.recall == 1.0 and m.precision == 1.0
    # A and B sites split into two sublattices, A (brighter) = 0
    ct = pd.crosstab(t["sublattice"], f["sublattice"])
    assert ct.loc[0, 0] == (t["sublattice"] == 0).sum()
    assert ct.loc[1, 1] == (t["sublattice"] == 1).sum()
    # the B-site displacement field (+/-20 pm) is measured with the right sign
    b = (t["sublattice"] == 1).to_numpy() & ~t["edge"].to_numpy()
    dy_true = t["dy"].to_numpy()[b]
    # measure B displacement from the centroid of its 4 A neighbours
    A = f[f["sublattice"] == 0][["x", "y"]].to_numpy()
    from scipy.spatial import cKDTree

    d, j = cKDTree(A).query(f[["x", "y"]].to_numpy()[b], k=4)
    ok = d.max(axis=1) < 0.8 * 24
    dy_meas = (f["y"].to_numpy()[b] - A[j].mean(axis=1)[:, 1])[ok]
    assert np.mean(np.sign(dy_meas) == np.sign(dy_true[ok])) > 0.99
    # the displacement error is what the reported column errors predict
    yerr_b = f["y_err"].to_numpy()[b][ok]
    yerr_a = f[f["sublattice"] == 0]["y_err"].median()
    predicted = np.sqrt(np.mean(yerr_b**2) + yerr_a**2 / 4)
    rms = np.sqrt(np.mean((dy_meas - dy_true[ok]) ** 2))
    assert rms < 1.25 * predicted, (rms, predicted)
    assert len(atoms.vacancies) == 0
    assert atoms.lattice_vectors is not None
    assert np.linalg.norm(atoms.lattice_vectors, axis=1) == pytest.approx([24, 24], rel=0.02)


def test_hexagonal_sublattices_dopants_vacancies(hexagonal_sample):
    s, truth = hexagonal_sample
    atoms = s.find_atoms()
    sep = atoms.metadata["parameters"]["separation"]
    assert sep == pytest.approx(20 / np.sqrt(3), rel=0.1)
    tp = truth.present()
    m, f, t = _matched(atoms, tp, 0.3 * sep)
    assert m.recall >= 0.995 and m.precision >= 0.995
    ct = pd.crosstab(t["sublattice"], f["sublattice"])
    purity = (ct.loc[0, 0] + ct.loc[1, 1]) / len(t)
    assert purity >= 0.995
    # substitutional dopants (W on Mo, Se on S2) are flagged
    dop_true = (t["defect"] == "dopant").to_numpy()
    assert dop_true.sum() > 5
    assert f["dopant"].to_numpy()[dop_true].mean() >= 0.9
    assert f["dopant"].to_numpy()[~dop_true].mean() <= 0.01
    # vacancies are predicted at the empty lattice sites
    vac_true = truth.columns[(truth.columns["defect"] == "vacancy") & ~truth.columns["edge"]]
    mv = match_columns(atoms.vacancies[["x", "y"]].to_numpy(),
                       vac_true[["x", "y"]].to_numpy(), 0.3 * sep)
    assert mv.recall >= 0.9
    assert mv.precision >= 0.9
    # the vacancy's sublattice is the true one
    assert (atoms.vacancies["sublattice"].to_numpy()[mv.found_index]
            == vac_true["sublattice"].to_numpy()[mv.true_index]).all()


def test_abf_dark_columns_detected_automatically():
    s, truth = perovskite(cells=(10, 10), contrast="abf", seed=4)
    atoms = s.find_atoms()
    assert atoms.metadata["parameters"]["invert"] is True
    tp = truth.present()
    m = match_columns(atoms.positions, tp[["x", "y"]].to_numpy(),
                      0.3 * atoms.metadata["parameters"]["separation"])
    assert m.precision >= 0.99
    found = np.zeros(len(tp), dtype=bool)
    found[m.true_index] = True
    species = tp["species"].to_numpy()
    assert found[species != "O"].all()  # every cation column
    assert found[species == "O"].mean() >= 0.93  # weak oxygen columns, crowded at 12 px
    assert atoms.n_sublattices >= 2


def test_close_columns_12px():
    s, truth = square_lattice(shape=(300, 300), spacing=12.0, sigma=3.5, counts=1e4, seed=7,
                              jitter=0.3)
    atoms = s.find_atoms()
    tp = truth.present()
    m, f, t = _matched(atoms, tp, 3.6)
    assert m.recall == 1.0 and m.precision == 1.0
    keep = interior(t, s.data.shape, 14).astype(bool)
    err = np.hypot(f["x"] - t["x"], f["y"] - t["y"])[keep]
    # overlapping neighbours are fitted jointly: positions stay unbiased and
    # their errors calibrated
    pull = ((f["x"] - t["x"]) / f["x_err"])[keep]
    assert 0.8 < np.std(pull) < 1.25
    assert abs(np.mean((f["x"] - t["x"])[keep])) < 0.02
    assert np.sqrt(np.mean(err**2)) < 0.15


def test_edges_flagged_or_dropped(square_sample):
    s, truth = square_sample
    keep = s.find_atoms(edge="keep")
    drop = s.find_atoms(edge="drop")
    t = keep.to_dataframe()
    assert t["edge"].any() and not t["edge"].all()
    assert len(drop) == (~t["edge"]).sum()
    assert not drop.to_dataframe()["edge"].any()
    # edge columns are not biased: errors still statistical
    m, f, tt = _matched(keep, truth.present(), 5.0)
    e = f["edge"].to_numpy()
    pull = ((f["x"] - tt["x"]) / f["x_err"]).to_numpy()[e]
    assert np.all(np.abs(pull) < 5)


def test_no_column_found_twice(hexagonal_sample):
    s, _ = hexagonal_sample
    atoms = s.find_atoms()
    from scipy.spatial import cKDTree

    d, _ = cKDTree(atoms.positions).query(atoms.positions, k=2)
    assert d[:, 1].min() > 0.5 * atoms.metadata["parameters"]["separation"]


def test_given_separation_matches_estimated(perovskite_sample):
    s, _ = perovskite_sample
    a = s.find_atoms()
    b = s.find_atoms(separation=17.0)
    assert len(a) == len(b)
    # same columns; positions agree well within their errors (windows differ slightly)
    m = match_columns(a.positions, b.positions, 1.0)
    assert m.recall == 1.0
    d = np.hypot(*(a.positions[m.found_index] - b.positions[m.true_index]).T)
    err = a.to_dataframe()["x_err"].to_numpy()[m.found_index]
    assert np.all(d < 0.5 * err + 1e-6)


def test_function_on_array_and_signal_agree(perovskite_sample):
    s, _ = perovskite_sample
    a = causalspy.find_atoms(s.data)
    b = s.find_atoms()
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-9)
    assert a.calibration["x_units"] == "px"
    assert b.calibration["x_units"] == "nm"
    assert b.to_dataframe()["x_cal"].iloc[0] == pytest.approx(
        b.to_dataframe()["x"].iloc[0] * s.axes_manager[0].scale)


def test_progress_callback_and_abort(perovskite_sample):
    s, _ = perovskite_sample
    calls = []
    s.find_atoms(progress=lambda done, total: calls.append((done, total)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 1:
            raise Stop

    with pytest.raises(Stop):
        s.find_atoms(progress=stop)
