"""The ``superneurons`` command line: ``train`` a zoo model, ``plan`` its memory, ``bench``
its policies side by side, ``info`` about the build.

Note [CLI errors]
Every argument is checked before anything trains. A user error prints one line
(``superneurons: error: ...``) on stderr and exits with 2 for usage and input errors
(bad values, missing or unreadable files) or 1 for runtime failures (out of memory,
divergence, a full disk). With ``--json`` the error is also printed on stdout as one
JSON object ``{"event": "error", "error": ..., "type": ..., "exit_status": ...}``, so
a script reads one JSON line per event. Anything else is an internal bug: one line
that says so, and its traceback under ``--debug``.

Example:
    >>> from superneurons.cli import main
    >>> main(["info", "--json"])  # doctest: +ELLIPSIS
    {"version": ...}
    0
    >>> main(["plan", "--image-size", "0", "--json"])  # doctest: +ELLIPSIS
    {"event": "error", "error": "argument --image-size: must be an integer >= 1, got '0'...", ...}
    2
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import math
import os
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import superneurons as sn
from superneurons._checkpoint import check_checkpoint_path, read_checkpoint
from superneurons._checks import MAX_BATCH
from superneurons._policies import check_policy
from superneurons._units import parse_budget
from superneurons.data import ArrayDataset
from superneurons.trainer import DivergedError

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
FILE_DATASETS = ("cifar10", "fashion-mnist")  # read from --data-dir
# Learning rates that train each model from scratch with the cosine schedule; networks
# without batch norm diverge at 0.1.
DEFAULT_LR = {"alexnet": 0.01, "vgg16": 0.01}
DEFAULT_DEPTH = 20  # CIFAR-style ResNet-20


class UsageError(Exception):
    """A command line argparse rejected (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """Raises instead of exiting, so that main() reports every error one way."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ------------------------------------------------------------------ argument types
def _int_type(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {text!r}")
        return value

    return parse


_positive = _int_type(1, 2**31 - 1)
_batch = _int_type(1, MAX_BATCH)
_seed = _int_type(0, 2**64 - 1)


def _float_type(name: str, ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"{name} must be {rule}, got {text!r}")
        return value

    return parse


_lr = _float_type("the learning rate", lambda v: v > 0, "a finite number > 0")
_momentum = _float_type("momentum", lambda v: 0 <= v < 1, "in [0, 1) (0.9 is usual)")
_decay = _float_type("weight decay", lambda v: v >= 0, "a finite number >= 0")


def _budget(text: str) -> int:
    try:
        budget = parse_budget(text)
    except ValueError as e:
        if "must be > 0" in str(e):
            raise argparse.ArgumentTypeError(
                f"must be > 0 bytes, got {text!r}; leave --budget out for no budget"
            ) from None
        raise argparse.ArgumentTypeError(str(e)) from None
    return budget


def _dataset_name(text: str) -> str:
    if text in DATASETS:
        return text
    close = difflib.get_close_matches(text, DATASETS, n=2, cutoff=0.5)
    close += [d for d in DATASETS if text and text in d and d not in close]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown dataset {text!r}{hint} (choose from {', '.join(DATASETS)}; "
        "synthetic-* are generated, cifar10 and fashion-mnist read --data-dir)"
    )


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
            return sn.models.resnet(n=tuple(args.n), depth=args.depth, **common)
        return sn.models.resnet(depth=args.depth or DEFAULT_DEPTH, **common)
    builder = getattr(sn.models, args.model)
    graph: sn.Graph = builder(**common)
    return graph


def _check_model_args(args: argparse.Namespace) -> None:
    """--depth and --n shape a ``resnet`` only; the fixed zoo models have no depth."""
    if args.model != "resnet":
        for flag, value in (("--depth", args.depth), ("--n", args.n)):
            if value is not None:
                raise UsageError(
                    f"{flag} applies to --model resnet only; {args.model} has a fixed depth "
                    "(for a custom ImageNet ResNet use --model resnet --n N1 N2 N3 N4)"
                )


def _check_train_args(args: argparse.Namespace) -> None:
    """Everything that can be checked before data is read or anything trains."""
    _check_model_args(args)
    if args.dataset in FILE_DATASETS:
        if args.data_dir is None:
            raise UsageError(f"--dataset {args.dataset} reads files: pass --data-dir DIRECTORY")
        if not Path(args.data_dir).is_dir():
            raise FileNotFoundError(f"--data-dir {args.data_dir}: no such directory")
    elif args.data_dir is not None:
        raise UsageError(
            f"--data-dir is read by --dataset {' or '.join(FILE_DATASETS)} only, not {args.dataset}"
        )
    if args.checkpoint is not None:
        check_checkpoint_path(args.checkpoint)
    if args.resume is not None:
        read_checkpoint(args.resume)  # a missing or corrupt file fails here, not later
    if args.lr is None:
        args.lr = DEFAULT_LR.get(args.model, 0.1)


def _train(args: argparse.Namespace) -> int:
    from superneurons import distributed

    start = time.perf_counter()
    _check_train_args(args)
    if args.compress is not None or distributed.launched_by_mpi():
        return distributed.train_cli(args, _dataset, _model)
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
        host_budget=args.host_budget,
    )
    trainer = sn.Trainer(
        session, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    if args.resume:
        trainer.resume(args.resume)
        if trainer.epoch >= args.epochs:
            raise UsageError(
                f"--resume {args.resume} has already trained {trainer.epoch} epochs; "
                f"pass --epochs greater than {trainer.epoch} to train more"
            )

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
    try:
        history = trainer.fit(
            train,
            args.epochs,
            test,
            seed=args.seed,
            progress=not args.json and sys.stderr.isatty(),
            checkpoint=args.checkpoint,
            on_epoch=report,
        )
    except DivergedError as e:
        raise DivergedError(f"{e}; pass a smaller --lr, e.g. --lr {args.lr / 10:g}") from e
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
    _check_model_args(args)
    imagenet = args.model != "resnet" or args.n is not None
    size = args.image_size if args.image_size is not None else (224 if imagenet else 32)
    classes = args.classes if args.classes is not None else (1000 if imagenet else 10)
    return size, classes


def _model_label(args: argparse.Namespace) -> str:
    if args.model != "resnet":
        return str(args.model)
    if args.n is not None:
        return f"resnet n={tuple(args.n)} (depth {3 * sum(args.n) + 2})"
    return f"resnet-{args.depth or DEFAULT_DEPTH}"


def _plan(args: argparse.Namespace) -> int:
    size, classes = _input_defaults(args)
    graph = _model(args, args.in_channels, size, classes)
    p = sn.plan(
        graph,
        args.batch,
        policy=args.policy,
        budget=args.budget,
        device=args.device,
        host_budget=args.host_budget,
    )
    if args.plot:
        p.plot(args.plot, name=f"{_model_label(args)}, {size}x{size}")
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
    policies = args.policies.split(",")
    for policy in policies:
        check_policy(policy)
    graph = _model(args, args.in_channels, size, classes)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch, args.in_channels, size, size)).astype(np.float32)
    y = rng.integers(0, classes, args.batch).astype(np.int32)
    sessions = [sn.Session(graph, args.batch, policy=p, seed=args.seed) for p in policies]
    times_ms: list[list[float]] = [[] for _ in policies]
    losses: list[list[float]] = [[] for _ in policies]
    for i in range(args.iterations + 1):  # the first round warms caches up
        for k, session in enumerate(sessions):  # interleaved: one step of each in turn
            if i == 1 and args.profile:
                session.set_profiling(True)  # after the warm-up round
            start = time.perf_counter()
            losses[k].append(session.train_step(x, y, lr=0.01).loss)
            if i > 0:
                times_ms[k].append((time.perf_counter() - start) * 1e3)
    rows = [
        {
            "policy": policy,
            "peak_bytes": int(session.memory_stats()["peak_bytes"]),
            "planned_peak_bytes": session.plan().peak_bytes,
            "recompute_count": session.plan().recompute_count,
            "median_step_ms": statistics.median(times_ms[k]),
            "losses": losses[k],
            "profile": session.profile() if args.profile else [],
        }
        for k, (policy, session) in enumerate(zip(policies, sessions, strict=True))
    ]
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
        f"interleaved iterations (after one warm-up round), device cpu"
    )
    print(
        f"{'policy':<20}{'peak':>12}{'vs first':>10}{'step ms':>10}{'vs first':>10}"
        f"{'same losses':>13}"
    )
    for r in rows:
        print(
            f"{r['policy']:<20}{sn.format_bytes(r['peak_bytes']):>12}"
            f"{r['memory_ratio']:>10.3f}{r['median_step_ms']:>10.1f}{r['time_ratio']:>10.3f}"
            f"{r['same_losses']!s:>13}"
        )
    if args.profile:
        for r in rows:
            _print_profile(r["policy"], r["profile"], args.iterations, r["median_step_ms"])
    return 0


def _print_profile(
    policy: str, profile: list[dict[str, Any]], iterations: int, step_ms: float
) -> None:
    """Kernel time per iteration by layer kind and phase, largest first (Note [Kernel
    profile] in executor.cpp); "other" is the median step time not spent in kernels."""
    print(f"\nprofile, {policy}: kernel ms per iteration (mean of {iterations})")
    print(f"{'kind':<24}{'phase':<11}{'calls':>7}{'ms':>10}{'share':>8}")
    total = 0.0
    for row in sorted(profile, key=lambda r: -float(r["ms"])):
        ms = float(row["ms"]) / iterations
        total += ms
        print(
            f"{row['kind']:<24}{row['phase']:<11}{int(row['calls']) // iterations:>7}"
            f"{ms:>10.2f}{ms / step_ms:>8.1%}"
        )
    print(f"{'kernels':<42}{total:>10.2f}{total / step_ms:>8.1%}")
    print(f"{'other (median step - kernels)':<42}{step_ms - total:>10.2f}")


def _info(args: argparse.Namespace) -> int:
    info = sn.build_info()
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from superneurons import _calibrate as cal

    rates = cal.measure(repeats=args.repeats)
    if args.json:
        print(json.dumps(rates))
        return 0
    print(
        f"training {rates['cpu_gflops']:.1f} GFLOP/s (the planner's FLOP model), "
        f"copies {rates['copy_gbps']:.2f} GB/s; plans use 50 and 5 unless set:"
    )
    for line in cal.shell_lines(rates):
        print(line)
    return 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=MODELS, default="resnet")
    p.add_argument(
        "--depth",
        type=_positive,
        default=None,
        help=f"--model resnet: CIFAR-style depth 6n+2 (default {DEFAULT_DEPTH})",
    )
    p.add_argument(
        "--n",
        type=_positive,
        nargs=4,
        metavar=("N1", "N2", "N3", "N4"),
        help="--model resnet: ImageNet bottleneck blocks per stage (depth 3*sum+2)",
    )


def _memory_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", choices=sn.POLICIES + sn.PLANNED_POLICIES, default="liveness")
    p.add_argument(
        "--budget",
        type=_budget,
        default=None,
        help="memory budget, e.g. 12GB (binary units: MB = MiB; default: no budget)",
    )
    p.add_argument(
        "--host-budget",
        type=_budget,
        default=None,
        help="host memory for offloaded tensors and parameters on the host, with --budget "
        "(default: as much as the plan needs)",
    )


def _output_arguments(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=what)
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


DESCRIPTION = """\
Train zoo models under a memory budget (train), plan one training iteration's memory
without running it (plan), compare memory policies side by side (bench), say what this
installation was built with (info), and measure this machine's rates for the planner's
cost model (calibrate)."""
EPILOG = """examples:
  superneurons train --model resnet --depth 20 --dataset digits --epochs 3 --budget 256MB
  superneurons plan --model resnet50 --batch 32 --budget 12GB --plot mem.png
  superneurons bench --model resnet --depth 20 --batch 32
Sizes use binary units (MB = MiB, GB = GiB). Run `superneurons COMMAND --help` for options."""


def _distributed_arguments(p: argparse.ArgumentParser) -> None:
    from superneurons.distributed import add_train_arguments

    add_train_arguments(p)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="superneurons",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train a zoo model on a dataset under a memory budget")
    _model_arguments(t)
    t.add_argument(
        "--dataset",
        type=_dataset_name,
        default="digits",
        metavar="{" + ",".join(DATASETS) + "}",
        help="synthetic-* are generated; cifar10 (the binary version) and fashion-mnist "
        "(IDX files) are read from --data-dir",
    )
    t.add_argument("--data-dir", default=None, help="directory of CIFAR-10 / Fashion-MNIST files")
    t.add_argument("--samples", type=_positive, default=2000, help="synthetic datasets: samples")
    t.add_argument("--classes", type=_positive, default=10, help="synthetic datasets: classes")
    t.add_argument("--epochs", type=_positive, default=3)
    t.add_argument("--batch", type=_batch, default=64)
    t.add_argument(
        "--lr", type=_lr, default=None, help="learning rate (default 0.1; 0.01 for alexnet, vgg16)"
    )
    t.add_argument("--momentum", type=_momentum, default=0.9)
    t.add_argument("--weight-decay", type=_decay, default=5e-4)
    _memory_arguments(t)
    t.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:N or auto (a GPU where one is usable, else the CPU)",
    )
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--checkpoint", default=None, help="write a checkpoint here after each epoch")
    t.add_argument("--resume", default=None, help="continue from this checkpoint")
    _output_arguments(t, "one JSON object per line")
    _distributed_arguments(t)
    t.set_defaults(run=_train)
    p_ = sub.add_parser("plan", help="plan one iteration's memory without running it")
    _model_arguments(p_)
    p_.add_argument("--batch", type=_batch, default=16)
    p_.add_argument(
        "--image-size",
        type=_positive,
        default=None,
        help="default 224 (32 for CIFAR-style ResNets)",
    )
    p_.add_argument("--classes", type=_positive, default=None, help="default 1000 (10 for CIFAR)")
    p_.add_argument("--in-channels", type=_positive, default=3)
    _memory_arguments(p_)
    p_.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p_.add_argument("--plot", default=None, help="write the per-step memory plot here (PNG)")
    _output_arguments(p_, "one JSON object")
    p_.add_argument("--no-steps", action="store_true", help="leave per-step records out of --json")
    p_.add_argument("--check", action="store_true", help="exit 1 when the plan does not fit")
    p_.set_defaults(run=_plan)
    b = sub.add_parser("bench", help="memory and speed of each policy, side by side")
    _model_arguments(b)
    b.add_argument("--batch", type=_batch, default=8)
    b.add_argument("--image-size", type=_positive, default=None, help="default 224 (32 for CIFAR)")
    b.add_argument("--classes", type=_positive, default=None, help="default 1000 (10 for CIFAR)")
    b.add_argument("--in-channels", type=_positive, default=3)
    b.add_argument("--iterations", type=_positive, default=5)
    b.add_argument("--policies", default="none,liveness,liveness+recompute", help="comma-separated")
    b.add_argument("--seed", type=_seed, default=0)
    b.add_argument(
        "--profile",
        action="store_true",
        help="time every kernel and print where each policy's step goes, by layer kind",
    )
    _output_arguments(b, "one JSON object")
    b.set_defaults(run=_bench)
    i = sub.add_parser("info", help="what this installation was built with")
    _output_arguments(i, "one JSON object")
    i.set_defaults(run=_info)
    c = sub.add_parser(
        "calibrate", help="measure this machine's rates for the planner's cost model"
    )
    c.add_argument("--repeats", type=_positive, default=5, help="median of this many runs")
    _output_arguments(c, "one JSON object")
    c.set_defaults(run=_calibrate)
    return p


# Input errors (exit 2): the user can fix the command line or the files it names.
# OSError subclasses about paths count as input; other OSErrors (a full disk) are runtime.
_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    ValueError,  # GraphError, CheckpointError, DatasetFormatError, bad settings
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
# Runtime failures (exit 1): the command was valid but could not complete.
_RUNTIME_ERRORS: tuple[type[BaseException], ...] = (
    MemoryError,  # OutOfMemoryError included
    FloatingPointError,
    OSError,
)


def _report_error(message: str, error: BaseException, status: int, as_json: bool) -> int:
    print(f"superneurons: error: {message}", file=sys.stderr)
    if as_json:
        out = {"event": "error", "error": message, "type": type(error).__name__}
        print(json.dumps({**out, "exit_status": status}), flush=True)
    return status


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings as one line, without the source line Python prints by default."""
    print(f"superneurons: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``superneurons`` command; returns the exit status (see the
    note at the top of this module)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    as_json, debug = "--json" in raw, "--debug" in raw
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            args = _parser().parse_args(raw)
            status: int = args.run(args)
        except BrokenPipeError:
            # The reader went away (`superneurons plan ... | head`): stop quietly. Point
            # stdout at /dev/null so the interpreter's final flush does not fail again.
            _silence_stdout()
            return 1
        except KeyboardInterrupt:
            print("superneurons: interrupted", file=sys.stderr)
            return 130
        except _INPUT_ERRORS as e:
            if debug:
                traceback.print_exc()
            return _report_error(str(e), e, 2, as_json)
        except _RUNTIME_ERRORS as e:
            if debug:
                traceback.print_exc()
            return _report_error(str(e), e, 1, as_json)
        except Exception as e:
            if debug:
                traceback.print_exc()
            message = f"internal error ({type(e).__name__}: {e}); please report it" + (
                "" if debug else ", with the traceback that --debug prints"
            )
            return _report_error(message, e, 1, as_json)
    return status


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is captured
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
