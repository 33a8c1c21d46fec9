"""The architecture half of the ``nas`` CLI: training searches, tables, their reports.

``nas search --space nb201 --dataset digits ...`` trains every trial with superneurons
(``TrainObjective``); ``nas search --table table.json ...`` reads a table instead;
``nas bench build ...`` builds one. The journal header stores the objective as
``nas-arch:<json>`` so ``nas resume`` can rebuild it.

Note [Reproducibility]
With one worker, the same seed gives the same search: strategies are seeded, training
is seeded (weights, loader order, dropout) and bit-deterministic on the CPU, and the
trials finish in the order they were suggested. With several workers, trials finish in
an order set by their run times, so the strategy observes them in a different order and
its later suggestions differ; every single training stays deterministic (the same
config at the same fidelity gives the same accuracy). The journal records the order
observed, so ``nas resume`` replays it exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nas._optimize import optimize
from nas._pareto import pareto_front
from nas._space import Space
from nas._table import TableObjective, build_table
from nas._train import DATASETS, TrainObjective
from nas._trial import OK, Result, Trial

__all__ = [
    "add_bench_parser",
    "add_train_arguments",
    "arch_objective_from_spec",
    "arch_search",
    "bench_build",
    "print_pareto",
    "resume_objective",
]

SPEC_PREFIX = "nas-arch:"


_DEVICE_HELP = "where trainings run: cpu, cuda, cuda:N or auto (a GPU where one is usable)"


def add_train_arguments(s: argparse.ArgumentParser) -> None:
    """Options of ``nas search`` that make the objective a training (or a table)."""
    g = s.add_argument_group("architecture search (the objective trains with superneurons)")
    g.add_argument("--dataset", default=None, help=f"train on a dataset: {', '.join(DATASETS)}")
    g.add_argument("--table", default=None, help="read accuracies from a `nas bench build` table")
    g.add_argument("--epochs", type=int, default=1, help="epochs (the largest fidelity)")
    g.add_argument("--batch-size", type=int, default=64, help="training batch size")
    g.add_argument("--memory-budget", default=None, help="device memory budget, e.g. 256MB")
    g.add_argument("--policy", default="liveness", help="superneurons memory policy")
    g.add_argument("--device", default="cpu", help=_DEVICE_HELP)
    g.add_argument(
        "--fidelity",
        choices=["asha", "asha-stop", "hyperband"],
        default=None,
        help="schedule epochs as the fidelity (--strategy then picks configs); asha-stop: "
        "every architecture starts at --epochs and is stopped at a rung where it falls behind",
    )
    g.add_argument("--channels", type=int, default=16, help="channels of the first stage")
    g.add_argument("--cells", type=int, default=1, help="cells per stage")
    g.add_argument("--lr", type=float, default=0.05, help="learning rate")
    g.add_argument("--max-params", type=int, default=None, help="parameter-count constraint")
    g.add_argument(
        "--report-dir", default=None, help="write best-architecture, curve and Pareto images here"
    )


def _objective_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.table:
        return {"table": args.table}
    ckpt = None
    if args.fidelity:
        ckpt = (
            str(Path(args.journal).with_suffix(".ckpt"))
            if args.journal
            else tempfile.mkdtemp(prefix="nas-ckpt-")
        )
    return {
        "space": args.space or "nb201",
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "memory_budget": args.memory_budget,
        "policy": args.policy,
        "device": args.device,
        "seed": args.seed,
        "channels": args.channels,
        "cells": args.cells,
        "lr": args.lr,
        "max_params": args.max_params,
        "checkpoint_dir": ckpt,
    }


def arch_objective_from_spec(spec: dict[str, Any]) -> tuple[Any, Space]:
    """Rebuild ``(objective, space)`` from the JSON of a ``nas-arch:`` spec."""
    from nas.spaces import get_space

    if "table" in spec:
        tab = TableObjective(spec["table"])
        return tab, tab.space
    kw = dict(spec)
    space = get_space(kw.pop("space"))
    return TrainObjective(space, **kw), space


def arch_search(args: argparse.Namespace, options: dict[str, Any]) -> tuple[Result, Space]:
    """Run ``nas search`` with a training (or table) objective."""
    spec = _objective_args(args)
    objective, space = arch_objective_from_spec(spec)
    if isinstance(objective, TrainObjective):
        objective.data()  # load once here: forked workers inherit it
    strategy: str = args.strategy
    if isinstance(objective, TableObjective) and not args.fidelity and args.budget > len(objective):
        raise ValueError(
            f"--budget {args.budget} is more than the {len(objective)} architectures in "
            f"{args.table}; every trial is a distinct architecture"
        )
    if args.fidelity:
        if isinstance(objective, TableObjective):
            lo, hi = objective.fidelities[0], objective.fidelities[-1]
        else:
            lo, hi = 1, args.epochs
        options = {
            "searcher": args.strategy,
            "searcher_options": options,
            "max_fidelity": hi,
            "eta": 3,
        }
        if args.fidelity != "hyperband":  # Hyperband's brackets set their own smallest one
            options["min_fidelity"] = lo
        if args.fidelity == "asha-stop":  # Note [Intermediate reports]
            options["mode"] = "stop"
        strategy = "asha" if args.fidelity == "asha-stop" else args.fidelity
    executor = args.executor or ("dask" if args.scheduler else "local")
    res = optimize(
        objective,
        space,
        strategy,
        budget=args.budget,
        seed=args.seed,
        maximize=True,
        workers=args.workers,
        executor=executor,
        strategy_options=options,
        journal=args.journal,
        scheduler=args.scheduler,
        timeout_s=args.timeout,
        retries=args.retries,
        progress=args.progress or sys.stderr.isatty(),
        objective_spec=SPEC_PREFIX + json.dumps(spec),
        time_budget_s=args.time_budget,
        resource_budget=args.resource_budget,
        ordered=args.ordered,
        warm_start=args.warm_start,
    )
    return res, space


def _best_trial(history: list[Trial]) -> Trial | None:
    ok = [t for t in history if t.status == OK and t.value is not None]
    if not ok:
        return None
    top = max((t.reached_fidelity for t in ok if t.reached_fidelity is not None), default=None)
    if top is not None:  # a pruned trial's value is at the fidelity where it stopped
        ok = [t for t in ok if t.reached_fidelity == top]
    return max(ok, key=lambda t: float(t.value))  # type: ignore[arg-type]


def print_pareto(history: list[Trial]) -> list[Trial]:
    """Print the Pareto front of accuracy (up) vs params and peak_bytes (down).

    Only trials at the highest fidelity reached take part.
    """
    ok = [
        t
        for t in history
        if t.status == OK and t.metrics and all(k in t.metrics for k in ("params", "peak_bytes"))
    ]
    top = max((t.reached_fidelity for t in ok if t.reached_fidelity is not None), default=None)
    if top is not None:  # accuracies at different fidelities do not compare
        ok = [t for t in ok if t.reached_fidelity == top]
    if not ok:
        return []
    pts = np.array(
        [[float(t.value), t.metrics["params"], t.metrics["peak_bytes"]] for t in ok]  # type: ignore[arg-type,index]
    )
    front = [ok[i] for i in pareto_front(pts, [True, False, False])]
    front.sort(key=lambda t: -float(t.value))  # type: ignore[arg-type]
    print("\nPareto front (accuracy up; params, peak memory down)")
    print(f"{'trial':>6} {'accuracy':>9} {'params':>9} {'peak':>11} {'epochs':>6}  config")
    for t in front:
        m = t.metrics or {}
        peak = f"{m['peak_bytes'] / 2**20:.2f}MiB"
        cfg = json.dumps(t.config)[:70]
        epochs = m.get("epochs", "-")
        print(f"{t.id:>6} {t.value:>9.4f} {m['params']:>9} {peak:>11} {epochs:>6}  {cfg}")
    return front


def print_arch_report(res: Result, space: Space, report_dir: str | None) -> None:
    """The final report of a training search: best architecture, curve, Pareto front."""
    best = _best_trial(res.history)
    if best is None:
        print("no architecture trained successfully")
        return
    m = best.metrics or {}
    print(
        f"best arch    trial {best.id}: validation accuracy {best.value:.4f}, "
        f"test accuracy {m.get('test_accuracy', float('nan')):.4f}, {m.get('params')} params, "
        f"peak {m.get('peak_bytes', 0) / 2**20:.2f} MiB, {m.get('epochs')} epochs"
    )
    front = print_pareto(res.history)
    if report_dir is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas._draw import draw_architecture

    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    draw_architecture(space, best.config, out / "best_arch.png", f"accuracy {best.value:.4f}")
    curve = res.best_so_far()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(range(1, len(curve) + 1), curve)
    ax.set_xlabel("finished trials")
    ax.set_ylabel("best validation accuracy")
    fig.tight_layout()
    fig.savefig(out / "curve.png")
    plt.close(fig)
    ok = [t for t in res.history if t.status == OK and t.metrics]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for group, size, colour in ((ok, 10, "#99a"), (front, 18, "#c33")):
        xs = [float((t.metrics or {})["params"]) for t in group]
        ax.scatter(xs, [float(t.value or 0.0) for t in group], s=size, c=colour)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation accuracy")
    fig.tight_layout()
    fig.savefig(out / "pareto.png")
    plt.close(fig)
    print(f"\nreport images written to {out}/ (best_arch.png, curve.png, pareto.png)")


def add_bench_parser(sub: Any) -> None:
    """``nas bench build``: a tabular benchmark trained with superneurons."""
    b = sub.add_parser("bench", help="tabular benchmarks trained with superneurons")
    bsub = b.add_subparsers(dest="bench_command", required=True, help="bench command")
    build = bsub.add_parser("build", help="train architectures at each fidelity into a table")
    build.add_argument("--space", default="nb201", help="nb101, nb201 or chain")
    build.add_argument("--dataset", default="digits", help=", ".join(DATASETS))
    build.add_argument("--epochs", default="1,3,9", help="fidelities, comma-separated")
    build.add_argument("--sample", type=int, default=None, help="architectures (default: all)")
    build.add_argument("--out", required=True, help="table file to write")
    build.add_argument("--channels", type=int, default=16, help="channels of the first stage")
    build.add_argument("--cells", type=int, default=1, help="cells per stage")
    build.add_argument("--batch-size", type=int, default=64, help="training batch size")
    build.add_argument("--memory-budget", default=None, help="device memory budget, e.g. 256MB")
    build.add_argument("--policy", default="liveness", help="superneurons memory policy")
    build.add_argument("--device", default="cpu", help=_DEVICE_HELP)
    build.add_argument("--lr", type=float, default=0.05, help="learning rate")
    build.add_argument("--seed", type=int, default=0, help="seed of the training and of the sample")
    build.add_argument("--workers", type=int, default=1, help="trainings run at once")
    build.add_argument(
        "--executor",
        choices=["local", "inline", "dask"],
        default=None,
        help="where trainings run (default: local, or dask with --scheduler)",
    )
    build.add_argument("--scheduler", default=None, help="Dask scheduler address")
    build.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def bench_build(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``nas bench build``."""
    from nas.spaces import get_space

    try:
        epochs = [int(e) for e in args.epochs.split(",") if e.strip()]
    except ValueError:
        raise ValueError(f"--epochs expects comma-separated ints, got {args.epochs!r}") from None
    obj = TrainObjective(
        get_space(args.space),
        args.dataset,
        epochs=max(epochs) if epochs else 1,
        batch_size=args.batch_size,
        memory_budget=args.memory_budget,
        policy=args.policy,
        seed=args.seed,
        channels=args.channels,
        cells=args.cells,
        lr=args.lr,
        device=args.device,
    )
    executor = args.executor or ("dask" if args.scheduler else "local")
    table = build_table(
        obj,
        epochs,
        args.out,
        sample=args.sample,
        seed=args.seed,
        workers=args.workers,
        executor=executor,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    top = str(table["settings"]["epochs"][-1])
    accs = [e["results"].get(top, {}).get("accuracy") for e in table["entries"]]
    accs = [a for a in accs if a is not None]
    size = Path(args.out).stat().st_size
    print(f"table        {args.out} ({size} bytes)")
    print(f"entries      {len(table['entries'])} at epochs {table['settings']['epochs']}")
    if accs:
        print(
            f"accuracy     min {min(accs):.4f}  median {np.median(accs):.4f}  max {max(accs):.4f}"
        )
    return table


def resume_objective(journal: str) -> tuple[Any, Space | None]:
    """``(objective, space)`` for ``nas resume`` of a training search, else ``(None, None)``."""
    from nas._journal import read_journal

    spec = read_journal(journal)[0].get("objective") or ""
    if not spec.startswith(SPEC_PREFIX):
        return None, None
    return arch_objective_from_spec(json.loads(spec[len(SPEC_PREFIX) :]))
