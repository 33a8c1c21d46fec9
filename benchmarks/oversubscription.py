"""The speed cost of training under a budget smaller than the network needs, on the CPU,
side by side in one run: policy none (no budget) against superneurons when the network
fits and at 2x, 3x and 4x oversubscription (budget = the liveness arena / 2, / 3, / 4)
and at the smallest budget it fits, with liveness+recompute and liveness+offload beside
them where they fit.

    python benchmarks/oversubscription.py                    # ResNet-20, batch 32
    python benchmarks/oversubscription.py --depth 56 --batch 64 --iterations 7 --json

Each row: the budget, the measured arena peak, the median step time over interleaved
iterations (one step of every session in turn, after a warm-up round) and its ratio to
none, the bytes copied per iteration, the recompute overhead (extra FLOPs / iteration
FLOPs), and the overlap: the fraction of copy time hidden behind compute, measured by the
executor (1 - time compute waited for copies / copy engine busy time) and as planned by
the cost model. The losses must equal none's in every row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import superneurons as sn


def smallest_budget(g: sn.Graph, batch: int, policy: str, hi: int) -> int:
    """The smallest budget (a multiple of 64 KiB) at which `policy` fits, by bisection."""
    step = 1 << 16
    lo = 0
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if sn.plan(g, batch, policy=policy, budget=mid).fits:
            hi = mid
        else:
            lo = mid
    return hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20, help="CIFAR-style ResNet depth 6n+2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    g = sn.models.resnet(depth=args.depth, num_classes=10, image_size=32)
    need = sn.plan(g, args.batch, policy="liveness").capacity_bytes  # its arena
    configs: list[tuple[str, str, int | None]] = [("none", "-", None)]
    smallest = smallest_budget(g, args.batch, "superneurons", need)
    budgets = [("fits", need), ("2x", need // 2), ("3x", need // 3), ("4x", need // 4)]
    budgets.append((f"{need / smallest:.1f}x", smallest))  # the most superneurons reaches
    for label, budget in sorted(budgets, key=lambda b: -b[1]):
        for policy in ("superneurons", "liveness+recompute", "liveness+offload"):
            if policy != "superneurons" and budget == need:
                continue
            if sn.plan(g, args.batch, policy=policy, budget=budget).fits:
                configs.append((policy, label, budget))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int32)
    sessions = [sn.Session(g, args.batch, policy=p, budget=b, seed=1) for p, _l, b in configs]
    times_ms: list[list[float]] = [[] for _ in configs]
    losses: list[list[float]] = [[] for _ in configs]
    warm: list[dict[str, float]] = []
    for i in range(args.iterations + 1):
        if i == 1:
            warm = [s.copy_stats() for s in sessions]  # measure after the warm-up round
        for k, s in enumerate(sessions):
            t0 = time.perf_counter()
            losses[k].append(s.train_step(x, y, lr=0.01).loss)
            if i > 0:
                times_ms[k].append((time.perf_counter() - t0) * 1e3)
    rows = []
    for k, ((policy, label, budget), s) in enumerate(zip(configs, sessions, strict=True)):
        p, c = s.plan(), s.copy_stats()
        copy_ms = c["copy_ms"] - warm[k]["copy_ms"]
        stall_ms = c["stall_ms"] - warm[k]["stall_ms"]
        rows.append(
            {
                "policy": policy,
                "oversubscription": label,
                "budget_bytes": budget,
                "peak_bytes": int(s.memory_stats()["peak_bytes"]),
                "median_step_ms": statistics.median(times_ms[k]),
                "bytes_per_iteration": int(c["bytes"]) // (args.iterations + 1),
                "param_copy_bytes": p.param_copy_bytes,
                "recompute_fraction": p.recompute_fraction,
                "measured_overlap": 1.0 - min(stall_ms, copy_ms) / copy_ms if copy_ms > 0 else None,
                "planned_overlap": p.planned_overlap if p.copy_ms > 0 else None,
                "same_losses": losses[k] == losses[0],
            }
        )
    for r in rows:
        r["time_ratio"] = r["median_step_ms"] / rows[0]["median_step_ms"]
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"depth": args.depth, "batch": args.batch, "load": load, "rows": rows}))
        return
    print(
        f"ResNet-{args.depth}, batch {args.batch}, 32x32, CPU; liveness needs "
        f"{sn.format_bytes(need)}; median of {args.iterations} interleaved iterations; "
        f"load average {load:.1f}"
    )
    print(
        f"{'policy':<20}{'over':>6}{'peak':>12}{'step ms':>10}{'vs none':>9}"
        f"{'copied/it':>12}{'params':>10}{'recompute':>11}{'overlap':>9}{'planned':>9}"
        f"{'same':>6}"
    )
    for r in rows:
        ov = "-" if r["measured_overlap"] is None else f"{r['measured_overlap']:.2f}"
        pov = "-" if r["planned_overlap"] is None else f"{r['planned_overlap']:.2f}"
        print(
            f"{r['policy']:<20}{r['oversubscription']:>6}"
            f"{sn.format_bytes(r['peak_bytes']):>12}{r['median_step_ms']:>10.1f}"
            f"{r['time_ratio']:>9.2f}{sn.format_bytes(r['bytes_per_iteration']):>12}"
            f"{sn.format_bytes(r['param_copy_bytes']):>10}{r['recompute_fraction']:>11.3f}"
            f"{ov:>9}{pov:>9}{r['same_losses']!s:>6}"
        )


if __name__ == "__main__":
    main()
