"""Drawing an architecture of ``nas.spaces`` as a graph image (matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from nas._space import Space, strip_meta

__all__ = ["architecture_edges", "draw_architecture"]


def architecture_edges(
    space: Space, config: Mapping[str, Any]
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Node labels and labelled edges ``(i, j, label)`` of a cell or chain.

    >>> import nas.spaces as sp
    >>> cfg = {"e1_0": "conv3x3", "e2_0": "none", "e2_1": "skip_connect",
    ...        "e3_0": "none", "e3_1": "none", "e3_2": "avgpool3x3"}
    >>> architecture_edges(sp.nb201(), cfg)[1]
    [(0, 1, 'conv3x3'), (1, 2, 'skip_connect'), (2, 3, 'avgpool3x3')]
    """
    from nas.spaces import ChainSpace, NB101Space, NB201Space

    cfg = strip_meta(config)
    if isinstance(space, NB101Space):
        nodes, edges = space.pruned(cfg)
        index = {v: k for k, v in enumerate(nodes)}
        last = space.n_nodes - 1
        labels = ["in" if v == 0 else "out" if v == last else str(cfg[f"op{v}"]) for v in nodes]
        return labels, [(index[i], index[j], "") for i, j in edges]
    if isinstance(space, NB201Space):
        out = [
            (i, j, str(cfg[f"e{j}_{i}"]))
            for j in range(1, 4)
            for i in range(j)
            if cfg[f"e{j}_{i}"] != "none"
        ]
        return ["n0", "n1", "n2", "n3"], out
    if isinstance(space, ChainSpace):
        depth = int(cfg["depth"])
        labels = ["in"] + [f"{cfg[f'op{i}']}\n{cfg[f'width{i}']}" for i in range(1, depth + 1)]
        return [*labels, "out"], [(i, i + 1, "") for i in range(depth + 1)]
    raise ValueError(f"cannot draw a {type(space).__name__}; use a space from nas.spaces")


def draw_architecture(
    space: Space, config: Mapping[str, Any], path: str | os.PathLike[str], title: str = ""
) -> None:
    """Write the cell (or chain) of ``config`` as an image: nodes left to right, arcs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    labels, edges = architecture_edges(space, config)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * n), 3.2))
    for k, text in enumerate(labels):
        ax.text(
            k,
            0,
            text,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": "#dde8f5", "ec": "#335"},
            zorder=3,
        )
    for i, j, text in edges:
        bend = 0.0 if j == i + 1 else 0.25 + 0.08 * (j - i)
        arrow = FancyArrowPatch(
            (i, 0),
            (j, 0),
            connectionstyle=f"arc3,rad={-bend}",
            arrowstyle="-|>",
            mutation_scale=12,
            shrinkA=18,
            shrinkB=18,
            color="#444",
        )
        ax.add_patch(arrow)
        if text:
            ax.text((i + j) / 2, 0.12 + 0.25 * bend * (j - i), text, ha="center", fontsize=7)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-0.4, 0.4 + 0.35 * max((j - i for i, j, _ in edges), default=1))
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
