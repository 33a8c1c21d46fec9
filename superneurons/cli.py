"""The ``superneurons`` command line: ``train`` a zoo model, ``plan`` its memory, ``bench``
its policies side by side, ``info`` about the build.

Example:
    >>> from superneurons.cli import main
    >>> main(["info", "--json"])  # doctest: +ELLIPSIS
    {"version": ...}
    0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import superneurons as sn
from superneurons.data import ArrayDataset

__all__ = ["main"]

MODELS = (
    "resnet",
    "resnet50",
    "resnet101",
    "resnet152",
    "alexnet",
    "vgg16",
    "inception_v4",
    "densenet",
)
DATASETS = ("digits", "synthetic-cifar", "synthetic-imagenet", "cifar10", "fashion-mnist")


def _dataset(args: argparse.Namespace) -> tuple[ArrayDataset, ArrayDataset]:
    name = args.dataset
    if name == "digits":
        return sn.data.digits(seed=args.seed)
    if name.startswith("synthetic-"):
        full = sn.data.synthetic(
            name.removeprefix("synthetic-"),
            n=args.samples,
            num_classes=args.classes,
            seed=args.seed,
        )
        return full.split(0.2, seed=args.seed)
    if args.data_dir is None:
        raise ValueError(f"--dataset {name} reads files: pass --data-dir DIRECTORY")
    if name == "cifar10":
        return sn.data.load_cifar10(args.data_dir)
    return sn.data.load_fashion_mnist(args.data_dir)


def _model(args: argparse.Namespace, channels: int, image_size: int, classes: int) -> sn.Graph:
    common: dict[str, Any] = {
        "num_classes": classes,
        "image_size": image_size,
        "in_channels": channels,
    }
    if args.model == "resnet":
        if args.n is not None:
            return sn.models.resnet(n=tuple(args.n), **common)
        return sn.models.resnet(depth=args.depth, **common)
    builder = getattr(sn.models, args.model)
    graph: sn.Graph = builder(**common)
    return graph


def _train(args: argparse.Namespace) -> int:
    from superneurons import distributed

    if args.compress is not None or distributed.launched_by_mpi():
        return distributed.train_cli(args, _dataset, _model)
    start = time.perf_counter()
    train, test = _dataset(args)
    c, h, _w = train.sample_shape
    graph = _model(args, c, h, train.num_classes)
    session = sn.Session(
        graph,
        args.batch,
        device=args.device,
        policy=args.policy,
        budget=args.budget,
        seed=args.seed,
    )
    trainer = sn.Trainer(
        session, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    if args.resume:
        trainer.resume(args.resume)

    def report(record: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"event": "epoch", **record}), flush=True)
        else:
            test_part = (
                f", test loss {record['test_loss']:.4f}, test accuracy "
                f"{record['test_accuracy']:.4f}"
                if "test_loss" in record
                else ""
            )
            print(
                f"epoch {record['epoch']}: loss {record['loss']:.4f}, accuracy "
                f"{record['accuracy']:.4f}{test_part} ({record['time_s']:.1f} s)",
                flush=True,
            )

    if not args.json:
        print(
            f"{args.model}: {len(graph)} layers, {graph.num_params():,} parameters; "
            f"{len(train)} training and {len(test)} test samples; batch {args.batch}, "
            f"policy {session.policy}, device {session.device}",
            flush=True,
        )
    history = trainer.fit(
        train,
        args.epochs,
        test,
        seed=args.seed,
        progress=not args.json and sys.stderr.isatty(),
        checkpoint=args.checkpoint,
        on_epoch=report,
    )
    mem = session.memory_stats()
    summary = {
        "event": "done",
        "model": args.model,
        "layers": len(graph),
        "params": graph.num_params(),
        "epochs": len(history),
        "final_loss": history[-1]["loss"],
        "test_accuracy": history[-1].get("test_accuracy"),
        "peak_bytes": mem["peak_bytes"],
        "budget_bytes": session.budget_bytes,
        "time_s": time.perf_counter() - start,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(
            f"done: final loss {summary['final_loss']:.4f}, test accuracy "
            f"{summary['test_accuracy']:.4f}, "
            f"peak memory {sn.format_bytes(int(mem['peak_bytes']))}, "
            f"{summary['time_s']:.1f} s"
        )
    return 0


def _input_defaults(args: argparse.Namespace) -> tuple[int, int]:
    """Image size and classes for plan/bench: ImageNet's unless a CIFAR-style ResNet."""
    imagenet = args.model != "resnet" or args.n is not None
    return args.image_size or (224 if imagenet else 32), args.classes or (1000 if imagenet else 10)


def _plan(args: argparse.Namespace) -> int:
    size, classes = _input_defaults(args)
    graph = _model(args, args.in_channels, size, classes)
    p = sn.plan(graph, args.batch, policy=args.policy, budget=args.budget, device=args.device)
    if args.plot:
        p.plot(args.plot)
    if args.json:
        out = {"model": args.model, "layers": len(graph), **p.to_dict(steps=not args.no_steps)}
        print(json.dumps(out))
    else:
        print(
            f"{args.model}: {len(graph)} layers, {graph.num_params():,} parameters, "
            f"image {size}x{size}"
        )
        print(p.summary())
        print(p.table())
    return 0 if p.fits or not args.check else 1


