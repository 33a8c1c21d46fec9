"""`superneurons plan`: the JSON contract, the plot, and very deep networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import superneurons as sn
from superneurons.cli import main

FIELDS = {
    "peak_bytes",
    "layer_bound_bytes",
    "baseline_bytes",
    "fits",
    "budget_bytes",
    "offload_bytes",
    "recompute_count",
    "steps",
    "by_kind",
    "policy",
    "batch_size",
}


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["plan", *args, "--json"]) == 0
    out: dict = json.loads(capsys.readouterr().out)
    return out


def test_plan_json_contract(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "mem.png"
    d = run_json(
        capsys,
        "--model",
        "resnet",
        "--depth",
        "8",
        "--batch",
        "8",
        "--policy",
        "liveness",
        "--budget",
        "64MB",
        "--plot",
        str(png),
    )
    assert set(d) >= FIELDS
    assert d["budget_bytes"] == 64 * 2**20 and d["fits"] is True
    assert d["layer_bound_bytes"] <= d["peak_bytes"] < d["baseline_bytes"]
    steps = d["steps"]
    assert [s["index"] for s in steps] == list(range(len(steps)))
    assert {s["phase"] for s in steps} == {"forward", "backward"}
    assert max(s["bytes_in_use"] for s in steps) == d["peak_bytes"]
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_plan_reports_not_fitting(capsys: pytest.CaptureFixture[str]) -> None:
    d = run_json(
        capsys,
        "--model",
        "alexnet",
        "--batch",
        "200",
        "--policy",
        "none",
        "--budget",
        "1GB",
        "--no-steps",
    )
    assert d["fits"] is False and "steps" not in d
    assert "out of memory" in d["oom_message"] and "liveness" in d["oom_message"]
    assert main(["plan", "--model", "alexnet", "--batch", "200", "--budget", "1GB", "--check"]) == 1


def test_plan_of_2500_residual_units(capsys: pytest.CaptureFixture[str]) -> None:
    """depth 3 * 2500 + 2 = 7502: plans without running (parameters alone exceed 12 GiB,
    so it cannot fit until parameters join the tensor pool)."""
    d = run_json(
        capsys,
        "--model",
        "resnet",
        "--n",
        "6",
        "32",
        "2456",
        "6",
        "--batch",
        "16",
        "--policy",
        "liveness",
        "--budget",
        "12GB",
        "--no-steps",
    )
    assert d["layers"] > 25_000
    assert d["fits"] is False
    assert d["resident_bytes"] > 12 * 2**30


def test_bench_compares_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "bench",
                "--model",
                "resnet",
                "--depth",
                "8",
                "--batch",
                "4",
                "--iterations",
                "2",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    none, live, rec = d["policies"]
    assert (none["policy"], live["policy"], rec["policy"]) == (
        "none",
        "liveness",
        "liveness+recompute",
    )
    assert live["same_losses"] is True and len(live["losses"]) == 3
    assert rec["same_losses"] is True and rec["recompute_count"] > 0
    assert rec["peak_bytes"] == rec["planned_peak_bytes"] < live["peak_bytes"]
    assert live["peak_bytes"] == live["planned_peak_bytes"] < none["peak_bytes"]
    assert 0 < live["memory_ratio"] < 1


def test_bench_profile_times_every_kernel_once_per_layer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "--model", "resnet", "--depth", "8", "--batch", "2", "--image-size", "8"]
    assert main([*argv, "--iterations", "3", "--policies", "liveness", "--profile", "--json"]) == 0
    (live,) = json.loads(capsys.readouterr().out)["policies"]
    rows = {(r["kind"], r["phase"]): r for r in live["profile"]}
    g = sn.models.resnet(depth=8, num_classes=1000, image_size=8)
    convs = sum(1 for layer in g.layers if layer.kind == "conv2d")
    # Timed after the warm-up round: 3 iterations, each conv once forward, once backward.
    assert rows["conv2d", "forward"]["calls"] == rows["conv2d", "backward"]["calls"] == 3 * convs
    assert rows["softmax_cross_entropy", "forward"]["calls"] == 3
    assert all(r["ms"] >= 0 for r in live["profile"])
    assert sum(r["ms"] for r in live["profile"]) <= 3 * live["median_step_ms"] * 2
    assert main([*argv, "--iterations", "1", "--policies", "liveness", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "profile, liveness" in out and "conv2d" in out and "other" in out


def test_calibrate_prints_rates_that_plans_accept(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["calibrate", "--repeats", "1", "--json"]) == 0
    rates = json.loads(capsys.readouterr().out)
    assert rates["cpu_gflops"] > 0 and rates["copy_gbps"] > 0
    assert main(["calibrate", "--repeats", "1"]) == 0
    exports = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("export ")]
    assert len(exports) == 2
    for line in exports:
        name, value = line.removeprefix("export ").split("=")
        monkeypatch.setenv(name, value)
    assert run_json(capsys, "--model", "resnet", "--depth", "8", "--batch", "2")["fits"]


def test_plan_takes_a_host_budget(capsys: pytest.CaptureFixture[str]) -> None:
    argv = "--model resnet --depth 8 --batch 2 --budget 1GB --host-budget 64MB"
    d = run_json(capsys, *argv.split(), "--policy", "superneurons")
    assert d["fits"] and d["host_budget_bytes"] == 64 << 20
