"""Hostile inputs, as data: adding a case is one line.

Each CLI case runs ``superneurons ... --json`` in-process and must give one clear line on
stderr (no traceback), one JSON error object on stdout, and the exit status that the
note [CLI errors] in superneurons/cli.py promises: 2 for usage and input errors, 1 for
runtime failures. Each API case must raise the named exception type with a message
naming the problem. ``{tmp}`` in an argument is a folder prepared by ``hostile_files``.
"""

from __future__ import annotations

import json
import shlex
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import superneurons as sn
from superneurons.cli import main
from superneurons.data import DatasetFormatError

# (arguments, exit status, text the error must contain)
CLI_CASES: list[tuple[str, int, str]] = [
    ("", 2, "required"),
    ("frobnicate", 2, "invalid choice"),
    ("plan --image-size 0", 2, "--image-size: must be an integer >= 1"),
    ("plan --image-size -3", 2, "--image-size"),
    ("plan --image-size ten", 2, "must be an integer, got 'ten'"),
    ("bench --classes 0", 2, "--classes: must be an integer >= 1"),
    ("bench --iterations 0", 2, "--iterations"),
    ("bench --policies none,bogus", 2, "unknown memory policy 'bogus'"),
    ("plan --policy superneuron", 2, "invalid choice"),
    ("plan --budget 0", 2, "leave --budget out for no budget"),
    ("train --budget 0 --epochs 1", 2, "leave --budget out"),
    ("plan --budget 0MB", 2, "must be > 0 bytes"),
    ("plan --budget 99999999999999999999TB", 2, "'99999999999999999999TB' is too large"),
    ("plan --budget 12parsecs", 2, "cannot read '12parsecs' as a byte size"),
    ("plan --budget=-5MB", 2, "cannot read '-5MB' as a byte size"),
    ("plan --batch 0", 2, "--batch"),
    ("plan --batch 1000000000000", 2, "got '1000000000000'"),
    ("train --batch 9223372036854775808", 2, "got '9223372036854775808'"),
    ("train --model resnet50 --depth 50", 2, "--depth applies to --model resnet only"),
    ("plan --model vgg16 --n 1 1 1 1", 2, "--n applies to --model resnet only"),
    ("train --depth 21 --epochs 1", 2, "depth"),
    ("plan --n 1 0 1 1", 2, "--n"),
    ("train --dataset cifar", 2, "did you mean 'cifar10' or 'synthetic-cifar'"),
    ("train --dataset imagenet", 2, "synthetic-imagenet"),
    ("train --dataset cifar10", 2, "pass --data-dir"),
    ("train --dataset cifar10 --data-dir {tmp}/missing", 2, "no such directory"),
    ("train --dataset cifar10 --data-dir {tmp}/empty", 2, "batch file not found"),
    ("train --dataset fashion-mnist --data-dir {tmp}/idx", 2, "for the shape (2147483648"),
    ("train --dataset digits --data-dir {tmp}", 2, "--data-dir is read by"),
    ("train --resume {tmp}/missing.ckpt", 2, "no such checkpoint file"),
    ("train --resume {tmp}/empty.ckpt", 2, "is empty"),
    ("train --resume {tmp}/garbage.ckpt", 2, "not a superneurons checkpoint"),
    ("train --resume {tmp}/truncated.ckpt", 2, "truncated"),
    ("train --resume {tmp}/other.ckpt", 2, "does not match this graph"),
    ("train --resume {tmp}", 2, "is a directory"),
    ("train --resume {tmp}/done.ckpt --epochs 3", 2, "has already trained 3 epochs"),
    ("train --resume {tmp}/badmeta.ckpt", 2, "metadata 'epoch' must be an integer >= 0"),
    ("train --checkpoint {tmp}", 2, "is a directory; give a file name"),
    ("train --checkpoint {tmp}/garbage.ckpt/x", 2, "not a directory"),
    ("train --momentum 5", 2, "momentum must be in [0, 1)"),
    ("train --momentum 1", 2, "momentum must be in [0, 1)"),
    ("train --lr 0", 2, "the learning rate must be a finite number > 0"),
    ("train --lr inf", 2, "learning rate"),
    ("train --lr nan", 2, "learning rate"),
    ("train --weight-decay -1", 2, "weight decay"),
    ("train --epochs 0", 2, "--epochs"),
    ("train --samples 0 --dataset synthetic-cifar", 2, "--samples"),
    ("train --seed -1", 2, "--seed"),
    ("train --seed 18446744073709551616", 2, "--seed"),
    ("train --device tpu --epochs 1", 2, "unknown device 'tpu'"),
    ("train --depth 8 --epochs 1 --budget 1MB", 1, "out of memory"),
    (
        "train --depth 8 --dataset synthetic-cifar --samples 64 --batch 32 --lr 1000 --epochs 2",
        1,
        "pass a smaller --lr",
    ),
]


