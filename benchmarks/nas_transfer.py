"""What AlphaX-style weight inheritance saves (``TrainObjective(inherit=True)``).

For each pair (a random nb201 parent trained for ``--parent-epochs`` epochs, a child
that differs from it on one edge), trains the child three ways and prints the
validation accuracies side by side: from scratch for 1 epoch, inheriting the
parent's shared layers for 1 epoch, and from scratch for ``--parent-epochs`` epochs,
with the training seconds of each. Medians over the pairs.

Usage::

    python benchmarks/nas_transfer.py --pairs 8 --dataset digits --channels 4
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

import nas
import nas.spaces as sp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--parent-epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    space = sp.nb201()
    rng = np.random.default_rng(args.seed)
    rows: list[tuple[float, float, float, float, float, float, int]] = []
    for parent in space.sample(args.pairs, seed=args.seed):
        child = space.mutate(parent, rng, rate=1.0 / space.n_params)
        with tempfile.TemporaryDirectory() as d:
            kw = {"channels": args.channels, "cells": 1, "max_epochs": args.parent_epochs}
            base = nas.TrainObjective(space, args.dataset, epochs=1, **kw)  # type: ignore[arg-type]
            inherit = base.with_(checkpoint_dir=d, inherit=True)
            inherit(parent, args.parent_epochs)  # the parent, kept as a checkpoint
            scratch1 = base(child, 1)
            inh1 = inherit(child, 1)
            scratch_n = base(child, args.parent_epochs)
        rows.append(
            (
                scratch1["accuracy"],
                inh1["accuracy"],
                scratch_n["accuracy"],
                scratch1["seconds"],
                inh1["seconds"],
                scratch_n["seconds"],
                inh1["inherited_params"] * 100 // max(inh1["params"], 1),
            )
        )
    a = np.array(rows, dtype=float)
    med = np.median(a, axis=0)
    n = args.parent_epochs
    print(
        f"{args.pairs} parent/child pairs on {args.dataset} (nb201, channels {args.channels}; "
        f"parents trained {n} epochs; cosine over {n} epochs); medians"
    )
    print(f"{'':<28}{'accuracy':>10}{'seconds':>10}")
    print(f"{'child, scratch, 1 epoch':<28}{med[0]:>10.4f}{med[3]:>10.2f}")
    print(f"{'child, inherited, 1 epoch':<28}{med[1]:>10.4f}{med[4]:>10.2f}")
    print(f"{f'child, scratch, {n} epochs':<28}{med[2]:>10.4f}{med[5]:>10.2f}")
    print(f"parameters inherited: median {med[6]:.0f}% of the child's")
    wins = int((a[:, 1] >= a[:, 2]).sum())
    print(f"inherited 1 epoch >= scratch {n} epochs on {wins} of {args.pairs} pairs")


if __name__ == "__main__":
    main()
