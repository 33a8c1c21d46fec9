"""Reader for Fashion-MNIST (and MNIST) in the IDX format, plain or gzip-compressed."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from superneurons.data._dataset import ArrayDataset, standardize
from superneurons.data._errors import DatasetFormatError

__all__ = ["load_fashion_mnist"]

FASHION_MNIST_CLASSES = 10
IDX_UBYTE = 0x08  # IDX type code for unsigned bytes, the only one these files use
HEADER_BYTES = 4  # bytes: magic number; then 4 bytes (big-endian) per dimension
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_fashion_mnist(
    directory: str | os.PathLike[str], normalize: bool = False
) -> tuple[ArrayDataset, ArrayDataset]:
    """Read Fashion-MNIST from its IDX files as ``(train, test)``, 1x28x28, 10 classes.

    ``directory`` holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each either plain or with
    a ``.gz`` suffix as distributed. The magic numbers, the sizes in the headers and the
    label range are checked. Pixels are scaled to float32 in [0, 1]; with ``normalize``
    both splits are then standardized with the training statistics. The image size is
    taken from the header, so MNIST files read the same way.

    Raises ``FileNotFoundError`` for a missing file and ``DatasetFormatError`` (a
    ``ValueError``) naming the file when one is malformed.

    Example:
        >>> import tempfile, pathlib, struct
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for split, n in (("train", 3), ("t10k", 2)):
        ...     images = struct.pack(">IIII", 0x803, n, 28, 28) + bytes(n * 28 * 28)
        ...     labels = struct.pack(">II", 0x801, n) + bytes(range(n))
        ...     _ = (d / f"{split}-images-idx3-ubyte").write_bytes(images)
        ...     _ = (d / f"{split}-labels-idx1-ubyte").write_bytes(labels)
        >>> train, test = load_fashion_mnist(d)
        >>> len(train), len(test), train.sample_shape, train.y.tolist()
        (3, 2, (1, 28, 28), [0, 1, 2])
    """
    root = Path(directory)
    train = _read_split(root, *FILES["train"])
    test = _read_split(root, *FILES["test"])
    if normalize:
        train, test = standardize(train, test)
    return train, test


def _read_split(root: Path, images_name: str, labels_name: str) -> ArrayDataset:
    images_path, images_raw = _read_maybe_gzip(root, images_name)
    labels_path, labels_raw = _read_maybe_gzip(root, labels_name)
    images = _parse_idx(images_path, images_raw, ndim=3)
    labels = _parse_idx(labels_path, labels_raw, ndim=1)
    if len(images) != len(labels):
        raise DatasetFormatError(
            f"{labels_path}: holds {len(labels)} labels but {images_path} holds "
            f"{len(images)} images"
        )
    bad = np.flatnonzero(labels >= FASHION_MNIST_CLASSES)
    if bad.size:
        raise DatasetFormatError(
            f"{labels_path}: label {int(bad[0])} is {int(labels[bad[0]])}, expected 0..9"
        )
    x = images[:, np.newaxis].astype(np.float32) / np.float32(255.0)
    return ArrayDataset(x, labels.astype(np.int32), FASHION_MNIST_CLASSES)


def _read_maybe_gzip(root: Path, name: str) -> tuple[Path, bytes]:
    plain = root / name
    if plain.is_file():
        return plain, plain.read_bytes()
    packed = root / f"{name}.gz"
    if packed.is_file():
        try:
            return packed, gzip.decompress(packed.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetFormatError(f"{packed}: not a valid gzip file ({exc})") from exc
    raise FileNotFoundError(f"{plain}: Fashion-MNIST file not found (nor {packed.name})")


def _parse_idx(path: Path, raw: bytes, ndim: int) -> np.ndarray:
    expected_magic = (IDX_UBYTE << 8) | ndim
    if len(raw) < HEADER_BYTES:
        raise DatasetFormatError(
            f"{path}: {len(raw)} bytes is too short for an IDX header "
            f"(magic number 0x{expected_magic:08x})"
        )
    magic = int.from_bytes(raw[:HEADER_BYTES], "big")
    if magic != expected_magic:
        raise DatasetFormatError(
            f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    header_bytes = HEADER_BYTES + 4 * ndim
    if len(raw) < header_bytes:
        raise DatasetFormatError(
            f"{path}: {len(raw)} bytes is too short for an IDX header with {ndim} "
            f"dimensions ({header_bytes} bytes)"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=HEADER_BYTES))
    expected = math.prod(dims)  # Python ints: 2**31 x 2**31 x 28 must not wrap around
    got = len(raw) - header_bytes
    if got != expected:
        raise DatasetFormatError(
            f"{path}: has {got} bytes of data after the header, expected {expected} "
            f"for the shape {dims} it declares"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(dims)
