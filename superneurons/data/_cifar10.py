"""Reader for the CIFAR-10 binary format (the "binary version" of the dataset)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from superneurons.data._dataset import ArrayDataset, standardize
from superneurons.data._errors import DatasetFormatError

__all__ = ["load_cifar10"]

CIFAR10_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)  # (C, H, W); channel planes R, G, B, each 32x32 row-major
RECORD_BYTES = 1 + 3 * 32 * 32  # bytes: one label byte, then 3,072 pixel bytes
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
# The official archive unpacks into this folder; accept its parent as well.
ARCHIVE_FOLDER = "cifar-10-batches-bin"


def load_cifar10(
    directory: str | os.PathLike[str], normalize: bool = False
) -> tuple[ArrayDataset, ArrayDataset]:
    """Read CIFAR-10 from its binary files as ``(train, test)``, 3x32x32, 10 classes.

    ``directory`` holds ``data_batch_1.bin`` ... ``data_batch_5.bin`` and
    ``test_batch.bin`` (or is the folder that contains ``cifar-10-batches-bin/``). Each
    file is a sequence of 3,073-byte records: a label byte, then the red, green and
    blue 32x32 planes. Pixels are scaled to float32 in [0, 1]; with ``normalize`` both
    splits are then standardized per channel with the training statistics.

    Raises ``FileNotFoundError`` for a missing file and ``DatasetFormatError`` (a
    ``ValueError``) naming the file when one is malformed.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> record = np.zeros(3073, np.uint8); record[0] = 7
        >>> for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        ...     _ = (d / name).write_bytes(record.tobytes() * 2)
        >>> train, test = load_cifar10(d)
        >>> len(train), len(test), train.sample_shape, train.y[:2].tolist()
        (10, 2, (3, 32, 32), [7, 7])
    """
    root = Path(directory)
    if not (root / TEST_FILES[0]).exists() and (root / ARCHIVE_FOLDER).is_dir():
        root = root / ARCHIVE_FOLDER
    train = _read_files(root, TRAIN_FILES)
    test = _read_files(root, TEST_FILES)
    if normalize:
        train, test = standardize(train, test)
    return train, test


def _read_files(root: Path, names: tuple[str, ...]) -> ArrayDataset:
    xs, ys = [], []
    for name in names:
        x, y = _read_batch(root / name)
        xs.append(x)
        ys.append(y)
    return ArrayDataset(np.concatenate(xs), np.concatenate(ys), CIFAR10_CLASSES)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: CIFAR-10 batch file not found (expected {', '.join(TRAIN_FILES)} "
            f"and {TEST_FILES[0]} from the binary version of CIFAR-10)"
        )
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if raw.size == 0:
        raise DatasetFormatError(f"{path}: file is empty, expected {RECORD_BYTES}-byte records")
    if raw.size % RECORD_BYTES:
        raise DatasetFormatError(
            f"{path}: size {raw.size} bytes is not a multiple of the {RECORD_BYTES}-byte "
            f"CIFAR-10 record (1 label byte + 3072 pixel bytes); the file is truncated "
            "or not the binary version"
        )
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    bad = np.flatnonzero(labels >= CIFAR10_CLASSES)
    if bad.size:
        raise DatasetFormatError(
            f"{path}: record {int(bad[0])} has label {int(labels[bad[0]])}, expected 0..9"
        )
    pixels = records[:, 1:].reshape(-1, *IMAGE_SHAPE)
    x = pixels.astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int32)
