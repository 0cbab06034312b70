"""Hexagonal (MoS2-like) per column descriptors against ground truth, and the
mixed 2H/1T option of the hexagonal generator."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from causalspy import Atoms, InvalidParameterError, NoColumnsFoundError
from causalspy.data import hexagonal, match_columns, perovskite
from causalspy.descriptors import Descriptors
from causalspy.descriptors.hexagonal import UNDETERMINED, hexagonal_descriptors

A_PX = 20.0  # the generator's default lattice parameter (px)
D_MX = A_PX / np.sqrt(3)  # metal-chalcogen distance (px)


# --------------------------------------------------------------------------- helpers
def _ideal_atoms(s, truth, seed=0, position_noise=True):
    """The Atoms an ideal column finder would return: every column of the truth, with
    Cramer-Rao-level position noise and Poisson-level brightness noise; sublattice 0
    metal, 1 and 2 chalcogens on the two hollow types (as find_atoms labels them)."""
    rng = np.random.default_rng(seed)
    tp = truth.present().reset_index(drop=True)
    n = len(tp)
    counts = tp["counts"].to_numpy(float)
    sig = tp["sigma"].to_numpy(float)
    err = sig / np.sqrt(counts) if position_noise else np.zeros(n)
    x = tp["x"].to_numpy() + rng.normal(0, 1, n) * err
    y = tp["y"].to_numpy() + rng.normal(0, 1, n) * err
    intensity = counts + rng.normal(0, 1, n) * np.sqrt(counts)
    h, w = s.data.shape
    dist = np.minimum.reduce([x + 0.5, w - 0.5 - x, y + 0.5, h - 0.5 - y])
    table = pd.DataFrame({
        "x": x, "y": y, "intensity": intensity, "amplitude": intensity / (2 * np.pi * sig**2),
        "sublattice": np.where(tp["site"] == "metal", 0, tp["hollow"].to_numpy()),
        "edge": dist < 3.5 * sig,
    })
    scale = s.axes_manager[0].scale
    return Atoms(table, calibration={"x_scale": scale, "y_scale": scale, "x_units": "nm",
                                     "y_units": "nm"},
                 lattice_vectors=np.array([[A_PX, 0.0], [-A_PX / 2, A_PX * np.sqrt(3) / 2]]),
                 metadata={"source": {"shape": [h, w]}})


def _match(desc, truth):
    """Descriptor rows (columns and vacancies) matched to truth sites (present or not)."""
    df = desc.to_dataframe()
    tc = truth.columns
    m = match_columns(df[["x", "y"]].to_numpy(), tc[["x", "y"]].to_numpy(), 0.3 * D_MX)
    return (df.iloc[m.found_index].reset_index(drop=True),
            tc.iloc[m.true_index].reset_index(drop=True), m)


def _away_from_border(df, shape, margin=A_PX):
    h, w = shape
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    return (x > margin) & (y > margin) & (x < w - 1 - margin) & (y < h - 1 - margin)


def _near_truth_vacancy(tc, pts, site):
    v = tc[(tc["defect"] == "vacancy") & (tc["site"] == site)][["x", "y"]].to_numpy()
    if len(v) == 0:
        return np.zeros(len(pts), bool)
    d, _ = cKDTree(v).query(pts)
    return d < 1.2 * D_MX


@pytest.fixture(scope="module")
def pure():
    """2H image at 1e4 counts, 3 % dopants and 3 % vacancies per sublattice, find_atoms."""
    s, truth = hexagonal(cells=(28, 28), counts=1e4, dopant_fraction=0.03,
                         vacancy_fraction=0.03, seed=7)
    atoms = s.find_atoms()
    return s, truth, atoms, hexagonal_descriptors(atoms)


@pytest.fixture(scope="module")
def mixed():
    """2H left half / 1T right half at 1e4 counts, ideal column finder."""
    s, truth = hexagonal(cells=(24, 24), counts=1e4, dopant_fraction=0.03,
                         vacancy_fraction=0.03, seed=3, phase="mixed")
    atoms = _ideal_atoms(s, truth, seed=1)
    return s, truth, atoms, hexagonal_descriptors(atoms)


# --------------------------------------------------------------------------- 2H, find_atoms
def test_sites_match_truth(pure):
    s, truth, atoms, desc = pure
    f, t, m = _match(desc, truth)
    assert m.recall >= 0.99 and m.precision >= 0.99
    assert (f["site"].to_numpy() == t["site"].to_numpy()).all()
    assert set(f["site"]) == {"metal", "chalcogen"}
    # every chalcogen of a 2H crystal sits on the same hollow type
    assert f.loc[f["site"] == "chalcogen", "hollow"].nunique() == 1
    assert (f.loc[f["site"] == "metal", "hollow"] == 0).all()
    # one row per column plus one per vacancy, column_index pointing back
    cols = desc.to_dataframe().query("column_index >= 0")
    assert len(cols) == len(atoms)
    x_atoms = atoms.to_dataframe()["x"].to_numpy()
    np.testing.assert_array_equal(cols["x"], x_atoms[cols["column_index"]])


def test_dopants_and_vacancies_found(pure):
    s, truth, atoms, desc = pure
    f, t, _ = _match(desc, truth)
    inner = _away_from_border(t, s.data.shape)
    tc = truth.columns
    tc_inner = _away_from_border(tc, s.data.shape)
    for kind in ("dopant", "vacancy"):
        true_kind = tc_inner & (tc["defect"] == kind).to_numpy()
        assert true_kind.sum() >= 30  # enough for a 99 % recall to mean something
        hit = inner & (t["defect"] == kind).to_numpy() & (f["defect"] == kind).to_numpy()
        recall = hit.sum() / true_kind.sum()
        assert recall >= 0.99, (kind, recall)
    # false positives: interior rows called dopant/vacancy that are not
    called = desc.to_dataframe()
    called_inner = _away_from_border(called, s.data.shape)
    n_sites = int(tc_inner.sum())
    for kind in ("dopant", "vacancy"):
        good = inner & (t["defect"] == kind).to_numpy() & (f["defect"] == kind).to_numpy()
        false = int((called_inner & (called["defect"] == kind).to_numpy()).sum() - good.sum())
        assert false <= 0.01 * n_sites, (kind, false)
    # vacancy rows: expected position, nothing measured at the empty site
    vac = desc.to_dataframe().query("defect == 'vacancy'")
    assert (vac["column_index"] == -1).all()
    assert vac["intensity"].isna().all() and vac["nn_distance"].isna().all()
    tv = tc[tc["defect"] == "vacancy"]
    d, _ = cKDTree(tv[["x", "y"]].to_numpy()).query(vac[["x", "y"]].to_numpy())
    assert np.median(d) < 0.3
    # z-scores: dopants far out, hosts in the core of the distribution
    z_dop = f.loc[inner & (t["defect"] == "dopant").to_numpy(), "dopant_z"]
    assert z_dop.abs().min() > 10


def test_coordination_and_order_2h(pure):
    s, truth, atoms, desc = pure
    f, t, _ = _match(desc, truth)
    inner = _away_from_border(t, s.data.shape) & ~f["flag"].to_numpy()
    pts = t[["x", "y"]].to_numpy()
    metal = inner & (f["site"] == "metal").to_numpy() & (f["defect"] != "vacancy").to_numpy()
    chalc = inner & (f["site"] == "chalcogen").to_numpy() & (f["defect"] != "vacancy").to_numpy()
    next_to_xv = _near_truth_vacancy(truth.columns, pts, "chalcogen")
    next_to_mv = _near_truth_vacancy(truth.columns, pts, "metal")
    assert metal.sum() > 300
    assert (f.loc[metal & ~next_to_xv, "coordination"] == 3).all()
    assert (f.loc[metal & next_to_xv, "coordination"] == 2).all()
    assert (f.loc[chalc & ~next_to_mv, "coordination"] == 3).all()
    assert (f.loc[inner, "phase"] == "2H").all()
    # metal-chalcogen distance a / sqrt(3) in nm, 3-fold order around metals
    a_nm = truth.params["a_nm"]
    assert f.loc[metal, "nn_distance"].median() == pytest.approx(a_nm / np.sqrt(3), rel=2e-3)
    assert desc.units["nn_distance"] == "nm"
    assert f.loc[metal, "psi3"].min() > 0.95
    assert f.loc[metal | chalc, "psi6"].median() > 0.99
    # no strain in the generator: strain at the level of the position noise
    for c in ("exx", "eyy", "exy", "rotation"):
        assert abs(f.loc[metal, c].median()) < 1e-3
        assert f.loc[metal, c].std() < 1e-2


def test_flagged_rows_hold_nan(pure):
    _, _, _, desc = pure
    df = desc.to_dataframe()
    flagged = df[df["flag"]]
    assert 0 < len(flagged) < 0.3 * len(df)
    for c in ("intensity", "coordination", "nn_distance", "exx", "psi3", "psi6", "dopant_z"):
        assert flagged[c].isna().all(), c
    # flagged rows are on the border of the image or cut by it
    h, w = desc.image.shape
    d = np.minimum.reduce([flagged["x"] + 0.5, w - 0.5 - flagged["x"], flagged["y"] + 0.5,
                           h - 0.5 - flagged["y"]])
    assert d.max() < 2 * D_MX
    assert not (flagged["defect"] == "dopant").any()


# --------------------------------------------------------------------------- mixed 2H/1T
def test_phase_map_mixed(mixed):
    s, truth, atoms, desc = mixed
    f, t, m = _match(desc, truth)
    assert m.recall > 0.99
    boundary = truth.params["phase_boundary_x_px"]
    away = _away_from_border(t, s.data.shape) & (np.abs(t["x"] - boundary) > 1.5 * A_PX).to_numpy()
    assert away.sum() > 800
    for ph in ("2H", "1T"):
        on = away & (t["phase"] == ph).to_numpy()
        acc = (f.loc[on, "phase"] == ph).mean()
        assert acc >= 0.95, (ph, acc)
    # a 1T metal has 6 chalcogen neighbours (no 3-fold order), a 2H metal 3
    metal = away & (f["site"] == "metal").to_numpy() & (f["defect"] == "none").to_numpy()
    pts = t[["x", "y"]].to_numpy()
    clean = metal & ~_near_truth_vacancy(truth.columns, pts, "chalcogen")
    one_t = clean & (t["phase"] == "1T").to_numpy()
    two_h = clean & (t["phase"] == "2H").to_numpy()
    assert one_t.sum() > 150 and two_h.sum() > 150
    assert (f.loc[one_t, "coordination"] == 6).mean() >= 0.99
    assert (f.loc[two_h, "coordination"] == 3).mean() >= 0.99
    assert f.loc[one_t, "psi3"].max() < 0.1
    assert f.loc[two_h, "psi3"].min() > 0.9
    # the 1T chalcogens fill both hollow types, the 2H ones one
    chal = away & (f["site"] == "chalcogen").to_numpy()
    assert f.loc[chal & (t["phase"] == "1T").to_numpy(), "hollow"].nunique() == 2
    assert f.loc[chal & (t["phase"] == "2H").to_numpy(), "hollow"].nunique() == 1


def test_defects_mixed(mixed):
    """Dopants are outliers within their site *and phase* (a 1T chalcogen column holds
    one atom, a 2H one two); vacancies on both hollow types of 1T. Recall is scored a
    lattice parameter or more from the boundary: on it, an empty hollow may be a
    vacancy or the end of the 1T region, and the image cannot tell."""
    s, truth, atoms, desc = mixed
    f, t, _ = _match(desc, truth)
    inner = _away_from_border(t, s.data.shape)
    off_boundary = (np.abs(t["x"] - truth.params["phase_boundary_x_px"]) > A_PX).to_numpy()
    for kind in ("dopant", "vacancy"):
        for ph in ("2H", "1T"):
            true_kind = (inner & off_boundary & (t["defect"] == kind).to_numpy()
                         & (t["phase"] == ph).to_numpy())
            assert true_kind.sum() >= 10
            assert (f.loc[true_kind, "defect"] == kind).mean() >= 0.99, (kind, ph)
        false = inner & (t["defect"] != kind).to_numpy() & (f["defect"] == kind).to_numpy()
        assert false.sum() <= 0.01 * inner.sum(), kind
    # at the boundary a chalcogen column may hold one atom or two: no false dopant there
    boundary = truth.params["phase_boundary_x_px"]
    near = inner & (np.abs(t["x"] - boundary) < 1.5 * A_PX).to_numpy()
    assert near.sum() > 100
    false_near = near & (t["defect"] == "none").to_numpy() & (f["defect"] == "dopant").to_numpy()
    assert not false_near.any()
    # on the 1T side, chalcogen vacancies are found on both hollow types
    vac = f[inner & (f["defect"] == "vacancy").to_numpy() & (t["phase"] == "1T").to_numpy()]
    assert set(vac.loc[vac["site"] == "chalcogen", "hollow"]) == {1, 2}


def test_phase_map_mixed_with_find_atoms():
    """End to end on a mixed image with a 0.09 nm (FWHM) probe: find_atoms finds every
    column, and the phase map and defects come out right."""
    s, truth = hexagonal(cells=(24, 24), counts=1e4, sigma_px=2.5, dopant_fraction=0.03,
                         vacancy_fraction=0.03, seed=5, phase="mixed")
    desc = hexagonal_descriptors(s.find_atoms())
    f, t, m = _match(desc, truth)
    assert m.recall >= 0.99
    boundary = truth.params["phase_boundary_x_px"]
    inner = _away_from_border(t, s.data.shape)
    away = inner & (np.abs(t["x"] - boundary) > 1.5 * A_PX).to_numpy()
    assert (f.loc[away, "phase"] == t.loc[away, "phase"]).mean() >= 0.95
    off_boundary = (np.abs(t["x"] - boundary) > A_PX).to_numpy()
    for kind in ("dopant", "vacancy"):
        true_kind = inner & off_boundary & (t["defect"] == kind).to_numpy()
        assert true_kind.sum() >= 25
        assert (f.loc[true_kind, "defect"] == kind).mean() >= 0.99, kind
        false = inner & (t["defect"] != kind).to_numpy() & (f["defect"] == kind).to_numpy()
        assert false.sum() <= 0.01 * inner.sum(), kind


def test_phase_map_mixed_with_find_atoms_broad_columns():
    # single-atom 1T chalcogen columns of the generator's default width (sigma 0.17 a) are
    # close-packed with the metals (3.4 widths apart): find_atoms finds them in its residual
    # passes, and the phase map is right away from the boundary
    s, truth = hexagonal(cells=(16, 16), counts=1e4, seed=2, phase="mixed")
    atoms = s.find_atoms()
    tp = truth.present()
    t1 = tp[(tp["phase"] == "1T") & (tp["site"] == "chalcogen")]
    m = match_columns(atoms.to_dataframe()[["x", "y"]].to_numpy(), t1[["x", "y"]].to_numpy(),
                      0.3 * D_MX)
    assert len(m.true_index) >= 0.9 * len(t1)
    desc = hexagonal_descriptors(atoms)
    f, t, _ = _match(desc, truth)
    boundary = truth.params["phase_boundary_x_px"]
    away = _away_from_border(t, s.data.shape) & (np.abs(t["x"] - boundary) > 1.5 * A_PX).to_numpy()
    assert (f.loc[away, "phase"] == t.loc[away, "phase"]).mean() >= 0.95


def test_missed_chalcogen_columns_fitted_on_the_image():
    # drop most single-atom 1T chalcogen columns from find_atoms' table (peak finding can
    # miss them next to the metals): the descriptors fit the empty hollows on the image,
    # add the occupied ones, and phase map and defects stay right
    s, truth = hexagonal(cells=(18, 18), counts=1e4, dopant_fraction=0.03,
                         vacancy_fraction=0.03, seed=11, phase="mixed")
    atoms = s.find_atoms()
    tp = truth.present()
    df = atoms.to_dataframe()
    d, j = cKDTree(tp[["x", "y"]].to_numpy()).query(df[["x", "y"]].to_numpy())
    t_of = tp.iloc[j]
    single = ((t_of["phase"] == "1T") & (t_of["species"] == "S")).to_numpy() & (d < 2)
    drop = single & (np.random.default_rng(0).random(len(df)) < 0.8)
    assert drop.sum() > 100
    thinned = atoms.select(~drop)
    boundary = truth.params["phase_boundary_x_px"]

    def phase_accuracy(desc):
        f, t, _ = _match(desc, truth)
        away = (_away_from_border(t, s.data.shape)
                & (np.abs(t["x"] - boundary) > 1.5 * A_PX).to_numpy())
        tc = truth.columns
        n_away = int((_away_from_border(tc, s.data.shape)
                      & (np.abs(tc["x"] - boundary) > 1.5 * A_PX).to_numpy()).sum())
        return int((f.loc[away, "phase"] == t.loc[away, "phase"]).sum()) / n_away, f, t

    without, _, _ = phase_accuracy(hexagonal_descriptors(thinned, find_chalcogens=False))
    desc = hexagonal_descriptors(thinned)
    acc, f, t = phase_accuracy(desc)
    assert without < 0.8 and acc >= 0.95
    added = desc.to_dataframe().query("column_index == -1 and defect != 'vacancy'")
    assert desc.metadata["chalcogen_sites_added"] == len(added)
    # every dropped column away from the border is back
    dropped = df[drop]
    inner_drop = dropped[_away_from_border(dropped, s.data.shape)]
    back, _ = cKDTree(added[["x", "y"]].to_numpy()).query(inner_drop[["x", "y"]].to_numpy())
    assert len(inner_drop) > 80 and (back < 0.3 * D_MX).mean() >= 0.98
    # added at their lattice sites, on the truth's single-atom columns
    dd, jj = cKDTree(tp[["x", "y"]].to_numpy()).query(added[["x", "y"]].to_numpy())
    assert np.median(dd) < 0.5 and (tp["species"].to_numpy()[jj] == "S").mean() > 0.97
    # no false dopants from mixing the refitted brightness with find_atoms' values
    inner = _away_from_border(t, s.data.shape) & (
        np.abs(t["x"] - boundary) > A_PX).to_numpy()
    called = inner & (f["defect"] == "dopant").to_numpy()
    true_d = inner & (t["defect"] == "dopant").to_numpy()
    assert (called & ~true_d).sum() <= 0.01 * inner.sum()
    assert (called & true_d).sum() >= 0.99 * true_d.sum()
    # an Atoms table without its image cannot be fitted: say so
    bare = Atoms(thinned.to_dataframe(), calibration=thinned.calibration,
                 lattice_vectors=thinned.lattice_vectors, metadata=thinned.metadata)
    with pytest.raises(InvalidParameterError, match="image"):
        hexagonal_descriptors(bare, find_chalcogens=True)
    assert hexagonal_descriptors(bare).metadata["chalcogen_sites_added"] == 0


def test_linear_peak_heights_calibrated_and_banded(monkeypatch):
    # the fixed-position fit behind find_chalcogens: unbiased peak heights with calibrated
    # errors against the generator's counts, and the same answer in bands of sites
    import causalspy.descriptors.hexagonal as hx

    s, truth = hexagonal(cells=(14, 14), counts=1e4, seed=1, phase="mixed")
    tp = truth.present()
    xy = tp[["x", "y"]].to_numpy()
    sig = tp["sigma"].to_numpy(float)
    img = np.asarray(s.data, float)
    amp, err = hx._linear_amplitudes(img, xy, sig, truth.params["background"])
    z = (amp - tp["counts"].to_numpy() / (2 * np.pi * sig**2)) / err
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.25
    monkeypatch.setattr(hx, "_BAND_SITES", 150)
    amp_b, err_b = hx._linear_amplitudes(img, xy, sig, truth.params["background"])
    assert np.all(np.abs(amp_b - amp) < 0.5 * err) and np.all(np.abs(err_b / err - 1) < 0.25)


# --------------------------------------------------------------------------- strain
def _strained_atoms(F, *, noise=0.0, step_at=None, seed=0):
    """Atoms of a defect-free 2H lattice deformed by F (uniformly, or only right of x =
    step_at, continuously), with optional position noise (px)."""
    s, truth = hexagonal(cells=(14, 14), dopant_fraction=0.0, vacancy_fraction=0.0, noise=False)
    tp = truth.present()
    pos = tp[["x", "y"]].to_numpy()
    if step_at is None:
        new = pos @ np.asarray(F).T
    else:
        rel = pos - [step_at, 0.0]
        new = np.where((pos[:, 0] > step_at)[:, None], rel @ np.asarray(F).T + [step_at, 0.0], pos)
    new = new + np.random.default_rng(seed).normal(0, noise, new.shape)
    table = pd.DataFrame({"x": new[:, 0], "y": new[:, 1],
                          "sublattice": np.where(tp["site"] == "metal", 0, 1),
                          "intensity": np.where(tp["site"] == "metal", 1e4, 4e3)})
    basis = np.array([[A_PX, 0.0], [A_PX / 2, A_PX * np.sqrt(3) / 2]])
    return Atoms(table, lattice_vectors=basis @ np.asarray(F).T), basis


def test_uniform_strain_recovered():
    F = np.array([[1.012, 0.004], [-0.002, 0.993]])
    e = 0.5 * (F + F.T) - np.eye(2)
    w = 0.5 * (F[1, 0] - F[0, 1])
    expected = {"exx": e[0, 0], "eyy": e[1, 1], "exy": e[0, 1], "rotation": w}
    # exact positions, known reference: recovered per column
    atoms, basis = _strained_atoms(F)
    df = hexagonal_descriptors(atoms, reference=basis).to_dataframe(flagged=False)
    assert len(df) > 200
    for c, v in expected.items():
        np.testing.assert_allclose(df[c], v, atol=1e-9, err_msg=c)
    # with 0.03 px position noise: the mean within 0.1 % strain
    atoms, basis = _strained_atoms(F, noise=0.03, seed=4)
    df = hexagonal_descriptors(atoms, reference=basis).to_dataframe(flagged=False)
    for c, v in expected.items():
        assert abs(df[c].mean() - v) < 1e-3, c
    # against the global fit, a uniform strain is no strain
    df = hexagonal_descriptors(atoms).to_dataframe(flagged=False)
    for c in expected:
        assert abs(df[c].mean()) < 1e-3, c


def test_strain_step_against_reference_region():
    F = np.array([[1.01, 0.0], [0.0, 1.0]])
    atoms, _ = _strained_atoms(F, step_at=140.0)
    desc = hexagonal_descriptors(atoms, reference=(0.0, 120.0, 0.0, 250.0))
    df = desc.to_dataframe(flagged=False)
    left = df["x"] < 120
    right = df["x"] > 165
    np.testing.assert_allclose(df.loc[left, "exx"], 0.0, atol=1e-9)
    np.testing.assert_allclose(df.loc[right, "exx"], 0.01, atol=1e-9)
    np.testing.assert_allclose(df.loc[left | right, ["eyy", "exy", "rotation"]], 0.0, atol=1e-9)
    assert desc.metadata["parameters"]["reference"] == [0.0, 120.0, 0.0, 250.0]


# --------------------------------------------------------------------------- results
def test_save_load_round_trip(pure, tmp_path):
    _, _, _, desc = pure
    path = desc.save(tmp_path / "hex.csv")
    back = Descriptors.load(path)
    a, b = desc.to_dataframe(), back.to_dataframe()
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        va, vb = a[c].to_numpy(), b[c].to_numpy()
        if va.dtype.kind == "f":
            assert np.array_equal(va.view(np.int64), vb.view(np.int64)), c
        else:
            assert np.array_equal(va, vb), c
    assert back.units == desc.units
    assert back.lattice == desc.lattice
    assert back.metadata["structure"] == "hexagonal"
    assert back.metadata["parameters"] == desc.metadata["parameters"]


def test_plot_and_maps(pure):
    import matplotlib.pyplot as plt

    _, _, _, desc = pure
    for name in ("psi3", "exx", "coordination"):
        ax = desc.plot(name)
        assert ax.get_title() == name
    plt.close("all")
    maps = desc.to_maps(["coordination", "exx", "psi3"])
    assert maps.data.shape[0] == 3
    # metal sites on the cell grid: each holds one metal row
    metal = desc.to_dataframe().query("site == 'metal'")
    assert np.isfinite(maps.data[0]).sum() == (~metal["flag"]).sum()


def test_metadata_and_units(pure):
    _, _, atoms, desc = pure
    md = desc.metadata
    assert md["structure"] == "hexagonal"
    assert md["parameters"]["metal_sublattice"] == 0
    assert md["parameters"]["z_threshold"] == 5.0
    assert md["source"] == atoms.metadata["source"]
    assert md["metal_chalcogen_distance_px"] == pytest.approx(D_MX, rel=0.01)
    assert desc.units["x"] == "px" and desc.units["rotation"] == "rad"
    assert desc.units["x_cal"] == "nm"
    assert set(desc["phase"]) <= {"2H", "1T", UNDETERMINED}
    assert set(desc["defect"]) <= {"none", "dopant", "vacancy"}
    assert md["defects"]["metal_vacancy"] == int(
        ((desc["site"] == "metal") & (desc["defect"] == "vacancy")).sum())


def test_inputs_not_modified(pure):
    _, _, atoms, _ = pure
    before = atoms.to_dataframe()
    vac = atoms.vacancies.copy()
    hexagonal_descriptors(atoms)
    pd.testing.assert_frame_equal(before, atoms.to_dataframe())
    pd.testing.assert_frame_equal(vac, atoms.vacancies)


def test_metal_sublattice_when_chalcogen_is_brighter():
    # 2H-MoSe2: an Se2 column outshines Mo, so "brightest" picks the chalcogens
    s, truth = hexagonal(cells=(10, 10), chalcogen="Se", dopant=("W", "Te"), seed=1)
    atoms = _ideal_atoms(s, truth)
    assert hexagonal_descriptors(atoms).metadata["parameters"]["metal_sublattice"] == 1
    desc = hexagonal_descriptors(atoms, metal_sublattice=0)
    f, t, _ = _match(desc, truth)
    assert (f["site"].to_numpy() == t["site"].to_numpy()).all()


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    s, _ = hexagonal(cells=(8, 8), seed=0)
    with pytest.raises(NoColumnsFoundError, match="sublattices"):
        hexagonal_descriptors(s.find_atoms(sublattices=False))
    with pytest.raises(NoColumnsFoundError, match="lattice vectors or sublattices"):
        hexagonal_descriptors(Atoms(pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0)}),
                                    lattice_vectors=np.eye(2)))
    atoms = s.find_atoms()
    for kwargs, match in [
        ({"metal_sublattice": 7}, "metal_sublattice"),
        ({"chalcogen_sublattice": 0}, "chalcogen_sublattice"),
        ({"z_threshold": -1.0}, "z_threshold"),
        ({"tol": 50.0}, "tol"),
        ({"measure": "peak"}, "measure"),
        ({"reference": "local"}, "reference"),
        ({"reference": (0.0, 5.0, 0.0, 5.0)}, "at least 4"),
        ({"reference": [[20.0, 0.0], [0.0, 20.0]]}, "60 or 120"),
        ({"reference": ["a", "b"]}, "reference must be"),
    ]:
        with pytest.raises(InvalidParameterError, match=match):
            hexagonal_descriptors(atoms, **kwargs)


def test_perovskite_is_not_hexagonal():
    s, _ = perovskite(cells=(6, 6), seed=0)
    atoms = s.find_atoms()
    with pytest.raises(InvalidParameterError, match="do not look hexagonal"):
        hexagonal_descriptors(atoms)
    # a square lattice given hexagonal-looking vectors: the columns still say no
    fake = Atoms(atoms.to_dataframe(), lattice_vectors=np.array([[24.0, 0.0], [12.0, 20.78]]))
    with pytest.raises(InvalidParameterError, match="do not look hexagonal"):
        hexagonal_descriptors(fake)


def test_one_sublattice_is_rejected():
    s, truth = hexagonal(cells=(8, 8), seed=0)
    atoms = _ideal_atoms(s, truth)
    one = Atoms(atoms.to_dataframe().assign(sublattice=0), lattice_vectors=atoms.lattice_vectors)
    with pytest.raises(InvalidParameterError, match="1 sublattice"):
        hexagonal_descriptors(one)


# --------------------------------------------------------------------------- generator
def test_generator_default_is_2h_and_unchanged():
    s0, t0 = hexagonal(cells=(8, 8), seed=4, dopant_fraction=0.05)
    s1, t1 = hexagonal(cells=(8, 8), seed=4, dopant_fraction=0.05, phase="2H")
    np.testing.assert_array_equal(s0.data, s1.data)
    pd.testing.assert_frame_equal(t0.columns, t1.columns)
    assert (t0.columns["phase"] == "2H").all()
    assert set(t0.columns["hollow"]) == {0, 1}
    assert t0.params["phase"] is None and t1.params["phase"] == "2H"
    assert s0.metadata.General.title.startswith("Synthetic 2H-MoS2")


def test_generator_mixed_phase_geometry_and_counts():
    s, truth = hexagonal(cells=(10, 12), phase="mixed", dopant_fraction=0, vacancy_fraction=0,
                         noise=False)
    c = truth.columns
    boundary = truth.params["phase_boundary_x_px"]
    assert boundary == pytest.approx((s.data.shape[1] - 1) / 2)
    assert set(c["phase"]) == {"2H", "1T"}
    # phase by cell: the cell centre (its hollow-1 chalcogen) decides
    centre = c[c["hollow"] == 1]
    assert ((centre["x"] > boundary) == (centre["phase"] == "1T")).all()
    assert (c.loc[c["hollow"] == 2, "phase"] == "1T").all()
    # 1T chalcogen columns hold one atom, half the 2H column's counts
    x2h = c[(c["site"] == "chalcogen") & (c["phase"] == "2H")]
    x1t = c[(c["site"] == "chalcogen") & (c["phase"] == "1T")]
    assert (x1t["n_atoms"] == 1).all() and (x2h["n_atoms"] == 2).all()
    np.testing.assert_allclose(x1t["counts"], x2h["counts"].iloc[0] / 2)
    assert (x1t["species"] == "S").all() and (x2h["species"] == "S2").all()
    # octahedral vs trigonal prismatic: 6 vs 3 chalcogen columns around interior metals
    tree = cKDTree(c.loc[c["site"] == "chalcogen", ["x", "y"]].to_numpy())
    metal = c[(c["site"] == "metal") & _away_from_border(c, s.data.shape, 25.0)]
    far = np.abs(metal["x"] - boundary) > 2 * A_PX
    n_nb = np.array([len(v) for v in tree.query_ball_point(metal[["x", "y"]].to_numpy(),
                                                           1.2 * D_MX)])
    assert (n_nb[far.to_numpy() & (metal["phase"] == "1T").to_numpy()] == 6).all()
    assert (n_nb[far.to_numpy() & (metal["phase"] == "2H").to_numpy()] == 3).all()
    assert s.metadata.General.title.startswith("Synthetic 2H/1T-MoS2")
    assert "S" in truth.params["counts_per_species"]


def test_generator_phase_maps():
    def disc(x, y):
        return np.hypot(x - 120, y - 100) < 60

    s1, t1 = hexagonal(cells=(12, 12), phase=disc, noise=False)
    c = t1.columns
    centre = c[c["hollow"] == 1]
    inside = np.hypot(centre["x"] - 120, centre["y"] - 100) < 60
    assert (inside == (centre["phase"] == "1T")).all()
    assert t1.params["phase"] == "callable"
    # the same map as an image-shaped array of labels
    yy, xx = np.indices(s1.data.shape)
    labels = np.where(np.hypot(xx - 120, yy - 100) < 60, "1T", "2H")
    s2, t2 = hexagonal(cells=(12, 12), phase=labels, noise=False)
    assert t2.params["phase"] == "array"
    assert (t2.columns.loc[t2.columns["hollow"] == 1, "phase"].to_numpy()
            == centre["phase"].to_numpy()).mean() > 0.97
    _, t3 = hexagonal(cells=(6, 6), phase="1t", noise=False)
    assert (t3.columns["phase"] == "1T").all()


@pytest.mark.parametrize(("phase", "match"), [
    ("3R", "phase must be None"),
    (np.zeros((5, 5), bool), "image shape"),
    (lambda x, y: np.full(x.shape, "2H1"), "labels '2H' and '1T'"),
    (lambda x, y: x[:3] > 0, "one value per site"),
    (lambda x, y: 1 / 0, "ZeroDivisionError"),
])
def test_generator_bad_phase(phase, match):
    with pytest.raises(InvalidParameterError, match=match):
        hexagonal(cells=(6, 6), phase=phase)


@pytest.mark.parametrize("vectors", ["dense", "metal_and_hollow"])
def test_dense_lattice_sites_by_position(vectors):
    # on 1T areas every site of the dense triangular lattice (a / sqrt 3) is occupied, and
    # find_atoms' lattice analysis may return that lattice (or a metal translation with a
    # metal-chalcogen vector) and one sublattice: sites are then labelled by position
    s, truth = hexagonal(cells=(12, 12), counts=1e4, seed=4, phase="mixed",
                         dopant_fraction=0, vacancy_fraction=0)
    tp = truth.present().reset_index(drop=True)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": tp["x"] + rng.normal(0, 0.1, len(tp)),
                          "y": tp["y"] + rng.normal(0, 0.1, len(tp)),
                          "intensity": tp["counts"] * rng.normal(1, 0.03, len(tp)),
                          "sublattice": 0})
    a1 = np.array([A_PX, 0.0])
    a2 = np.array([A_PX / 2, A_PX * np.sqrt(3) / 2])
    v1, v2 = (a1 + a2) / 3, (2 * a1 - a2) / 3
    basis = np.array([v1, v2 - v1]) if vectors == "dense" else np.array([a1, v1])
    atoms = Atoms(table, lattice_vectors=basis, metadata={"source": {"shape": list(s.data.shape)}})
    desc = hexagonal_descriptors(atoms)
    f, t, _ = _match(desc, truth)
    inner = _away_from_border(t, s.data.shape) & t["present"].to_numpy(bool)
    assert inner.sum() > 150
    assert (f.loc[inner, "site"] == t.loc[inner, "site"]).all()
    boundary = truth.params["phase_boundary_x_px"]
    away = inner & (np.abs(t["x"] - boundary) > 1.5 * A_PX).to_numpy()
    assert (f.loc[away, "phase"] == t.loc[away, "phase"]).mean() >= 0.95
