"""In-memory image classification datasets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ArrayDataset", "standardize"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


class ArrayDataset:
    """Images and labels held in memory, in the layout the executor consumes.

    ``x`` is float32 ``[N, C, H, W]`` and ``y`` is int32 ``[N]`` with values in
    ``[0, num_classes)``. Both are stored C-contiguous, so a batch taken from them can
    be handed to the C++ core without another copy. Dtypes are not converted silently:
    a float64 array doubles the memory, so the caller decides.

    Example:
        >>> import numpy as np
        >>> ds = ArrayDataset(np.zeros((10, 1, 8, 8), np.float32),
        ...                   np.arange(10, dtype=np.int32) % 2, num_classes=2)
        >>> len(ds), ds.sample_shape
        (10, (1, 8, 8))
        >>> train, test = ds.split(0.2, seed=0)
        >>> len(train), len(test)
        (8, 2)
    """

    x: FloatArray
    y: IntArray
    num_classes: int

    def __init__(self, x: FloatArray, y: IntArray, num_classes: int) -> None:
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"ArrayDataset: x must be a 4-D array [N, C, H, W], got {got}")
        if x.dtype != np.float32:
            raise ValueError(
                f"ArrayDataset: x must be float32, got {x.dtype} "
                "(convert with x.astype(np.float32))"
            )
        if not isinstance(y, np.ndarray) or y.ndim != 1:
            got = f"shape {y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
            raise ValueError(f"ArrayDataset: y must be a 1-D array [N], got {got}")
        if y.dtype != np.int32:
            raise ValueError(
                f"ArrayDataset: y must be int32, got {y.dtype} (convert with y.astype(np.int32))"
            )
        if len(x) != len(y):
            raise ValueError(f"ArrayDataset: x has {len(x)} samples but y has {len(y)} labels")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise TypeError(f"ArrayDataset: num_classes must be an int, got {num_classes!r}")
        if num_classes < 1:
            raise ValueError(f"ArrayDataset: num_classes must be >= 1, got {num_classes}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(
                f"ArrayDataset: labels must lie in [0, {num_classes}), "
                f"got values from {int(y.min())} to {int(y.max())}"
            )
        self.x = np.ascontiguousarray(x)
        self.y = np.ascontiguousarray(y)
        self.num_classes = int(num_classes)

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(n={len(self)}, sample_shape={self.sample_shape}, "
            f"num_classes={self.num_classes})"
        )

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """The per-sample shape ``(C, H, W)``, the one to give ``Graph.input``."""
        c, h, w = self.x.shape[1:]
        return (int(c), int(h), int(w))

    def take(self, indices: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
        """Return new contiguous arrays ``(x[indices], y[indices])``.

        Example:
            >>> import numpy as np
            >>> ds = ArrayDataset(np.ones((4, 1, 2, 2), np.float32),
            ...                   np.array([0, 1, 0, 1], np.int32), 2)
            >>> xb, yb = ds.take([3, 0])
            >>> xb.shape, yb.tolist()
            ((2, 1, 2, 2), [1, 0])
        """
        idx = np.asarray(indices, dtype=np.intp)
        return self.x[idx], self.y[idx]

    def subset(self, indices: npt.ArrayLike) -> ArrayDataset:
        """A new dataset holding the samples at ``indices`` (copied)."""
        x, y = self.take(indices)
        return ArrayDataset(x, y, self.num_classes)

    def split(self, test_fraction: float, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
        """Split into ``(train, test)``, stratified by label.

        ``floor(N * test_fraction)`` samples go to the test split; every class
        contributes within one sample of its share. The same seed gives the same split.

        Example:
            >>> import numpy as np
            >>> y = np.repeat(np.arange(3, dtype=np.int32), 10)
            >>> ds = ArrayDataset(np.zeros((30, 1, 1, 1), np.float32), y, 3)
            >>> train, test = ds.split(0.3, seed=1)
            >>> np.bincount(test.y).tolist()
            [3, 3, 3]
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"split: test_fraction must be in (0, 1), got {test_fraction}")
        n = len(self)
        # Shuffle, then group by class (stable sort keeps the shuffled order inside a
        # class) and pick every position where floor(i * f) steps: each class then
        # gets within one sample of f times its size, and the total is floor(n * f).
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        grouped = perm[np.argsort(self.y[perm], kind="stable")]
        positions = np.floor(np.arange(n + 1, dtype=np.float64) * test_fraction + 1e-9)
        steps = positions[1:] > positions[:-1]
        n_test = int(steps.sum())
        if n_test == 0 or n_test == n:
            raise ValueError(
                f"split: test_fraction={test_fraction} of {n} samples leaves "
                f"{n - n_test} train and {n_test} test samples; both must be non-empty"
            )
        test_idx = np.sort(grouped[steps])
        train_idx = np.sort(grouped[~steps])
        return self.subset(train_idx), self.subset(test_idx)


def standardize(
    train: ArrayDataset, *others: ArrayDataset, eps: float = 1e-7
) -> tuple[ArrayDataset, ...]:
    """Standardize every dataset per channel with the mean and std of ``train`` only.

    Using the training statistics for the held-out splits keeps them honest: nothing
    about the test images leaks into the preprocessing. Returns new datasets in the
    order given, ``train`` first.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(5.0, 2.0, (100, 3, 4, 4)).astype(np.float32)
        >>> ds = ArrayDataset(x, np.zeros(100, np.int32), 1)
        >>> (out,) = standardize(ds)
        >>> bool(abs(out.x.mean()) < 1e-5 and abs(out.x.std() - 1) < 1e-4)
        True
    """
    mean = train.x.mean(axis=(0, 2, 3), dtype=np.float64).reshape(1, -1, 1, 1)
    std = train.x.std(axis=(0, 2, 3), dtype=np.float64).reshape(1, -1, 1, 1)
    scale = 1.0 / np.maximum(std, eps)
    out = []
    for ds in (train, *others):
        x = ((ds.x - mean) * scale).astype(np.float32)
        out.append(ArrayDataset(x, ds.y, ds.num_classes))
    return tuple(out)
