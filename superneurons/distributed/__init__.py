"""Data-parallel training over MPI with compressed gradients.

Launch one process per rank with Open MPI (``pip install 'superneurons[mpi]'``)::

    mpirun -np 2 superneurons train --dataset digits --compress fft --theta 0.85 --bits 10

(as root, add ``--allow-run-as-root --oversubscribe``). In Python, a
:class:`DataParallelTrainer` takes a session, a communicator (:func:`world` picks MPI's
when launched by mpirun) and a compressor from :func:`superneurons.compress.make`.

Example:
    >>> from superneurons.distributed import world
    >>> w = world()
    >>> w.rank, w.size
    (0, 1)
"""

from __future__ import annotations

from superneurons.distributed._cli import add_arguments as add_train_arguments
from superneurons.distributed._cli import train as train_cli
from superneurons.distributed._comm import (
    Communicator,
    DistributedError,
    LocalCommunicator,
    MPICommunicator,
    launched_by_mpi,
    world,
)
from superneurons.distributed._trainer import DataParallelTrainer, params_sha256

__all__ = [
    "Communicator",
    "DataParallelTrainer",
    "DistributedError",
    "LocalCommunicator",
    "MPICommunicator",
    "add_train_arguments",
    "launched_by_mpi",
    "params_sha256",
    "train_cli",
    "world",
]
