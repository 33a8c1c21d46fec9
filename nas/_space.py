"""``Space``: named parameters, conditional parameters and validity constraints.

A *config* is a plain ``dict`` from parameter name to value that holds exactly the
active parameters. Keys starting with ``_`` are reserved for metadata added by
schedulers (``_fidelity``, ``_trial``) and are never parameter names.

Note [Encoding]
``Space.features`` maps configs to the vectors models see (GP, SVM, k-means,
linear regression): a ``Real`` gives one coordinate in [0, 1] (log-scaled when
``log=True``), an ``Int`` one ordinal coordinate ``(v - low) / (high - low)``, a
``Categorical`` a one-hot block. An inactive conditional parameter gives zeros.
``Space.decode`` inverts it (clip reals, round ordinals, argmax one-hots).
Candidate generation does not go through this relaxation: it works on native rows
(see Note [Native representation] in ``_params.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nas._params import Categorical, Int, Param, param_from_json

__all__ = ["Config", "Space", "strip_meta"]

Config = dict[str, Any]
Constraint = Callable[[Config], bool]

# to_json tag -> loader of the whole mapping (register_json)
_JSON_KINDS: dict[str, Callable[[Mapping[str, Any]], Space]] = {}
_MAX_REJECTIONS = 1000  # candidate draws per wanted sample before giving up
_MIN_SWITCH = 0.2  # least factor on the chance that box_rows perturbs a categorical


def strip_meta(config: Mapping[str, Any]) -> Config:
    """Return ``config`` without the reserved ``_``-prefixed metadata keys.

    >>> strip_meta({"x": 1, "_fidelity": 3})
    {'x': 1}
    """
    return {k: v for k, v in config.items() if not k.startswith("_")}


class Space:
    """A search space.

    Args:
        params: name -> ``Real`` / ``Int`` / ``Categorical`` (order is kept).
        conditions: child name -> ``(parent name, allowed parent values)``: the
            child is active only when the parent is active and takes one of the
            allowed values. The parent must be ``Int`` or ``Categorical`` and come
            before the child.
        constraints: callables ``config -> bool``; a config is valid only when all
            return True (rejection is used when sampling).

    >>> import nas
    >>> space = nas.Space(
    ...     {"opt": nas.Categorical(["sgd", "adam"]), "momentum": nas.Real(0.0, 0.99),
    ...      "depth": nas.Int(1, 10)},
    ...     conditions={"momentum": ("opt", ["sgd"])})
    >>> cfgs = space.sample(4, seed=0)
    >>> all(space.contains(c) for c in cfgs), space.n_features
    (True, 4)
    """

    def __init__(
        self,
        params: Mapping[str, Param],
        conditions: Mapping[str, tuple[str, Sequence[Hashable]]] | None = None,
        constraints: Iterable[Constraint] = (),
    ) -> None:
        if not params:
            raise ValueError("Space: params must not be empty")
        self.names: list[str] = list(params)
        for name in self.names:
            if not isinstance(name, str) or not name or name.startswith("_"):
                raise ValueError(
                    f"Space: parameter name {name!r} must be a non-empty str not starting with '_'"
                )
            if not isinstance(params[name], Param):
                raise TypeError(
                    f"Space: parameter {name!r} must be Real, Int or Categorical, "
                    f"got {params[name]!r}"
                )
        self.params: list[Param] = [params[n] for n in self.names]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.constraints: list[Constraint] = list(constraints)
        self.conditions: dict[str, tuple[str, tuple[Hashable, ...]]] = {}
        self._cond_cols: list[tuple[int, int, np.ndarray]] = []  # (child, parent, allowed rows)
        for child, (parent, allowed) in (conditions or {}).items():
            self._add_condition(child, parent, tuple(allowed))
        self._kinds = np.array([p.kind for p in self.params])
        self._real = self._kinds == "real"
        self._int = self._kinds == "int"
        self._cat = self._kinds == "categorical"
        self._n_values = np.array([p.n_values for p in self.params], dtype=float)
        widths = [p.n_features for p in self.params]
        self._offsets = np.concatenate([[0], np.cumsum(widths)]).astype(int)

    def _add_condition(self, child: str, parent: str, allowed: tuple[Hashable, ...]) -> None:
        if child not in self.index:
            raise ValueError(f"conditions: unknown child parameter {child!r}")
        if parent not in self.index:
            raise ValueError(f"conditions: unknown parent parameter {parent!r} for {child!r}")
        ci, pi = self.index[child], self.index[parent]
        if pi >= ci:
            raise ValueError(f"conditions: parent {parent!r} must come before child {child!r}")
        p = self.params[pi]
        if not isinstance(p, (Int, Categorical)):
            raise ValueError(f"conditions: parent {parent!r} must be Int or Categorical")
        if not allowed:
            raise ValueError(f"conditions: allowed values for {child!r} must not be empty")
        rows = np.array([p.to_row(v) for v in allowed])
        self.conditions[child] = (parent, allowed)
        self._cond_cols.append((ci, pi, rows))

    # ----------------------------------------------------------------- sizes
    @property
    def n_params(self) -> int:
        """Number of parameters (columns of a native row)."""
        return len(self.params)

    @property
    def n_features(self) -> int:
        """Length of the model feature vector (see Note [Encoding])."""
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return self.n_params

    @property
    def is_real(self) -> np.ndarray:
        """Boolean mask over parameters: which are ``Real``."""
        out: np.ndarray = self._real.copy()
        return out

    @property
    def is_int(self) -> np.ndarray:
        """Boolean mask over parameters: which are ``Int``."""
        out: np.ndarray = self._int.copy()
        return out

    @property
    def is_categorical(self) -> np.ndarray:
        """Boolean mask over parameters: which are ``Categorical``."""
        out: np.ndarray = self._cat.copy()
        return out

    @property
    def feature_offsets(self) -> np.ndarray:
        """Parameter ``j``'s features are columns ``offsets[j]:offsets[j + 1]``."""
        out: np.ndarray = self._offsets.copy()
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={p!r}" for n, p in zip(self.names, self.params, strict=True))
        return f"Space({inner})"

    # ------------------------------------------------------------ native rows
    def active_mask(self, rows: np.ndarray) -> np.ndarray:
        """Boolean ``(n, n_params)``: which parameters are active in each row."""
        rows = np.atleast_2d(rows)
        mask = np.ones(rows.shape, dtype=bool)
        for ci, pi, allowed in self._cond_cols:
            mask[:, ci] = mask[:, pi] & np.isin(rows[:, pi], allowed)
        return mask

    def canonical(self, rows: np.ndarray) -> np.ndarray:
        """Rows with inactive parameters set to 0 (so equal configs give equal rows)."""
        rows = np.array(np.atleast_2d(rows), dtype=float)
        if self._cond_cols:
            rows[~self.active_mask(rows)] = 0.0
        return rows

    def sample_rows(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform rows (constraints not checked)."""
        return self._unit_rows(rng.random((n, self.n_params)))

    def design_rows(self, rng: np.random.Generator, n: int, kind: str = "sobol") -> np.ndarray:
        """``n`` rows of a space-filling design (constraints not checked).

        ``kind="sobol"``: the first ``n`` points of a scrambled Sobol sequence (drawn
        as a power of two, so SciPy's balance warning does not apply); ``"lhs"``: a
        Latin hypercube. The unit cube maps to rows as in ``sample_rows``.

        >>> import nas
        >>> space = nas.Space({"x": nas.Real(0, 1), "k": nas.Int(0, 3)})
        >>> rows = space.design_rows(np.random.default_rng(0), 8, "lhs")
        >>> sorted(np.floor(rows[:, 0] * 8).astype(int).tolist())  # one per eighth
        [0, 1, 2, 3, 4, 5, 6, 7]
        """
        from scipy.stats import qmc  # imported lazily, like the GP's SciPy

        seed = int(rng.integers(2**31 - 1))
        if kind == "sobol":
            m = math.ceil(math.log2(max(n, 1)))
            u = qmc.Sobol(self.n_params, scramble=True, seed=seed).random_base2(m)[:n]
        elif kind == "lhs":
            u = qmc.LatinHypercube(self.n_params, seed=seed).random(n)
        else:
            raise ValueError(f"design_rows: kind must be 'sobol' or 'lhs', got {kind!r}")
        return self._unit_rows(u)

    def _unit_rows(self, u: np.ndarray) -> np.ndarray:
        """Points of the unit cube -> rows (a discrete parameter takes its ``floor(u * k)``)."""
        rows = np.array(u, dtype=float)
        disc = ~self._real
        if disc.any():
            rows[:, disc] = np.floor(rows[:, disc] * self._n_values[disc])
            rows[:, disc] = np.minimum(rows[:, disc], self._n_values[disc] - 1)
        return self.canonical(rows)

    def box_rows(
        self,
        rng: np.random.Generator,
        center: np.ndarray,
        half_width: np.ndarray | float,
        n: int,
        perturb_prob: float = 1.0,
    ) -> np.ndarray:
        """``n`` rows in a box around ``center`` (TuRBO-style trust region).

        ``half_width`` is per parameter, in unit terms (a real's unit coordinate,
        an int's ordinal ``(v - low) / (high - low)``). Each parameter is chosen
        with probability ``perturb_prob`` (a categorical with that times
        ``2 * half_width`` clipped to ``[0.2, 1]``: a shrunken region changes fewer
        categories, but still tries other ones), at least one per row, and every
        chosen parameter changes: reals are drawn uniformly in the box, ints
        uniformly among the other integers inside the box (which always reaches
        the neighbours one step away), categoricals switch to another category.
        So no row is a copy of ``center`` (unless no parameter can change).
        """
        p = self.n_params
        hw = np.broadcast_to(np.asarray(half_width, dtype=float), (p,))
        center = np.asarray(center, dtype=float)
        out = np.repeat(center[None, :], n, axis=0)
        prob = np.full(p, float(perturb_prob))
        prob[self._cat] *= np.clip(2.0 * hw[self._cat], _MIN_SWITCH, 1.0)
        mask = self._pick_params(rng, out, prob)
        u = rng.random((n, p))
        if self._real.any():
            lo = np.clip(center - hw, 0.0, 1.0)
            hi = np.clip(center + hw, 0.0, 1.0)
            vals = lo + u * (hi - lo)
            out[:, self._real] = np.where(
                mask[:, self._real], vals[:, self._real], out[:, self._real]
            )
        if self._int.any():
            span = np.maximum(self._n_values - 1, 1.0)
            lo_i = np.clip(np.ceil(center - hw * span - 1e-9), 0, self._n_values - 1)
            hi_i = np.clip(np.floor(center + hw * span + 1e-9), 0, self._n_values - 1)
            # at least one integer step either way: a shrunken box must not freeze an int
            lo_i = np.clip(np.minimum(lo_i, center - 1), 0, None)
            hi_i = np.minimum(np.maximum(hi_i, center + 1), self._n_values - 1)
            # uniform among the hi - lo integers of the box other than the centre
            vals = lo_i + np.minimum(np.floor(u * (hi_i - lo_i)), np.maximum(hi_i - lo_i - 1, 0))
            vals = np.where(vals >= center, vals + 1, vals)
            out[:, self._int] = np.where(mask[:, self._int], vals[:, self._int], out[:, self._int])
        if self._cat.any():
            k = self._n_values
            shift = 1 + np.floor(u * np.maximum(k - 1, 1))
            vals = np.mod(center + shift, np.maximum(k, 1))
            cols = self._cat
            out[:, cols] = np.where(mask[:, cols], vals[:, cols], out[:, cols])
        return self.canonical(out)

    def _pick_params(
        self, rng: np.random.Generator, rows: np.ndarray, prob: float | np.ndarray
    ) -> np.ndarray:
        """Mask of parameters to change: each with ``prob``, at least one per row.

        Only active parameters that can take another value (not an ``Int`` or
        ``Categorical`` with a single value) are ever picked.
        """
        active = self.active_mask(rows) & (self._n_values != 1)
        mask: np.ndarray = (rng.random(rows.shape) < prob) & active
        none = ~mask.any(axis=1) & active.any(axis=1)
        if none.any():
            pick = rng.random((int(none.sum()), rows.shape[1]))
            pick[~active[none]] = -1.0
            mask[np.flatnonzero(none), np.argmax(pick, axis=1)] = True
        return mask

    def mutate_rows(
        self, rng: np.random.Generator, rows: np.ndarray, rate: float, sigma: float = 0.1
    ) -> np.ndarray:
        """Mutate each parameter with probability ``rate`` (at least one per row).

        Reals move by a Gaussian step of ``sigma`` (unit scale, reflected at the
        bounds); ints by a non-zero integer step of about ``sigma`` of their range;
        categoricals switch to a different category.
        """
        rows = np.array(np.atleast_2d(rows), dtype=float)
        n, p = rows.shape
        mask = self._pick_params(rng, rows, rate)
        step = rng.normal(0.0, sigma, size=(n, p))
        real = mask & self._real
        vals = np.abs(rows + step)
        vals = np.where(vals > 1.0, 2.0 - vals, vals)
        rows[real] = np.clip(vals, 0.0, 1.0)[real]
        k = self._n_values
        istep = np.round(step * np.maximum(k - 1, 1))
        istep = np.where(istep == 0, np.where(step >= 0, 1.0, -1.0), istep)
        ivals = rows + istep
        ivals = np.where((ivals < 0) | (ivals > k - 1), rows - istep, ivals)  # bounce off a bound
        ivals = np.clip(ivals, 0, np.maximum(k - 1, 0))
        ints = mask & self._int
        rows[ints] = ivals[ints]
        shift = 1 + np.floor(rng.random((n, p)) * np.maximum(k - 1, 1))
        cvals = np.mod(rows + shift, np.maximum(k, 1))
        cats = mask & self._cat & (k > 1)
        rows[cats] = cvals[cats]
        return self.canonical(rows)

    def features(self, rows: np.ndarray) -> np.ndarray:
        """Model features of native rows (see Note [Encoding])."""
        rows = np.atleast_2d(rows)
        active = self.active_mask(rows)
        feats = np.zeros((rows.shape[0], self.n_features))
        for j, param in enumerate(self.params):
            o = self._offsets[j]
            col = rows[:, j]
            if isinstance(param, Categorical):
                hot = np.zeros((rows.shape[0], param.n_features))
                hot[np.arange(rows.shape[0]), col.astype(int)] = 1.0
                feats[:, o : o + param.n_features] = hot * active[:, j : j + 1]
            elif isinstance(param, Int):
                span = max(param.n_values - 1, 1)
                feats[:, o] = col / span * active[:, j]
            else:
                feats[:, o] = col * active[:, j]
        return feats

    def rows_from_features(self, feats: np.ndarray) -> np.ndarray:
        """Inverse of ``features``: clip reals, round ordinals, argmax one-hots."""
        feats = np.atleast_2d(np.asarray(feats, dtype=float))
        if feats.shape[1] != self.n_features:
            raise ValueError(f"decode: expected {self.n_features} features, got {feats.shape[1]}")
        rows = np.zeros((feats.shape[0], self.n_params))
        for j, param in enumerate(self.params):
            o = self._offsets[j]
            if isinstance(param, Categorical):
                rows[:, j] = np.argmax(feats[:, o : o + param.n_features], axis=1)
            elif isinstance(param, Int):
                span = max(param.n_values - 1, 1)
                rows[:, j] = np.clip(np.round(feats[:, o] * span), 0, param.n_values - 1)
            else:
                rows[:, j] = np.clip(feats[:, o], 0.0, 1.0)
        return self.canonical(rows)

    # ---------------------------------------------------------------- configs
    def from_rows(self, rows: np.ndarray) -> list[Config]:
        """Native rows -> configs holding only the active parameters."""
        rows = self.canonical(rows)
        active = self.active_mask(rows)
        out: list[Config] = []
        for r in range(rows.shape[0]):
            cfg: Config = {}
            for j, (name, param) in enumerate(zip(self.names, self.params, strict=True)):
                if active[r, j]:
                    cfg[name] = param.from_row(rows[r, j])
            out.append(cfg)
        return out

    def to_rows(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Configs -> native rows; raises ``ValueError`` naming a bad parameter."""
        rows = np.zeros((len(configs), self.n_params))
        for r, cfg in enumerate(configs):
            for j, (name, param) in enumerate(zip(self.names, self.params, strict=True)):
                if name in cfg:
                    try:
                        rows[r, j] = param.to_row(cfg[name])
                    except (ValueError, TypeError) as err:
                        raise ValueError(f"config parameter {name!r}: {err}") from None
            active = self.active_mask(rows[r : r + 1])[0]
            for j, name in enumerate(self.names):
                if active[j] and name not in cfg:
                    raise ValueError(f"config is missing active parameter {name!r}")
        return self.canonical(rows)

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Config -> feature vector (see Note [Encoding]).

        >>> import nas
        >>> s = nas.Space({"x": nas.Real(0, 10), "op": nas.Categorical(["a", "b"])})
        >>> s.encode({"x": 5.0, "op": "b"}).tolist()
        [0.5, 0.0, 1.0]
        """
        vec: np.ndarray = self.features(self.to_rows([strip_meta(config)]))[0]
        return vec

    def decode(self, vector: np.ndarray) -> Config:
        """Feature vector -> config (inverse of ``encode`` up to rounding).

        >>> import nas
        >>> s = nas.Space({"x": nas.Real(0, 10), "op": nas.Categorical(["a", "b"])})
        >>> s.decode(s.encode({"x": 5.0, "op": "b"}))
        {'x': 5.0, 'op': 'b'}
        """
        return self.from_rows(self.rows_from_features(np.asarray(vector)[None, :]))[0]

    def row_key(self, row: np.ndarray) -> bytes:
        """Hashable identity of a native row (used to detect repeats)."""
        return np.round(np.asarray(row, dtype=float), 10).tobytes()

    def key(self, config: Mapping[str, Any]) -> bytes:
        """Hashable identity of a config (metadata keys ignored)."""
        return self.row_key(self.to_rows([strip_meta(config)])[0])

    def is_feasible(self, config: Mapping[str, Any]) -> bool:
        """Whether all user constraints hold for ``config``."""
        return all(bool(c(dict(config))) for c in self.constraints)

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` (metadata ignored) is a valid member of the space."""
        cfg = strip_meta(config)
        try:
            rows = self.to_rows([cfg])
        except ValueError:
            return False
        active = self.active_mask(rows)[0]
        expected = {n for n, a in zip(self.names, active, strict=True) if a}
        return set(cfg) == expected and self.is_feasible(cfg)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> list[Config]:
        """``n`` valid configs drawn uniformly (rejection on constraints).

        >>> import nas
        >>> nas.Space({"depth": nas.Int(1, 3)}).sample(2, seed=1)
        [{'depth': 2}, {'depth': 3}]
        """
        if n < 0:
            raise ValueError(f"sample: n must be >= 0, got {n}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.from_rows(self.sample_feasible_rows(rng, n))

    def sample_feasible_rows(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform rows that satisfy the constraints."""
        if not self.constraints:
            return self.sample_rows(rng, n)
        got: list[np.ndarray] = []
        tries = 0
        while len(got) < n:
            batch = self.sample_rows(rng, max(8, 2 * (n - len(got))))
            for row, cfg in zip(batch, self.from_rows(batch), strict=True):
                if self.is_feasible(cfg):
                    got.append(row)
                    if len(got) == n:
                        break
            tries += len(batch)
            if len(got) < n and tries > _MAX_REJECTIONS * max(n, 1):
                raise ValueError(
                    f"Space.sample: constraints rejected {tries} draws; are they satisfiable?"
                )
        return np.array(got).reshape(n, self.n_params)

    def mutate(
        self, config: Mapping[str, Any], rng: np.random.Generator, rate: float | None = None
    ) -> Config:
        """A neighbour of ``config`` (see ``mutate_rows``); constraints are honoured.

        >>> import nas, numpy as np
        >>> s = nas.Space({"depth": nas.Int(1, 10)})
        >>> s.mutate({"depth": 5}, np.random.default_rng(0)) != {"depth": 5}
        True
        """
        row = self.to_rows([strip_meta(config)])
        rate = 1.0 / self.n_params if rate is None else rate
        for _ in range(_MAX_REJECTIONS):
            cand = self.from_rows(self.mutate_rows(rng, row, rate))[0]
            if self.is_feasible(cand):
                return cand
        raise ValueError("Space.mutate: no feasible neighbour found")

    # ------------------------------------------------------------ persistence
    def serializable(self) -> bool:
        """Whether ``to_json`` describes the space fully (no constraints, JSON-able choices)."""
        if self.constraints:
            return False
        try:
            json.dumps(self.to_json())
        except TypeError:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """JSON-able description (constraints cannot be serialized and are dropped)."""
        return {
            "params": {n: p.to_json() for n, p in zip(self.names, self.params, strict=True)},
            "conditions": {c: [p, list(v)] for c, (p, v) in self.conditions.items()},
        }

    @staticmethod
    def register_json(tag: str, load: Callable[[Mapping[str, Any]], Space]) -> None:
        """Let ``from_json`` rebuild a subclass whose ``to_json`` has the key ``tag``.

        ``load`` gets the whole JSON mapping. Serialisation dispatches on the tag,
        so ``Space`` never imports its subclasses.
        """
        if tag in _JSON_KINDS or tag in ("params", "conditions"):
            raise ValueError(f"Space.register_json: tag {tag!r} is taken")
        _JSON_KINDS[tag] = load

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Space:
        """Inverse of ``to_json``.

        >>> import nas
        >>> s = nas.Space({"x": nas.Real(0, 1)})
        >>> nas.Space.from_json(json.loads(json.dumps(s.to_json()))).names
        ['x']
        """
        for tag, load in _JSON_KINDS.items():
            if tag in data:
                return load(data)
        params = {n: param_from_json(p) for n, p in data["params"].items()}
        conds = {c: (pv[0], pv[1]) for c, pv in data.get("conditions", {}).items()}
        return cls(params, conditions=conds)