def small_session() -> sn.Session:
    g = sn.Graph()
    x = g.input(shape=(1, 8, 8))
    g.softmax_cross_entropy(g.fc(g.relu(g.conv2d(x, 4, 3, padding=1)), 10))
    return sn.Session(g, batch_size=8, seed=0)


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "empty").mkdir()
    (tmp / "empty.ckpt").write_bytes(b"")
    (tmp / "garbage.ckpt").write_bytes(b"this is not a checkpoint\n" * 10)
    sn.save_checkpoint(tmp / "other.ckpt", small_session(), {"epoch": 1})
    good = (tmp / "other.ckpt").read_bytes()
    (tmp / "truncated.ckpt").write_bytes(good[: len(good) // 2])
    main_job = sn.Session(sn.models.resnet(depth=20, image_size=8, in_channels=1), 64)
    sn.save_checkpoint(tmp / "done.ckpt", main_job, {"epoch": 3, "history": [{}] * 3})
    sn.save_checkpoint(tmp / "badmeta.ckpt", main_job, {"epoch": -1})
    idx = tmp / "idx"
    idx.mkdir()  # a header that declares 2**31 x 2**31 images of 28 pixels, and no data
    (idx / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 2**31, 2**31, 28))
    (idx / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 0))
    return tmp


@pytest.mark.parametrize(("args", "status", "needle"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_rejects_hostile_input(
    args: str, status: int, needle: str, hostile_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{tmp}", str(hostile_files)) for a in shlex.split(args)]
    assert main([*argv, "--json"]) == status
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if line.startswith("superneurons: error: ")]
    assert len(errors) == 1, err
    assert needle in errors[0]
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "error" and needle in events[-1]["error"]
    assert events[-1]["exit_status"] == status and events[-1]["type"]


def test_cli_error_without_json_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--image-size", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("superneurons: error:")


def test_cli_internal_error_has_traceback_only_under_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(sn, "plan", bug)
    assert main(["plan"]) == 1
    err = capsys.readouterr().err
    assert "internal error (KeyError" in err and "--debug" in err and "Traceback" not in err
    assert main(["plan", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_cli_help_is_complete(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for word in ("train", "plan", "bench", "info", "(info)", "(calibrate).", "MB = MiB"):
        assert word in out


def test_cli_warning_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    if sn.build_info()["cuda"] and int(sn.build_info()["cuda_devices"]) > 0:
        pytest.skip("a GPU is visible: 'cuda' runs there and nothing is warned")
    argv = ["train", "--depth", "8", "--epochs", "1", "--device", "cuda", "--json"]
    assert main([*argv, "--samples", "10"]) == 0
    warnings_seen = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings_seen) == 1
    assert warnings_seen[0].startswith("superneurons: warning: device 'cuda' was requested")
    assert "insufficient" not in warnings_seen[0] and ".py:" not in warnings_seen[0]


# (what, call, exception type, text the message must contain)
def _nan_batch() -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((8, 1, 8, 8), np.float32)
    x[3, 0, 2, 5] = np.nan
    return x, np.zeros(8, np.int32)


def _inf_dataset() -> sn.data.ArrayDataset:
    x = np.zeros((40, 1, 8, 8), np.float32)
    x[17, 0, 0, 0] = np.inf
    return sn.data.ArrayDataset(x, np.arange(40, dtype=np.int32) % 10, 10)


API_CASES: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    ("budget 0", lambda: sn.parse_budget(0), ValueError, "must be > 0 bytes"),
    ("budget '0GB'", lambda: sn.parse_budget("0GB"), ValueError, "use None for no budget"),
    ("huge budget", lambda: sn.parse_bytes("99999999999999999999TB"), ValueError, "too large"),
    ("budget float", lambda: sn.parse_bytes(1.5), TypeError, "byte size"),  # type: ignore[arg-type]
    ("session budget 0", lambda: sn.Session(small_session().graph, 8, budget=0), ValueError, "> 0"),
    ("session batch 2**63", lambda: sn.Session(small_session().graph, 2**63), ValueError, "large"),
    ("plan batch 10**12", lambda: sn.plan(small_session().graph, 10**12), ValueError, "batch_size"),
    ("plan budget 0", lambda: sn.plan(small_session().graph, 8, budget=0), ValueError, "> 0"),
    ("momentum 5", lambda: sn.Trainer(small_session(), momentum=5), ValueError, "momentum"),
    ("lr nan", lambda: sn.Trainer(small_session(), lr=float("nan")), ValueError, "lr must"),
    ("lr 0", lambda: sn.Trainer(small_session(), lr=0), ValueError, "lr must be a finite"),
    ("lr str", lambda: sn.Trainer(small_session(), lr="0.1"), TypeError, "real number"),  # type: ignore[arg-type]
    (
        "train_step momentum 1",
        lambda: small_session().train_step(*_nan_batch(), lr=0.1, momentum=1.0),
        ValueError,
        "momentum",
    ),
    (
        "train_step NaN pixel",
        lambda: small_session().train_step(*_nan_batch(), lr=0.1),
        FloatingPointError,
        "sample 3 holds a non-finite value (nan at [0, 2, 5])",
    ),
    (
        "evaluate NaN pixel",
        lambda: small_session().evaluate(*_nan_batch()),
        FloatingPointError,
        "sample 3",
    ),
    (
        "fit inf pixel",
        lambda: sn.Trainer(small_session()).fit(_inf_dataset(), 1, progress=False),
        FloatingPointError,
        "training set: sample 17",
    ),
    (
        "fit wrong shape",
        lambda: sn.Trainer(small_session()).fit(sn.data.synthetic("cifar", n=16), 1),
        ValueError,
        "the graph's input takes (1, 8, 8)",
    ),
    (
        "IDX 2**31 x 2**31",
        lambda: sn.data._fashion_mnist._parse_idx(
            Path("x.idx"), struct.pack(">IIII", 0x803, 2**31, 2**31, 28), 3
        ),
        DatasetFormatError,
        "for the shape (2147483648, 2147483648, 28)",
    ),
]


@pytest.mark.parametrize(
    ("what", "call", "error", "needle"), API_CASES, ids=[c[0] for c in API_CASES]
)
def test_api_rejects_hostile_input(
    what: str, call: Callable[[], Any], error: type[BaseException], needle: str
) -> None:
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)


def test_nonfinite_batch_changes_nothing() -> None:
    s = small_session()
    before = {k: v.copy() for k, v in s.state_dict().items()}
    with pytest.raises(FloatingPointError):
        s.train_step(*_nan_batch(), lr=0.1)
    after = s.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("block_values", [1, 64, 10**9])
def test_finite_check_names_the_sample_across_blocks(
    block_values: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from superneurons import _checks

    monkeypatch.setattr(_checks, "_BLOCK_VALUES", block_values)
    x = np.zeros((50, 2, 3, 3), np.float32)
    _checks.check_finite_samples(x, "set")  # all finite: no error
    x[37, 1, 2, 0] = -np.inf
    x[41, 0, 0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"set: sample 37 .*\(-inf at \[1, 2, 0\]\)"):
        _checks.check_finite_samples(x, "set")


def test_session_device_names_are_checked() -> None:
    g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
    for bad in ("cuda:x", "cuda:", "tpu", "cuda:-1"):
        with pytest.raises(ValueError, match="unknown device"):
            sn.Session(g, 2, device=bad)
    with pytest.raises(TypeError, match="device must be a string"):
        sn.Session(g, 2, device=0)  # type: ignore[arg-type]


def test_cuda_without_a_gpu_warns_once_in_a_sentence_and_runs_on_the_cpu() -> None:
    if sn.build_info()["cuda"] and int(sn.build_info()["cuda_devices"]) > 0:
        pytest.skip("a GPU is visible: the session runs there")
    g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
    with pytest.warns(RuntimeWarning, match=r"^device 'cuda:0' was requested, but .*CPU$"):
        s = sn.Session(g, 2, device="cuda:0")
    assert s.device == "cpu"


def test_auto_device_is_the_gpu_where_one_runs_and_else_the_cpu_silently() -> None:
    info = sn.build_info()
    want = "cuda:0" if info["cuda"] and int(info["cuda_devices"]) > 0 else "cpu"
    g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" never warns
        s = sn.Session(g, 2, device="auto")
    assert s.device == want
    assert sn.plan(g, 2, device="auto").device == want.partition(":")[0]
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    assert np.isfinite(s.train_step(x, np.array([1, 2], np.int32), lr=0.05).loss)
