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
- ``depth``: the deepest ImageNet ResNet (bottleneck blocks (6, 32, n3, 6), depth
  3 (44 + n3) + 2) that fits ``--budget`` at batch 16, per superneurons policy (planned,
  then one real step at that depth) and for PyTorch eager and checkpoint_sequential
  (torchvision's ResNet with the same blocks), galloping then bisecting over n3.

fp32 means fp32 on both sides: PyTorch's TF32 switches (cuDNN convolutions default to
TF32 on Hopper) are turned off, as superneurons asks cuDNN for FMA math. Both sides take
the batch from host NumPy memory every step. The superneurons sessions of the memory
tables get ``--host-budget`` (48 GiB) for their pinned slab, and PyTorch's
``save_on_cpu`` search stops at ``--save-on-cpu-limit`` images, so neither pins most of
the machine's memory. Plans made only to search (not run) skip the convolution
measurement (``SUPERNEURONS_CUDNN_BENCHMARK=0``). Tables stop searching at
``--seconds`` (a figure cut short is marked ``done: False``, a lower bound), and the
JSON is rewritten after each table.

Each superneurons figure and each PyTorch figure comes from the same process, one after
the other, on the same GPU; the PyTorch side frees its cache between cells.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# PyTorch before superneurons: one cuDNN in the process, the wheel's that PyTorch checks.
import torch

import superneurons as sn
from superneurons._units import parse_budget

GIB = 1 << 30
LR, MOMENTUM = 0.01, 0.9
HOST_BUDGET = 48 * GIB  # --host-budget
DEADLINE = math.inf  # time.perf_counter() after which searches stop (--seconds)


def _out_of_time() -> bool:
    return time.perf_counter() > DEADLINE


@contextlib.contextmanager
def _unmeasured() -> Iterator[None]:
    """Plans made only to search skip cuDNN's algorithm measurement."""
    old = os.environ.get("SUPERNEURONS_CUDNN_BENCHMARK")
    os.environ["SUPERNEURONS_CUDNN_BENCHMARK"] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["SUPERNEURONS_CUDNN_BENCHMARK"]
        else:
            os.environ["SUPERNEURONS_CUDNN_BENCHMARK"] = old


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
    name: str | sn.Graph,
    batch: int,
    steps: int,
    policy: str = "liveness",
    budget: int | None = None,
) -> tuple[float, dict[str, float]]:
    g = _sn_graph(name) if isinstance(name, str) else name
    s = sn.Session(
        g, batch, device="cuda", policy=policy, budget=budget, host_budget=HOST_BUDGET, seed=0
    )
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


def _torch_model(name: str | tuple[int, ...]) -> Any:
    import torchvision
    from torchvision.models.resnet import Bottleneck, ResNet

    if isinstance(name, tuple):  # bottleneck blocks per stage (the depth table)
        return ResNet(Bottleneck, list(name), num_classes=1000).cuda()
    return getattr(torchvision.models, name)(num_classes=1000).cuda()


def _torch_sequential(model: Any) -> Any:
    """torchvision's ResNet as one nn.Sequential (what checkpoint_sequential takes)."""
    from torch import nn

    blocks = [model.conv1, model.bn1, model.relu, model.maxpool]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        blocks.extend(stage)
    return nn.Sequential(*blocks, model.avgpool, nn.Flatten(), model.fc)


def _torch_step(name: str | tuple[int, ...], batch: int, mode: str = "eager") -> Callable[[], None]:
    from torch.utils.checkpoint import checkpoint_sequential

    model = _torch_model(name)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x_host, y_host = _batch(batch, 224, 1000)  # uploaded every step, as superneurons does
    seq = _torch_sequential(model) if mode == "checkpoint" else None

    def step() -> None:
        x = torch.from_numpy(x_host).to("cuda")
        y = torch.from_numpy(y_host).to("cuda", dtype=torch.int64)
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
    gc.collect()
    torch.cuda.empty_cache()


