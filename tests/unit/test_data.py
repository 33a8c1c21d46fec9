"""Datasets, file readers and the prefetching loader (plain NumPy, no C++ core)."""

from __future__ import annotations

import gc
import gzip
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from superneurons.data import (
    ArrayDataset,
    DataLoader,
    DatasetFormatError,
    digits,
    load_cifar10,
    load_fashion_mnist,
    standardize,
    synthetic,
)

LOADER_THREAD = "superneurons-data-loader"


def make_dataset(n: int = 23, classes: int = 3, shape=(2, 3, 3)) -> ArrayDataset:
    x = np.arange(n * int(np.prod(shape)), dtype=np.float32).reshape(n, *shape)
    y = (np.arange(n) % classes).astype(np.int32)
    return ArrayDataset(x, y, classes)


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOADER_THREAD]


# --- ArrayDataset -------------------------------------------------------------


def test_dataset_validates_shapes_and_dtypes() -> None:
    x = np.zeros((4, 1, 2, 2), np.float32)
    y = np.zeros(4, np.int32)
    with pytest.raises(ValueError, match=r"x must be a 4-D array"):
        ArrayDataset(x[0], y, 2)
    with pytest.raises(ValueError, match=r"x must be float32, got float64"):
        ArrayDataset(x.astype(np.float64), y, 2)
    with pytest.raises(ValueError, match=r"y must be a 1-D array"):
        ArrayDataset(x, y.reshape(2, 2), 2)
    with pytest.raises(ValueError, match=r"y must be int32, got int64"):
        ArrayDataset(x, y.astype(np.int64), 2)
    with pytest.raises(ValueError, match=r"x has 4 samples but y has 3 labels"):
        ArrayDataset(x, y[:3], 2)
    with pytest.raises(ValueError, match=r"num_classes must be >= 1"):
        ArrayDataset(x, y, 0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\).*from 0 to 5"):
        ArrayDataset(x, np.array([0, 1, 5, 0], np.int32), 2)


def test_dataset_makes_arrays_contiguous() -> None:
    x = np.zeros((4, 2, 3, 3), np.float32).transpose(0, 1, 3, 2)
    ds = ArrayDataset(x, np.zeros(4, np.int32), 1)
    assert ds.x.flags.c_contiguous
    assert ds.sample_shape == (2, 3, 3)


def test_split_is_stratified_disjoint_and_seeded() -> None:
    y = np.repeat(np.arange(4, dtype=np.int32), [40, 20, 30, 10])
    x = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1)
    ds = ArrayDataset(x, y, 4)
    train, test = ds.split(0.2, seed=5)
    assert (len(train), len(test)) == (80, 20)
    assert np.abs(np.bincount(test.y, minlength=4) - [8, 4, 6, 2]).max() <= 1
    ids = np.concatenate([train.x.ravel(), test.x.ravel()])
    assert sorted(ids.tolist()) == list(range(100))
    again_train, _ = ds.split(0.2, seed=5)
    other_train, _ = ds.split(0.2, seed=6)
    assert np.array_equal(train.x, again_train.x)
    assert not np.array_equal(train.x, other_train.x)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.01])
