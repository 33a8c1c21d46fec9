"""Benchmark the nas strategies on synthetic functions (Ackley, Levy, Rosenbrock).

Every run is a sequential ask/tell loop (batch 1) up to the largest budget; the
best value after ``b`` evaluations is read off the same run for every budget
``b``. Prints a table of the median best value with its quartiles per
function / dimension / budget / strategy, the suggestion overhead per strategy,
and writes regret curves (median and interquartile band) as PNG files.

    python benchmarks/nas_synthetic.py --quick            # minutes on 2 cores
    python benchmarks/nas_synthetic.py --full --jobs 16   # the issue's grid
    python benchmarks/nas_synthetic.py --functions ackley --dims 20 --budgets 100,300 \\
        --seeds 5 --strategies lamcts-turbo,turbo,random --out /tmp/bench

CMA-ES (package ``cma``) and Optuna's TPE and CMA-ES samplers (``optuna``, the
``bench`` extra) join the comparison when they are installed: columns ``cmaes``,
``optuna-tpe`` and ``optuna-cmaes``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nas

FULL = {
    "functions": ["ackley", "levy", "rosenbrock"],
    "dims": [20, 100],
    "budgets": [100, 500, 1000],
    "seeds": 10,
}
QUICK = {
    "functions": ["ackley", "levy", "rosenbrock"],
    "dims": [20],
    "budgets": [100, 300],
    "seeds": 3,
}
STRATEGIES = [
    "lamcts-turbo",
    "lamcts-cmaes",
    "lamcts-bo",
    "turbo",
    "bo",
    "random",
    "evolution",
    "cmaes",
    "optuna-tpe",
    "optuna-cmaes",
]
EXTERNAL = {"cmaes": "cma", "optuna-tpe": "optuna", "optuna-cmaes": "optuna"}


def have(module: str) -> bool:
    """Whether an optional baseline's package is installed."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_optuna(
    space: nas.Space, objective: Any, budget: int, seed: int, sampler: str, maximize: bool
) -> tuple[list[float], float]:
    """Optuna 4/5 with its TPE or CMA-ES sampler (defaults, seeded); returns values, overhead.

    Reals, ints and categoricals map to ``suggest_float`` / ``suggest_int`` /
    ``suggest_categorical``; the overhead is Optuna's own time (objective excluded).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make = optuna.samplers.TPESampler if sampler == "tpe" else optuna.samplers.CmaEsSampler
    study = optuna.create_study(
        sampler=make(seed=seed), direction="maximize" if maximize else "minimize"
    )
    values: list[float] = []
    objective_s = 0.0

    def trial_fn(trial: Any) -> float:
        nonlocal objective_s
        cfg: dict[str, Any] = {}
        for name, p in zip(space.names, space.params, strict=True):
            if isinstance(p, nas.Real):
                cfg[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
            elif isinstance(p, nas.Int):
                cfg[name] = trial.suggest_int(name, p.low, p.high)
            else:
                assert isinstance(p, nas.Categorical)
                cfg[name] = trial.suggest_categorical(name, list(p.choices))
        t0 = time.perf_counter()
        v = float(objective(cfg))
        objective_s += time.perf_counter() - t0
        values.append(v)
        return v

    t0 = time.perf_counter()
    study.optimize(trial_fn, n_trials=budget)
    return values, time.perf_counter() - t0 - objective_s


def run_strategy(
    space: nas.Space,
    objective: Any,
    budget: int,
    seed: int,
    strategy: str,
    options: dict[str, Any],
    maximize: bool,
) -> tuple[list[float], float]:
    """A sequential ask/tell loop of a nas strategy or an Optuna sampler."""
    if strategy.startswith("optuna-"):
        return run_optuna(space, objective, budget, seed, strategy[len("optuna-") :], maximize)
    s = nas.make_strategy(strategy, space, seed=seed, maximize=maximize, **options)
    values: list[float] = []
    overhead = 0.0
    for _ in range(budget):
        t0 = time.perf_counter()
        [cfg] = s.suggest(1)
        overhead += time.perf_counter() - t0
        v = objective(cfg)
        values.append(v)
        t0 = time.perf_counter()
        s.observe([(cfg, v)])
        overhead += time.perf_counter() - t0
    return values, overhead


def run_cmaes(f: nas.Synthetic, budget: int, seed: int) -> tuple[list[float], float]:
    """CMA-ES on the unit cube (sigma0 = 0.3 of the range), same evaluation count."""
    import cma

    rng = np.random.default_rng(seed)
    es = cma.CMAEvolutionStrategy(
        rng.random(f.dim), 0.3, {"bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9}
    )
    values: list[float] = []
    overhead = 0.0
    while len(values) < budget:
        t0 = time.perf_counter()
        xs = es.ask()
        overhead += time.perf_counter() - t0
        ys = [f.evaluate(f.low + np.asarray(x) * (f.high - f.low)) for x in xs]
        values += ys
        t0 = time.perf_counter()
        es.tell(xs, ys)
        overhead += time.perf_counter() - t0
    return values[:budget], overhead


def parse_variant(text: str) -> tuple[str, str, dict[str, Any]]:
    """``LABEL=NAME:key=value,key=value`` -> (label, strategy name, options)."""
    label, sep, rest = text.partition("=")
    if not sep:
        raise ValueError(f"--variant expects LABEL=NAME[:key=value,...], got {text!r}")
    name, _, opts = rest.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, _, raw = item.partition("=")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return label, name, options


class Shifted:
    """A synthetic function whose optimum is moved off the domain's centre.

    ``f(x - s)`` with ``s`` drawn once (seed 123) uniformly in ``+-fraction`` of the range
    per coordinate, so the optimum ``x* + s`` stays inside the domain for ``fraction``
    up to 0.3 on every function here. It checks that a result does not come from the
    centre of the box being a good point (see docs/nas.md, "Why CMA-ES is hard to beat").

    >>> f = Shifted(nas.synthetic("levy", 3), 0.3)
    >>> x_star = 1.0 + f.shift  # Levy's optimum is at x = 1
    >>> abs(f.evaluate(x_star)) < 1e-12, bool(np.all(np.abs(f.shift) <= 6.0))
    (True, True)
    """

    def __init__(self, f: nas.Synthetic, fraction: float) -> None:
        self.f, self.dim, self.low, self.high = f, f.dim, f.low, f.high
        width = fraction * (f.high - f.low)
        self.shift = np.random.default_rng(123).uniform(-width, width, f.dim)
        self.space = f.space

    def evaluate(self, x: np.ndarray) -> float:
        return self.f.evaluate(np.asarray(x, dtype=float) - self.shift)

    def __call__(self, config: dict[str, Any]) -> float:
        return self.evaluate(np.array([float(config[f"x{i}"]) for i in range(self.dim)]))


def run_one(task: tuple[str, int, str, int, int, str, dict[str, Any], float]) -> dict[str, Any]:
    """One (function, dim, strategy, seed) run to ``budget`` evaluations."""
    fname, dim, label, seed, budget, strategy, options, shift = task
    f: Any = nas.synthetic(fname, dim)
    if shift:
        f = Shifted(f, shift)
    t_start = time.perf_counter()
    if strategy == "cmaes":
        values, overhead = run_cmaes(f, budget, seed)
    else:
        values, overhead = run_strategy(f.space, f, budget, seed, strategy, options, False)
    return {
        "function": fname,
        "dim": dim,
        "strategy": label,
        "seed": seed,
        "best_so_far": np.minimum.accumulate(values).tolist(),
        "overhead_s_per_suggestion": overhead / budget,
        "wall_s": time.perf_counter() - t_start,
    }


def quartiles(x: Sequence[float]) -> tuple[float, float, float]:
    q = np.percentile(np.asarray(x), [25, 50, 75])
    return float(q[1]), float(q[0]), float(q[2])


def table(runs: list[dict[str, Any]], budgets: list[int], strategies: list[str]) -> str:
    """Markdown: one row per function/dim/budget, one column per strategy."""
    head = "| function | dim | evals | " + " | ".join(strategies) + " |"
    lines = [head, "|" + "---|" * (3 + len(strategies))]
    keys = sorted({(r["function"], r["dim"]) for r in runs})
    for fname, dim in keys:
        for b in budgets:
            cells, medians = [], []
            for s in strategies:
                vals = [
                    r["best_so_far"][b - 1]
                    for r in runs
                    if (r["function"], r["dim"], r["strategy"]) == (fname, dim, s)
                    and len(r["best_so_far"]) >= b
                ]
                if not vals:
                    cells.append("-")
                    medians.append(math.inf)
                    continue
                med, lo, hi = quartiles(vals)
                medians.append(med)
                cells.append(f"{med:.3g} [{lo:.3g}, {hi:.3g}]")
            best = int(np.argmin(medians))
            cells[best] = f"**{cells[best]}**"
            lines.append(f"| {fname} | {dim} | {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overhead_table(runs: list[dict[str, Any]], strategies: list[str]) -> str:
    lines = ["| strategy | dim | median overhead per suggestion (ms) |", "|---|---|---|"]
    for s in strategies:
        for dim in sorted({r["dim"] for r in runs}):
            xs = [
                r["overhead_s_per_suggestion"]
                for r in runs
                if r["strategy"] == s and r["dim"] == dim
            ]
            if xs:
                lines.append(f"| {s} | {dim} | {1000 * float(np.median(xs)):.1f} |")
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], strategies: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for fname, dim in sorted({(r["function"], r["dim"]) for r in runs}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for s in strategies:
            curves = [
                r["best_so_far"]
                for r in runs
                if (r["function"], r["dim"], r["strategy"]) == (fname, dim, s)
            ]
            if not curves:
                continue
            arr = np.asarray(curves)  # regret = value - optimum, and every optimum is 0
            q25, med, q75 = np.percentile(arr, [25, 50, 75], axis=0)
            x = np.arange(1, arr.shape[1] + 1)
            ax.plot(x, med, label=s)
            ax.fill_between(x, q25, q75, alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret (best value - optimum)")
        ax.set_title(f"{fname}-{dim}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"regret_{fname}_{dim}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def report(paths: list[str], budgets: str | None, strategies: str, out: Path) -> int:
    """Tables and plots of saved runs (several files merge; later runs add columns)."""
    runs: list[dict[str, Any]] = []
    for path in paths:
        runs += json.loads(Path(path).read_text())["runs"]
    present = list(dict.fromkeys(r["strategy"] for r in runs))
    order = [s for s in strategies.split(",") if s in present]
    order += [s for s in present if s not in order]
    longest = max(len(r["best_so_far"]) for r in runs)
    marks = sorted(int(b) for b in budgets.split(",")) if budgets else [longest]
    out.mkdir(parents=True, exist_ok=True)
    print("median best value [25%, 75%] over seeds (lower is better; optimum 0)\n")
    print(table(runs, marks, order))
    print("\nsuggestion overhead (strategy time only, objective excluded)\n")
    print(overhead_table(runs, order))
    for path in plot(runs, order, out):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--quick", action="store_true", help="20-d, budgets 100/300, 3 seeds")
    grid.add_argument(
        "--full", action="store_true", help="the issue's grid (20/100-d, 100/500/1000, 10 seeds)"
    )
    p.add_argument("--functions", default=None, help="comma-separated, e.g. ackley,levy")
    p.add_argument("--dims", default=None, help="comma-separated, e.g. 20,100")
    p.add_argument("--budgets", default=None, help="comma-separated, e.g. 100,500")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=NAME:k=v,...",
        help="an extra column: a strategy with options, e.g. lamcts-cp1=lamcts:cp=1.0",
    )
    p.add_argument(
        "--shift",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="move each optimum off the centre by a fixed offset, uniform in +-FRACTION of the "
        "range per coordinate (at most 0.3; 0: the usual functions)",
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs")
    p.add_argument("--out", default="benchmark-nas", help="directory for results.json and plots")
    p.add_argument(
        "--report",
        nargs="+",
        metavar="RESULTS_JSON",
        help="no runs: print the tables and plots of saved results.json files (merged)",
    )
    args = p.parse_args(argv)
    if args.report:
        return report(args.report, args.budgets, args.strategies, Path(args.out))

    cfg = dict(FULL if args.full else QUICK)
    if args.functions:
        cfg["functions"] = args.functions.split(",")
    if args.dims:
        cfg["dims"] = [int(d) for d in args.dims.split(",")]
    if args.budgets:
        cfg["budgets"] = sorted(int(b) for b in args.budgets.split(","))
    if args.seeds:
        cfg["seeds"] = args.seeds
    if not 0.0 <= args.shift <= 0.3:
        p.error(f"--shift must be in [0, 0.3], got {args.shift}")
    cfg["shift"] = args.shift
    wanted = args.strategies.split(",")
    strategies = [s for s in wanted if s not in EXTERNAL or have(EXTERNAL[s])]
    for s in sorted(set(wanted) - set(strategies)):
        print(f"skipping {s}: package {EXTERNAL[s]!r} is not installed", file=sys.stderr)
    columns: list[tuple[str, str, dict[str, Any]]] = [(s, s, {}) for s in strategies]
    columns += [parse_variant(v) for v in args.variant]
    known = set(EXTERNAL) | set(nas.STRATEGIES)
    unknown = [name for _, name, _ in columns if name not in known]
    if unknown:
        p.error(f"unknown strategies {unknown}")
    strategies = [label for label, _, _ in columns]
    budget = max(cfg["budgets"])
    tasks = [
        (fn, d, label, seed, budget, name, opts, args.shift)
        for fn in cfg["functions"]
        for d in cfg["dims"]
        for label, name, opts in columns
        for seed in range(cfg["seeds"])
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.shift:
        print(f"optima moved off the centre: --shift {args.shift} (seed 123)")
    print(f"{len(tasks)} runs of {budget} evaluations on {args.jobs} processes ...", flush=True)
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for fut in as_completed([pool.submit(run_one, t) for t in tasks]):
            runs.append(fut.result())
            # saved as we go, so an interrupted grid still leaves its finished runs
            (out / "results.json").write_text(json.dumps({"config": cfg, "runs": runs}))
    print(f"done in {time.perf_counter() - t0:.0f} s\n")
    print("median best value [25%, 75%] over seeds (lower is better; optimum 0)\n")
    print(table(runs, cfg["budgets"], strategies))
    print("\nsuggestion overhead (strategy time only, objective excluded)\n")
    print(overhead_table(runs, strategies))
    for path in plot(runs, strategies, out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
