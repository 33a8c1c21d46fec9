"""Gradient compressors side by side, in one run: reconstruction error against bytes sent,
throughput, when compression pays, and 2-rank training with and without compression.

    python benchmarks/compression.py              # everything (a few minutes on 2 cores)
    python benchmarks/compression.py --no-train   # skip the 2-rank training runs
    python benchmarks/compression.py --json out.json

Gradients are captured from real training: a CIFAR-style ResNet-8 on digits (1x8x8) and on
synthetic CIFAR (3x32x32), at several points of training; plus two synthetic vectors, a
heavy-tailed one (Student t, 2 degrees of freedom) and a smooth one (a few low-frequency
waves plus 1% noise). Every byte of every packet counts (header, bitmap, quantizer fields,
checksum); "bytes" is the fraction of the float32 size. The error is
||g - g_hat|| / ||g|| over all layers of a model together (per-layer packets).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import superneurons as sn

Grads = dict[str, npt.NDArray[np.float32]]


# ------------------------------------------------------------------------ gradients
def captured_gradients(
    dataset: str, steps: int, capture_at: tuple[int, ...], seed: int = 0
) -> list[list[Grads]]:
    """Per capture point, a run of consecutive gradients (for error feedback) of a ResNet-8
    trained with SGD on ``dataset``; the gradients are taken before each step's update."""
    if dataset == "digits":
        train, _ = sn.data.digits(seed=seed)
        graph = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    else:
        train = sn.data.synthetic("cifar", n=1024, num_classes=10, seed=seed)
        graph = sn.models.resnet(depth=8, num_classes=10, image_size=32, in_channels=3)
    session = sn.Session(graph, batch_size=32, seed=seed)
    loader = sn.data.DataLoader(train, 32, seed=seed, drop_last=True, prefetch=0)
    out: list[list[Grads]] = []
    run: list[Grads] = []
    step = 0
    while step < steps:
        for xb, yb in loader:
            if step >= steps:
                break
            if any(c <= step < c + 10 for c in capture_at):
                _, grads, _ = session.gradients(xb, yb)
                run.append({n: g.copy() for n, g in grads.items()})
                if len(run) == 10:
                    out.append(run)
                    run = []
            session.train_step(xb, yb, lr=0.05, momentum=0.9, weight_decay=5e-4)
            step += 1
    return out


def synthetic_vectors(n: int = 1 << 16, seed: int = 0) -> dict[str, list[list[Grads]]]:
    rng = np.random.default_rng(seed)
    heavy = [{"v": (rng.standard_t(2, n) * 1e-3).astype(np.float32)} for _ in range(10)]
    t = np.linspace(0.0, 1.0, n, dtype=np.float64)
    smooth = []
    for _ in range(10):
        waves = sum(rng.normal() * np.sin(2 * np.pi * (f * t + rng.random())) for f in (1, 3, 7))
        noise = 0.01 * rng.standard_normal(n)
        smooth.append({"v": ((waves + noise) * 1e-3).astype(np.float32)})
    return {"heavy-tailed": [heavy], "smooth": [smooth]}


# ------------------------------------------------------------------------ the grid
def configurations() -> list[tuple[str, str, dict[str, Any]]]:
    """(family, label, options for sn.compress.make)."""
    out: list[tuple[str, str, dict[str, Any]]] = [("none", "none", {}), ("fp16", "fp16", {})]
    for theta in (0.5, 0.75, 0.85, 0.9, 0.95, 0.98, 0.99):
        out.append(("topk", f"topk theta={theta}", {"theta": theta}))
        out.append(("topk+q10", f"topk theta={theta} bits=10", {"theta": theta, "bits": 10}))
        out.append(("topk+q8", f"topk theta={theta} bits=8", {"theta": theta, "bits": 8}))
        out.append(("fft", f"fft theta={theta} bits=10", {"theta": theta, "bits": 10}))
        out.append(("fft+q16", f"fft theta={theta} bits=16", {"theta": theta, "bits": 16}))
    for bits in (2, 3, 4, 6, 8):
        out.append(("qsgd", f"qsgd bits={bits}", {"bits": bits}))
    out.append(("terngrad", "terngrad", {}))
    return out


