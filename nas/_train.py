"""``TrainObjective``: build an architecture with superneurons, train it, report metrics.

Note [Training objective]
``obj(config)`` (or ``obj(config, fidelity)``) builds ``space.to_graph(config)``, plans
it under ``memory_budget`` with ``policy``, trains it for ``fidelity`` epochs (default
``epochs``) with ``sn.Trainer`` and returns a dict: ``accuracy`` (on a validation split
held out from the training split; the test split is reported apart as
``test_accuracy``), ``params``, ``flops``, ``peak_bytes`` (the planned peak, which the
arena measures byte for byte), ``seconds``, ``epochs`` (total epochs of these weights),
``epochs_trained`` (epochs run by this call) and ``feasible``.

An architecture that does not fit the budget (``sn.OutOfMemoryError``) or has more
than ``max_params`` parameters is not a crash: the dict says ``feasible: False`` with
the reason in ``error``, and the search records an infeasible trial.

Fidelity is the number of epochs. With ``checkpoint_dir`` set, each architecture's
weights are saved under ``checkpoint_dir/<key>.npz`` after every epoch (``key`` is the
space's key, so isomorphic nb101 cells share one); asked again at a higher fidelity,
as when Hyperband or ASHA promote it, training continues from there instead of from
scratch. The learning rate follows a cosine over ``max_epochs`` (not over the fidelity
asked), and the loader order depends only on (seed, epoch), so 1 + 2 continued
epochs give exactly the weights of 3 epochs in one go.

With ``inherit=True`` (AlphaX-style transfer), a new architecture starts from the
checkpoint in ``checkpoint_dir`` that shares the most parameters with it (same layer
name and shape: the same op on the same edge of the same cell); the rest is
initialised as usual.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas._report import current as current_reporter
from nas._report import report
from nas._space import Space, strip_meta

if TYPE_CHECKING:
    import superneurons as sn
    from superneurons.data import ArrayDataset

__all__ = ["DATASETS", "TrainObjective", "load_dataset"]

DATASETS = ("digits", "synthetic", "synthetic-digits", "cifar10:DIR", "fashion-mnist:DIR")
_TEST_FRACTION = 0.2  # of a dataset that has no test split of its own


def _resize(ds: ArrayDataset, size: int) -> ArrayDataset:
    """Nearest-neighbour resampling to ``size`` x ``size``."""
    from superneurons.data import ArrayDataset

    _, h, w = ds.sample_shape
    if (h, w) == (size, size):
        return ds
    rows = np.minimum((np.arange(size) * h) // size, h - 1)
    cols = np.minimum((np.arange(size) * w) // size, w - 1)
    x = np.ascontiguousarray(ds.x[:, :, rows][:, :, :, cols])
    return ArrayDataset(x, ds.y, ds.num_classes)


def load_dataset(
    name: str, seed: int = 0, image_size: int | None = None, val_fraction: float = 0.2
) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
    """``(train, validation, test)`` of a dataset named as in ``DATASETS``.

    ``digits`` is scikit-learn's 8x8 digits; ``synthetic`` seeded 3-channel images
    (``image_size`` square, 16 by default, 10 classes, 1,500 samples);
    ``synthetic-digits`` the same at 1x8x8; ``cifar10:DIR`` and ``fashion-mnist:DIR``
    read the original files from ``DIR``. Validation is split (stratified) from the
    training split; the test split is never used to choose.

    >>> train, val, test = load_dataset("digits", seed=0)
    >>> len(train), len(val), len(test), train.sample_shape
    (1151, 287, 359, (1, 8, 8))
    """
    from superneurons import data

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    kind, _, arg = name.partition(":")
    if kind == "digits" and not arg:
        train, test = data.digits(test_fraction=_TEST_FRACTION, seed=seed)
    elif kind in ("synthetic", "synthetic-digits") and not arg:
        size = image_size or (8 if kind == "synthetic-digits" else 16)
        shape = (1 if kind == "synthetic-digits" else 3, size, size)
        full = data.synthetic(shape, n=1500, num_classes=10, seed=seed)
        train, test = full.split(_TEST_FRACTION, seed)
    elif kind == "cifar10" and arg:
        train, test = data.load_cifar10(arg, normalize=True)
    elif kind == "fashion-mnist" and arg:
        train, test = data.load_fashion_mnist(arg, normalize=True)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    if image_size is not None:
        train, test = _resize(train, image_size), _resize(test, image_size)
    train, val = train.split(val_fraction, seed)
    return train, val, test


@functools.cache
def _trainer_class() -> type[sn.Trainer]:
    import superneurons as sn

    class HorizonTrainer(sn.Trainer):
        """A Trainer whose cosine runs over a fixed horizon, whatever ``fit`` is asked."""

        horizon = 1

        def lr_at(self, epoch: int, step: int, steps_per_epoch: int, epochs: int) -> float:
            return super().lr_at(epoch, step, steps_per_epoch, self.horizon)

    return HorizonTrainer


class TrainObjective:
    """Trains architectures of ``space`` with superneurons (see Note [Training objective]).

    >>> import nas, nas.spaces as sp
    >>> obj = nas.TrainObjective(sp.nb201(), dataset="digits", epochs=1, channels=4, cells=1)
    >>> r = obj({n: "conv1x1" for n in sp.nb201().names})
    >>> sorted(k for k in r if k in ("accuracy", "params", "flops", "peak_bytes", "epochs"))
    ['accuracy', 'epochs', 'flops', 'params', 'peak_bytes']
    >>> obj.with_(memory_budget="64KB")({n: "conv3x3" for n in sp.nb201().names})["feasible"]
    False
    """

    metric = "accuracy"  # the value a search optimizes (maximized)

    def __init__(
        self,
        space: Space,
        dataset: str = "digits",
        epochs: int = 1,
        batch_size: int = 64,
        memory_budget: str | int | None = None,
        policy: str = "liveness",
        seed: int = 0,
        image_size: int | None = None,
        *,
        channels: int = 16,
        cells: int = 1,
        lr: float = 0.05,
        weight_decay: float = 5e-4,
        max_epochs: int | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        inherit: bool = False,
        max_params: int | None = None,
        val_fraction: float = 0.2,
        device: str = "cpu",
    ) -> None:
        if not hasattr(space, "to_graph"):
            raise ValueError(
                f"TrainObjective: space must build graphs (nas.spaces.nb101/nb201/chain), "
                f"got {type(space).__name__}"
            )
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainObjective: {name} must be an int >= 1, got {value!r}")
        if max_epochs is not None and max_epochs < epochs:
            raise ValueError(f"TrainObjective: max_epochs={max_epochs} is below epochs={epochs}")
        if inherit and checkpoint_dir is None:
            raise ValueError("TrainObjective: inherit=True needs a checkpoint_dir")
        from superneurons import parse_bytes
        from superneurons._device import cuda_index
        from superneurons._policies import check_policy

        check_policy(policy)
        parse_bytes(memory_budget)  # a bad budget string fails here, not in every trial
        cuda_index(device)  # a bad device name fails here, not in every trial
        kind, _, arg = dataset.partition(":")
        if kind not in ("digits", "synthetic", "synthetic-digits", "cifar10", "fashion-mnist") or (
            bool(arg) != (kind in ("cifar10", "fashion-mnist"))
        ):
            raise ValueError(f"unknown dataset {dataset!r}; choose from {list(DATASETS)}")
        self.space = space
        self.dataset = dataset
        self.epochs = epochs
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        self.policy = policy
        self.seed = seed
        self.image_size = image_size
        self.channels = channels
        self.cells = cells
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs if max_epochs is not None else epochs
        self.checkpoint_dir = None if checkpoint_dir is None else str(checkpoint_dir)
        self.inherit = inherit
        self.max_params = max_params
        self.val_fraction = val_fraction
        self.device = device
        self._data: tuple[ArrayDataset, ArrayDataset, ArrayDataset] | None = None

    def with_(self, **changes: Any) -> TrainObjective:
        """A copy with some constructor arguments changed."""
        args = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        args.update(changes)
        return TrainObjective(**args)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_data"] = None  # workers load the data themselves
        return state

    def __repr__(self) -> str:
        return (
            f"TrainObjective({type(self.space).__name__}, dataset={self.dataset!r}, "
            f"epochs={self.epochs}, budget={self.memory_budget!r}, policy={self.policy!r})"
        )

    def data(self) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
        """``(train, validation, test)``, loaded once per process."""
        if self._data is None:
            self._data = load_dataset(self.dataset, self.seed, self.image_size, self.val_fraction)
        return self._data

    def checkpoint_path(self, config: Mapping[str, Any]) -> Path | None:
        """Where the weights of ``config`` are kept (None without ``checkpoint_dir``)."""
        if self.checkpoint_dir is None:
            return None
        key = self.space.key(strip_meta(config))
        raw = key if isinstance(key, bytes) else repr(key).encode()
        name = hashlib.blake2b(raw, digest_size=16).hexdigest()
        return Path(self.checkpoint_dir) / f"{name}.npz"

    def build(self, config: Mapping[str, Any]) -> sn.Graph:
        """The network of ``config`` for this objective's dataset."""
        train, _, _ = self.data()
        c, h, _w = train.sample_shape
        graph: sn.Graph = self.space.to_graph(
            strip_meta(config),
            num_classes=train.num_classes,
            image_size=h,
            in_channels=c,
            channels=self.channels,
            cells=self.cells,
        )
        return graph

    def __call__(
        self,
        config: Mapping[str, Any],
        fidelity: float | None = None,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Train ``config`` to ``fidelity`` epochs (default ``epochs``); see the Note.

        ``checkpoint`` overrides the path derived from ``checkpoint_dir`` (for callers
        that track trials themselves).
        """
        import superneurons as sn
        from nas.spaces import graph_flops

        start = time.perf_counter()
        epochs = self.epochs if fidelity is None else round(float(fidelity))
        if epochs < 1 or epochs > self.max_epochs:
            raise ValueError(f"fidelity {fidelity!r}: epochs must be in [1, {self.max_epochs}]")
        graph = self.build(config)
        out: dict[str, Any] = {
            "params": graph.num_params(),
            "flops": graph_flops(graph),
            "epochs": 0,
            "epochs_trained": 0,
        }
        plan = sn.plan(graph, self.batch_size, self.policy, self.memory_budget, self.device)
        out["peak_bytes"] = plan.peak_bytes
        reason = None
        if self.max_params is not None and out["params"] > self.max_params:
            reason = f"{out['params']} parameters exceed max_params={self.max_params}"
        elif not plan.fits:
            reason = plan.oom_message
        if reason is None:
            try:
                path = self.checkpoint_path(config) if checkpoint is None else Path(checkpoint)
                out.update(self._train(graph, config, epochs, path))
            except sn.OutOfMemoryError as err:
                reason = str(err)
        if reason is not None:
            out.update(feasible=False, accuracy=None, error=reason)
        else:
            out["feasible"] = True
        out["seconds"] = time.perf_counter() - start
        return out

    def _train(
        self, graph: sn.Graph, config: Mapping[str, Any], epochs: int, path: Path | None
    ) -> dict[str, Any]:
        import superneurons as sn

        train, val, test = self.data()
        session = sn.Session(
            graph,
            self.batch_size,
            device=self.device,
            policy=self.policy,
            budget=self.memory_budget,
            seed=self.seed,
        )
        trainer = _trainer_class()(session, lr=self.lr, weight_decay=self.weight_decay)
        trainer.horizon = self.max_epochs  # type: ignore[attr-defined]
        inherited = 0
        save_to = path
        if path is not None and path.exists():
            meta = sn.load_checkpoint(path, session)
            if int(meta.get("epoch", 0)) <= epochs:
                trainer.epoch = int(meta.get("epoch", 0))
                trainer.history = list(meta.get("history", []))
            else:  # asked for fewer epochs than kept: train afresh, keep the checkpoint
                session = sn.Session(
                    graph,
                    self.batch_size,
                    device=self.device,
                    policy=self.policy,
                    budget=self.memory_budget,
                    seed=self.seed,
                )
                trainer = _trainer_class()(session, lr=self.lr, weight_decay=self.weight_decay)
                trainer.horizon = self.max_epochs  # type: ignore[attr-defined]
                save_to = None
        elif self.inherit and path is not None:
            inherited = self._inherit(session, path)
        first = trainer.epoch
        if first < epochs and current_reporter() is None:
            trainer.fit(train, epochs, seed=self.seed, progress=False, checkpoint=save_to)
            if save_to is not None:
                self._write_config(save_to, config)
        elif first < epochs:
            # Note [Intermediate reports]: a pruning search is running this trial, so
            # train one epoch at a time and report the validation accuracy after each
            # (the loader order depends only on (seed, epoch): the same weights as one
            # fit). A pruned trial keeps its checkpoint, so a later run can continue it.
            for epoch in range(first + 1, epochs + 1):
                trainer.fit(train, epoch, seed=self.seed, progress=False, checkpoint=save_to)
                if save_to is not None:
                    self._write_config(save_to, config)
                report(trainer.evaluate(val)[1], epoch)
        _, accuracy = trainer.evaluate(val)
        _, test_accuracy = trainer.evaluate(test)
        return {
            "accuracy": accuracy,
            "test_accuracy": test_accuracy,
            "epochs": trainer.epoch,
            "epochs_trained": trainer.epoch - first,
            "inherited_params": inherited,
            "train_loss": trainer.history[-1]["loss"] if trainer.history else math.nan,
        }

    @staticmethod
    def _write_config(path: Path, config: Mapping[str, Any]) -> None:
        side = path.with_suffix(".json")
        tmp = side.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(strip_meta(config)))
        os.replace(tmp, side)

    def _inherit(self, session: sn.Session, own: Path) -> int:
        """Copy the parameters shared with the best-overlapping checkpoint; count scalars."""
        state = session.state_dict()
        best: tuple[int, dict[str, np.ndarray]] = (0, {})
        for ckpt in sorted(own.parent.glob("*.npz")):
            if ckpt == own:
                continue
            try:
                with np.load(ckpt) as npz:
                    arrays = {k: npz[k] for k in npz.files if k in state}
            except (OSError, ValueError):
                continue  # a checkpoint being written by another worker
            shared = {
                k: v
                for k, v in arrays.items()
                if not k.startswith("__") and ".momentum" not in k and v.shape == state[k].shape
            }
            count = sum(int(v.size) for v in shared.values())
            if count > best[0]:
                best = (count, shared)
        if best[0]:
            state.update(best[1])
            session.load_state_dict(state)
        return best[0]
