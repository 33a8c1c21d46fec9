"""Tabular benchmarks trained with superneurons: ``build_table`` and ``TableObjective``.

Note [Tables]
A table is one JSON file: ``format``, the ``space`` (its ``to_json``), the training
``settings`` (dataset, epochs list, channels, cells, batch size, seed, policy,
budget) and ``entries``, one per architecture: its ``config``, ``key`` (hex of
``space.key``) and ``results`` (fidelity in epochs -> accuracy, test_accuracy,
params, flops, peak_bytes, seconds). An architecture is trained once to the largest
fidelity, continuing from its checkpoint at each fidelity listed, with the cosine
schedule over the largest one (as ``TrainObjective`` does), so ``seconds`` at a
fidelity is the cumulative training time to reach it.

Building is resumable: every finished architecture is appended to ``OUT.partial``
(JSON lines) at once, a rerun skips what is there, and the table is written
(atomically) when all are done. Architectures run on the ``nas`` executors (local
processes or Dask) with a progress bar.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas._executors import make_executor
from nas._space import Config, Space, strip_meta
from nas._train import TrainObjective

__all__ = ["TableObjective", "build_table", "load_table", "restrict_space"]

TABLE_FORMAT = "nas-table/1"


def _key_hex(space: Space, config: Mapping[str, Any]) -> str:
    key = space.key(strip_meta(config))
    return key.hex() if isinstance(key, bytes) else repr(key)


class _TableJob:
    """Trains one architecture through every fidelity; returns them all as metrics."""

    metric = "value"

    def __init__(self, objective: TrainObjective, epochs: Sequence[int]) -> None:
        self.objective = objective
        self.epochs = list(epochs)

    def __call__(self, config: Config) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="nas-table-") as tmp:
            obj = self.objective.with_(checkpoint_dir=tmp)
            results: dict[str, Any] = {}
            total = 0.0
            for e in self.epochs:
                r = obj(config, e)
                total += r["seconds"]
                keep = ("accuracy", "test_accuracy", "params", "flops", "peak_bytes", "feasible")
                results[str(e)] = {k: r.get(k) for k in keep} | {"seconds": total}
                if not r["feasible"]:
                    results[str(e)]["error"] = r.get("error")
                    break
        last = results.get(str(self.epochs[-1]))
        value = last["accuracy"] if last and last["accuracy"] is not None else 0.0
        return {"value": float(value), "config": dict(config), "results": results}


def _distinct_sample(space: Space, n: int | None, seed: int) -> list[Config]:
    """``n`` configs with distinct keys (all of a finite space when ``n`` is None)."""
    if n is None:
        from itertools import product

        from nas._params import Categorical

        if space.conditions or not all(isinstance(p, Categorical) for p in space.params):
            raise ValueError("build_table: enumerating needs an all-categorical space; pass sample")
        choices = [p.choices for p in space.params]  # type: ignore[attr-defined]
        cfgs = [dict(zip(space.names, vals, strict=True)) for vals in product(*choices)]
        cfgs = [c for c in cfgs if space.is_feasible(c)]
    else:
        rng = np.random.default_rng(seed)
        cfgs = []
        tries = 0
        while len(cfgs) < n:
            cfgs.extend(space.sample(n - len(cfgs), seed=rng))
            tries += 1
            if tries > 50:
                break
    out, seen = [], set()
    for c in cfgs:
        k = _key_hex(space, c)
        if k not in seen:
            seen.add(k)
            out.append(c)
    if n is not None and len(out) < n:
        more = _distinct_sample_fill(space, out, seen, n, seed)
        out.extend(more)
    return out


def _distinct_sample_fill(
    space: Space, have: list[Config], seen: set[str], n: int, seed: int
) -> list[Config]:
    rng = np.random.default_rng(seed + 1)
    extra: list[Config] = []
    for _ in range(100 * n):
        if len(have) + len(extra) >= n:
            break
        [c] = space.sample(1, seed=rng)
        k = _key_hex(space, c)
        if k not in seen:
            seen.add(k)
            extra.append(c)
    return extra


def build_table(
    objective: TrainObjective,
    epochs: Sequence[int],
    out: str | os.PathLike[str],
    *,
    sample: int | None = None,
    seed: int = 0,
    workers: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``sample`` architectures (all when None) at each fidelity; write the table.

    See Note [Tables]. Returns the table as written.

    >>> import os, tempfile, nas, nas.spaces as sp
    >>> obj = nas.TrainObjective(sp.nb201(), "digits", epochs=2, channels=2, cells=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> t = build_table(obj, [1, 2], path, sample=2, executor="inline", progress=False)
    >>> len(t["entries"]), sorted(t["entries"][0]["results"])
    (2, ['1', '2'])
    """
    eps = sorted({int(e) for e in epochs})
    if not eps or eps[0] < 1:
        raise ValueError(f"build_table: epochs must be positive ints, got {list(epochs)}")
    if sample is not None and sample < 1:
        raise ValueError(f"build_table: sample must be >= 1, got {sample}")
    objective = objective.with_(max_epochs=eps[-1], epochs=eps[-1], checkpoint_dir=None)
    space = objective.space
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    done: dict[str, dict[str, Any]] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed build
            done[entry["key"]] = entry
    todo = [c for c in _distinct_sample(space, sample, seed) if _key_hex(space, c) not in done]
    job = _TableJob(objective, eps)
    ex = make_executor(executor, job, workers, None, scheduler)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo) + len(done), initial=len(done), desc="nas bench build")
    errors: list[str] = []
    try:
        with open(partial, "a", encoding="utf-8") as fh:
            queue = list(enumerate(todo))
            while queue or ex.running:
                while queue and ex.running < workers:
                    i, cfg = queue.pop(0)
                    ex.submit(i, cfg, None)
                for outcome in ex.poll(0.5):
                    if outcome.metrics is None:
                        errors.append(f"{todo[outcome.trial_id]}: {outcome.error}")
                        continue
                    cfg = outcome.metrics["config"]
                    entry = {
                        "key": _key_hex(space, cfg),
                        "config": cfg,
                        "results": outcome.metrics["results"],
                    }
                    fh.write(json.dumps(entry) + "\n")
                    fh.flush()
                    done[entry["key"]] = entry
                    if bar is not None:
                        bar.update(1)
    finally:
        ex.close()
        if bar is not None:
            bar.close()
    if errors:
        raise RuntimeError(f"build_table: {len(errors)} architectures failed: {errors[0]}")
    table = {
        "format": TABLE_FORMAT,
        "space": space.to_json(),
        "settings": {
            "dataset": objective.dataset,
            "epochs": eps,
            "channels": objective.channels,
            "cells": objective.cells,
            "batch_size": objective.batch_size,
            "seed": objective.seed,
            "policy": objective.policy,
            "memory_budget": objective.memory_budget,
            "lr": objective.lr,
            "built_at": time.time(),
        },
        "entries": sorted(done.values(), key=lambda e: e["key"]),
    }
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(table, separators=(",", ":")))
    os.replace(tmp, out)
    partial.unlink(missing_ok=True)
    return table


