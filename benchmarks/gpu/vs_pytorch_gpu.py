"""superneurons on a GPU against PyTorch on the same GPU, side by side in one run (issue 9).

    python benchmarks/gpu/vs_pytorch_gpu.py                      # every table, quick sizes
    python benchmarks/gpu/vs_pytorch_gpu.py --tables throughput --steps 20
    python benchmarks/gpu/vs_pytorch_gpu.py --tables max_batch --budget 12GiB

Needs a CUDA build of superneurons, a visible GPU, and PyTorch with torchvision (the lent
device machine has them; never a test dependency). Tables:

- ``throughput``: images/s of one fp32 training step (forward, backward, SGD with
  momentum), ResNet-50 at batch 64 and VGG-16 at batch 32 on 224x224 images, superneurons
  (policy ``liveness``, no budget) against PyTorch eager (torchvision's models, cuDNN
  autotuning on); median of ``--steps`` timed steps after warm-up, and the ratio.
- ``max_batch``: the largest ResNet-50 batch under ``--budget`` for each superneurons
  policy (planned, then one real step at that batch), and for PyTorch capped to the same
  budget (``torch.cuda.set_per_process_memory_fraction``): eager,
  ``torch.utils.checkpoint`` (checkpoint_sequential, sqrt(n) segments) and
  ``torch.autograd.graph.save_on_cpu``; the ratio to checkpointing's largest batch.
- ``oversubscription``: the step time of ResNet-50 under ``superneurons`` at a budget of
  half its ``liveness`` peak, against the same batch in memory; and the copy/compute
  overlap the executor measured from its events (``Session.copy_stats``).

Each superneurons figure and each PyTorch figure comes from the same process, one after
the other, on the same GPU; the PyTorch side frees its cache between cells.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import superneurons as sn
from superneurons._units import parse_budget

GIB = 1 << 30
LR, MOMENTUM = 0.01, 0.9


def _batch(n: int, size: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((n, 3, size, size), dtype=np.float32),
        rng.integers(0, classes, n).astype(np.int32),
    )


def _sn_graph(name: str) -> sn.Graph:
    build: Callable[..., sn.Graph] = getattr(sn.models, name)
    return build(num_classes=1000, image_size=224)


def _sn_step_ms(
    name: str, batch: int, steps: int, policy: str = "liveness", budget: int | None = None
) -> tuple[float, dict[str, float]]:
    s = sn.Session(_sn_graph(name), batch, device="cuda", policy=policy, budget=budget, seed=0)
    x, y = _batch(batch, 224, 1000)
    for _ in range(2):
        s.train_step(x, y, LR, MOMENTUM)  # the step returns after the device finished
    before = s.copy_stats()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        s.train_step(x, y, LR, MOMENTUM)
        times.append((time.perf_counter() - t0) * 1e3)
    after = s.copy_stats()
    copy_ms = after["copy_ms"] - before["copy_ms"]
    stall_ms = after["stall_ms"] - before["stall_ms"]
    stats = {
        "copied_gib_per_step": (after["bytes"] - before["bytes"]) / GIB / steps,
        "overlap": 1.0 - min(stall_ms, copy_ms) / copy_ms if copy_ms > 0 else 1.0,
    }
    del s
    gc.collect()
    return statistics.median(times), stats


def _torch_model(name: str) -> Any:
    import torchvision

    return getattr(torchvision.models, name)(num_classes=1000).cuda()


def _torch_sequential(model: Any) -> Any:
    """torchvision's ResNet as one nn.Sequential (what checkpoint_sequential takes)."""
    from torch import nn

    blocks = [model.conv1, model.bn1, model.relu, model.maxpool]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        blocks.extend(stage)
    return nn.Sequential(*blocks, model.avgpool, nn.Flatten(), model.fc)