def test_split_rejects_empty_parts(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        make_dataset(n=10).split(fraction)


def test_standardize_uses_train_statistics_only() -> None:
    rng = np.random.default_rng(0)
    train = ArrayDataset(
        rng.normal(3.0, 2.0, (200, 2, 4, 4)).astype(np.float32), np.zeros(200, np.int32), 1
    )
    test = ArrayDataset(np.full((5, 2, 4, 4), 3.0, np.float32), np.zeros(5, np.int32), 1)
    train_s, test_s = standardize(train, test)
    assert np.allclose(train_s.x.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    assert np.allclose(train_s.x.std(axis=(0, 2, 3)), 1.0, atol=1e-4)
    mean = train.x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = train.x.std(axis=(0, 2, 3), dtype=np.float64)
    expected = (3.0 - mean) / std
    assert np.allclose(test_s.x[0, :, 0, 0], expected, atol=1e-5)


# --- bundled and synthetic data -----------------------------------------------


def test_digits_split_and_standardization() -> None:
    train, test = digits(test_fraction=0.25, seed=1)
    assert train.sample_shape == (1, 8, 8) and train.num_classes == 10
    assert len(train) + len(test) == 1797
    assert len(test) == 449
    assert abs(float(train.x.mean())) < 1e-5
    assert abs(float(train.x.std()) - 1.0) < 1e-4
    assert set(np.unique(test.y).tolist()) == set(range(10))
    again, _ = digits(test_fraction=0.25, seed=1)
    assert np.array_equal(train.x, again.x) and np.array_equal(train.y, again.y)


def test_synthetic_is_seeded_and_shaped() -> None:
    a = synthetic("cifar", n=50, seed=7)
    b = synthetic("cifar", n=50, seed=7)
    c = synthetic("cifar", n=50, seed=8)
    assert a.sample_shape == (3, 32, 32) and a.num_classes == 10 and len(a) == 50
    assert a.x.dtype == np.float32 and a.y.dtype == np.int32
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert np.bincount(a.y).tolist() == [5] * 10
    custom = synthetic((1, 5, 7), n=9, num_classes=3, seed=0)
    assert custom.sample_shape == (1, 5, 7) and custom.num_classes == 3


def test_synthetic_imagenet_preset_shape() -> None:
    ds = synthetic("imagenet", n=4, num_classes=2, seed=0)
    assert ds.sample_shape == (3, 224, 224) and ds.num_classes == 2


def test_synthetic_is_learnable() -> None:
    # Classes differ by their smooth template: the nearest class mean of the
    # training split classifies the held-out split far above chance (10%).
    train, test = synthetic((1, 8, 8), n=600, num_classes=10, seed=2).split(0.3, seed=0)
    means = np.stack([train.x[train.y == k].mean(axis=0).ravel() for k in range(10)])
    scores = test.x.reshape(len(test), -1) @ means.T - 0.5 * (means**2).sum(axis=1)
    accuracy = float((scores.argmax(axis=1) == test.y).mean())
    assert accuracy > 0.8


def test_synthetic_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown preset 'mnist'"):
        synthetic("mnist")
    with pytest.raises(ValueError, match=r"shape must be \(C, H, W\)"):
        synthetic((3, 32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be >= 1"):
        synthetic(n=0)


# --- CIFAR-10 binary reader ---------------------------------------------------

CIFAR_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_FILES = [*CIFAR_TRAIN, "test_batch.bin"]


def cifar_records(labels: list[int], seed: int) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    raw = b"".join(bytes([lab]) + img.tobytes() for lab, img in zip(labels, pixels, strict=True))
    return raw, pixels


def write_cifar(directory: Path) -> dict[str, tuple[list[int], np.ndarray]]:
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate(CIFAR_FILES):
        labels = [(i + j) % 10 for j in range(3)]
        raw, pixels = cifar_records(labels, seed=i)
        (directory / name).write_bytes(raw)
        written[name] = (labels, pixels)
    return written


def test_cifar10_round_trip(tmp_path: Path) -> None:
    written = write_cifar(tmp_path)
    train, test = load_cifar10(tmp_path)
    assert (len(train), len(test)) == (15, 3)
    assert train.sample_shape == (3, 32, 32)
    expected_y = [label for n in CIFAR_TRAIN for label in written[n][0]]
    assert train.y.tolist() == expected_y
    expected_x = np.concatenate([written[n][1] for n in CIFAR_TRAIN]) / 255.0
    assert np.allclose(train.x, expected_x, atol=1e-7)
    # Record layout is label, then the R, G and B planes: check one pixel by hand.
    raw = (tmp_path / "test_batch.bin").read_bytes()
    green_row1_col2 = raw[1 + 1024 + 32 + 2]
    assert test.x[0, 1, 1, 2] == np.float32(green_row1_col2 / 255.0)
    assert train.x.min() >= 0.0 and train.x.max() <= 1.0


def test_cifar10_archive_folder_and_normalize(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-bin")
    train, test = load_cifar10(tmp_path, normalize=True)
    assert np.allclose(train.x.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    assert len(test) == 3


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "file is empty"),
        (b"\x01" * 3072, "not a multiple of the 3073-byte"),
        (b"\x01" * (3073 * 2 + 5), "not a multiple of the 3073-byte"),
        (bytes([3]) + bytes(3072) + bytes([10]) + bytes(3072), "record 1 has label 10"),
    ],
    ids=["empty", "short-record", "trailing-bytes", "label-out-of-range"],
)
def test_cifar10_malformed_files(tmp_path: Path, payload: bytes, message: str) -> None:
    write_cifar(tmp_path)
    bad = tmp_path / "data_batch_3.bin"
    bad.write_bytes(payload)
    with pytest.raises(DatasetFormatError, match=message) as info:
        load_cifar10(tmp_path)
    assert str(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_cifar10_missing_file(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_batch\.bin"):
        load_cifar10(tmp_path)


# --- Fashion-MNIST IDX reader -------------------------------------------------

IDX_FILES = {  # file name -> (array key, encoder)
    "train-images-idx3-ubyte": "train_images",
    "train-labels-idx1-ubyte": "train_labels",
    "t10k-images-idx3-ubyte": "test_images",
    "t10k-labels-idx1-ubyte": "test_labels",
}


def idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x803, *images.shape) + images.tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx(directory: Path, compress: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train_labels": np.array([0, 9, 3, 3, 1, 5], np.uint8),
        "test_images": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "test_labels": np.array([7, 2], np.uint8),
    }
    for name, key in IDX_FILES.items():
        encode = idx_images if key.endswith("images") else idx_labels
        raw = encode(arrays[key])
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_round_trip(tmp_path: Path, compress: bool) -> None:
    arrays = write_idx(tmp_path, compress)
    train, test = load_fashion_mnist(tmp_path)
    assert train.sample_shape == (1, 28, 28) and train.num_classes == 10
    assert train.y.tolist() == arrays["train_labels"].tolist()
    assert test.y.tolist() == arrays["test_labels"].tolist()
    assert np.array_equal(train.x[:, 0], arrays["train_images"] / np.float32(255.0))
    assert np.array_equal(test.x[:, 0], arrays["test_images"] / np.float32(255.0))


def test_fashion_mnist_normalize(tmp_path: Path) -> None:
    write_idx(tmp_path)
    train, _ = load_fashion_mnist(tmp_path, normalize=True)
    assert abs(float(train.x.mean())) < 1e-5


def _images(n: int = 6) -> bytes:
    return idx_images(np.zeros((n, 28, 28), np.uint8))


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("train-images-idx3-ubyte", b"\x00\x00", "too short for an IDX header"),
        ("train-images-idx3-ubyte", struct.pack(">I", 0x803), "too short for an IDX header"),
        ("train-images-idx3-ubyte", b"\x1f\x8b" + _images()[2:], "bad magic number"),
        (
            "train-images-idx3-ubyte",
            struct.pack(">IIII", 0x903, 6, 28, 28) + bytes(6 * 784),
            "bad magic number 0x00000903, expected 0x00000803",
        ),
        ("train-images-idx3-ubyte", idx_labels(np.zeros(6)), "bad magic number 0x00000801"),
        ("train-images-idx3-ubyte", _images()[:-1], "expected 4704 for the shape"),
        ("train-images-idx3-ubyte", _images() + b"\x00", "has 4705 bytes of data"),
        ("train-labels-idx1-ubyte", idx_labels(np.zeros(5)), "holds 5 labels but"),
        ("t10k-labels-idx1-ubyte", idx_labels(np.array([1, 10])), "label 1 is 10"),
    ],
    ids=[
        "shorter-than-magic",
        "shorter-than-dims",
        "gzip-magic-in-plain-file",
        "wrong-type-code",
        "labels-magic-for-images",
        "truncated-data",
        "trailing-data",
        "count-mismatch",
        "label-out-of-range",
    ],
)
def test_fashion_mnist_malformed_files(
    tmp_path: Path, name: str, payload: bytes, message: str
) -> None:
    write_idx(tmp_path)
    bad = tmp_path / name
    bad.write_bytes(payload)
    with pytest.raises(DatasetFormatError, match=message) as info:
        load_fashion_mnist(tmp_path)
    assert str(bad) in str(info.value)


def test_fashion_mnist_corrupt_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path, compress=True)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(_images(2))[:-12])
    with pytest.raises(DatasetFormatError, match="not a valid gzip file") as info:
        load_fashion_mnist(tmp_path)
    assert str(bad) in str(info.value)