def _bench(args: argparse.Namespace) -> int:
    """Each policy on the same graph, batch and data, side by side in one run."""
    size, classes = _input_defaults(args)
    graph = _model(args, args.in_channels, size, classes)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch, args.in_channels, size, size)).astype(np.float32)
    y = rng.integers(0, classes, args.batch).astype(np.int32)
    rows = []
    for policy in args.policies.split(","):
        session = sn.Session(graph, args.batch, policy=policy, seed=args.seed)
        times_ms, losses = [], []
        for i in range(args.iterations + 1):  # the first iteration warms caches up
            start = time.perf_counter()
            losses.append(session.train_step(x, y, lr=0.01).loss)
            if i > 0:
                times_ms.append((time.perf_counter() - start) * 1e3)
        rows.append(
            {
                "policy": policy,
                "peak_bytes": int(session.memory_stats()["peak_bytes"]),
                "planned_peak_bytes": session.plan().peak_bytes,
                "median_step_ms": statistics.median(times_ms),
                "losses": losses,
            }
        )
    base = rows[0]
    for r in rows:
        r["memory_ratio"] = r["peak_bytes"] / base["peak_bytes"]
        r["time_ratio"] = r["median_step_ms"] / base["median_step_ms"]
        r["same_losses"] = r["losses"] == base["losses"]
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "batch": args.batch,
                    "image_size": size,
                    "iterations": args.iterations,
                    "policies": rows,
                }
            )
        )
        return 0
    print(
        f"{args.model}, batch {args.batch}, {size}x{size}, median of {args.iterations} "
        f"iterations (after one warm-up), device cpu"
    )
    print(
        f"{'policy':<12}{'peak':>12}{'vs first':>10}{'step ms':>10}{'vs first':>10}"
        f"{'same losses':>13}"
    )
    for r in rows:
        print(
            f"{r['policy']:<12}{sn.format_bytes(r['peak_bytes']):>12}"
            f"{r['memory_ratio']:>10.3f}{r['median_step_ms']:>10.1f}{r['time_ratio']:>10.3f}"
            f"{r['same_losses']!s:>13}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    info = sn.build_info()
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=MODELS, default="resnet")
    p.add_argument("--depth", type=int, default=20, help="CIFAR-style ResNet depth, 6n+2")
    p.add_argument(
        "--n",
        type=int,
        nargs=4,
        metavar=("N1", "N2", "N3", "N4"),
        help="ImageNet bottleneck ResNet blocks per stage (depth 3*sum+2)",
    )


def _memory_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", choices=sn.POLICIES + sn.PLANNED_POLICIES, default="liveness")
    p.add_argument("--budget", default=None, help="memory budget, e.g. 12GB (default: none)")


def _distributed_arguments(p: argparse.ArgumentParser) -> None:
    from superneurons.distributed import add_train_arguments

    add_train_arguments(p)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="superneurons", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a zoo model on a dataset under a memory budget")
    _model_arguments(t)
    t.add_argument("--dataset", choices=DATASETS, default="digits")
    t.add_argument("--data-dir", default=None, help="directory of CIFAR-10 / Fashion-MNIST files")
    t.add_argument("--samples", type=int, default=2000, help="synthetic datasets: samples")
    t.add_argument("--classes", type=int, default=10, help="synthetic datasets: classes")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    _memory_arguments(t)
    t.add_argument("--device", default="cpu")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint", default=None, help="write a checkpoint here after each epoch")
    t.add_argument("--resume", default=None, help="continue from this checkpoint")
    t.add_argument("--json", action="store_true", help="one JSON object per line")
    _distributed_arguments(t)
    t.set_defaults(run=_train)
    p_ = sub.add_parser("plan", help="plan one iteration's memory without running it")
    _model_arguments(p_)
    p_.add_argument("--batch", type=int, default=16)
    p_.add_argument(
        "--image-size", type=int, default=None, help="default 224 (32 for CIFAR-style ResNets)"
    )
    p_.add_argument("--classes", type=int, default=None, help="default 1000 (10 for CIFAR)")
    p_.add_argument("--in-channels", type=int, default=3)
    _memory_arguments(p_)
    p_.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p_.add_argument("--plot", default=None, help="write the per-step memory plot here (PNG)")
    p_.add_argument("--json", action="store_true", help="one JSON object")
    p_.add_argument("--no-steps", action="store_true", help="leave per-step records out of --json")
    p_.add_argument("--check", action="store_true", help="exit 1 when the plan does not fit")
    p_.set_defaults(run=_plan)
    b = sub.add_parser("bench", help="memory and speed of each policy, side by side")
    _model_arguments(b)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--image-size", type=int, default=None, help="default 224 (32 for CIFAR)")
    b.add_argument("--classes", type=int, default=None, help="default 1000 (10 for CIFAR)")
    b.add_argument("--in-channels", type=int, default=3)
    b.add_argument("--iterations", type=int, default=5)
    b.add_argument("--policies", default="none,liveness", help="comma-separated")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=_bench)
    i = sub.add_parser("info", help="what this installation was built with")
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``superneurons`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except (sn.GraphError, sn.OutOfMemoryError, ValueError) as e:
        print(f"superneurons: error: {e}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
