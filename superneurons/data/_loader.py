"""Mini-batch loader that prepares the next batches on a background thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

__all__ = ["BatchSource", "DataLoader"]

Batch = tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]

# Seconds a blocked worker waits before it looks at the stop flag again.
_POLL_S = 0.05


class BatchSource(Protocol):
    """What a loader reads from: a length and a way to gather samples by index.

    ``ArrayDataset`` is one; a dataset that decodes files lazily can be another.
    """

    def __len__(self) -> int: ...

    def take(self, indices: npt.ArrayLike) -> Batch: ...


class DataLoader:
    """Iterate over ``(x_batch, y_batch)``: contiguous float32 ``[B, C, H, W]`` and int32 ``[B]``.

    The order is a pure function of ``(seed, epoch)``. Each ``iter()`` uses the current
    epoch and then advances it, so ``for epoch in range(E): for xb, yb in loader: ...``
    sees epochs 0..E-1; ``set_epoch(e)`` pins the next one (for resuming a run).

    With ``prefetch > 0`` a background thread gathers up to ``prefetch`` batches ahead
    (a bounded queue) while the consumer trains on the current one; ``prefetch=0``
    gathers in the consumer's thread. An exception raised while gathering is re-raised
    in the consumer. Abandoning an iteration (``break``, an exception, dropping the
    iterator) stops and joins the thread.

    Example:
        >>> import numpy as np
        >>> from superneurons.data import ArrayDataset
        >>> ds = ArrayDataset(np.zeros((10, 1, 4, 4), np.float32),
        ...                   np.arange(10, dtype=np.int32) % 2, num_classes=2)
        >>> loader = DataLoader(ds, batch_size=4, seed=0)
        >>> [xb.shape[0] for xb, yb in loader]
        [4, 4, 2]
        >>> len(loader), loader.epoch
        (3, 1)
    """

    def __init__(
        self,
        dataset: BatchSource,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        prefetch: int = 2,
    ) -> None:
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(prefetch, bool) or int(prefetch) != prefetch or prefetch < 0:
            raise ValueError(
                f"DataLoader: prefetch must be an integer >= 0 (0 disables the "
                f"background thread), got {prefetch!r}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.prefetch = int(prefetch)
        self.epoch = 0

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch``."""
        if epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def order(self, epoch: int) -> npt.NDArray[np.intp]:
        """The sample indices of ``epoch``, in the order they are served."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.intp)
        return np.random.default_rng((self.seed, epoch)).permutation(n).astype(np.intp)

    def __iter__(self) -> Iterator[Batch]:
        order = self.order(self.epoch)
        self.epoch += 1
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        chunks = [order[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]
        if self.prefetch == 0:
            return (_gather(self.dataset, idx) for idx in chunks)
        return _prefetched(self.dataset, chunks, self.prefetch)


def _gather(dataset: BatchSource, indices: npt.NDArray[np.intp]) -> Batch:
    x, y = dataset.take(indices)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.int32)


# Note [Loader thread shutdown]
# The worker must never hold a reference to the consumer's generator: when the
# consumer drops the generator (a `break`), CPython finalizes it at once, and its
# `finally` sets the stop flag, drains the queue so a blocked `put` returns, and joins
# the thread. The worker only blocks with a timeout, so it sees the flag within
# _POLL_S. Errors travel through the queue as values and are raised by the consumer.
class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def _worker(
    dataset: BatchSource,
    chunks: list[npt.NDArray[np.intp]],
    out: queue.Queue[object],
    stop: threading.Event,
) -> None:
    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    try:
        for idx in chunks:
            if not put(_gather(dataset, idx)):
                return
    except BaseException as exc:  # the consumer re-raises it
        put(_Failure(exc))
        return
    put(_DONE)


def _prefetched(
    dataset: BatchSource, chunks: list[npt.NDArray[np.intp]], depth: int
) -> Iterator[Batch]:
    out: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(
        target=_worker,
        args=(dataset, chunks, out, stop),
        name="superneurons-data-loader",
        daemon=True,
    )
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield cast(Batch, item)
    finally:
        stop.set()
        while thread.is_alive():
            try:
                while True:
                    out.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=_POLL_S)
