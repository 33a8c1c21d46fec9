"""Synchronous data-parallel SGD with compressed gradients (source Sec. 7.4's setup).

Example:
    >>> import superneurons as sn
    >>> from superneurons.distributed import DataParallelTrainer, LocalCommunicator
    >>> train, test = sn.data.digits(seed=0)
    >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
    >>> t = DataParallelTrainer(
    ...     sn.Session(g, batch_size=64, seed=0), LocalCommunicator(),
    ...     sn.compress.make("topk", theta=0.5), lr=0.05)
    >>> history = t.fit(train, epochs=1, test=test)
    >>> 0.0 <= history[-1]["test_accuracy"] <= 1.0, t.bytes_sent_per_iteration > 0
    (True, True)
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from superneurons.compress import Compressor, ThetaSchedule, make
from superneurons.data import ArrayDataset, DataLoader
from superneurons.distributed._comm import Communicator, DistributedError
from superneurons.session import Session

__all__ = ["DataParallelTrainer", "params_sha256"]

EpochRecord = dict[str, Any]
_HEADER = struct.Struct("<dqqq")  # loss, correct, samples, packets
_LENGTH = struct.Struct("<q")


def params_sha256(session: Session) -> str:
    """SHA-256 of every parameter's name, shape and float32 bytes, in the session's order.

    Example:
        >>> import superneurons as sn
        >>> from superneurons.distributed import params_sha256
        >>> g = sn.Graph(); x = g.input(shape=(4, 1, 1))
        >>> _ = g.softmax_cross_entropy(g.fc(x, 3))
        >>> a = params_sha256(sn.Session(g, 2, seed=0)); b = params_sha256(sn.Session(g, 2, seed=0))
        >>> a == b, len(a)
        (True, 64)
    """
    h = hashlib.sha256()
    for name, arr in session.parameters(copy=True).items():
        h.update(name.encode())
        h.update(repr(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# Note [Session surface for data parallelism]
# The trainer needs "the gradient of this shard, with everything a training step does
# except the update", and a place to write the averaged update. It uses only public
# Session calls:
#   1. train_step(x, y, lr=0.0, momentum=0.0, weight_decay=0.0): one real training step
#      (BN batch statistics and running averages, this iteration's dropout masks, the
#      iteration counter) whose update is w -= 0 * v, so parameters do not move, and whose
#      momentum buffer becomes v = 0 * v + (dw + 0 * w) = dw: the shard's gradient.
#      Session.gradients() would recompute and leaves BN running statistics and the
#      iteration (dropout masks) frozen, which breaks evaluation of BN models.
#   2. state_dict()["<param>.momentum"]: those gradients (copies).
#   3. parameters(): NumPy views, updated in place with SGD + momentum + weight decay,
#      computed exactly like csrc/backend/cpu/sgd.cpp (float32, same order of operations),
#      with the trainer's own momentum buffers. Where the session's memory is not host
#      memory (a GPU) the trainer stages instead: it keeps NumPy copies
#      (parameters(copy=True)), updates them the same way and writes them back with
#      load_state_dict(..., strict=False) after every update; the arithmetic is the same,
#      so a staged replica follows an unstaged one bit for bit. (Exchanging over MPI from
#      host memory; there is no NCCL path.)
#   4. state_dict() / load_state_dict(): the periodic re-broadcast from rank 0 (parameters,
#      BN running statistics, iteration counter).
# When Session grows a "backward only" / "apply gradients" pair, only _local_step and
# _apply change.
class DataParallelTrainer:
    """Each rank trains ``session`` on its shard of every global batch.

    The global batch is ``session.batch_size * comm.size`` samples; rank r takes the r-th
    slice. Gradients are compressed per parameter tensor, exchanged with one allgather
    (packet sizes differ), and every rank decompresses all packets, including its own, and
    averages them in rank order, so every replica applies the same float32 update and stays
    bit-identical. Every ``rebroadcast_every`` iterations, rank 0's state is broadcast as a
    guard against drift; the drift found just before (max |w - w_rank0| over parameters,
    gathered from every rank) is recorded in :attr:`drift_log`.

    ``theta_schedule=True`` ties theta to the learning rate (theta_t^2 proportional to
    lr_t, source Theorem 3), starting from the compressor's theta.

    A session on a GPU trains with its state staged through host memory (the update is
    computed on NumPy copies and written back each step; the exchange is MPI from host
    memory); ``stage_on_host=True`` does the same on the CPU (the tests compare the two).
    """

    def __init__(
        self,
        session: Session,
        comm: Communicator,
        compressor: Compressor | None = None,
        *,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        schedule: str = "cosine",
        rebroadcast_every: int = 10,
        theta_schedule: bool = False,
        stage_on_host: bool | None = None,
    ) -> None:
        if not lr > 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                "lr must be > 0, momentum and weight_decay >= 0; got "
                f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}"
            )
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
        if isinstance(rebroadcast_every, bool) or rebroadcast_every < 1:
            raise ValueError(f"rebroadcast_every must be >= 1, got {rebroadcast_every!r}")
        self.session = session
        self.comm = comm
        self.compressor = compressor if compressor is not None else make("none")
        if self.compressor.name in ("qsgd", "terngrad"):
            # Each rank rounds with its own stream: the average then has the variance of
            # independent draws. Replicas stay identical (all decode the same bytes).
            self.compressor.seed = (self.compressor.seed + comm.rank) % 2**31
        if theta_schedule and self.compressor.name not in ("topk", "fft"):
            raise ValueError(f"theta_schedule needs topk or fft, got {self.compressor.name!r}")
        self._theta_schedule = ThetaSchedule(self.compressor.theta, lr) if theta_schedule else None
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.rebroadcast_every = int(rebroadcast_every)
        self.iteration = 0
        self.epoch = 0
        self.history: list[EpochRecord] = []
        self.drift_log: list[dict[str, float | int]] = []
        # Note [Session surface for data parallelism], point 3.
        self._staged = not session.host_addressable if stage_on_host is None else stage_on_host
        if not self._staged and not session.host_addressable:
            raise ValueError(
                f"stage_on_host=False needs a session in host memory; this one is on "
                f"{session.device!r}"
            )
        self._params = session.parameters(copy=self._staged)
        self._velocity = {n: np.zeros_like(a) for n, a in self._params.items()}
        self._bytes_sent = 0
        self._time_s = 0.0
        self._sync_state()  # every rank starts from rank 0's initialisation

    # ------------------------------------------------------------------ statistics
    @property
    def bytes_sent_per_iteration(self) -> float:
        """Mean bytes this rank put on the wire per iteration (packets and headers)."""
        return self._bytes_sent / max(self.iteration, 1)

    @property
    def seconds_per_iteration(self) -> float:
        """Mean wall time of one iteration on this rank (compute, compression, exchange)."""
        return self._time_s / max(self.iteration, 1)

    def params_sha256(self) -> str:
        """The hash of this replica's parameters (:func:`params_sha256`)."""
        return params_sha256(self.session)

    def lr_at(self, epoch: int, step: int, steps_per_epoch: int, epochs: int) -> float:
        """Cosine from ``lr`` to 0 over ``epochs`` (or constant), as :class:`Trainer`."""
        if self.schedule == "constant":
            return self.lr
        progress = (epoch + step / max(steps_per_epoch, 1)) / max(epochs, 1)
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    # -------------------------------------------------------------------- one step
    def _local_step(
        self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int32]
    ) -> tuple[float, int, dict[str, npt.NDArray[np.float32]]]:
        r = self.session.train_step(x, y, lr=0.0, momentum=0.0, weight_decay=0.0)
        state = self.session.state_dict()
        return r.loss, r.correct, {n: state[n + ".momentum"] for n in self._params}

    def _apply(self, grads: dict[str, npt.NDArray[np.float32]], lr: float) -> None:
        m = np.float32(self.momentum)
        wd = np.float32(self.weight_decay)
        step = np.float32(lr)
        for name, w in self._params.items():
            v = self._velocity[name]
            v[...] = m * v + (grads[name] + wd * w)
            w -= step * v
        if self._staged:
            self.session.load_state_dict(self._params, strict=False)

    def step(
        self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int32], lr: float
    ) -> tuple[float, int, int]:
        """One synchronous iteration on this rank's shard ``(x, y)``; returns the global
        mean loss, correct count and sample count of the whole global batch."""
        start = time.perf_counter()
        if self._theta_schedule is not None:
            self.compressor.theta = self._theta_schedule(lr)
        loss, correct, grads = self._local_step(x, y)
        packets = [self.compressor.compress(g, name=n) for n, g in grads.items()]
        message = b"".join(
            [_HEADER.pack(loss, correct, len(y), len(packets))]
            + [_LENGTH.pack(len(p)) for p in packets]
            + packets
        )
        messages = self.comm.allgather_bytes(message)
        self._bytes_sent += len(message)
        total = {n: np.zeros_like(g) for n, g in grads.items()}
        global_loss, global_correct, samples = 0.0, 0, 0
        for rank, msg in enumerate(messages):
            r_loss, r_correct, r_samples, r_packets = self._parse(msg, rank, len(packets))
            global_loss += r_loss * r_samples
            global_correct += r_correct
            samples += r_samples
            for (name, g), packet in zip(grads.items(), r_packets, strict=True):
                total[name] += self.compressor.decompress(packet, shape=g.shape)
        scale = np.float32(1.0 / len(messages))
        for g in total.values():
            g *= scale
        self._apply(total, lr)
        self.iteration += 1
        if self.iteration % self.rebroadcast_every == 0:
            self._sync_state()
        self._time_s += time.perf_counter() - start
        return global_loss / max(samples, 1), global_correct, samples

    def _parse(self, msg: bytes, rank: int, expected: int) -> tuple[float, int, int, list[bytes]]:
        try:
            loss, correct, samples, count = _HEADER.unpack_from(msg, 0)
            if count != expected:
                raise ValueError(f"{count} packets, expected {expected}")
            at = _HEADER.size
            lengths = [_LENGTH.unpack_from(msg, at + i * _LENGTH.size)[0] for i in range(count)]
            at += count * _LENGTH.size
            if any(n < 0 for n in lengths) or at + sum(lengths) != len(msg):
                raise ValueError("packet lengths disagree with the message size")
            packets = []
            for n in lengths:
                packets.append(msg[at : at + n])
                at += n
        except (struct.error, ValueError) as error:
            raise DistributedError(f"rank {rank} sent a malformed message: {error}") from error
        return float(loss), int(correct), int(samples), packets

    def _sync_state(self) -> None:
        """Broadcasts rank 0's state; records the drift each rank had from it."""
        if self.comm.size == 1:
            return
        root = self.comm.broadcast(
            (self.session.state_dict(), self._velocity) if self.comm.rank == 0 else None
        )
        state, velocity = root
        drift = max(
            (float(np.max(np.abs(w - state[n]))) if w.size else 0.0)
            for n, w in self._params.items()
        )
        drifts = [
            struct.unpack("<d", m)[0] for m in self.comm.allgather_bytes(struct.pack("<d", drift))
        ]
        self.drift_log.append({"iteration": self.iteration, "max_drift": max(drifts)})
        if self.comm.rank != 0:
            self.session.load_state_dict(state)
            for n, v in velocity.items():
                self._velocity[n][...] = v
            if self._staged:
                for n, w in self._params.items():
                    w[...] = state[n]
        self.compressor.reset()  # residuals refer to the parameters before the re-broadcast

    # ------------------------------------------------------------------------- fit
    def evaluate(self, dataset: ArrayDataset) -> tuple[float, float]:
        """Mean loss and accuracy over ``dataset`` on this replica, in inference mode."""
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
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> list[EpochRecord]:
        """Trains until ``epochs`` epochs are complete. Every rank walks the same shuffled
        order (from ``seed``) and drops the last incomplete global batch; the state is
        re-broadcast from rank 0 after the last epoch, so every rank evaluates the same
        model."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        local = self.session.batch_size
        global_batch = local * self.comm.size
        if len(train) < global_batch:
            raise ValueError(
                f"the training set has {len(train)} samples, fewer than one global batch "
                f"({local} per rank x {self.comm.size} ranks)"
            )
        loader = DataLoader(train, global_batch, shuffle=True, seed=seed, drop_last=True)
        steps = len(loader)
        lo, hi = self.comm.rank * local, (self.comm.rank + 1) * local
        while self.epoch < epochs:
            loader.set_epoch(self.epoch)
            start = time.perf_counter()
            total_loss, correct, seen = 0.0, 0, 0
            losses = []
            for step, (xb, yb) in enumerate(loader):
                lr = self.lr_at(self.epoch, step, steps, epochs)
                loss, c, n = self.step(xb[lo:hi], yb[lo:hi], lr)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss} at epoch {self.epoch + 1}, step {step}; "
                        f"try a smaller learning rate (lr={self.lr})"
                    )
                losses.append(loss)
                total_loss += loss * n
                correct += c
                seen += n
            self.epoch += 1
            if self.epoch == epochs:
                self._sync_state()
            record: EpochRecord = {
                "epoch": self.epoch,
                "loss": total_loss / seen,
                "accuracy": correct / seen,
                "losses": losses,
                "time_s": time.perf_counter() - start,
            }
            if test is not None:
                record["test_loss"], record["test_accuracy"] = self.evaluate(test)
            self.history.append(record)
            if on_epoch is not None:
                on_epoch(record)
        return self.history