def measure(
    runs: list[list[Grads]], family: str, options: dict[str, Any], whole_model: bool = False
) -> dict[str, float]:
    """Mean relative error of one step, bytes fraction, and the relative error of the sum of
    10 consecutive steps with and without error feedback (lossy compressors)."""
    name = family.split("+")[0]
    step_errors, fractions, cum_plain, cum_ef = [], [], [], []
    for run in runs:
        plain = sn.compress.make(name, **options)
        lossy = name not in ("none", "fp16")
        ef = sn.compress.make(name, error_feedback=True, **options) if lossy else None
        total_true: dict[str, npt.NDArray[np.float64]] = {}
        total_plain: dict[str, npt.NDArray[np.float64]] = {}
        total_ef: dict[str, npt.NDArray[np.float64]] = {}
        for grads in run:
            tensors = (
                {"all": np.concatenate([g.reshape(-1) for g in grads.values()])}
                if whole_model
                else grads
            )
            err2 = norm2 = 0.0
            sent = raw = 0
            for key, g in tensors.items():
                packet = plain.compress(g)
                back = plain.decompress(packet)
                err2 += float(np.sum((back.astype(np.float64) - g) ** 2))
                norm2 += float(np.sum(g.astype(np.float64) ** 2))
                sent += len(packet)
                raw += 4 * g.size
                total_true[key] = total_true.get(key, 0.0) + g
                total_plain[key] = total_plain.get(key, 0.0) + back
                if ef is not None:
                    total_ef[key] = total_ef.get(key, 0.0) + ef.decompress(ef.compress(g, key))
            step_errors.append(math.sqrt(err2 / max(norm2, 1e-300)))
            fractions.append(sent / raw)
        true2 = sum(float(np.sum(v**2)) for v in total_true.values())
        cum_plain.append(
            math.sqrt(sum(float(np.sum((total_plain[k] - v) ** 2)) for k, v in total_true.items()))
            / math.sqrt(true2)
        )
        if ef is not None:
            cum_ef.append(
                math.sqrt(sum(float(np.sum((total_ef[k] - v) ** 2)) for k, v in total_true.items()))
                / math.sqrt(true2)
            )
    out = {
        "bytes": float(np.mean(fractions)),
        "error": float(np.mean(step_errors)),
        "error_sum10": float(np.mean(cum_plain)),
    }
    if cum_ef:
        out["error_sum10_ef"] = float(np.mean(cum_ef))
    return out


def best_at_budget(rows: list[dict[str, Any]], budget: float) -> dict[str, tuple[float, str]]:
    """Per family, the lowest one-step error among its configurations within ``budget``."""
    best: dict[str, tuple[float, str]] = {}
    for r in rows:
        if r["bytes"] <= budget and (r["family"] not in best or r["error"] < best[r["family"]][0]):
            best[r["family"]] = (r["error"], r["label"])
    return best


# ------------------------------------------------------------------------ throughput
def throughput(n: int, repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    g = (rng.standard_t(3, n) * 1e-2).astype(np.float32)
    rows = []
    for label, name, options in (
        ("none", "none", {}),
        ("fp16", "fp16", {}),
        ("topk theta=0.85", "topk", {"theta": 0.85}),
        ("topk theta=0.85 bits=10", "topk", {"theta": 0.85, "bits": 10}),
        ("fft theta=0.85 bits=10", "fft", {"theta": 0.85, "bits": 10}),
        ("qsgd bits=4", "qsgd", {"bits": 4}),
        ("terngrad", "terngrad", {}),
    ):
        c = sn.compress.make(name, **options)
        times_c, times_d = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = c.compress(g)
            t1 = time.perf_counter()
            c.decompress(p)
            times_c.append(t1 - t0)
            times_d.append(time.perf_counter() - t1)
        tc, td = float(np.median(times_c)), float(np.median(times_d))
        rows.append(
            {
                "label": label,
                "compress_GBps": g.nbytes / tc / 1e9,
                "decompress_GBps": g.nbytes / td / 1e9,
                "round_trip_GBps": g.nbytes / (tc + td) / 1e9,
                "ratio": g.nbytes / len(p),
            }
        )
    return rows


def primitives(n: int, repeats: int) -> dict[str, float]:
    """GB/s of the C++ primitives alone (input bytes / median time): top-k selection,
    prefix-sum packing and unpacking of 15% of the values (the source packs at 34 GB/s on
    a V100)."""
    from superneurons._ext import _C

    rng = np.random.default_rng(0)
    g = (rng.standard_t(3, n) * 1e-2).astype(np.float32)
    k = n - int(0.85 * n)
    bitmap = _C.compress_topk_bitmap(g, k)
    dense = _C.compress_pack(g, bitmap)
    out = {}
    for label, fn in (
        ("top-k select", lambda: _C.compress_topk_bitmap(g, k)),
        ("pack", lambda: _C.compress_pack(g, bitmap)),
        ("unpack", lambda: _C.compress_unpack(dense, bitmap, n)),
    ):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[label] = g.nbytes / float(np.median(times)) / 1e9
    return out


# ------------------------------------------------------------------------ 2-rank training
def two_rank_training(epochs: int) -> list[dict[str, Any]] | str:
    exe = Path(sys.executable).parent / "mpirun"
    mpirun = str(exe) if exe.exists() else shutil.which("mpirun")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpirun = None
    if mpirun is None:
        return "skipped: needs mpi4py and mpirun (pip install '.[mpi]')"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    rows = []
    for flags in (
        ["--compress", "none"],
        ["--compress", "topk", "--theta", "0.85"],
        ["--compress", "topk", "--theta", "0.85", "--bits", "10"],
        ["--compress", "fft", "--theta", "0.85", "--bits", "10"],
        ["--compress", "qsgd", "--bits", "4"],
    ):
        cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2", sys.executable]
        cmd += ["-m", "superneurons", "train", "--dataset", "digits", "--depth", "8"]
        cmd += ["--epochs", str(epochs), "--lr", "0.05", "--batch", "64", "--json", *flags]
        here = Path(__file__).parent  # not the checkout root, which would shadow the install
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200, cwd=here)
        done = [json.loads(x) for x in run.stdout.splitlines() if '"event": "done"' in x]
        if run.returncode != 0 or len(done) != 2:
            rows.append({"flags": " ".join(flags), "error": run.stderr[-500:]})
            continue
        rows.append(
            {
                "flags": " ".join(flags),
                "test_accuracy": done[0]["test_accuracy"],
                "bytes_sent_per_iteration": done[0]["bytes_sent_per_iteration"],
                "uncompressed_bytes": done[0]["uncompressed_bytes_per_iteration"],
                "seconds_per_iteration": max(d["seconds_per_iteration"] for d in done),
                "replicas_identical": done[0]["params_sha256"] == done[1]["params_sha256"],
            }
        )
    return rows


