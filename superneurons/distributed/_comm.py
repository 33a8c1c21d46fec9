"""Collectives the data-parallel trainer needs, over MPI or within one process.

Only three operations: an allgather of byte strings of different sizes, a broadcast of a
picklable object, and the rank/size of the world. Every MPI collective is nonblocking and
polled against a deadline, so a rank that stops answering raises :class:`DistributedError`
instead of hanging the others.
"""

from __future__ import annotations

import os
import pickle
import time
from typing import Any

import numpy as np

__all__ = [
    "Communicator",
    "DistributedError",
    "LocalCommunicator",
    "MPICommunicator",
    "launched_by_mpi",
    "world",
]

DEFAULT_TIMEOUT_S = 120.0  # seconds one collective may wait for the slowest rank


class DistributedError(RuntimeError):
    """A collective failed or timed out: another rank died, hung or sent garbage."""


class Communicator:
    """The world of ranks taking part in training."""

    rank: int = 0
    size: int = 1

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data``, in rank order (sizes may differ)."""
        raise NotImplementedError

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        """``root``'s ``obj`` on every rank."""
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        """Ends every rank of the job (for the command line after an error; never the
        library's own choice)."""


class LocalCommunicator(Communicator):
    """A world of one process: collectives return at once.

    Example:
        >>> from superneurons.distributed import LocalCommunicator
        >>> LocalCommunicator().allgather_bytes(b"abc")
        [b'abc']
    """

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [bytes(data)]

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        return obj


class MPICommunicator(Communicator):
    """``MPI.COMM_WORLD`` through mpi4py, with a timeout on every collective."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        try:
            from mpi4py import MPI
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError(
                "data-parallel training needs mpi4py and Open MPI: pip install 'superneurons[mpi]'"
            ) from error
        self._mpi = MPI
        self._comm = MPI.COMM_WORLD
        self.rank = int(self._comm.Get_rank())
        self.size = int(self._comm.Get_size())
        self.timeout_s = float(timeout_s)

    def _wait(self, request: Any, what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        pause_s = 1e-5
        while not request.Test():
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"rank {self.rank}/{self.size}: {what} did not complete within "
                    f"{self.timeout_s:g} s; another rank has died or hung"
                )
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 1e-3)

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        sizes = np.zeros(self.size, np.int64)
        mine = np.array([len(data)], np.int64)
        self._wait(self._comm.Iallgather(mine, sizes), "the allgather of packet sizes")
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        recv = np.empty(int(offsets[-1]), np.uint8)
        send = np.frombuffer(data, np.uint8)
        spec = [recv, (sizes, offsets[:-1]), self._mpi.BYTE]
        self._wait(self._comm.Iallgatherv(send, spec), "the allgather of packets")
        return [recv[offsets[r] : offsets[r + 1]].tobytes() for r in range(self.size)]

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        payload = pickle.dumps(obj) if self.rank == root else b""
        size = np.array([len(payload)], np.int64)
        self._wait(self._comm.Ibcast(size, root=root), "the broadcast of a size")
        buf = np.frombuffer(payload, np.uint8).copy() if self.rank == root else None
        if buf is None:
            buf = np.empty(int(size[0]), np.uint8)
        self._wait(self._comm.Ibcast(buf, root=root), "the broadcast of parameters")
        return obj if self.rank == root else pickle.loads(buf.tobytes())

    def abort(self, code: int = 1) -> None:
        self._comm.Abort(code)


def launched_by_mpi() -> bool:
    """Whether this process was started by mpirun/mpiexec (Open MPI, MPICH or Slurm's PMI)."""
    return any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"))


def world(timeout_s: float = DEFAULT_TIMEOUT_S) -> Communicator:
    """MPI's world when launched by mpirun, else a world of one process.

    Example:
        >>> from superneurons.distributed import world
        >>> w = world()
        >>> (w.rank, w.size)
        (0, 1)
    """
    if launched_by_mpi():
        return MPICommunicator(timeout_s)
    return LocalCommunicator()
