"""The ``nas`` command line: ``search``, ``resume``, ``report``.

Examples::

    nas search --objective ackley --dim 20 --strategy lamcts --budget 500 \\
        --seed 0 --workers 2 --journal run.jsonl
    nas resume run.jsonl
    nas report run.jsonl --plot best.png
    nas search --space nb201 --dataset digits --strategy lamcts --budget 12 --epochs 1 \\
        --workers 1 --journal run.jsonl --memory-budget 256MB --fidelity asha
    nas bench build --space nb201 --dataset digits --epochs 1,3,9 --sample 40 --out table.json
    nas search --table table.json --strategy evolution --budget 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas import _arch_cli
from nas._errors import SearchFailedError
from nas._journal import read_journal
from nas._objectives import SYNTHETIC, Synthetic
from nas._optimize import load_objective, optimize, resume
from nas._registry import ALIASES, STRATEGIES
from nas._space import Space
from nas._trial import OK, Result, Trial, apply_result_event, summarize

__all__ = ["main"]


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--option expects key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nas", description="Neural architecture / black-box search agent."
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="start a search")
    s.add_argument(
        "--objective",
        default=None,
        help=f"a synthetic function ({', '.join(sorted(SYNTHETIC))}) or module:attribute "
        "(not needed with --dataset or --table)",
    )
    s.add_argument("--dim", type=int, default=None, help="dimension of a synthetic objective")
    s.add_argument(
        "--space",
        default=None,
        help="module:attribute of a nas.Space (non-synthetic objectives), "
        "or nb101 / nb201 / chain with --dataset",
    )
    s.add_argument(
        "--strategy",
        default="lamcts",
        choices=sorted(STRATEGIES) + sorted(ALIASES),
        help="search strategy (mcts: the former name of alphax)",
    )
    s.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="strategy option (value parsed as JSON), repeatable",
    )
    s.add_argument("--budget", type=int, default=100, help="number of trials (default 100)")
    s.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit: no new trial starts after it (running ones finish)",
    )
    s.add_argument(
        "--resource-budget",
        type=float,
        default=None,
        metavar="UNITS",
        help="hyperband/asha: total fidelity units (e.g. epochs) over all trials",
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the strategy (default 0)")
    s.add_argument("--workers", type=int, default=1, help="trials run at once (default 1)")
    s.add_argument(
        "--executor",
        choices=["local", "inline", "dask"],
        default=None,
        help="default: dask when --scheduler is given, else local",
    )
    s.add_argument(
        "--scheduler", default=None, help="Dask scheduler address (implies --executor dask)"
    )
    s.add_argument("--journal", default=None, help="append-only JSON-lines journal to write")
    s.add_argument("--timeout", type=float, default=None, help="per-trial timeout in seconds")
    s.add_argument(
        "--retries", type=int, default=1, help="extra attempts of a failed trial (default 1)"
    )
    direction = s.add_mutually_exclusive_group()
    direction.add_argument(
        "--maximize", action="store_true", default=None, help="larger values are better"
    )
    direction.add_argument(
        "--minimize",
        action="store_true",
        default=None,
        help="smaller values are better (the default for synthetic functions)",
    )
    s.add_argument("--progress", action="store_true", help="show a progress bar")
    s.add_argument(
        "--warm-start",
        default=None,
        metavar="JOURNAL",
        help="tell the strategy the successful results of another journal first",
    )
    s.add_argument(
        "--ordered",
        action="store_true",
        help="tell results in suggestion order: with --workers > 1, one seed, one search",
    )
    _arch_cli.add_train_arguments(s)

    r = sub.add_parser("resume", help="continue a journaled search")
    r.add_argument("journal", help="journal written by nas search")
    r.add_argument(
        "--budget", type=int, default=None, help="new total budget (default: the original)"
    )
    r.add_argument(
        "--workers", type=int, default=None, help="trials run at once (default: the original)"
    )
    r.add_argument(
        "--executor",
        choices=["local", "inline", "dask"],
        default=None,
        help="where trials run (default: the original)",
    )
    r.add_argument("--scheduler", default=None, help="Dask scheduler address")
    r.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit of this session",
    )
    r.add_argument("--progress", action="store_true", help="show a progress bar")

    rep = sub.add_parser("report", help="summarize a journal")
    rep.add_argument("journal", help="journal to summarize")
    rep.add_argument("--plot", default=None, help="write the best-so-far curve to this image file")
    rep.add_argument("--top", type=int, default=5, help="rows in the table of best trials")
    _arch_cli.add_bench_parser(sub)
    return p


def _check_journal(journal: str | None) -> None:
    """Fails before the search starts when ``--journal`` cannot be a new journal."""
    if journal is None:
        return
    path = Path(journal)
    if path.is_dir():
        raise ValueError(f"--journal {journal} is a directory; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"--journal {journal}: the directory {path.parent} does not exist")
    if path.exists() and path.stat().st_size > 0:
        raise ValueError(
            f"journal {journal} already exists; continue that search with `nas resume "
            f"{journal}`, or pass another --journal"
        )


def _search(args: argparse.Namespace) -> Result:
    _check_journal(args.journal)
    if args.dataset or args.table:
        res, space = _arch_cli.arch_search(args, dict(args.option))
        _print_result(res)
        _arch_cli.print_arch_report(res, space, args.report_dir)
        return res
    if args.objective is None:
        raise ValueError("search needs --objective, --dataset or --table")
    objective = load_objective(args.objective, args.dim)
    if args.space is not None:
        space = load_objective(args.space)
        if not isinstance(space, Space):
            raise ValueError(f"--space {args.space!r} is not a nas.Space")
    elif hasattr(objective, "space") and isinstance(objective.space, Space):
        space = objective.space
    else:
        raise ValueError("--space module:attribute is required for this objective")
    if args.maximize:
        maximize = True
    elif args.minimize:
        maximize = False
    else:
        maximize = not isinstance(objective, Synthetic)
    executor = args.executor or ("dask" if args.scheduler else "local")
    spec = args.objective
    return optimize(
        objective,
        space,
        args.strategy,
        budget=args.budget,
        seed=args.seed,
        maximize=maximize,
        workers=args.workers,
        executor=executor,
        strategy_options=dict(args.option),
        journal=args.journal,
        scheduler=args.scheduler,
        timeout_s=args.timeout,
        retries=args.retries,
        progress=args.progress,
        objective_spec=spec,
        time_budget_s=args.time_budget,
        resource_budget=args.resource_budget,
        ordered=args.ordered,
        warm_start=args.warm_start,
    )


def _print_result(res: Result) -> None:
    print(f"strategy     {res.strategy}")
    infeasible = f", {res.n_infeasible} infeasible" if res.n_infeasible else ""
    print(
        f"trials       {len(res.history)} "
        f"({res.n_finished} finished, {res.n_failed} failed{infeasible})"
    )
    print(f"best value   {res.best_value}")
    print(f"best config  {json.dumps(res.best_config)}")
    if res.journal:
        print(f"journal      {res.journal}")


def history_from_journal(path: str) -> tuple[list[Trial], dict[str, Any]]:
    """Trials reconstructed from a journal (last result per trial wins) and its header."""
    events = read_journal(path)
    trials: dict[int, Trial] = {}
    for ev in events[1:]:
        if ev.get("event") == "suggest":
            for e in ev["trials"]:
                cfg = {k: v for k, v in e["config"].items() if not k.startswith("_")}
                fid = e["config"].get("_fidelity")
                trials[e["id"]] = Trial(e["id"], cfg, fid, suggested_at=ev["time"])
        elif ev.get("event") == "result":
            apply_result_event(trials[ev["id"]], ev)  # read_journal checked the id
    return [trials[i] for i in sorted(trials)], events[0]


def _report(args: argparse.Namespace) -> None:
    history, head = history_from_journal(args.journal)
    maximize = bool(head["maximize"])
    best_config, best_value = summarize(history, maximize)
    res = Result(best_config, best_value, history, maximize, head["strategy"], args.journal)
    _print_result(res)
    done = [t for t in history if t.status == OK]
    done.sort(key=lambda t: float(t.value), reverse=maximize)  # type: ignore[arg-type]
    print(f"\n{'trial':>6} {'value':>14} {'fidelity':>9} {'time_s':>8}  config")
    for t in done[: args.top]:
        dur = f"{t.duration_s:.2f}" if t.duration_s is not None else "-"
        fid = "-" if t.fidelity is None else f"{t.fidelity:g}"
        print(f"{t.id:>6} {t.value:>14.6g} {fid:>9} {dur:>8}  {json.dumps(t.config)[:80]}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        curve = res.best_so_far()
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(range(1, len(curve) + 1), curve)
        ax.set_xlabel("finished trials")
        ax.set_ylabel("best value so far")
        ax.set_title(f"{head['strategy']} ({'max' if maximize else 'min'})")
        fig.tight_layout()
        fig.savefig(args.plot)
        plt.close(fig)
        print(f"\nplot written to {args.plot}")
    _arch_cli.print_pareto(history)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script; returns the exit status.

    >>> main(["report", "/nonexistent.jsonl"])
    2
    """
    args = _parser().parse_args(list(argv) if argv is not None else None)
    try:
        if args.command == "search":
            if args.dataset or args.table:
                _search(args)
            else:
                _print_result(_search(args))
        elif args.command == "bench":
            _arch_cli.bench_build(args)
        elif args.command == "resume":
            objective, space = _arch_cli.resume_objective(args.journal)
            _print_result(
                resume(
                    args.journal,
                    objective,
                    space,
                    budget=args.budget,
                    workers=args.workers,
                    executor=args.executor,
                    scheduler=args.scheduler,
                    progress=args.progress,
                    time_budget_s=args.time_budget,
                )
            )
        else:
            _report(args)
    except BrokenPipeError:
        # `nas report ... | head` closed the pipe: stop quietly, and point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is captured
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 2
    except SearchFailedError as err:
        _print_result(err.result)
        print(f"nas: error: {err}", file=sys.stderr)
        return 1
    return 0
