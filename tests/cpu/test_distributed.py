"""Data-parallel training: the update matches Session's SGD, and 2-rank MPI runs (skipped
when mpi4py or mpirun is missing: pip install '.[mpi]')."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import superneurons as sn
from superneurons.distributed import DataParallelTrainer, DistributedError, LocalCommunicator

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from dp_script import net  # noqa: E402


def one_rank_trainer(stage_on_host: bool | None = None) -> DataParallelTrainer:
    return DataParallelTrainer(
        sn.Session(net(), 32, seed=1),
        LocalCommunicator(),
        lr=0.05,
        weight_decay=1e-3,
        schedule="constant",
        stage_on_host=stage_on_host,
    )


def test_one_rank_matches_session_sgd() -> None:
    """Gradients from train_step(lr=0), the NumPy update and the C++ update agree."""
    train, _ = sn.data.digits(seed=0)
    reference = sn.Session(net(), 32, seed=1)
    trainer = one_rank_trainer()
    loader = sn.data.DataLoader(train, 32, seed=0, drop_last=True, prefetch=0)
    for step, (xb, yb) in enumerate(loader):
        if step == 6:
            break
        want = reference.train_step(xb, yb, lr=0.05, momentum=0.9, weight_decay=1e-3).loss
        got = trainer.step(xb, yb, lr=0.05)[0]
        assert got == pytest.approx(want, rel=1e-5)
    for name, w in reference.parameters().items():
        np.testing.assert_allclose(trainer.session.parameters()[name], w, rtol=1e-4, atol=1e-6)


def test_staging_through_host_copies_follows_the_views_bit_for_bit() -> None:
    """The GPU path (NumPy copies written back every step) on the CPU: same bits."""
    train, _ = sn.data.digits(seed=0)

    def run(staged: bool) -> tuple[list[float], str, DataParallelTrainer]:
        t = one_rank_trainer(stage_on_host=staged)
        loader = sn.data.DataLoader(train, 32, seed=0, drop_last=True, prefetch=0)
        batches = zip(range(6), loader, strict=False)
        losses = [t.step(xb, yb, lr=0.05)[0] for _, (xb, yb) in batches]
        return losses, t.params_sha256(), t

    views, staged = run(False), run(True)
    assert staged[0] == views[0] and staged[1] == views[1]
    t = staged[2]
    for name, w in t.session.parameters(copy=True).items():
        np.testing.assert_array_equal(t._params[name], w)  # the copies are what it trains


def test_bad_messages_and_options_raise() -> None:
    s = sn.Session(net(), 8, seed=0)
    with pytest.raises(ValueError, match="theta_schedule"):
        DataParallelTrainer(s, LocalCommunicator(), sn.compress.make("qsgd"), theta_schedule=True)
    with pytest.raises(ValueError, match="rebroadcast_every"):
        DataParallelTrainer(s, LocalCommunicator(), rebroadcast_every=0)
    t = DataParallelTrainer(s, LocalCommunicator())
    with pytest.raises(DistributedError, match="malformed"):
        t._parse(b"\x00" * 10, rank=1, expected=2)


def test_compress_on_picks_the_measured_default() -> None:
    from superneurons.cli import _parser
    from superneurons.distributed._cli import _compressor

    args = _parser().parse_args(["train", "--compress", "on"])
    assert _compressor(args).name == sn.compress.DEFAULT
    assert repr(_compressor(args)) == repr(
        sn.compress.make(sn.compress.DEFAULT, **sn.compress.DEFAULT_OPTIONS)
    )
    args = _parser().parse_args(["train", "--compress", "topk", "--theta", "0.5", "--bits", "8"])
    assert repr(_compressor(args)) == "sn.compress.make('topk', theta=0.5, bits=8)"
    with pytest.raises(ValueError, match="'theta'"):
        _compressor(_parser().parse_args(["train", "--compress", "fft", "--theta", "2"]))


def test_theta_schedule_shrinks_theta_with_the_learning_rate() -> None:
    train, _ = sn.data.digits(seed=0)
    c = sn.compress.make("fft", theta=0.8)
    t = DataParallelTrainer(
        sn.Session(net(), 64, seed=0), LocalCommunicator(), c, lr=0.1, theta_schedule=True
    )
    xb, yb = train.take(np.arange(64))
    t.step(xb, yb, lr=0.025)
    assert c.theta == pytest.approx(0.4)


# ------------------------------------------------------------------------ MPI (2 ranks)
def _mpirun() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else shutil.which("mpirun")


MPIRUN = _mpirun()
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason="needs mpi4py and mpirun: pip install .[mpi]")


def launch(np_: int, *argv: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    assert MPIRUN is not None
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(np_), *argv]
    # cwd: `python -m superneurons` must import the installed package, not the source tree.
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=HERE)


def records(out: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return sorted((r for r in rows if "rank" in r), key=lambda r: int(r["rank"]))


@needs_mpi
def test_two_ranks_without_compression_match_one_process() -> None:
    script = str(HERE / "dp_script.py")
    two = launch(2, sys.executable, script, "--steps", "8")
    assert two.returncode == 0, two.stderr
    ranks = records(two.stdout)
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["world_size"] == 2
    assert ranks[0]["params_sha256"] == ranks[1]["params_sha256"]
    assert ranks[0]["losses"] == ranks[1]["losses"]
    assert all(d["max_drift"] == 0.0 for d in ranks[0]["drift_log"])
    one = launch(1, sys.executable, script, "--steps", "8")
    assert one.returncode == 0, one.stderr
    single = records(one.stdout)[0]["losses"]
    # Same global batch of 64: only the float32 summation order differs.
    np.testing.assert_allclose(ranks[0]["losses"], single, rtol=1e-4)


@needs_mpi
def test_two_ranks_staged_on_host_match_the_views() -> None:
    """The GPU sessions' path (state staged through host copies, re-broadcasts every 3
    steps) gives the same bits as the views, on two ranks."""
    script = str(HERE / "dp_script.py")
    views = records(launch(2, sys.executable, script, "--steps", "7").stdout)
    staged_run = launch(2, sys.executable, script, "--steps", "7", "--stage-on-host")
    assert staged_run.returncode == 0, staged_run.stderr
    staged = records(staged_run.stdout)
    assert len(views) == len(staged) == 2
    for a, b in zip(views, staged, strict=True):
        assert a["params_sha256"] == b["params_sha256"] and a["losses"] == b["losses"]


@needs_mpi
def test_two_ranks_with_fft_learn_digits_with_identical_replicas() -> None:
    cli = [sys.executable, "-m", "superneurons", "train", "--dataset", "digits", "--depth", "8"]
    run = launch(
        2,
        *cli,
        "--epochs",
        "2",
        "--lr",
        "0.05",
        "--compress",
        "fft",
        "--theta",
        "0.85",
        "--bits",
        "10",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    ranks = records(run.stdout)
    assert len(ranks) == 2
    assert ranks[0]["params_sha256"] == ranks[1]["params_sha256"]
    for r in ranks:
        assert r["world_size"] == 2 and r["test_accuracy"] > 0.8
        assert r["bytes_sent_per_iteration"] < r["uncompressed_bytes_per_iteration"] / 8


@needs_mpi
@pytest.mark.parametrize("fail", ["die", "hang"])
def test_a_failed_rank_ends_the_job_with_an_error(fail: str) -> None:
    start = time.monotonic()
    run = launch(
        2,
        sys.executable,
        str(HERE / "dp_script.py"),
        "--fail",
        fail,
        "--timeout",
        "3",
        timeout_s=90,
    )
    assert run.returncode != 0
    assert time.monotonic() - start < 60
    if fail == "hang":
        assert "did not complete within 3 s" in run.stderr
