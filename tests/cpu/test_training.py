"""Training behaviour: reproducibility, checkpoints, budgets, the main job's accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import superneurons as sn
from superneurons.cli import main


def small_net() -> sn.Graph:
    g = sn.Graph()
    x = g.input(shape=(1, 8, 8))
    h = g.relu(g.batchnorm(g.conv2d(x, 8, 3, padding=1)))
    h = g.add(h, g.relu(g.batchnorm(g.conv2d(h, 8, 3, padding=1))))
    h = g.dropout(g.maxpool(h, 2), 0.2)
    g.softmax_cross_entropy(g.fc(h, 10))
    return g


def losses(seed: int, steps: int = 6) -> list[float]:
    train, _ = sn.data.digits(seed=0)
    s = sn.Session(small_net(), batch_size=32, seed=seed)
    loader = sn.data.DataLoader(train, 32, seed=seed, prefetch=0)
    out = []
    for i, (xb, yb) in enumerate(loader):
        if i == steps:
            break
        out.append(s.train_step(xb, yb, lr=0.05, weight_decay=1e-4).loss)
    return out


def test_same_seed_gives_identical_losses() -> None:
    a, b = losses(3), losses(3)
    assert a == b  # bit for bit
    assert a != losses(4)
    assert a[-1] < a[0]


def test_checkpoint_resume_equals_uninterrupted(tmp_path: Path) -> None:
    train, test = sn.data.digits(seed=0)
    train = train.subset(np.arange(320))

    def trainer(seed: int = 0) -> sn.Trainer:
        return sn.Trainer(sn.Session(small_net(), batch_size=32, seed=seed), lr=0.05)

    full = trainer().fit(train, 3, test, progress=False)
    ckpt = tmp_path / "run.ckpt"

    class CrashError(Exception):
        pass

    def crash_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise CrashError

    with pytest.raises(CrashError):
        trainer().fit(train, 3, test, progress=False, checkpoint=ckpt, on_epoch=crash_after_two)
    # Continue in a fresh session, as after a crash.
    second = trainer(seed=0)
    second.resume(ckpt)
    assert second.epoch == 2
    resumed = second.fit(train, 3, test, progress=False)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full]
    assert resumed[-1]["test_loss"] == full[-1]["test_loss"]


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = sn.Session(small_net(), batch_size=4, seed=0)
    path = tmp_path / "model.ckpt"
    sn.save_checkpoint(path, s, {"epoch": 1})
    good = path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        sn.save_checkpoint(path, s, {"epoch": 2})
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]  # no temporary left


def test_checkpoint_of_another_graph_is_rejected(tmp_path: Path) -> None:
    s = sn.Session(small_net(), batch_size=4, seed=0)
    sn.save_checkpoint(tmp_path / "a.ckpt", s)
    g = sn.Graph()
    g.softmax_cross_entropy(g.fc(g.input(shape=(1, 8, 8)), 10))
    with pytest.raises(ValueError, match="does not match"):
        sn.load_checkpoint(tmp_path / "a.ckpt", sn.Session(g, batch_size=4))


def test_parameters_are_zero_copy_views() -> None:
    g = sn.Graph()
    g.softmax_cross_entropy(g.fc(g.input(shape=(3, 1, 1)), 2, name="fc"))
    s = sn.Session(g, batch_size=1)
    w = s.parameters()["fc.weight"]
    assert w.shape == (2, 3) and not w.flags.owndata
    w[...] = 0.0
    s.parameters()["fc.bias"][...] = [5.0, 0.0]
    r = s.evaluate(np.ones((1, 3, 1, 1), np.float32), np.zeros(1, np.int32))
    np.testing.assert_allclose(r.logits, [[5.0, 0.0]])


def test_out_of_memory_is_typed_and_recoverable() -> None:
    g = small_net()
    need = int(sn.Session(g, batch_size=64, policy="none").memory_stats()["peak_bytes"])
    with pytest.raises(sn.OutOfMemoryError) as info:
        sn.Session(g, batch_size=64, policy="none", budget=need // 2)
    msg = str(info.value)
    assert isinstance(info.value, MemoryError)
    for part in (
        "out of memory at",
        "layer '",
        "requested",
        "free",
        "largest free block",
        "Hint",
    ):
        assert part in msg
    # The same process carries on: a smaller batch fits the same budget.
    s = sn.Session(g, batch_size=16, policy="none", budget=need // 2)
    assert s.memory_stats()["peak_bytes"] <= need // 2
    xb = np.zeros((16, 1, 8, 8), np.float32)
    assert np.isfinite(s.train_step(xb, np.zeros(16, np.int32), lr=0.1).loss)


def test_main_job_reaches_95_percent_on_digits(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: ResNet-20 on scikit-learn's digits, held-out split."""
    status = main(
        [
            "train",
            "--model",
            "resnet",
            "--depth",
            "20",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--batch",
            "64",
            "--budget",
            "256MB",
            "--json",
        ]
    )
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event"] for r in lines] == ["epoch", "epoch", "epoch", "done"]
    done = lines[-1]
    assert done["test_accuracy"] >= 0.95
    assert 0 < done["peak_bytes"] <= 256 * 1024**2
    assert done["final_loss"] == lines[-2]["loss"]


