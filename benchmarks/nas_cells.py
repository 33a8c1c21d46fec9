"""Strategies on a tabular benchmark trained with superneurons (``nas bench build``).

For each strategy and seed, runs the strategy's ask/tell loop against the table (one
suggestion at a time, as with one worker) and records when it first evaluates, at the
table's largest fidelity, an architecture of the top 1% and of the top 5% (by
validation accuracy at that fidelity). Costs are counted two ways: architectures
trained (distinct, at any fidelity) and training seconds (the table's measured
cumulative seconds; a promotion by ASHA is charged only the epochs it adds, since
``TrainObjective`` continues from the checkpoint). Medians over the seeds, side by side.

Usage::

    python benchmarks/nas_cells.py --table benchmarks/data/nb201_digits_c4.json --seeds 20

Build the table first, e.g.::

    nas bench build --space nb201 --dataset digits --epochs 1,3 --sample 120 \\
        --channels 4 --cells 1 --out benchmarks/data/nb201_digits_c4.json
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

import nas

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "evolution": ("evolution", {"population": 10}),
    "lamcts": ("lamcts", {"n_init": 10, "leaf_size": 8}),
    "lanas": ("lanas", {"n_init": 10}),
    "alphax": ("alphax", {}),
    "asha(random)": ("asha", {"searcher": "random", "eta": 3}),
}


def _run(
    tab: nas.TableObjective, name: str, seed: int, targets: dict[str, set[str]]
) -> dict[str, tuple[float, float]]:
    from nas._table import _key_hex

    kind, options = STRATEGIES[name]
    options = dict(options)
    lo, hi = tab.fidelities[0], tab.fidelities[-1]
    if kind == "asha":
        options.update(min_fidelity=lo, max_fidelity=hi)
    strat = nas.make_strategy(kind, tab.space, seed, True, **options)
    trained_to: dict[str, int] = {}  # arch key -> epochs trained so far
    seconds = 0.0
    found: dict[str, tuple[float, float]] = {}
    for _ in range(10 * len(tab)):
        try:
            [cfg] = strat.suggest(1)
        except ValueError:  # every tabulated architecture was suggested
            break
        fid = int(cfg.get("_fidelity", hi))
        key = _key_hex(tab.space, cfg)
        r = tab(cfg, fid)
        done = trained_to.get(key, 0)
        if fid > done:  # continue from the checkpoint: pay only the added epochs
            before = tab(cfg, done)["seconds"] if done else 0.0
            seconds += float(r["seconds"]) - float(before)
            trained_to[key] = fid
        strat.observe([(cfg, r["accuracy"])])
        if fid == hi:
            for t, members in targets.items():
                if t not in found and key in members:
                    found[t] = (float(len(trained_to)), seconds)
        if len(found) == len(targets):
            break
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", default="benchmarks/data/nb201_digits_c4.json")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    args = p.parse_args()
    tab = nas.TableObjective(args.table)
    acc = tab.values()
    keys = list(tab.entries)
    order = np.argsort(-np.nan_to_num(acc, nan=-1.0))
    targets = {
        f"top {q}%": {keys[i] for i in order[: max(1, math.ceil(len(keys) * q / 100))]}
        for q in (5, 1)
    }
    s = tab.table["settings"]
    total_s = sum(
        float(e["results"][str(tab.fidelities[-1])]["seconds"]) for e in tab.entries.values()
    )
    print(
        f"table {args.table}: {len(tab)} nb201 architectures"
        f"{' (all)' if tab.complete else ' (a sample)'}, dataset {s['dataset']}, "
        f"fidelities {tab.fidelities} epochs, channels {s['channels']}, cells {s['cells']}; "
        f"training them all to {tab.fidelities[-1]} epochs took {total_s:.0f} s"
    )
    print(
        f"validation accuracy at {tab.fidelities[-1]} epochs: median {np.nanmedian(acc):.4f}, "
        f"best {np.nanmax(acc):.4f}; top 5% = {len(targets['top 5%'])} archs, "
        f"top 1% = {len(targets['top 1%'])}"
    )
    if len(tab.fidelities) > 1:
        from scipy.stats import spearmanr

        lo, hi = tab.fidelities[0], tab.fidelities[-1]
        ok = ~np.isnan(tab.values(lo)) & ~np.isnan(acc)
        rho = spearmanr(tab.values(lo)[ok], acc[ok]).statistic
        print(f"rank correlation (Spearman) of accuracies at {lo} and {hi} epochs: {rho:.2f}")
    n = len(tab)
    ref = {t: (n + 1) / (len(m) + 1) for t, m in targets.items()}
    print(
        "random search without replacement expects "
        + ", ".join(f"{v:.1f} archs to the {t}" for t, v in ref.items())
    )
    print(f"medians over {args.seeds} seeds (archs trained / training seconds; misses)\n")
    header = f"{'strategy':<14}" + "".join(f"{t:>26}" for t in targets) + f"{'overhead s/seed':>17}"
    print(header)
    for name in args.strategies.split(","):
        runs = []
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            runs.append(_run(tab, name, seed, targets))
        overhead = (time.perf_counter() - t0) / args.seeds
        cells = []
        for t in targets:
            hits = [r[t] for r in runs if t in r]
            miss = args.seeds - len(hits)
            if len(hits) * 2 <= args.seeds:
                cells.append(f"{'-':>18} ({miss} miss)")
                continue
            # misses count as worse than any hit (the median is then an upper bound)
            archs = [h[0] for h in hits] + [math.inf] * miss
            secs = [h[1] for h in hits] + [math.inf] * miss
            cells.append(f"{np.median(archs):>7.1f} / {np.median(secs):>7.1f}s ({miss} miss)")
        print(f"{name:<14}" + "".join(f"{c:>26}" for c in cells) + f"{overhead:>17.2f}")


if __name__ == "__main__":
    main()
