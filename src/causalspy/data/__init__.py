"""Synthetic atomic-resolution images with known ground truth.

Every generator returns ``(signal, truth)``: a HyperSpy signal of type
``"atomic_resolution"`` with calibrated ``x``/``y`` axes in nm, and a
:class:`GroundTruth` whose ``columns`` table lists every lattice site (true
centre, sublattice, species, expected counts, ...).

Pixel coordinates: ``x`` is the column index, ``y`` the row index, and the
origin is the *centre* of pixel ``[0, 0]``, so a column centred at
``x=3.0, y=5.0`` peaks on ``data[5, 3]``. Columns are circular 2D Gaussians
integrated exactly over each pixel, with total expected counts equal to the
column's ``counts``, on a constant background; Poisson noise is drawn with
``numpy.random.default_rng(seed)``, so the same seed gives the same image.

The generators: :func:`square_lattice`, one species on a square lattice
(the position-precision benchmark); :func:`perovskite`, ABO3 along [001]
with polar B-site displacements, ferroelectric domains and A-site
composition disorder, in HAADF or ABF contrast; :func:`hexagonal`, a 2H
MoS2-like monolayer with substitutional dopants and vacancies, optionally with
1T regions (``phase="mixed"``).
:func:`insitu_series` renders a drifting, noisy 2H → 1T series whose
nucleation hazard depends on chosen local descriptors (or on none).
:func:`render_columns` renders any set of columns with the same model.
"""

from causalspy.data._eels import EELSTruth, SpectrumImageSample, eels_spectrum_image, valence_model
from causalspy.data._elements import Z
from causalspy.data._fourdstem import FourDTruth, fourd_stem
from causalspy.data._hexagonal import hexagonal
from causalspy.data._insitu import HAZARD_DESCRIPTORS, InsituSeries, InsituTruth, insitu_series
from causalspy.data._perovskite import perovskite
from causalspy.data._render import render_columns
from causalspy.data._series import SeriesTruth, drifting_series
from causalspy.data._square import square_lattice
from causalspy.data._truth import GroundTruth
from causalspy.data.compare import Match, match_columns
from causalspy.data.scm import (
    NOISE_KINDS,
    SCMGroundTruth,
    SCMSample,
    doped_ferroelectric,
    hidden_confounder,
    linear_sem,
    render_perovskite,
    simpsons_paradox,
)

__all__ = [
    "EELSTruth",
    "SpectrumImageSample",
    "eels_spectrum_image",
    "valence_model",
    "SeriesTruth",
    "drifting_series",
    "HAZARD_DESCRIPTORS",
    "InsituSeries",
    "InsituTruth",
    "insitu_series",
    "FourDTruth",
    "fourd_stem",
    "NOISE_KINDS",
    "SCMGroundTruth",
    "SCMSample",
    "doped_ferroelectric",
    "hidden_confounder",
    "linear_sem",
    "render_perovskite",
    "simpsons_paradox",
    "GroundTruth",
    "Match",
    "match_columns",
    "Z",
    "hexagonal",
    "perovskite",
    "render_columns",
    "square_lattice",
]
