"""Largest batch that fits a memory budget, per model and policy, from plans (bisection).

Every figure comes from ``sn.plan`` (shape-only; nothing is allocated). The executor's
measured trace equals the plan byte for byte (tests/cpu), and ``--confirm`` runs one
real training iteration of each model at a small input to show the plan executes.

    python benchmarks/max_batch.py                      # 12 GiB, 224x224 (299 for Inception)
    python benchmarks/max_batch.py --models resnet50 --budget 12GiB --json

References at 12 GiB, 224x224 (the issue's table): PyTorch eager / checkpoint_sequential
bounds: AlexNet 953 / 1271, VGG16 145 / 165, ResNet-50 145 / 308, ResNet-101 95 / 263,
ResNet-152 67 / 228; the source's SuperNeurons (12 GB K40): 1792, 224, 240 (Inception-v4),
384, 256, 176.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

import superneurons as sn

REFERENCE = {  # model: (PyTorch eager, PyTorch checkpointing, source SuperNeurons)
    "alexnet": (953, 1271, 1792),
    "vgg16": (145, 165, 224),
    "inception_v4": (None, None, 240),
    "resnet50": (145, 308, 384),
    "resnet101": (95, 263, 256),
    "resnet152": (67, 228, 176),
    "densenet": (None, None, None),
}


def model(name: str, image_size: int | None = None) -> sn.Graph:
    size = image_size or (299 if name == "inception_v4" else 224)
    return getattr(sn.models, name)(num_classes=1000, image_size=size)


def largest(fits: Callable[[int], bool], hi: int = 1 << 16) -> int:
    """Largest n in [0, hi] with fits(n), assuming fits is monotone."""
    lo = 0
    step = 1
    while step <= hi and fits(step):  # gallop, then bisect
        lo, step = step, step * 2
    top = min(step, hi + 1)
    while top - lo > 1:
        mid = (lo + top) // 2
        if fits(mid):
            lo = mid
        else:
            top = mid
    return lo


def confirm(name: str, policy: str) -> float:
    """One real iteration of the model at 64x64 (32x32 for AlexNet-free models) and batch 2."""
    g = getattr(sn.models, name)(num_classes=10, image_size=75 if name == "inception_v4" else 64)
    s = sn.Session(g, 2, policy=policy, seed=0)
    shape = g.layers[0].shape
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    loss = s.train_step(x, np.array([0, 1], np.int32), lr=0.01).loss
    assert s.memory_trace() == s.plan().bytes_in_use.tolist()
    return loss


def cell(r: dict[str, object], policy: str) -> str:
    extra = format(r[policy + ":recompute_fraction"], ".1%")
    moved = r[policy + ":offload_gib"]
    return f"{r[policy]} ({extra}, {moved} GiB)" if moved else f"{r[policy]} ({extra})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(REFERENCE))
    parser.add_argument(
        "--policies", default="liveness,liveness+recompute,liveness+offload,superneurons"
    )
    parser.add_argument("--budget", default="12GiB")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--confirm", action="store_true", help="also run one real iteration")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    policies = args.policies.split(",")
    rows = []
    for name in args.models.split(","):
        g = model(name, args.image_size)
        row: dict[str, object] = {"model": name}
        for policy in policies:
            t0 = time.perf_counter()
            best = largest(
                lambda b, g=g, policy=policy: sn.plan(g, b, policy=policy, budget=args.budget).fits
            )
            p = sn.plan(g, max(best, 1), policy=policy, budget=args.budget)
            row[policy] = best
            row[policy + ":recompute_fraction"] = round(p.recompute_fraction, 4)
            row[policy + ":offload_gib"] = round(p.offload_bytes / 2**30, 2)
            row[policy + ":param_host_gib"] = round(p.param_host_bytes / 2**30, 2)
            row[policy + ":peak_over_bound"] = round(p.peak_bytes / p.layer_bound_bytes, 3)
            row[policy + ":seconds"] = round(time.perf_counter() - t0, 1)
            if args.confirm:
                row[policy + ":confirm_loss"] = round(confirm(name, policy), 4)
        eager, ckpt, source = REFERENCE.get(name, (None, None, None))
        row.update(pytorch_eager=eager, pytorch_checkpoint=ckpt, source=source)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if args.json:
        return
    head = f"{'model':<14}" + "".join(f"{p:>26}" for p in policies)
    head += f"{'torch eager':>13}{'torch ckpt':>12}{'source':>8}"
    print(
        f"largest batch in {args.budget} (plans); in brackets the extra FLOPs of recompute "
        "and the GiB offloaded per iteration"
    )
    print(head)
    for r in rows:
        cells = "".join(f"{cell(r, p):>26}" for p in policies)
        ref = "".join(
            f"{'-' if r[k] is None else r[k]:>{w}}"
            for k, w in (("pytorch_eager", 13), ("pytorch_checkpoint", 12), ("source", 8))
        )
        print(f"{r['model']:<14}{cells}{ref}")
    print("planned peak / layer bound at that batch (parameters on the host, GiB):")
    for r in rows:
        print(
            f"  {r['model']:<14}"
            + "".join(
                f"  {p} {r[p + ':peak_over_bound']:.2f} ({r[p + ':param_host_gib']})"
                for p in policies
            )
        )


if __name__ == "__main__":
    main()
