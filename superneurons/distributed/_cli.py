"""``superneurons train`` across MPI ranks (``--compress``, or launched by mpirun)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import superneurons as sn
from superneurons.compress import DEFAULT, DEFAULT_OPTIONS, NAMES, make
from superneurons.data import ArrayDataset
from superneurons.distributed._comm import DistributedError, world
from superneurons.distributed._trainer import DataParallelTrainer

__all__ = ["add_arguments", "train"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The data-parallel options of ``superneurons train``."""
    p.add_argument(
        "--compress",
        choices=(*NAMES, "on"),
        default=None,
        help=f"gradient compressor for data-parallel training ('on': {DEFAULT} {DEFAULT_OPTIONS}); "
        "with mpirun the default is none",
    )
    p.add_argument("--theta", type=float, default=None, help="topk/fft: fraction dropped")
    p.add_argument("--bits", type=int, default=None, help="fft/topk/qsgd: quantizer width")
    p.add_argument("--error-feedback", action="store_true", help="keep compression residuals")
    p.add_argument(
        "--theta-schedule", action="store_true", help="theta^2 proportional to lr (Theorem 3)"
    )
    p.add_argument(
        "--rebroadcast-every", type=int, default=10, help="re-broadcast parameters every K steps"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per collective")


def _compressor(args: argparse.Namespace) -> sn.compress.Compressor:
    name = DEFAULT if args.compress == "on" else (args.compress or "none")
    options: dict[str, Any] = dict(DEFAULT_OPTIONS) if args.compress == "on" else {}
    if args.theta is not None:
        options["theta"] = args.theta
    if args.bits is not None:
        options["bits"] = args.bits
    return make(name, error_feedback=args.error_feedback, **options)


def train(
    args: argparse.Namespace,
    dataset: Callable[[argparse.Namespace], tuple[ArrayDataset, ArrayDataset]],
    model: Callable[[argparse.Namespace, int, int, int], sn.Graph],
) -> int:
    """Runs the data-parallel ``train`` subcommand; ``--batch`` is the global batch."""
    start = time.perf_counter()
    compressor = _compressor(args)
    comm = world(args.timeout)
    if args.batch % comm.size != 0:
        raise ValueError(f"--batch {args.batch} must be a multiple of the {comm.size} ranks")
    if args.resume or args.checkpoint:
        raise ValueError("--checkpoint and --resume are not supported with data parallelism yet")
    train_set, test_set = dataset(args)
    c, h, _w = train_set.sample_shape
    graph = model(args, c, h, train_set.num_classes)
    session = sn.Session(
        graph,
        args.batch // comm.size,
        device=args.device,
        policy=args.policy,
        budget=args.budget,
        seed=args.seed,
    )
    trainer = DataParallelTrainer(
        session,
        comm,
        compressor,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        rebroadcast_every=args.rebroadcast_every,
        theta_schedule=args.theta_schedule,
    )

    def report(record: dict[str, Any]) -> None:
        if comm.rank != 0:
            return
        shown = {k: v for k, v in record.items() if k != "losses"}
        if args.json:
            print(json.dumps({"event": "epoch", **shown}), flush=True)
        else:
            print(
                f"epoch {shown['epoch']}: loss {shown['loss']:.4f}, accuracy "
                f"{shown['accuracy']:.4f}, test accuracy {shown['test_accuracy']:.4f} "
                f"({shown['time_s']:.1f} s)",
                flush=True,
            )

    if comm.rank == 0 and not args.json:
        print(
            f"{args.model}: {graph.num_params():,} parameters on {comm.size} ranks, global "
            f"batch {args.batch}, compressor {compressor!r}",
            flush=True,
        )
    try:
        history = trainer.fit(train_set, args.epochs, test_set, seed=args.seed, on_epoch=report)
    except DistributedError as error:
        print(f"superneurons: error: {error}", file=sys.stderr, flush=True)
        comm.abort(3)  # ends the whole job: the other ranks must not wait on us
        return 3
    summary = {
        "event": "done",
        "rank": comm.rank,
        "world_size": comm.size,
        "model": args.model,
        "compress": compressor.name,
        "params": graph.num_params(),
        "epochs": len(history),
        "final_loss": history[-1]["loss"],
        "test_accuracy": history[-1]["test_accuracy"],
        "params_sha256": trainer.params_sha256(),
        "bytes_sent_per_iteration": trainer.bytes_sent_per_iteration,
        "uncompressed_bytes_per_iteration": 4 * graph.num_params(),
        "seconds_per_iteration": trainer.seconds_per_iteration,
        "iterations": trainer.iteration,
        "max_drift": max((d["max_drift"] for d in trainer.drift_log), default=0.0),
        "losses": [loss for record in history for loss in record["losses"]],
        "time_s": time.perf_counter() - start,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(
            f"rank {comm.rank}/{comm.size} done: test accuracy {summary['test_accuracy']:.4f}, "
            f"{summary['bytes_sent_per_iteration']:.0f} bytes sent per iteration "
            f"(uncompressed {summary['uncompressed_bytes_per_iteration']}), "
            f"params sha256 {str(summary['params_sha256'])[:16]}",
            flush=True,
        )
    return 0
