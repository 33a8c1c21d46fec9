"""The DLPack exporter behind ``Session.parameters()`` on a GPU (Note [DLPack export]).

On a GPU the consumer is CuPy; here the same capsules are exported over the CPU
session's host state and taken by ``numpy.from_dlpack``, which checks the C++ side:
the tensor header, the zero-copy aliasing, both capsule kinds, the owner's lifetime and
the deleters.
"""

from __future__ import annotations

import ctypes
import gc
import sys

import numpy as np
import pytest

import superneurons as sn
from superneurons import _C
from superneurons.session import _DLPACK_CPU, _StateExport


def small_session() -> sn.Session:
    g = sn.Graph()
    x = g.input(shape=(2, 6, 6))
    g.softmax_cross_entropy(g.fc(g.relu(g.batchnorm(g.conv2d(x, 3, 3, padding=1))), 5))
    return sn.Session(g, batch_size=4, seed=1)


def exports(session: sn.Session) -> dict[str, _StateExport]:
    out = {}
    for name, (_kind, _index, shape, address, _view) in session._state.items():
        out[name] = _StateExport(address, shape, session._core, (_DLPACK_CPU, 0))
    return out


def capsule_name(capsule: object) -> str:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    return get_name(capsule).decode()


def test_every_state_buffer_is_viewed_without_a_copy_and_writes_through() -> None:
    s = small_session()
    params = s.parameters()
    views = {n: np.from_dlpack(e) for n, e in exports(s).items()}
    assert set(views) == set(s._state)
    for name, v in views.items():
        assert v.dtype == np.float32 and v.shape == s._state[name][2]
        assert v.flags.writeable and v.flags.c_contiguous
        if name in params:
            assert np.shares_memory(v, params[name])
        v[...] = np.arange(v.size, dtype=np.float32).reshape(v.shape) / 7
    state = s.state_dict()
    for name, v in views.items():
        np.testing.assert_array_equal(state[name], v)


def test_a_view_keeps_the_session_memory_alive_and_releases_it() -> None:
    s = small_session()
    core = s._core
    name = next(n for n in s._state if s._state[n][0] == "param")
    expected = s.state_dict()[name]
    before = sys.getrefcount(core)
    view = np.from_dlpack(exports(s)[name])
    gc.collect()
    assert sys.getrefcount(core) == before + 1  # the managed tensor holds the core
    del s
    gc.collect()
    np.testing.assert_array_equal(view, expected)  # still the session's memory
    held = sys.getrefcount(core)
    del view
    gc.collect()
    assert sys.getrefcount(core) == held - 1  # the deleter dropped its reference


def test_both_capsule_kinds_and_an_unconsumed_capsule_frees_itself() -> None:
    s = small_session()
    core = s._core
    export = next(iter(exports(s).values()))
    assert capsule_name(export.__dlpack__()) == "dltensor"
    assert capsule_name(export.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    assert capsule_name(export.__dlpack__(max_version=(0, 8))) == "dltensor"
    before = sys.getrefcount(core)
    capsules = [export.__dlpack__(), export.__dlpack__(max_version=(1, 2))]
    assert sys.getrefcount(core) == before + 2
    del capsules  # nobody took them: their destructors call the deleters
    gc.collect()
    assert sys.getrefcount(core) == before


class _LegacyConsumerView:
    """What a consumer that predates DLPack 1.0 asks for: no max_version, the legacy
    capsule back (NumPy retries this way when the keyword is refused)."""

    def __init__(self, export: _StateExport) -> None:
        self._export = export

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._export.__dlpack_device__()

    def __dlpack__(self, stream: object = None) -> object:
        return self._export.__dlpack__(stream=stream)


def test_the_unversioned_capsule_is_taken_by_a_consumer_and_aliases_the_state() -> None:
    s = small_session()
    name = next(n for n in s._state if s._state[n][0] == "param")
    view = np.from_dlpack(_LegacyConsumerView(exports(s)[name]))
    assert not view.flags.writeable  # NumPy's rule for unversioned imports
    np.testing.assert_array_equal(view, s.state_dict()[name])
    s.parameters()[name][...] = 3.5
    assert (view == 3.5).all()


def test_requests_the_exporter_cannot_honour_are_buffer_errors() -> None:
    s = small_session()
    export = next(iter(exports(s).values()))
    assert export.__dlpack_device__() == (_DLPACK_CPU, 0)
    with pytest.raises(BufferError, match="without a copy"):
        export.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="DLPack device"):
        export.__dlpack__(dl_device=(2, 0))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, [2], 7, 0), "device type"),
        ((0, [2], 1, -1), "device id"),
        ((0, [2, -1], 1, 0), "negative dimension"),
    ],
)
def test_bad_capsule_requests_are_value_errors(args: tuple, match: str) -> None:
    address, shape, device_type, device_id = args
    with pytest.raises(ValueError, match=match):
        _C._dlpack_capsule(address, shape, device_type, device_id, None, False)