_ALLOC_FAILURES = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


def _torch_fits(name: str | tuple[int, ...], batch: int, mode: str) -> bool:
    step: Callable[[], None] | None = None
    try:
        step = _torch_step(name, batch, mode)
        step()
        torch.cuda.synchronize()
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    except RuntimeError as e:  # cuBLAS/cuDNN running out near the cap say it this way
        if any(m in str(e) for m in _ALLOC_FAILURES):
            return False
        raise
    finally:
        step = None
        _torch_free()


def _largest(fits: Callable[[int], bool], hi: int, lo: int = 0) -> tuple[int, bool]:
    """The largest n in [lo, hi] with fits(n), given fits(lo) (0 is the empty claim), and
    whether the bisection finished before the deadline (else a lower bound)."""
    while lo < hi:
        if _out_of_time():
            return lo, False
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo, True


def _gallop(fits: Callable[[int], bool], start: int, limit: int) -> tuple[int, bool]:
    """The largest n in [1, limit] with fits(n) (0 if none): doubling from `start`, then
    bisecting; and whether it finished before the deadline."""
    if _out_of_time():
        return 0, False
    start = max(1, min(start, limit))
    if not fits(start):
        return _largest(fits, start - 1)
    lo = start
    while lo < limit:
        if _out_of_time():
            return lo, False
        hi = min(2 * lo, limit)
        if not fits(hi):
            return _largest(fits, hi - 1, lo)
        lo = hi
    return lo, True


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


def _plan_fits(g: sn.Graph, batch: int, policy: str, budget: int) -> bool:
    with _unmeasured():
        p = sn.plan(g, batch, policy=policy, budget=budget, device="cuda", host_budget=HOST_BUDGET)
    return p.fits


def _sn_runs(g: sn.Graph, batch: int, policy: str, budget: int) -> bool | None:
    """Whether one real step runs at `batch` (None: not tried, out of time)."""
    if _out_of_time():
        return None
    try:
        _sn_step_ms(g, batch, 1, policy=policy, budget=budget)
        return True
    except (sn.OutOfMemoryError, MemoryError):
        return False


@contextlib.contextmanager
def _torch_capped(budget: int) -> Iterator[None]:
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, budget / total))
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def max_batch(budget: int, hi: int, save_on_cpu_hi: int) -> list[dict[str, Any]]:
    g = _sn_graph("resnet50")
    rows: list[dict[str, Any]] = []
    for policy in ("none", "liveness", "liveness+offload", "liveness+recompute", "superneurons"):

        def plan_fits(b: int, policy: str = policy) -> bool:
            return _plan_fits(g, b, policy, budget)

        b, done = _largest(plan_fits, hi)
        ran = _sn_runs(g, b, policy, budget) if b > 0 else False
        rows.append(
            {"framework": "superneurons", "mode": policy, "batch": b, "ran": ran, "done": done}
        )
    with _torch_capped(budget):
        for mode in ("eager", "checkpoint", "save_on_cpu"):

            def torch_fits(n: int, mode: str = mode) -> bool:
                return _torch_fits("resnet50", n, mode)

            b, done = _largest(torch_fits, save_on_cpu_hi if mode == "save_on_cpu" else hi)
            rows.append(
                {"framework": "pytorch", "mode": mode, "batch": b, "ran": b > 0, "done": done}
            )
    ck = next(r["batch"] for r in rows if r["mode"] == "checkpoint")
    for r in rows:
        r["vs_checkpoint"] = r["batch"] / ck if ck else float("nan")
    return rows


def _resnet_blocks(n3: int) -> tuple[int, int, int, int]:
    return (6, 32, n3, 6)


def _resnet_depth(n3: int) -> int:
    return 3 * sum(_resnet_blocks(n3)) + 2


