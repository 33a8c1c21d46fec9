"""Checkpoint files: a failed load changes nothing, writes are atomic, 0644 and clean up
after themselves (see Note [Checkpoint safety] in superneurons/_checkpoint.py)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import superneurons as sn
from superneurons._checkpoint import PARTIAL_SUFFIX


def session(seed: int = 0) -> sn.Session:
    g = sn.Graph()
    x = g.input(shape=(1, 8, 8))
    h = g.relu(g.batchnorm(g.conv2d(x, 4, 3, padding=1)))
    g.softmax_cross_entropy(g.fc(h, 10))
    return sn.Session(g, batch_size=8, seed=seed)


def archive(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def good_arrays() -> dict[str, np.ndarray]:
    state = session(seed=1).state_dict()
    state["__meta__"] = np.frombuffer(json.dumps({"epoch": 1}).encode(), np.uint8)
    return state


def edited(edit: Callable[[dict[str, np.ndarray]], None]) -> bytes:
    arrays = good_arrays()
    edit(arrays)
    return archive(arrays)


def _set(key: str, value: np.ndarray) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda a: a.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda a: a.__delitem__(key)


def _meta(text: bytes) -> np.ndarray:
    return np.frombuffer(text, np.uint8)


W = "conv2d1.weight"
# (what, file contents, text the error must contain)
CORRUPT: list[tuple[str, bytes, str]] = [
    ("empty", b"", "is empty"),
    ("text", b"hello\n", "not a superneurons checkpoint"),
    ("a lone .npy", b"", "single array"),  # contents filled in below
    ("truncated at 10%", b"", "truncated"),
    ("truncated at 90%", b"", "truncated"),
    ("no metadata", edited(_drop("__meta__")), "no '__meta__'"),
    ("metadata not JSON", edited(_set("__meta__", _meta(b"{epoch: 1"))), "corrupt metadata"),
    ("metadata not UTF-8", edited(_set("__meta__", _meta(b"\xff\xfe"))), "corrupt metadata"),
    ("metadata a list", edited(_set("__meta__", _meta(b"[1, 2]"))), "must be a JSON object"),
    ("metadata float", edited(_set("__meta__", np.zeros(3))), "not a byte string"),
    ("no iteration", edited(_drop("__iteration__")), "no '__iteration__'"),
    (
        "iteration 2**64-1",
        edited(_set("__iteration__", np.array(2**64 - 1, np.uint64))),
        "outside [0, 2**63)",
    ),
    ("iteration -1", edited(_set("__iteration__", np.array(-1))), "outside [0, 2**63)"),
    ("iteration float", edited(_set("__iteration__", np.array(1.5))), "integer scalar"),
    ("iteration array", edited(_set("__iteration__", np.arange(2))), "integer scalar"),
    ("weight float64", edited(_set(W, np.zeros((4, 1, 3, 3)))), "dtype float64"),
    ("weight int", edited(_set(W, np.zeros((4, 1, 3, 3), np.int32))), "expected float32"),
    ("weight shape", edited(_set(W, np.zeros((4, 1, 3), np.float32))), "has shape (4, 1, 3)"),
    ("weight missing", edited(_drop(W)), "does not match this graph"),
    ("extra array", edited(_set("ghost", np.zeros(2, np.float32))), "unexpected ['ghost']"),
    ("weight NaN", edited(lambda a: a[W].__setitem__((0, 0, 0, 0), np.nan)), "non-finite"),
    ("momentum inf", b"", "non-finite"),  # filled in below
]


def _fill_in() -> None:
    good = archive(good_arrays())
    buf = io.BytesIO()
    np.save(buf, np.zeros(3, np.float32))
    momentum = next(k for k in good_arrays() if k.endswith(".momentum"))
    fills = {
        "a lone .npy": buf.getvalue(),
        "truncated at 10%": good[: len(good) // 10],
        "truncated at 90%": good[: len(good) * 9 // 10],
        "momentum inf": edited(lambda a: a[momentum].__setitem__((0,) * a[momentum].ndim, np.inf)),
    }
    for i, (what, _, needle) in enumerate(CORRUPT):
        if what in fills:
            CORRUPT[i] = (what, fills[what], needle)


_fill_in()


def snapshot(s: sn.Session) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in s.state_dict().items()}


def assert_unchanged(s: sn.Session, before: dict[str, np.ndarray]) -> None:
    after = s.state_dict()
    assert set(after) == set(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


@pytest.mark.parametrize(("what", "data", "needle"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_a_failed_load_changes_nothing(what: str, data: bytes, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.ckpt"
    path.write_bytes(data)
    s = session()
    before = snapshot(s)
    with pytest.raises(sn.CheckpointError) as info:
        sn.load_checkpoint(path, s)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value) and needle in str(info.value)
    assert_unchanged(s, before)
    trainer = sn.Trainer(s)
    with pytest.raises(sn.CheckpointError):
        trainer.resume(path)
    assert_unchanged(s, before)
    assert trainer.epoch == 0


@pytest.mark.parametrize(
    ("meta", "needle"),
    [({"epoch": -1}, "'epoch' must be"), ({"epoch": "2"}, "'epoch'"), ({"history": 3}, "history")],
)
def test_resume_checks_the_metadata_first(meta: dict, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    sn.save_checkpoint(path, session(seed=1), meta)
    s = session()
    before = snapshot(s)
    trainer = sn.Trainer(s)
    with pytest.raises(sn.CheckpointError, match=needle):
        trainer.resume(path)
    assert_unchanged(s, before)


@pytest.mark.parametrize("bad", ["missing", "dir"])
def test_missing_file_or_directory_is_a_checkpoint_error(bad: str, tmp_path: Path) -> None:
    path = tmp_path if bad == "dir" else tmp_path / "nope.ckpt"
    with pytest.raises(sn.CheckpointError, match=str(path)):
        sn.load_checkpoint(path, session())


def test_round_trip_keeps_iteration_and_weights(tmp_path: Path) -> None:
    a = session(seed=1)
    a.train_step(np.ones((8, 1, 8, 8), np.float32), np.arange(8) % 10, lr=0.1)
    sn.save_checkpoint(tmp_path / "r.ckpt", a, {"epoch": 3})
    b = session(seed=2)
    assert sn.load_checkpoint(tmp_path / "r.ckpt", b) == {"epoch": 3}
    assert b.iteration == 1
    assert_unchanged(b, snapshot(a))


def test_checkpoint_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        sn.save_checkpoint(tmp_path / "a.ckpt", session())
        os.umask(0o077)
        sn.save_checkpoint(tmp_path / "b.ckpt", session())
    finally:
        os.umask(old)
    assert (tmp_path / "a.ckpt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.ckpt").stat().st_mode & 0o777 == 0o600


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partial_files_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "run.ckpt"
    stale = tmp_path / f"run.ckpt.{_dead_pid()}.0badc0de{PARTIAL_SUFFIX}"
    live = tmp_path / f"run.ckpt.{os.getppid()}.0000beef{PARTIAL_SUFFIX}"  # a live writer
    other = tmp_path / f"other.ckpt.{_dead_pid()}.00000000{PARTIAL_SUFFIX}"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    sn.save_checkpoint(target, session())
    assert not stale.exists()
    assert live.exists() and other.exists()  # another writer's, another target's
    assert sn.load_checkpoint(target, session()) == {}


WRITER = """
import sys, superneurons as sn
g = sn.Graph()
g.softmax_cross_entropy(g.fc(g.input(shape=(64, 16, 16)), 500))
s = sn.Session(g, batch_size=1)
print("ready", flush=True)
while True:
    sn.save_checkpoint(sys.argv[1], s, {"epoch": 1})
"""


def test_kill_9_mid_write_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "run.ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, cwd=tmp_path
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    names = {p.name for p in tmp_path.iterdir()}
    assert "run.ckpt" in names
    assert all(n == "run.ckpt" or n.endswith(PARTIAL_SUFFIX) for n in names), names
    g = sn.Graph()
    g.softmax_cross_entropy(g.fc(g.input(shape=(64, 16, 16)), 500))
    s = sn.Session(g, batch_size=1)
    assert sn.load_checkpoint(target, s) == {"epoch": 1}
    sn.save_checkpoint(target, s, {"epoch": 2})  # cleans up after the killed writer
    assert {p.name for p in tmp_path.iterdir()} == {"run.ckpt"}


def test_checkpoint_to_a_directory_fails_before_training(tmp_path: Path) -> None:
    train, _ = sn.data.digits(seed=0)
    s = session()
    before = snapshot(s)
    with pytest.raises(sn.CheckpointError, match="is a directory"):
        sn.Trainer(s).fit(train, 1, progress=False, checkpoint=tmp_path)
    assert_unchanged(s, before)  # not one step was taken