def test_fashion_mnist_missing_file(tmp_path: Path) -> None:
    write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path)


# --- DataLoader ---------------------------------------------------------------


def collect(loader: DataLoader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(xb.copy(), yb.copy()) for xb, yb in loader]


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_loader_covers_every_sample_once(prefetch: int) -> None:
    ds = make_dataset(n=23)
    loader = DataLoader(ds, batch_size=5, seed=3, prefetch=prefetch)
    batches = collect(loader)
    assert len(batches) == len(loader) == 5
    assert [len(yb) for _, yb in batches] == [5, 5, 5, 5, 3]
    for xb, yb in batches:
        assert xb.dtype == np.float32 and yb.dtype == np.int32
        assert xb.flags.c_contiguous and yb.flags.c_contiguous
        assert xb.shape[1:] == ds.sample_shape
    first = np.concatenate([xb[:, 0, 0, 0] for xb, _ in batches]) / 18
    assert sorted(first.astype(int).tolist()) == list(range(23))


def test_loader_drop_last_and_no_shuffle() -> None:
    ds = make_dataset(n=23)
    loader = DataLoader(ds, batch_size=5, shuffle=False, drop_last=True)
    batches = collect(loader)
    assert len(batches) == len(loader) == 4
    assert np.array_equal(np.concatenate([yb for _, yb in batches]), ds.y[:20])


