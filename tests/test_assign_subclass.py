"""Registration of causalspy's signal types with HyperSpy (like exspy's test_assign_subclass)."""

import hyperspy.api as hs
import numpy as np
import pytest
from hyperspy.decorators import lazifyTestClass

import causalspy
from causalspy.signals import AtomicResolution, LazyAtomicResolution


def test_listed_by_hyperspy(capsys):
    hs.print_known_signal_types()
    out = capsys.readouterr().out
    assert "atomic_resolution" in out
    assert "causalspy" in out


def test_set_signal_type_and_back():
    s = hs.signals.Signal2D(np.zeros((16, 16)))
    s.set_signal_type("atomic_resolution")
    assert isinstance(s, AtomicResolution)
    assert s.metadata.Signal.signal_type == "atomic_resolution"
    s.set_signal_type("")
    assert type(s) is hs.signals.Signal2D


def test_alias():
    s = hs.signals.Signal2D(np.zeros((16, 16)))
    s.set_signal_type("atomic resolution")
    assert isinstance(s, AtomicResolution)


def test_lazy_twin():
    s = hs.signals.Signal2D(np.zeros((16, 16))).as_lazy()
    s.set_signal_type("atomic_resolution")
    assert isinstance(s, LazyAtomicResolution)
    s.compute()
    assert type(s) is AtomicResolution


@pytest.mark.parametrize("lazy", [False, True])
def test_load_with_signal_type(tmp_path, lazy):
    s = hs.signals.Signal2D(np.arange(256.0).reshape(16, 16))
    f = tmp_path / "img.hspy"
    s.save(f)
    s2 = hs.load(f, signal_type="atomic_resolution", lazy=lazy)
    assert isinstance(s2, LazyAtomicResolution if lazy else AtomicResolution)
    assert type(s2) is (LazyAtomicResolution if lazy else AtomicResolution)


def test_saved_type_roundtrip(tmp_path):
    s = hs.signals.Signal2D(np.random.default_rng(0).random((16, 16)))
    s.set_signal_type("atomic_resolution")
    f = tmp_path / "img.hspy"
    s.save(f)
    assert type(hs.load(f)) is AtomicResolution


@lazifyTestClass
class TestSignal2D:
    def setup_method(self, method):
        self.s = hs.signals.BaseSignal(np.random.default_rng(1).random((12, 14)))

    def test_as_signal2d_then_type(self):
        s = self.s.as_signal2D((0, 1))
        s.set_signal_type("atomic_resolution")
        cls = LazyAtomicResolution if s._lazy else AtomicResolution
        assert isinstance(s, cls)


def test_extension_entry_point_name():
    from importlib.metadata import entry_points

    eps = [e for e in entry_points(group="hyperspy.extensions") if e.value == "causalspy"]
    assert eps and eps[0].name == "causalspy" == causalspy.__name__