# ------------------------------------------------------------------------ main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-train", action="store_true", help="skip the 2-rank training runs")
    p.add_argument(
        "--only-throughput", action="store_true", help="only the throughput and Eq. 7.4 parts"
    )
    p.add_argument("--epochs", type=int, default=3, help="2-rank training epochs")
    p.add_argument("--throughput-floats", type=int, default=1 << 22)
    p.add_argument("--json", default=None, help="also write every figure here")
    args = p.parse_args()
    report: dict[str, Any] = {}
    emit: Callable[[str], None] = lambda s: print(s, flush=True)  # noqa: E731

    if args.only_throughput:
        args.no_train = True
    sets = (
        {}
        if args.only_throughput
        else {
            "resnet8-digits": captured_gradients("digits", 130, (0, 60, 120)),
            "resnet8-synthetic-cifar": captured_gradients("cifar", 40, (0, 30)),
            **synthetic_vectors(),
        }
    )
    grid = configurations()
    report["error"] = {}
    for set_name, runs in sets.items():
        emit(f"\n== {set_name}: relative error vs bytes sent ({len(runs)} x 10 steps)")
        emit(f"{'compressor':<28}{'bytes':>8}{'error':>9}{'sum10':>9}{'sum10 EF':>10}")
        rows = []
        for family, label, options in grid:
            r = {"family": family, "label": label, **measure(runs, family, options)}
            rows.append(r)
            ef = f"{r['error_sum10_ef']:>10.4f}" if "error_sum10_ef" in r else f"{'':>10}"
            emit(f"{label:<28}{r['bytes']:>8.4f}{r['error']:>9.4f}{r['error_sum10']:>9.4f}{ef}")
        if set_name.startswith("resnet"):
            for theta in (0.85, 0.95):
                whole = measure(runs, "fft", {"theta": theta, "bits": 10}, whole_model=True)
                label = f"fft theta={theta} bits=10, whole model"
                rows.append({"family": "fft-whole", "label": label, **whole})
                emit(f"{label:<28}{whole['bytes']:>8.4f}{whole['error']:>9.4f}")
        report["error"][set_name] = rows

    if sets:  # the equal-bytes comparison and the default
        emit("\n== best one-step error at equal bytes (fraction of float32), per family")
        budgets = (0.5, 0.25, 0.125, 0.0625, 0.03125)
        families = ("fp16", "topk", "topk+q10", "topk+q8", "fft", "fft+q16", "qsgd", "terngrad")
        emit(f"{'set':<26}{'bytes <=':>9}  " + "".join(f"{f:>10}" for f in families) + "  winner")
        wins: dict[str, int] = {}
        report["at_budget"] = {}
        for set_name, rows in report["error"].items():
            for budget in budgets:
                best = best_at_budget(rows, budget)
                cells = "".join(
                    f"{best[f][0]:>10.4f}" if f in best else f"{'-':>10}" for f in families
                )
                winner = min(best, key=lambda f: best[f][0]) if best else "-"
                emit(f"{set_name:<26}{budget:>9.4f}  {cells}  {winner}")
                report["at_budget"].setdefault(set_name, {})[str(budget)] = {
                    f: v[0] for f, v in best.items()
                }
                if set_name.startswith("resnet") and winner != "-":
                    family = winner.split("+")[0]
                    wins[family] = wins.get(family, 0) + 1
        # The rule for the default: the geometric mean of the one-step error over both sets of
        # training gradients and the budgets 1/4, 1/8 and 1/16 (families present at all three).
        real = [n for n in report["error"] if n.startswith("resnet")]
        scores = {}
        for family in families:
            errors = [
                report["at_budget"][n][str(b)].get(family)
                for n in real
                for b in (0.25, 0.125, 0.0625)
            ]
            if all(e is not None for e in errors):
                scores[family] = math.exp(sum(math.log(e) for e in errors) / len(errors))
        default = min(scores, key=lambda f: scores[f])
        emit(
            "\ngeometric mean of the one-step error on training gradients, bytes <= 1/4, 1/8, "
            "1/16: "
            + ", ".join(f"{f} {v:.4f}" for f, v in sorted(scores.items(), key=lambda kv: kv[1]))
        )
        emit(f"wins per budget on training gradients: {wins}")
        configured = f"{sn.compress.DEFAULT} {sn.compress.DEFAULT_OPTIONS}"
        emit(
            f"best accuracy per byte on training gradients: {default}; the configured default is "
            f"{configured}"
            + ("" if default.split("+")[0] == sn.compress.DEFAULT else "  <-- DISAGREES")
        )
        report["default"] = {"measured": default, "scores": scores, "wins": wins}

    emit(f"\n== throughput on the CPU, one core, {args.throughput_floats:,} floats")
    emit(f"{'compressor':<28}{'compress':>10}{'decompr.':>10}{'both':>8}{'ratio':>8}  (GB/s)")
    rows_t = throughput(args.throughput_floats, repeats=3)
    for r in rows_t:
        emit(
            f"{r['label']:<28}{r['compress_GBps']:>10.3f}{r['decompress_GBps']:>10.3f}"
            f"{r['round_trip_GBps']:>8.3f}{r['ratio']:>8.1f}"
        )
    report["throughput"] = rows_t
    prims = primitives(args.throughput_floats, repeats=5)
    emit(
        "C++ primitives alone (15% kept): "
        + ", ".join(f"{k} {v:.2f} GB/s" for k, v in prims.items())
    )
    report["primitives"] = prims

    emit("\n== when compression pays (Eq. 7.4), with the CPU throughput measured above")
    for r in rows_t[2:5]:
        # Eq. 7.4 charges 2 M / T_compress for compressing plus decompressing, which took
        # M / round_trip: T_compress = 2 round_trip, in Gb/s.
        gbps = 2 * 8 * r["round_trip_GBps"]
        k10 = sn.compress.min_ratio(10, gbps)
        k56 = sn.compress.min_ratio(56, gbps)
        emit(
            f"{r['label']:<28} ratio {r['ratio']:>5.1f}: needs k > {k10:.2f} on 10 Gb/s, "
            f"k > {k56:.2f} on 56 Gb/s"
        )
    emit(
        "source's GPU figures (k ~ 30 on 56 Gb/s => compressor ~ 116 Gb/s): k > "
        f"{sn.compress.min_ratio(10, 116):.2f} on 10 Gb/s, {sn.compress.min_ratio(56, 116):.1f} "
        "on 56 Gb/s"
    )

    if not args.no_train:
        emit(f"\n== 2-rank training, ResNet-8 on digits, global batch 64, {args.epochs} epochs")
        runs_e2e = two_rank_training(args.epochs)
        report["training"] = runs_e2e
        if isinstance(runs_e2e, str):
            emit(runs_e2e)
        else:
            emit(f"{'flags':<44}{'test acc':>9}{'bytes/iter':>12}{'of fp32':>9}{'s/iter':>8}  same")
            for r in runs_e2e:
                if "error" in r:
                    emit(f"{r['flags']:<44} failed: {r['error']}")
                    continue
                emit(
                    f"{r['flags']:<44}{r['test_accuracy']:>9.4f}"
                    f"{r['bytes_sent_per_iteration']:>12.0f}"
                    f"{r['bytes_sent_per_iteration'] / r['uncompressed_bytes']:>9.4f}"
                    f"{r['seconds_per_iteration']:>8.3f}  {r['replicas_identical']}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