def _torch_step(name: str, batch: int, mode: str = "eager") -> Callable[[], None]:
    import torch
    from torch.utils.checkpoint import checkpoint_sequential

    model = _torch_model(name)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")
    seq = _torch_sequential(model) if mode == "checkpoint" else None

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if mode == "checkpoint":
            assert seq is not None
            segments = max(1, int(math.sqrt(len(seq))))
            out = checkpoint_sequential(seq, segments, x, use_reentrant=False)
        elif mode == "save_on_cpu":
            with torch.autograd.graph.save_on_cpu(pin_memory=True):
                out = model(x)
        else:
            out = model(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()

    return step


def _torch_step_ms(name: str, batch: int, steps: int) -> float:
    import torch

    torch.backends.cudnn.benchmark = True
    step = _torch_step(name, batch)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    _torch_free()
    return statistics.median(times)


def _torch_free() -> None:
    import torch

    gc.collect()
    torch.cuda.empty_cache()


def _torch_fits(name: str, batch: int, mode: str) -> bool:
    import torch

    try:
        step = _torch_step(name, batch, mode)
        step()
        torch.cuda.synchronize()
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        step = None  # type: ignore[assignment]
        _torch_free()


def _largest(fits: Callable[[int], bool], hi: int) -> int:
    lo = 0  # fits(lo) holds (0 is the empty claim)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def throughput(steps: int) -> list[dict[str, Any]]:
    rows = []
    for name, batch in (("resnet50", 64), ("vgg16", 32)):
        sn_ms, _ = _sn_step_ms(name, batch, steps)
        torch_ms = _torch_step_ms(name, batch, steps)
        rows.append(
            {
                "model": name,
                "batch": batch,
                "superneurons_img_s": batch / sn_ms * 1e3,
                "pytorch_img_s": batch / torch_ms * 1e3,
                "ratio": torch_ms / sn_ms,
            }
        )
    return rows


def max_batch(budget: int, hi: int) -> list[dict[str, Any]]:
    import torch

    g = _sn_graph("resnet50")
    rows: list[dict[str, Any]] = []
    for policy in ("none", "liveness", "offload", "recompute", "all", "superneurons"):

        def plan_fits(b: int, policy: str = policy) -> bool:
            return sn.plan(g, b, policy=policy, budget=budget, device="cuda").fits

        b = _largest(plan_fits, hi)
        ran = False
        if b > 0:
            try:
                _sn_step_ms("resnet50", b, 1, policy=policy, budget=budget)
                ran = True
            except (sn.OutOfMemoryError, MemoryError):
                ran = False
        rows.append({"framework": "superneurons", "mode": policy, "batch": b, "ran": ran})
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, budget / total))
    for mode in ("eager", "checkpoint", "save_on_cpu"):

        def torch_fits(n: int, mode: str = mode) -> bool:
            return _torch_fits("resnet50", n, mode)

        b = _largest(torch_fits, hi)
        rows.append({"framework": "pytorch", "mode": mode, "batch": b, "ran": b > 0})
    torch.cuda.set_per_process_memory_fraction(1.0)
    ck = next(r["batch"] for r in rows if r["mode"] == "checkpoint")
    for r in rows:
        r["vs_checkpoint"] = r["batch"] / ck if ck else float("nan")
    return rows


def oversubscription(steps: int, batch: int) -> list[dict[str, Any]]:
    g = _sn_graph("resnet50")
    peak = sn.plan(g, batch, policy="liveness", device="cuda").peak_bytes
    in_ms, in_stats = _sn_step_ms("resnet50", batch, steps, policy="liveness")
    over_ms, over_stats = _sn_step_ms(
        "resnet50", batch, steps, policy="superneurons", budget=peak // 2
    )
    return [
        {"case": "in memory (liveness)", "budget_gib": 0.0, "step_ms": in_ms, **in_stats},
        {
            "case": "2x oversubscribed (superneurons)",
            "budget_gib": peak / 2 / GIB,
            "step_ms": over_ms,
            "slowdown": over_ms / in_ms,
            **over_stats,
        },
    ]


def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n## {title}")
    if not rows:
        return
    keys = list(rows[0].keys() | set().union(*(r.keys() for r in rows)))
    keys.sort(key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [
            f"{r.get(k, ''):.3g}" if isinstance(r.get(k), float) else str(r.get(k, ""))
            for k in keys
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="throughput,max_batch,oversubscription")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--budget", default="12GiB")
    parser.add_argument("--max-batch-limit", type=int, default=2048)
    parser.add_argument("--oversub-batch", type=int, default=64)
    parser.add_argument("--json", default=None, help="also write every row to this file")
    args = parser.parse_args()
    info = sn.build_info()
    if not info["cuda"] or int(info["cuda_devices"]) == 0:
        raise SystemExit(f"needs a CUDA build and a GPU: {info.get('cuda_device_reason')}")
    import torch

    print(f"device: {torch.cuda.get_device_name(0)}; superneurons {info['version']}")
    budget = parse_budget(args.budget)
    if budget is None:
        raise SystemExit("--budget must be a size such as 12GiB")
    out: dict[str, list[dict[str, Any]]] = {}
    tables = args.tables.split(",")
    if "throughput" in tables:
        out["throughput"] = throughput(args.steps)
        _print("Throughput, fp32, images/s (ratio = superneurons / PyTorch)", out["throughput"])
    if "max_batch" in tables:
        out["max_batch"] = max_batch(budget, args.max_batch_limit)
        _print(f"Largest ResNet-50 batch under {args.budget}", out["max_batch"])
    if "oversubscription" in tables:
        out["oversubscription"] = oversubscription(args.steps, args.oversub_batch)
        _print("ResNet-50 at 2x oversubscription", out["oversubscription"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
