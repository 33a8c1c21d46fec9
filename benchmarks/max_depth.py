"""Deepest ImageNet ResNet (n1, n2, n3, n4) = (6, 32, n3, 6) that fits a budget at batch 16,
224x224, per policy, from plans (bisection over n3; depth = 3 * (n1+n2+n3+n4) + 2).

    python benchmarks/max_depth.py                     # 12 GiB, liveness and recompute
    python benchmarks/max_depth.py --policies liveness --budget 12GiB --json
    python benchmarks/max_depth.py --policies superneurons --no-search \
        --units 2500,3500,5000,7500   # the target and beyond (minutes of planning)

References (the issue's table): PyTorch eager depth 581, checkpoint_sequential 2363, the
source's SuperNeurons 1920 (TensorFlow 592).
"""

from __future__ import annotations

import argparse
import json
import time

import superneurons as sn


def depth(n3: int) -> int:
    return 3 * (6 + 32 + n3 + 6) + 2


def fits(n3: int, policy: str, budget: str, batch: int) -> bool:
    g = sn.models.resnet(n=(6, 32, n3, 6), num_classes=1000, image_size=224)
    return sn.plan(g, batch, policy=policy, budget=budget).fits


def deepest(policy: str, budget: str, batch: int, start: int, seconds: float) -> tuple[int, bool]:
    """Largest n3 >= 1 that fits (0: not even n3 = 1), galloping up from `start`, and
    whether the search finished within `seconds` (else the answer is a lower bound)."""
    deadline = time.perf_counter() + seconds
    if not fits(start, policy, budget, batch):
        start = 1
        if not fits(1, policy, budget, batch):
            return 0, True
    lo, hi = start, start * 2
    while fits(hi, policy, budget, batch):
        lo, hi = hi, hi * 2
        if time.perf_counter() > deadline:
            return lo, False
    while hi - lo > 1:
        if time.perf_counter() > deadline:
            return lo, False
        mid = (lo + hi) // 2
        if fits(mid, policy, budget, batch):
            lo = mid
        else:
            hi = mid
    return lo, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--policies", default="liveness,liveness+recompute,liveness+offload,superneurons"
    )
    parser.add_argument("--budget", default="12GiB")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--units",
        default="",
        help="comma-separated residual-unit counts to plan exactly, e.g. 2500,5000",
    )
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="only plan the --units counts (the search is slow past a few thousand units)",
    )
    parser.add_argument("--start", type=int, default=1, help="n3 the search gallops up from")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1800.0,
        help="per policy; past it the depth reached so far is reported as a lower bound",
    )
    args = parser.parse_args()
    print(f"deepest ResNet (6, 32, n3, 6), batch {args.batch}, 224x224, in {args.budget}")
    for policy in [] if args.no_search else args.policies.split(","):
        t0 = time.perf_counter()
        n3, complete = deepest(policy, args.budget, args.batch, args.start, args.max_seconds)
        g = sn.models.resnet(n=(6, 32, max(n3, 1), 6), num_classes=1000, image_size=224)
        p = sn.plan(g, args.batch, policy=policy, budget=args.budget)
        row = {
            "policy": policy,
            "n3": n3,
            "depth": depth(n3) if n3 else 0,
            "residual_units": 6 + 32 + n3 + 6,
            "recompute_fraction": round(p.recompute_fraction, 4),
            "resident_bytes": p.resident_bytes,
            "host_peak_bytes": p.host_peak_bytes,
            "param_host_bytes": p.param_host_bytes,
            "copied_bytes": p.offload_bytes + p.prefetch_bytes,
            "seconds": round(time.perf_counter() - t0, 1),
            "complete": complete,  # False: the time ran out, depth is a lower bound
        }
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"  {policy:<20} depth {'' if complete else '>= '}{row['depth']:>6} "
                f"({row['residual_units']} units), "
                f"recompute {row['recompute_fraction']:.1%} extra FLOPs, resident "
                f"{sn.format_bytes(p.resident_bytes)}, host "
                f"{sn.format_bytes(p.host_peak_bytes)} (parameters and momentum "
                f"{sn.format_bytes(p.param_host_bytes)}), copied "
                f"{sn.format_bytes(row['copied_bytes'])} per iteration, {row['seconds']} s"
            )
    print("  references: PyTorch eager 581, checkpoint_sequential 2363, source 1920")
    for units in [int(u) for u in args.units.split(",") if u]:
        n3 = units - (6 + 32 + 6)
        g = sn.models.resnet(n=(6, 32, n3, 6), num_classes=1000, image_size=224)
        for policy in args.policies.split(","):
            t0 = time.perf_counter()
            p = sn.plan(g, args.batch, policy=policy, budget=args.budget)
            print(
                f"  {units} units (depth {depth(n3)}), {policy}: fits {p.fits}, peak "
                f"{sn.format_bytes(p.peak_bytes)}, recompute {p.recompute_fraction:.1%} extra "
                f"FLOPs, host {sn.format_bytes(p.host_peak_bytes)} (parameters and momentum "
                f"{sn.format_bytes(p.param_host_bytes)}), copied out "
                f"{sn.format_bytes(p.offload_bytes)} per iteration, "
                f"{time.perf_counter() - t0:.0f} s to plan",
                flush=True,
            )


if __name__ == "__main__":
    main()