def depth(budget: int, batch: int = 16, limit: int = 4096) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def graph(n3: int) -> sn.Graph:
        return sn.models.resnet(n=_resnet_blocks(n3), num_classes=1000, image_size=224)

    for policy in ("liveness", "liveness+recompute", "superneurons"):

        def plan_fits(n3: int, policy: str = policy) -> bool:
            return _plan_fits(graph(n3), batch, policy, budget)

        n3, done = _gallop(plan_fits, 64, limit)
        ran = _sn_runs(graph(n3), batch, policy, budget) if n3 > 0 else False
        rows.append(
            {
                "framework": "superneurons",
                "mode": policy,
                "n3": n3,
                "depth": _resnet_depth(n3) if n3 else 0,
                "ran": ran,
                "done": done,
            }
        )
    with _torch_capped(budget):
        for mode in ("eager", "checkpoint"):

            def torch_fits(n3: int, mode: str = mode) -> bool:
                return _torch_fits(_resnet_blocks(n3), batch, mode)

            n3, done = _gallop(torch_fits, 64, limit)
            rows.append(
                {
                    "framework": "pytorch",
                    "mode": mode,
                    "n3": n3,
                    "depth": _resnet_depth(n3) if n3 else 0,
                    "ran": n3 > 0,
                    "done": done,
                }
            )
    ck = next(r["depth"] for r in rows if r["mode"] == "checkpoint")
    for r in rows:
        r["vs_checkpoint"] = r["depth"] / ck if ck else float("nan")
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


def _strict_fp32() -> None:
    """PyTorch without TF32 (see the docstring): the fp32_precision switches where this
    PyTorch has them (2.9 on; the old allow_tf32 ones only warn there, and mixing the two
    raises), the allow_tf32 ones before."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def main() -> None:
    global DEADLINE, HOST_BUDGET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="throughput,max_batch,oversubscription,depth")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--budget", default="12GiB")
    parser.add_argument("--host-budget", default="48GiB")
    parser.add_argument("--max-batch-limit", type=int, default=2048)
    parser.add_argument("--save-on-cpu-limit", type=int, default=384)
    parser.add_argument("--oversub-batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=math.inf, help="stop searching after")
    parser.add_argument("--json", default=None, help="also write every row to this file")
    args = parser.parse_args()
    DEADLINE = time.perf_counter() + args.seconds
    info = sn.build_info()
    if not info["cuda"] or int(info["cuda_devices"]) == 0:
        raise SystemExit(f"needs a CUDA build and a GPU: {info.get('cuda_device_reason')}")
    _strict_fp32()

    print(f"device: {torch.cuda.get_device_name(0)}; superneurons {info['version']}")
    budget = parse_budget(args.budget)
    host_budget = parse_budget(args.host_budget)
    if budget is None or host_budget is None:
        raise SystemExit("--budget and --host-budget must be sizes such as 12GiB")
    HOST_BUDGET = host_budget
    out: dict[str, list[dict[str, Any]]] = {}
    tables = args.tables.split(",")

    def emit(key: str, title: str, table: Callable[[], list[dict[str, Any]]]) -> None:
        if _out_of_time():  # a table not started is recorded as such
            print(f"\n## {title}: not run (out of time, --seconds)")
            out[key] = []
        else:
            out[key] = table()
            _print(title, out[key])
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)

    if "throughput" in tables:
        title = "Throughput, fp32, images/s (ratio = superneurons / PyTorch)"
        emit("throughput", title, lambda: throughput(args.steps))
    if "max_batch" in tables:
        title = f"Largest ResNet-50 batch under {args.budget}"
        emit(
            "max_batch",
            title,
            lambda: max_batch(budget, args.max_batch_limit, args.save_on_cpu_limit),
        )
    if "oversubscription" in tables:
        title = "ResNet-50 at 2x oversubscription"
        emit("oversubscription", title, lambda: oversubscription(args.steps, args.oversub_batch))
    if "depth" in tables:
        emit("depth", f"Deepest ResNet at batch 16 under {args.budget}", lambda: depth(budget))


if __name__ == "__main__":
    main()
