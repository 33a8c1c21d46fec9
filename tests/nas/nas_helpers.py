"""Shared spaces, objectives and small strategy settings for the nas tests."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

import nas

# Small settings so every strategy leaves its initial phase within a few dozen trials.
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population": 6},
    "bo": {"n_init": 5, "n_candidates": 200},
    "turbo": {"n_init": 5, "n_candidates": 200},
    "lamcts": {"n_init": 8, "leaf_size": 5, "n_candidates": 200},
    "lamcts-turbo": {"n_init": 8, "leaf_size": 5, "n_candidates": 200},
    "lamcts-bo": {"n_init": 8, "leaf_size": 5, "n_candidates": 200},
    "lamcts-cmaes": {"n_init": 8, "leaf_size": 5, "round_evals": 6},
    "lanas": {"n_init": 8, "height": 3},
    "alphax": {"n_simulations": 4},
    "hyperband": {"max_fidelity": 9, "eta": 3},
    "asha": {"max_fidelity": 9, "eta": 3},
}


def mixed_space() -> nas.Space:
    """Reals (one log-scaled), an int, a categorical and a conditional real."""
    return nas.Space(
        {
            "x": nas.Real(-2.0, 2.0),
            "lr": nas.Real(1e-4, 1e-1, log=True),
            "depth": nas.Int(1, 6),
            "op": nas.Categorical(["conv3x3", "conv1x1", "maxpool"]),
            "momentum": nas.Real(0.0, 0.99),
        },
        conditions={"momentum": ("op", ["conv3x3"])},
    )


def mixed_objective(config: dict[str, Any], fidelity: float | None = None) -> float:
    """Deterministic, maximized near x=0.5, lr=1e-2, depth=4, op=conv1x1."""
    v = -((config["x"] - 0.5) ** 2) - (math.log10(config["lr"]) + 2.0) ** 2
    v -= 0.1 * (config["depth"] - 4) ** 2
    v += {"conv3x3": 0.2, "conv1x1": 0.5, "maxpool": 0.0}[config["op"]]
    v += 0.1 * config.get("momentum", 0.0)
    if fidelity is not None:
        v -= 1.0 / float(fidelity)
    return float(v)


def sphere(config: dict[str, Any]) -> float:
    return float(sum(float(v) ** 2 for v in config.values()))


def slow_sphere(config: dict[str, Any]) -> float:
    time.sleep(0.3)
    return sphere(config)


def sleepy(config: dict[str, Any]) -> float:
    time.sleep(30.0)
    return 0.0


def always_raises(config: dict[str, Any]) -> float:
    raise RuntimeError("objective exploded")


class FailOnce:
    """Fails (raising, or killing its own process) the first time it runs anywhere.

    The first call creates ``marker`` atomically; only that call misbehaves, even
    across processes.
    """

    def __init__(self, marker: Path, how: str = "raise", delay_s: float = 0.0) -> None:
        self.marker = str(marker)
        self.how = how
        self.delay_s = delay_s

    def __call__(self, config: dict[str, Any]) -> float:
        time.sleep(self.delay_s)
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return sphere(config)
        os.close(fd)
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("first call fails")


def categorical_table(positions: int = 4, ops: int = 6, seed: int = 0) -> tuple[nas.Space, Any]:
    """A structured lookup table (maximize): per-position op scores plus neighbour pairs.

    Stands in for a tabular NAS benchmark: ``ops ** positions`` configurations, no
    two of them equal, and an optimum that greedy per-position choices miss.
    """
    rng = np.random.default_rng(seed)
    unary = rng.normal(size=(positions, ops))
    pair = 0.5 * rng.normal(size=(positions - 1, ops, ops))
    space = nas.Space(
        {f"p{i}": nas.Categorical([f"op{j}" for j in range(ops)]) for i in range(positions)}
    )

    def table(config: dict[str, Any]) -> float:
        idx = [int(str(config[f"p{i}"])[2:]) for i in range(positions)]
        v = sum(unary[i, idx[i]] for i in range(positions))
        v += sum(pair[i, idx[i], idx[i + 1]] for i in range(positions - 1))
        return float(v)

    return space, table
