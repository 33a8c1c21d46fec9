"""One training step (forward, backward, SGD with momentum) on the CPU: superneurons
against PyTorch eager, side by side, on the same architectures, batches and threads.

    python benchmarks/vs_pytorch_cpu.py                  # all cases, 3 rounds
    python benchmarks/vs_pytorch_cpu.py --cases resnet20 --rounds 5 --threads 2

Needs PyTorch (optional, never a test dependency): ``pip install torch`` or the
``bench-torch`` extra. Each
(framework, case, round) runs in a fresh process that builds the network, takes one
warm-up step and times ``--steps`` more on one random batch; the two frameworks alternate
within every round, so a load that comes and goes on a shared machine hits both alike.
The table gives the median over all timed steps of all rounds, and the ratio
superneurons / PyTorch (below 1.0: superneurons is faster). The PyTorch network is built
from the superneurons graph, layer by layer, so the two compute the same function.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import superneurons as sn


def _vgg11(num_classes: int, image_size: int) -> sn.Graph:
    """VGG-11 (configuration A): eight 3x3 convolutions with ReLU in five pooled stages,
    then one FC layer (the usual CIFAR head: at 32x32 the features are 512x1x1)."""
    g = sn.Graph()
    x = g.input(shape=(3, image_size, image_size), name="data")
    for i, item in enumerate([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]):
        if item == "M":
            x = g.maxpool(x, 2, stride=2, name=f"pool{i}")
        else:
            x = g.relu(g.conv2d(x, int(item), 3, padding=1, name=f"conv{i}"), name=f"relu{i}")
    g.softmax_cross_entropy(g.fc(x, num_classes, name="fc"), name="loss")
    return g


# name: (description, graph builder, batch, (C, H, W))
CASES: dict[str, tuple[str, Callable[[], sn.Graph], int, tuple[int, int, int]]] = {
    "resnet20": (
        "ResNet-20, 3x32x32, batch 64",
        lambda: sn.models.resnet(depth=20, num_classes=10, image_size=32),
        64,
        (3, 32, 32),
    ),
    "resnet50": (
        "ResNet-50, 3x64x64, 100 classes, batch 16",
        lambda: sn.models.resnet50(num_classes=100, image_size=64),
        16,
        (3, 64, 64),
    ),
    "vgg11": ("VGG-11, 3x32x32, batch 32", lambda: _vgg11(10, 32), 32, (3, 32, 32)),
    "densenet40": (
        "DenseNet-BC-40 (k=12), 3x32x32, batch 32",
        lambda: sn.models.densenet(depth=40, num_classes=10, image_size=32),
        32,
        (3, 32, 32),
    ),
}

LR = 0.01  # both frameworks: SGD, momentum 0.9, no weight decay
MOMENTUM = 0.9


def _batch(case: str) -> tuple[np.ndarray, np.ndarray, int]:
    _, build, batch, shape = CASES[case]
    num_classes = build().layers[-2].shape[0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    return x, rng.integers(0, num_classes, batch), num_classes


def _time_superneurons(case: str, threads: int, steps: int) -> list[float]:
    sn.set_num_threads(threads)
    x, y, _ = _batch(case)
    session = sn.Session(CASES[case][1](), batch_size=x.shape[0], seed=0)
    session.train_step(x, y, LR, MOMENTUM)  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        session.train_step(x, y, LR, MOMENTUM)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _torch_model(graph: sn.Graph) -> Any:
    """The superneurons graph as a PyTorch module (same layers, same order)."""
    import torch
    from torch import nn

    layers = graph.layers
    shapes = {spec.name: spec.shape for spec in layers}
    modules = nn.ModuleDict()
    for spec in layers:
        a, key = spec.attrs, spec.name.replace(".", "_")
        in_shape = shapes[spec.inputs[0]] if spec.inputs else None
        if spec.kind == "conv2d":
            assert in_shape is not None
            modules[key] = nn.Conv2d(
                in_shape[0],
                int(a["out_channels"]),
                (int(a["kernel_h"]), int(a["kernel_w"])),
                stride=(int(a["stride_h"]), int(a["stride_w"])),
                padding=(int(a["pad_h"]), int(a["pad_w"])),
                dilation=(int(a["dilation_h"]), int(a["dilation_w"])),
                groups=int(a["groups"]),
                bias=bool(a["bias"]),
            )
        elif spec.kind == "batchnorm":
            modules[key] = nn.BatchNorm2d(spec.shape[0], eps=a["eps"], momentum=a["momentum"])
        elif spec.kind in ("maxpool", "avgpool"):
            kw = {
                "kernel_size": (int(a["kernel_h"]), int(a["kernel_w"])),
                "stride": (int(a["stride_h"]), int(a["stride_w"])),
                "padding": (int(a["pad_h"]), int(a["pad_w"])),
            }
            modules[key] = (
                nn.MaxPool2d(**kw)
                if spec.kind == "maxpool"
                else nn.AvgPool2d(**kw, count_include_pad=False)
            )
        elif spec.kind == "fc":
            assert in_shape is not None
            modules[key] = nn.Linear(int(np.prod(in_shape)), spec.shape[0], bias=bool(a["bias"]))
        elif spec.kind == "dropout":
            modules[key] = nn.Dropout(a["p"])
        elif spec.kind == "lrn":
            modules[key] = nn.LocalResponseNorm(int(a["size"]), a["alpha"], a["beta"], a["k"])

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = modules

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: dict[str, torch.Tensor] = {}
            for spec in layers:
                key = spec.name.replace(".", "_")
                ins = [out[i] for i in spec.inputs]
                if spec.kind == "input":
                    out[spec.name] = x
                elif spec.kind == "relu":
                    out[spec.name] = torch.relu(ins[0])
                elif spec.kind == "add":
                    out[spec.name] = ins[0] + ins[1]
                elif spec.kind == "concat":
                    out[spec.name] = torch.cat(ins, dim=1)
                elif spec.kind == "global_avgpool":
                    out[spec.name] = ins[0].mean(dim=(2, 3), keepdim=True)
                elif spec.kind == "flatten":
                    out[spec.name] = ins[0].flatten(1)
                elif spec.kind == "fc":
                    out[spec.name] = self.layers[key](ins[0].flatten(1))
                elif spec.kind == "softmax_cross_entropy":
                    return ins[0]
                else:
                    out[spec.name] = self.layers[key](ins[0])
            raise ValueError("graph has no loss layer")

    return Net()


def _time_torch(case: str, threads: int, steps: int) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x_np, y_np, _ = _batch(case)
    model = _torch_model(CASES[case][1]()).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _child(framework: str, case: str, threads: int, steps: int) -> None:
    run = _time_superneurons if framework == "superneurons" else _time_torch
    print(json.dumps(run(case, threads, steps)))


def _run_child(
    framework: str, case: str, threads: int, steps: int, env: dict[str, str]
) -> list[float]:
    cmd = [sys.executable, __file__, "--child", framework, case, str(threads), str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} {case} failed:\n{out.stderr[-2000:]}")
    times: list[float] = json.loads(out.stdout.strip().splitlines()[-1])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--wait-policy",
        default="PASSIVE",
        choices=["PASSIVE", "ACTIVE"],
        help="OMP_WAIT_POLICY for both frameworks (superneurons' default is PASSIVE)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        framework, case, threads, steps = args.child
        _child(framework, case, int(threads), int(steps))
        return 0
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): nothing to compare against.")
        return 1
    if args.rounds < 1 or args.steps < 1 or args.threads < 1:
        parser.error("--rounds, --steps and --threads must be >= 1")

    # The same OpenMP settings for both frameworks (both run OpenMP thread pools).
    env = {**os.environ, "OMP_WAIT_POLICY": args.wait_policy}
    load_before = os.getloadavg()
    times: dict[tuple[str, str], list[float]] = {}
    frameworks = ("superneurons", "pytorch")
    for r in range(args.rounds):
        for case in args.cases:
            # Alternate which framework goes first, so neither always follows the other.
            for framework in frameworks if r % 2 == 0 else frameworks[::-1]:
                got = _run_child(framework, case, args.threads, args.steps, env)
                times.setdefault((framework, case), []).extend(got)
    load_after = os.getloadavg()

    print(
        f"One training step (forward, backward, SGD momentum {MOMENTUM}), median of "
        f"{args.rounds} interleaved rounds x {args.steps} steps, {args.threads} threads; "
        f"superneurons {sn.__version__}, PyTorch {torch.__version__}; "
        f"OMP_WAIT_POLICY={args.wait_policy} for both; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"on {os.cpu_count()} cores"
    )
    print()
    print("| case | superneurons | PyTorch eager | ratio |")
    print("|---|---|---|---|")
    for case in args.cases:
        ours = statistics.median(times[("superneurons", case)])
        theirs = statistics.median(times[("pytorch", case)])
        print(f"| {CASES[case][0]} | {ours:.0f} ms | {theirs:.0f} ms | {ours / theirs:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