def load_table(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a table written by ``build_table``; raises ValueError on a bad file.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> with open(path, "w") as f:
    ...     _ = f.write('{"format": "other"}')
    >>> try:
    ...     load_table(path)
    ... except ValueError as err:
    ...     print("not a" in str(err))
    True
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read table {path}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise ValueError(f"{path} is not a {TABLE_FORMAT} table")
    return data


class _Tabulated(Space):
    """A space restricted to a finite set of members (see ``restrict_space``)."""

    _members: np.ndarray  # native rows of the members
    _member_features: np.ndarray
    _member_keys: set[Any]

    def is_member(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` is one of the members."""
        return self.key(strip_meta(config)) in self._member_keys

    def _snap(
        self, rng: np.random.Generator, rows: np.ndarray, avoid: np.ndarray | None
    ) -> np.ndarray:
        """The nearest member of each row in feature space (ties broken at random)."""
        feats = self.features(rows)
        d = ((feats[:, None, :] - self._member_features[None, :, :]) ** 2).sum(axis=2)
        d += rng.random(d.shape) * 1e-6
        if avoid is not None and len(self._members) > 1:  # a mutation must move
            same = (self._members[None, :, :] == avoid[:, None, :]).all(axis=2)
            d[same] = np.inf
        out: np.ndarray = self._members[np.argmin(d, axis=1)].copy()
        return out

    def sample_rows(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out: np.ndarray = self._members[rng.integers(0, len(self._members), n)].copy()
        return out

    def design_rows(self, rng: np.random.Generator, n: int, kind: str = "sobol") -> np.ndarray:
        """The space-filling design snapped to the nearest members."""
        return self._snap(rng, super().design_rows(rng, n, kind), None)

    def box_rows(
        self,
        rng: np.random.Generator,
        center: np.ndarray,
        half_width: np.ndarray | float,
        n: int,
        perturb_prob: float = 1.0,
    ) -> np.ndarray:
        return self._snap(rng, super().box_rows(rng, center, half_width, n, perturb_prob), None)

    def mutate_rows(
        self, rng: np.random.Generator, rows: np.ndarray, rate: float, sigma: float = 0.1
    ) -> np.ndarray:
        rows = self.canonical(rows)
        return self._snap(rng, super().mutate_rows(rng, rows, rate, sigma), rows)


def restrict_space(space: Space, configs: Sequence[Mapping[str, Any]]) -> Space:
    """A copy of ``space`` whose members are only ``configs`` (a sampled table).

    Sampling draws members uniformly; the neighbourhoods strategies explore
    (``box_rows``, ``mutate_rows``) are snapped to the nearest member in feature
    space, so every suggestion is a tabulated architecture; a membership constraint
    rejects anything else.

    >>> import nas.spaces as sp
    >>> s = restrict_space(sp.nb201(), [{n: "conv3x3" for n in sp.nb201().names}])
    >>> s.sample(2, seed=0)[0]["e1_0"], type(s).__name__
    ('conv3x3', 'TabulatedNB201Space')
    """
    if not configs:
        raise ValueError("restrict_space: configs must not be empty")
    base = type(space)
    cls = type(f"Tabulated{base.__name__}", (_Tabulated, base), {})
    new = copy.copy(space)
    new.__class__ = cls
    assert isinstance(new, _Tabulated)
    new._members = space.to_rows([strip_meta(c) for c in configs])
    new._member_features = space.features(new._members)
    new._member_keys = {space.key(strip_meta(c)) for c in configs}
    new.constraints = [*space.constraints, new.is_member]
    return new


class TableObjective:
    """Looks architectures up in a table built by ``build_table`` (no training).

    ``obj(config, fidelity=None)`` returns the tabulated metrics at ``fidelity``
    epochs (the largest by default; a fidelity between two tabulated ones reads the
    next one up). ``obj.space`` is the table's space; when the table holds a sample,
    it is restricted to the tabulated architectures (``restrict_space``), so that
    searches suggest only those. A config not in the table raises ``ValueError``.

    >>> import os, tempfile, nas, nas.spaces as sp
    >>> obj = nas.TrainObjective(sp.nb201(), "digits", epochs=1, channels=2, cells=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> t = build_table(obj, [1], path, sample=3, executor="inline", progress=False)
    >>> tab = TableObjective(path)
    >>> cfg = t["entries"][0]["config"]
    >>> tab(cfg)["accuracy"] == t["entries"][0]["results"]["1"]["accuracy"], len(tab)
    (True, 3)
    """

    metric = "accuracy"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.table = load_table(path)
        self.fidelities = [int(e) for e in self.table["settings"]["epochs"]]
        space = Space.from_json(self.table["space"])
        self.entries: dict[str, dict[str, Any]] = {e["key"]: e for e in self.table["entries"]}
        self.complete = self._is_complete(space)
        if not self.complete:
            space = restrict_space(space, [e["config"] for e in self.entries.values()])
        self.space = space

    def _is_complete(self, space: Space) -> bool:
        from nas._params import Categorical

        if space.conditions or not all(isinstance(p, Categorical) for p in space.params):
            return False
        size = 1
        for p in space.params:
            size *= p.n_values
        return not space.constraints and len(self.entries) >= size

    def __len__(self) -> int:
        return len(self.entries)

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` is tabulated."""
        return _key_hex(self.space, config) in self.entries

    def configs(self) -> list[Config]:
        """Every tabulated config."""
        return [dict(e["config"]) for e in self.entries.values()]

    def values(self, fidelity: int | None = None, metric: str = "accuracy") -> np.ndarray:
        """``metric`` of every tabulated architecture at ``fidelity`` (NaN if infeasible)."""
        fid = str(self._fidelity(fidelity))
        vals = [e["results"].get(fid, {}).get(metric) for e in self.entries.values()]
        return np.array([np.nan if v is None else float(v) for v in vals])

    def _fidelity(self, fidelity: float | None) -> int:
        if fidelity is None:
            return self.fidelities[-1]
        for e in self.fidelities:
            if e >= float(fidelity) - 1e-9:
                return e
        raise ValueError(f"fidelity {fidelity} is above the table's largest, {self.fidelities[-1]}")

    def __call__(self, config: Mapping[str, Any], fidelity: float | None = None) -> dict[str, Any]:
        key = _key_hex(self.space, config)
        if key not in self.entries:
            raise ValueError(f"config {strip_meta(config)} is not in table {self.path}")
        fid = self._fidelity(fidelity)
        res = self.entries[key]["results"].get(str(fid))
        if res is None:  # infeasible before reaching this fidelity
            res = list(self.entries[key]["results"].values())[-1]
        out = dict(res)
        out["epochs"] = fid
        if out.get("feasible", True) is False:
            out["accuracy"] = None
        return out
