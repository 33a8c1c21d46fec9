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

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from superneurons.data import ArrayDataset, DataLoader
from superneurons.session import Session

__all__ = ["Trainer", "load_checkpoint", "save_checkpoint"]

EpochRecord = dict[str, Any]


def save_checkpoint(
    path: str | os.PathLike[str], session: Session, meta: dict[str, Any] | None = None
) -> None:
    """Writes the session's state atomically: a temporary file beside ``path``, then rename.

    A crash mid-write leaves the previous checkpoint intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    arrays = session.state_dict()
    arrays["__meta__"] = np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str], session: Session) -> dict[str, Any]:
    """Restores a checkpoint into ``session`` and returns the metadata saved with it."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta_raw = arrays.pop("__meta__", np.zeros(0, np.uint8))
    session.load_state_dict(arrays)
    meta: dict[str, Any] = json.loads(meta_raw.tobytes().decode() or "{}")
    return meta


class Trainer:
    """SGD with momentum and weight decay, a cosine learning-rate schedule by default."""

    def __init__(
        self,
        session: Session,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        schedule: str = "cosine",
    ) -> None:
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                "lr must be > 0, momentum and weight_decay >= 0; got "
                f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}"
            )
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
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if len(train) == 0:
            raise ValueError("the training set is empty")
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
                    raise FloatingPointError(
                        f"loss became {r.loss} at epoch {self.epoch + 1}, step {step}; "
                        f"try a smaller learning rate (lr={self.lr})"
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
            if test is not None:
                record["test_loss"], record["test_accuracy"] = self.evaluate(test)
            self.epoch += 1
            self.history.append(record)
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint, self.session, {"epoch": self.epoch, "history": self.history}
                )
            if on_epoch is not None:
                on_epoch(record)
        return self.history

    def resume(self, checkpoint: str | os.PathLike[str]) -> None:
        """Loads a checkpoint written by :meth:`fit` and continues after its epoch."""
        meta = load_checkpoint(checkpoint, self.session)
        self.epoch = int(meta.get("epoch", 0))
        self.history = list(meta.get("history", []))
