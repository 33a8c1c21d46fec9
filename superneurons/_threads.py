"""How many threads the CPU kernels use.

One setting for the whole process: :func:`set_num_threads`, else the environment
variable ``SUPERNEURONS_NUM_THREADS``, else the machine's cores. The kernels split their
work so that results are bit-identical on any number of threads; OpenBLAS is held at one
thread inside them, so the two never oversubscribe the cores.
"""

from __future__ import annotations

from superneurons._ext import _C

__all__ = ["get_num_threads", "set_num_threads"]


def set_num_threads(threads: int) -> None:
    """Use ``threads`` threads (an integer >= 1) for the CPU kernels from now on.

    Raises ValueError for anything else. Losses do not depend on it, only speed.

    Example:
        >>> import superneurons as sn
        >>> before = sn.get_num_threads()
        >>> sn.set_num_threads(1)
        >>> sn.get_num_threads()
        1
        >>> sn.set_num_threads(before)
    """
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    _C.set_num_threads(threads)


def get_num_threads() -> int:
    """Threads the CPU kernels use now.

    ``set_num_threads`` if it was called, else ``SUPERNEURONS_NUM_THREADS``, else the
    machine's cores. Raises ValueError when ``SUPERNEURONS_NUM_THREADS`` is set to
    something other than an integer >= 1.

    Example:
        >>> import superneurons as sn
        >>> sn.get_num_threads() >= 1
        True
    """
    return int(_C.get_num_threads())
