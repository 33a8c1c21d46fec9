"""Fits a session on a dataset: epochs, evaluation, progress, checkpoints.

Example:
    >>> import superneurons as sn
    >>> train, test = sn.data.digits(seed=0)
    >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    >>> t = sn.Trainer(sn.Session(g, batch_size=64, seed=0), lr=0.05)
    >>> history = t.fit(train, epochs=1, test=test, progress=False)
    >>> 0.0 <= history[-1]["test_accuracy"] <= 1.0
    True
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from superneurons._checkpoint import (
    CheckpointError,
    apply_checkpoint,
    check_checkpoint_path,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from superneurons._checks import check_finite_samples, check_sgd, first_nonfinite
from superneurons.data import ArrayDataset, DataLoader
from superneurons.session import Session

__all__ = ["DivergedError", "Trainer", "load_checkpoint", "save_checkpoint"]

EpochRecord = dict[str, Any]


class DivergedError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters; the message names
    the epoch and step or parameter, and the learning rate to lower."""


class Trainer:
    """SGD with momentum and weight decay, a cosine learning-rate schedule by default.

    Settings SGD cannot train with (a momentum outside [0, 1), a non-finite or
    non-positive learning rate) raise ``ValueError`` here. :meth:`fit` checks its
    data for NaN and inf before the first step and the parameters after every epoch,
    and raises ``FloatingPointError`` instead of training on (or checkpointing)
    non-finite values.
    """

    def __init__(
        self,
        session: Session,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        schedule: str = "cosine",
    ) -> None:
        check_sgd(lr, momentum, weight_decay)
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
        self.session = session
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.epoch = 0  # epochs completed
        self.history: list[EpochRecord] = []

    def lr_at(self, epoch: int, step: int, steps_per_epoch: int, epochs: int) -> float:
        """The learning rate at a step; cosine decays from ``lr`` to 0 over ``epochs``."""
        if self.schedule == "constant":
            return self.lr
        progress = (epoch + step / max(steps_per_epoch, 1)) / max(epochs, 1)
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def evaluate(self, dataset: ArrayDataset) -> tuple[float, float]:
        """Mean loss and accuracy over ``dataset`` in inference mode."""
        loader = DataLoader(dataset, self.session.batch_size, shuffle=False, prefetch=0)
        total_loss, correct = 0.0, 0
        for xb, yb in loader:
            r = self.session.evaluate(xb, yb)
            total_loss += r.loss * len(yb)
            correct += r.correct
        n = max(len(dataset), 1)
        return total_loss / n, correct / n

    def fit(
        self,
        train: ArrayDataset,
        epochs: int,
        test: ArrayDataset | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> list[EpochRecord]:
        """Trains until ``epochs`` epochs are complete (continuing from :attr:`epoch`).

        After each epoch: evaluation on ``test``, a checkpoint when asked for, and
        ``on_epoch(record)``. The loader order depends only on ``(seed, epoch)``, so a run
        resumed from a checkpoint sees the same batches as an uninterrupted one.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        if len(train) == 0:
            raise ValueError("the training set is empty")
        for name, ds in (("training", train), ("test", test)):
            if ds is not None:
                self._check_dataset(name, ds)
        if checkpoint is not None:
            check_checkpoint_path(checkpoint)
        loader = DataLoader(train, self.session.batch_size, shuffle=True, seed=seed)
        steps = len(loader)
        while self.epoch < epochs:
            loader.set_epoch(self.epoch)
            start = time.perf_counter()
            total_loss, correct, seen = 0.0, 0, 0
            bar = tqdm(
                loader,
                total=steps,
                desc=f"epoch {self.epoch + 1}/{epochs}",
                disable=not progress,
                leave=False,
            )
            for step, (xb, yb) in enumerate(bar):
                lr = self.lr_at(self.epoch, step, steps, epochs)
                r = self.session.train_step(xb, yb, lr, self.momentum, self.weight_decay)
                if not math.isfinite(r.loss):
                    raise DivergedError(
                        f"training diverged: the loss became {r.loss} in epoch "
                        f"{self.epoch + 1}, step {step}, at learning rate {lr:g}"
                    )
                total_loss += r.loss * len(yb)
                correct += r.correct
                seen += len(yb)
                bar.set_postfix(loss=f"{r.loss:.4f}")
            record: EpochRecord = {
                "epoch": self.epoch + 1,
                "loss": total_loss / seen,
                "accuracy": correct / seen,
                "time_s": time.perf_counter() - start,
            }
            self._check_state()
            if test is not None:
                record["test_loss"], record["test_accuracy"] = self.evaluate(test)
                if not math.isfinite(record["test_loss"]):
                    raise DivergedError(
                        f"training diverged: the test loss is {record['test_loss']} after "
                        f"epoch {self.epoch + 1} (learning rate {self.lr:g})"
                    )
            self.epoch += 1
            self.history.append(record)
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint, self.session, {"epoch": self.epoch, "history": self.history}
                )
            if on_epoch is not None:
                on_epoch(record)
        return self.history

    def _check_dataset(self, name: str, ds: ArrayDataset) -> None:
        inputs = [spec.shape for spec in self.session.graph.layers if spec.kind == "input"]
        want = inputs[0] if len(inputs) == 1 else ds.sample_shape  # leave odd graphs to the core
        if ds.sample_shape != want:
            raise ValueError(
                f"the {name} samples have shape {ds.sample_shape}, the graph's input takes {want}"
            )
        if ds.num_classes > self.session.num_classes:
            raise ValueError(
                f"the {name} set has {ds.num_classes} classes, the graph's loss "
                f"{self.session.num_classes}"
            )
        check_finite_samples(ds.x, f"{name} set")

    def _check_state(self) -> None:
        """Raises ``DivergedError`` naming the first parameter, running statistic or
        momentum buffer that is not finite."""
        for name, arr in self.session.state_dict().items():
            where = first_nonfinite(arr)
            if where is not None:
                raise DivergedError(
                    f"training diverged in epoch {self.epoch + 1}: '{name}' holds "
                    f"{arr[where]} at {list(where)} (learning rate {self.lr:g})"
                )

    def resume(self, checkpoint: str | os.PathLike[str]) -> None:
        """Loads a checkpoint written by :meth:`fit` and continues after its epoch.

        Raises :class:`superneurons.CheckpointError` (and changes nothing) when the
        file is unusable, including metadata that is not what :meth:`fit` writes.
        """
        ck = read_checkpoint(checkpoint)
        epoch = ck.meta.get("epoch", 0)
        history = ck.meta.get("history", [])
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise CheckpointError(
                f"{ck.path}: metadata 'epoch' must be an integer >= 0, got {epoch!r}"
            )
        if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
            raise CheckpointError(f"{ck.path}: metadata 'history' must be a list of objects")
        apply_checkpoint(ck, self.session)
        self.epoch = epoch
        self.history = list(history)
