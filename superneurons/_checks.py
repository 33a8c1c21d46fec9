"""Cheap argument checks shared by Session, Trainer and the CLI.

Two kinds: SGD settings (a learning rate of ``inf`` or a momentum of 5 train to
nonsense without any error, so they are refused up front) and non-finite input
values. A NaN or inf pixel does not reach the loss as NaN: ReLU maps NaN to 0, the
logits collapse to the bias and the loss reads ln(classes) while the weights turn to
NaN. Checking the input on the host costs one pass over the batch, far less than the
training step that follows.

Example:
    >>> import numpy as np
    >>> check_sgd(0.1, 0.9, 5e-4)
    >>> x = np.zeros((4, 1, 2, 2), np.float32); x[2, 0, 1, 0] = np.nan
    >>> try:
    ...     check_finite_samples(x, "input batch")
    ... except FloatingPointError as e:
    ...     print(e)
    input batch: sample 2 holds a non-finite value (nan at [0, 1, 0])
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_BATCH", "check_finite_samples", "check_sgd", "first_nonfinite"]

MAX_BATCH = 2**31 - 1  # samples: the largest batch a session or a plan takes
_BLOCK_VALUES = 1 << 24  # values checked at a time (a 16 MiB mask)


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def check_sgd(
    lr: object, momentum: object, weight_decay: object, *, zero_lr_ok: bool = False
) -> None:
    """Raises ``ValueError`` naming the setting when SGD cannot train with it.

    ``lr`` must be finite and > 0 (or >= 0 with ``zero_lr_ok``: one step that updates
    nothing but the batch-norm statistics), ``momentum`` in [0, 1) (at 1 or above the
    velocity grows without bound), ``weight_decay`` finite and >= 0.

    Example:
        >>> check_sgd(0.1, 5, 0.0)
        Traceback (most recent call last):
        ...
        ValueError: momentum must be in [0, 1), got 5 (0.9 is usual)
    """
    lr_f = _real("lr", lr)
    if not (math.isfinite(lr_f) and (lr_f > 0 or (zero_lr_ok and lr_f == 0))):
        bound = ">= 0" if zero_lr_ok else "> 0"
        raise ValueError(f"lr must be a finite number {bound}, got {lr!r}")
    m = _real("momentum", momentum)
    if not 0.0 <= m < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r} (0.9 is usual)")
    wd = _real("weight_decay", weight_decay)
    if not (math.isfinite(wd) and wd >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")


def first_nonfinite(x: npt.NDArray[np.floating]) -> tuple[int, ...] | None:
    """The index of the first NaN or inf in ``x`` (C order), or ``None``.

    Example:
        >>> first_nonfinite(np.array([[1.0, np.inf], [np.nan, 0.0]], np.float32))
        (0, 1)
    """
    flags = np.isfinite(x)
    if bool(flags.all()):
        return None
    flat = int(np.argmin(flags.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat, x.shape))


def check_finite_samples(x: npt.ArrayLike, what: str) -> None:
    """Raises ``FloatingPointError`` naming the first sample (index along axis 0) of
    ``x`` that holds a NaN or inf. Non-float arrays are left to the caller's checks.

    Whole datasets are checked a block of samples at a time, so the check needs little
    memory beyond the data.
    """
    arr = np.asarray(x)
    if arr.dtype.kind != "f" or arr.ndim == 0:
        return
    per_sample = max(int(np.prod(arr.shape[1:])), 1)
    block = max(_BLOCK_VALUES // per_sample, 1)
    for start in range(0, len(arr), block):
        where = first_nonfinite(arr[start : start + block])
        if where is not None:
            index = (start + where[0], *where[1:])
            inner = ", ".join(str(i) for i in index[1:])
            raise FloatingPointError(
                f"{what}: sample {index[0]} holds a non-finite value ({arr[index]} at [{inner}])"
            )
