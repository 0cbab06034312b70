"""The multimodal chain recovers who drives whom: valence -> structure or the reverse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalspy.causal import discover
from causalspy.data import eels_spectrum_image, match_columns, valence_model
from causalspy.exceptions import InvalidParameterError
from causalspy.multimodal import Registration, coregister, spectral_descriptor_maps

COLUMNS = ["Ti_L23_shift", "area", "p_mag", "Ti_L23_l3_l2", "plasmon"]
RENAME = {"Ti_L23_shift": "edge_shift", "area": "volume", "Ti_L23_l3_l2": "l3_l2"}


def _chain(direction: str, seed: int):
    d = eels_spectrum_image(direction, cells=(30, 30), seed=seed)
    desc = d.haadf.find_atoms().descriptors(structure="perovskite")
    core = spectral_descriptor_maps(d.core_loss, edges=["Ti_L23"])
    low = spectral_descriptor_maps(d.low_loss, plasmon=(15, 45))
    both = coregister(desc, core, reference=d.haadf, moving=d.adf)
    reg = both.metadata["multimodal"][-1]["registration"]
    both = coregister(both, low, reference=d.haadf, moving=d.adf)
    t = both.to_dataframe(flagged=False)
    # the generator sets the descriptors in every other cell (its "units"); keep those
    units = d.truth.cells[d.truth.cells["unit"].to_numpy(bool)]
    m = match_columns(t[["x", "y"]].to_numpy(), units[["x", "y"]].to_numpy(), 3.0)
    table = t.iloc[m.found_index][COLUMNS].dropna().reset_index(drop=True)
    return d, table, np.asarray(reg["matrix"])


@pytest.mark.parametrize("direction", ["electronic_to_structure", "structure_to_electronic"])
def test_generating_direction_is_recovered(direction):
    d, table, matrix = _chain(direction, seed=11)
    assert len(table) > 120
    reg = Registration(matrix, moving_shape=d.adf.data.shape)
    assert reg.error_px(d.truth.transform) < 0.1  # structural px
    g = discover(table.rename(columns=RENAME), method="lingam")
    found = set(g.directed_edges())
    truth = set(d.truth.sample.observed_edges) - {e for e in d.truth.sample.observed_edges
                                                   if "intensity_A" in e}
    assert found == truth, (found, truth)
    if direction == "electronic_to_structure":
        assert ("edge_shift", "volume") in found and ("volume", "edge_shift") not in found
    else:
        assert ("volume", "edge_shift") in found and ("edge_shift", "volume") not in found


def test_valence_model_edges_and_bad_direction():
    s = valence_model("structure_to_electronic", n=50, seed=0)
    assert ("volume", "edge_shift") in s.edges and ("p_mag", "edge_shift") in s.edges
    s = valence_model("electronic_to_structure", n=50, seed=0)
    assert ("edge_shift", "volume") in s.edges
    with pytest.raises(InvalidParameterError, match="direction"):
        valence_model("sideways")
    with pytest.raises(InvalidParameterError, match="direction"):
        eels_spectrum_image("sideways")


def test_default_variables_leave_out_uncertainties_and_the_onset():
    """A co-registered table goes straight into discover(): its error columns (and the edge
    onset, the reference onset plus the shift) are not variables unless named."""
    from causalspy.causal.preprocess import prepare_table
    from causalspy.multimodal import map_to_cells

    rng = np.random.default_rng(0)
    g = np.arange(12) * 10.0 + 5.0
    pos = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)  # 144 cells, 10 px apart
    n = len(pos)
    area = rng.uniform(-1, 1, n)
    shift = 0.8 * area + rng.uniform(-0.5, 0.5, n)  # structure -> edge shift
    cell = ((np.arange(120)[:, None] // 10) * 12 + np.arange(120)[None, :] // 10)
    maps = {"Ti_L23_onset": 456.9 + shift[cell], "Ti_L23_shift": shift[cell],
            "Ti_L23_shift_err": np.full((120, 120), 0.02) + rng.uniform(0, 1e-3, (120, 120))}
    desc = map_to_cells(maps, pos, errors=True)
    desc = type(desc)(desc.to_dataframe().assign(area=area), units=desc.units)
    assert {"Ti_L23_shift_err", "Ti_L23_shift_sem", "Ti_L23_onset"} <= set(desc.names)
    assert list(prepare_table(desc).columns) == ["Ti_L23_shift", "area"]
    gr = discover(desc, method="lingam")
    assert set(gr.nodes) == {"Ti_L23_shift", "area"}
    assert gr.directed_edges() == [("area", "Ti_L23_shift")]
    # named explicitly, an error column is still a variable
    t = prepare_table(desc, columns=["area", "Ti_L23_shift", "Ti_L23_shift_err"])
    assert list(t.columns) == ["area", "Ti_L23_shift", "Ti_L23_shift_err"]


def test_cli_causal_default_variables_of_a_multimodal_table(tmp_path):
    """`causalspy causal table.csv` picks the same default variables as discover()."""
    import json
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    n = 400
    area = rng.uniform(-1, 1, n)
    shift = 0.8 * area + rng.uniform(-0.5, 0.5, n)
    df = pd.DataFrame({"area": area, "Ti_L23_shift": shift, "Ti_L23_onset": 456.9 + shift,
                       "Ti_L23_shift_err": 0.02 + rng.uniform(0, 1e-3, n),
                       "Ti_L23_shift_sem": 0.01 + rng.uniform(0, 1e-3, n)})
    f = tmp_path / "cells.csv"
    df.to_csv(f, index=False)
    out = tmp_path / "g.json"
    r = subprocess.run([sys.executable, "-m", "causalspy.cli", "causal", str(f), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    g = json.loads(out.read_text())
    assert set(g["nodes"]) == {"area", "Ti_L23_shift"}