def test_loader_order_depends_on_seed_and_epoch_only() -> None:
    ds = make_dataset(n=40)

    def epoch_labels(loader: DataLoader) -> list[list[float]]:
        return [xb[:, 0, 0, 0].tolist() for xb, _ in loader]

    a = DataLoader(ds, batch_size=8, seed=11)
    b = DataLoader(ds, batch_size=8, seed=11, prefetch=0)
    a0, a1 = epoch_labels(a), epoch_labels(a)
    assert a.epoch == 2
    assert a0 != a1  # a new order every epoch
    assert epoch_labels(b) == a0 and epoch_labels(b) == a1  # prefetch keeps the order
    b.set_epoch(1)
    assert epoch_labels(b) == a1  # resuming at epoch 1
    c = DataLoader(ds, batch_size=8, seed=12)
    assert epoch_labels(c) != a0


def test_loader_prefetches_ahead_in_order() -> None:
    class Recording(ArrayDataset):
        def __init__(self, base: ArrayDataset) -> None:
            super().__init__(base.x, base.y, base.num_classes)
            self.taken: list[int] = []

        def take(self, indices):  # type: ignore[no-untyped-def]
            self.taken.append(int(indices[0]))
            return super().take(indices)

    ds = Recording(make_dataset(n=20))
    loader = DataLoader(ds, batch_size=2, shuffle=False, prefetch=3)
    it = iter(loader)
    first = next(it)
    deadline = time.monotonic() + 5.0
    # While the consumer holds batch 0, the worker fills the queue with 1..3 and
    # prepares batch 4, which waits for a free slot.
    while len(ds.taken) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ds.taken == [0, 2, 4, 6, 8]
    rest = [yb for _, yb in it]
    assert first[1].tolist() == [0, 1]
    assert len(rest) == 9
    assert ds.taken == list(range(0, 20, 2))


class Exploding(ArrayDataset):
    def take(self, indices):  # type: ignore[no-untyped-def]
        if int(np.min(indices)) >= 10:
            raise RuntimeError("disk on fire")
        return super().take(indices)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_worker_exception_reaches_consumer(prefetch: int) -> None:
    base = make_dataset(n=20)
    loader = DataLoader(
        Exploding(base.x, base.y, 3), batch_size=5, shuffle=False, prefetch=prefetch
    )
    seen = []
    with pytest.raises(RuntimeError, match="disk on fire"):
        for _, yb in loader:
            seen.append(len(yb))
    assert seen == [5, 5]
    gc.collect()
    assert loader_threads() == []


def test_loader_abandoned_iteration_stops_the_thread() -> None:
    ds = make_dataset(n=200)
    loader = DataLoader(ds, batch_size=2, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 1:
            break
    assert loader_threads() == []  # finalized when the loop drops the iterator
    it = iter(loader)
    next(it)
    assert len(loader_threads()) == 1
    del it
    assert loader_threads() == []


def test_loader_consumer_exception_stops_the_thread() -> None:
    loader = DataLoader(make_dataset(n=100), batch_size=2, prefetch=2)
    with pytest.raises(KeyError):
        for _ in loader:
            raise KeyError("consumer failed")
    gc.collect()
    assert loader_threads() == []


def test_loader_rejects_bad_arguments() -> None:
    ds = make_dataset()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="prefetch must be an integer >= 0"):
        DataLoader(ds, batch_size=2, prefetch=-1)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        DataLoader(ds, batch_size=2).set_epoch(-1)
