"""Benchmark the nas strategies on a purely categorical space: a 9^5 lookup table.

The table stands in for a tabular NAS benchmark (every configuration has a stored
value, the search only looks values up): 5 positions (edges of a cell), 9 ops
each, so 59,049 configurations. Its values have structure, as architectures do:
a score per (position, op), a score per pair of ops on neighbouring positions,
and one long-range pair (first, last), all drawn once from a fixed seed. The
optimum is found by enumeration, so the table prints *regret* (optimum minus the
best value found; 0 is perfect, lower is better).

Every run is a sequential ask/tell loop (batch 1). Prints the median regret
[25%, 75%] over seeds at each budget, side by side, and the overhead per
suggestion (strategy time, objective excluded).

    python benchmarks/nas_categorical.py                          # 150 evals, 10 seeds
    python benchmarks/nas_categorical.py --seeds 5 --budgets 50,150 \\
        --strategies lamcts,random,evolution,optuna-tpe
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nas_synthetic import EXTERNAL, have, quartiles, run_strategy

import nas

POSITIONS, OPS = 5, 9
STRATEGIES = ["lamcts", "lamcts-cmaes", "alphax", "evolution", "random", "optuna-tpe"]


class Table:
    """The structured lookup table (to maximize); ``Table()(config)`` is one look-up."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.unary = rng.normal(size=(POSITIONS, OPS))
        self.pair = 0.7 * rng.normal(size=(POSITIONS - 1, OPS, OPS))
        self.loop = 0.7 * rng.normal(size=(OPS, OPS))  # first and last position
        self.space = nas.Space(
            {f"e{i}": nas.Categorical([f"op{j}" for j in range(OPS)]) for i in range(POSITIONS)}
        )
        grid = np.array(list(itertools.product(range(OPS), repeat=POSITIONS)))
        self.values = self._value(grid)
        self.optimum = float(self.values.max())

    def _value(self, idx: np.ndarray) -> np.ndarray:
        v = self.unary[np.arange(POSITIONS), idx].sum(axis=1)
        for i in range(POSITIONS - 1):
            v += self.pair[i, idx[:, i], idx[:, i + 1]]
        out: np.ndarray = v + self.loop[idx[:, 0], idx[:, -1]]
        return out

    def __call__(self, config: dict[str, Any]) -> float:
        idx = np.array([[int(str(config[f"e{i}"])[2:]) for i in range(POSITIONS)]])
        return float(self._value(idx)[0])


def run_one(task: tuple[str, int, int]) -> dict[str, Any]:
    strategy, seed, budget = task
    table = Table()
    t0 = time.perf_counter()
    values, overhead = run_strategy(table.space, table, budget, seed, strategy, {}, True)
    return {
        "strategy": strategy,
        "seed": seed,
        "regret": (table.optimum - np.maximum.accumulate(values)).tolist(),
        "overhead_ms": 1000 * overhead / budget,
        "wall_s": time.perf_counter() - t0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--budgets", default="50,100,150", help="comma-separated, e.g. 50,150")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--jobs", type=int, default=2, help="parallel runs")
    args = p.parse_args(argv)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    wanted = args.strategies.split(",")
    strategies = [s for s in wanted if s not in EXTERNAL or have(EXTERNAL[s])]
    for s in sorted(set(wanted) - set(strategies)):
        print(f"skipping {s}: package {EXTERNAL[s]!r} is not installed", file=sys.stderr)
    unknown = [s for s in strategies if s not in EXTERNAL and s not in nas.STRATEGIES]
    if unknown:
        p.error(f"unknown strategies {unknown}")
    tasks = [(s, seed, budgets[-1]) for s in strategies for seed in range(args.seeds)]
    table = Table()
    print(
        f"{POSITIONS} positions x {OPS} ops = {len(table.values)} configurations, "
        f"optimum {table.optimum:.3f}, median {float(np.median(table.values)):.3f}; "
        f"{len(tasks)} runs on {args.jobs} processes ...",
        flush=True,
    )
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_one, tasks))
    print("\nmedian regret [25%, 75%] over seeds (optimum - best found; lower is better)\n")
    print("| evals | " + " | ".join(strategies) + " |")
    print("|" + "---|" * (1 + len(strategies)))
    for b in budgets:
        cells, meds = [], []
        for s in strategies:
            med, lo, hi = quartiles([r["regret"][b - 1] for r in runs if r["strategy"] == s])
            cells.append(f"{med:.3g} [{lo:.3g}, {hi:.3g}]")
            meds.append(med)
        best = int(np.argmin(meds))
        cells[best] = f"**{cells[best]}**"
        print(f"| {b} | " + " | ".join(cells) + " |")
    print("\n| strategy | median overhead per suggestion (ms) | runs that found the optimum |")
    print("|---|---|---|")
    for s in strategies:
        mine = [r for r in runs if r["strategy"] == s]
        hits = sum(r["regret"][-1] <= 1e-9 for r in mine)
        ms = float(np.median([r["overhead_ms"] for r in mine]))
        print(f"| {s} | {ms:.1f} | {hits}/{len(mine)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