def test_cli_reports_bad_input_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--depth", "21", "--epochs", "1"]) == 2
    assert "depth" in capsys.readouterr().err
    assert main(["train", "--budget", "12 parsecs", "--epochs", "1"]) == 2
    assert "byte size" in capsys.readouterr().err


def test_bad_state_changes_nothing() -> None:
    s = sn.Session(small_net(), batch_size=4, seed=0)
    state = s.state_dict()
    before = {k: v.copy() for k, v in s.parameters().items()}
    bad = {k: v + 1 for k, v in state.items()}
    bad["__iteration__"] = np.array(-1)
    with pytest.raises(ValueError, match="__iteration__"):
        s.load_state_dict(bad)
    assert all(np.array_equal(before[k], v) for k, v in s.parameters().items())


def test_empty_training_set_is_rejected() -> None:
    train, _ = sn.data.digits(seed=0)
    empty = sn.data.ArrayDataset(train.x[:0], train.y[:0], num_classes=10)
    trainer = sn.Trainer(sn.Session(small_net(), batch_size=4), lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        trainer.fit(empty, 1, progress=False)


def test_partial_state_loads_and_parameter_copies() -> None:
    """load_state_dict(strict=False) writes the names given and nothing else;
    parameters(copy=True) are copies (the trainer's staging path on a GPU)."""
    g = sn.Graph()
    x = g.input(shape=(2, 4, 4))
    g.softmax_cross_entropy(g.fc(g.relu(g.conv2d(x, 3, 3, padding=1)), 4))
    s = sn.Session(g, 2, seed=0)
    before = s.state_dict()
    copies = s.parameters(copy=True)
    assert copies.keys() == s.parameters().keys()
    name = sorted(copies)[0]
    copies[name][...] = 7.0  # a copy: the session is unchanged
    np.testing.assert_array_equal(s.state_dict()[name], before[name])
    s.load_state_dict({name: copies[name]}, strict=False)
    after = s.state_dict()
    np.testing.assert_array_equal(after[name], 7.0)
    for other, v in before.items():
        if other != name:
            np.testing.assert_array_equal(after[other], v, err_msg=other)
    with pytest.raises(ValueError, match="missing"):
        s.load_state_dict({name: copies[name]})  # strict by default
    with pytest.raises(ValueError, match="unexpected"):
        s.load_state_dict({"nope.weight": copies[name]}, strict=False)
    with pytest.raises(ValueError, match="shape"):
        s.load_state_dict({name: np.zeros(97, np.float32)}, strict=False)
    np.testing.assert_array_equal(s.state_dict()[name], 7.0)  # a refused load wrote nothing
