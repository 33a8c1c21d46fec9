"""Datasets that need no download: scikit-learn's digits and seeded synthetic images."""

from __future__ import annotations

import numpy as np

from superneurons.data._dataset import ArrayDataset, standardize

__all__ = ["PRESETS", "digits", "synthetic"]

# Named sample shapes for `synthetic`: (C, H, W) and the usual number of classes.
PRESETS: dict[str, tuple[tuple[int, int, int], int]] = {
    "cifar": ((3, 32, 32), 10),
    "imagenet": ((3, 224, 224), 1000),
    "digits": ((1, 8, 8), 10),
}


def digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    """scikit-learn's bundled handwritten digits as ``(train, test)``, 1x8x8, 10 classes.

    The 1,797 images are split (stratified, seeded), then standardized with the mean
    and standard deviation of the training split only. Needs scikit-learn, which ships
    the data, so nothing is downloaded.

    Example:
        >>> train, test = digits(test_fraction=0.2, seed=0)
        >>> train.sample_shape, len(train), len(test), train.num_classes
        ((1, 8, 8), 1438, 359, 10)
    """
    # Imported here: scikit-learn is heavy and only this dataset needs it.
    from sklearn.datasets import load_digits  # type: ignore[import-untyped, unused-ignore]

    bunch = load_digits()
    pixels = np.asarray(bunch.images, dtype=np.float32).reshape(-1, 1, 8, 8)
    x = pixels / np.float32(16.0)  # the digits' gray levels run from 0 to 16
    y = np.asarray(bunch.target, dtype=np.int32)
    train, test = ArrayDataset(x, y, 10).split(test_fraction, seed)
    train, test = standardize(train, test)
    return train, test


def synthetic(
    shape: tuple[int, int, int] | str = (3, 32, 32),
    n: int = 1000,
    num_classes: int | None = None,
    seed: int = 0,
    noise: float = 1.0,
) -> ArrayDataset:
    """Seeded synthetic images that a network can learn.

    Each class has its own smooth template (a sum of a few low-frequency waves per
    channel, unit variance); a sample is its class template scaled by a random
    amplitude in [0.5, 1.5] plus Gaussian noise of standard deviation ``noise``.
    Labels are balanced. The same arguments give bit-identical arrays.

    ``shape`` is ``(C, H, W)`` or a preset name: ``"cifar"`` (3x32x32, 10 classes),
    ``"imagenet"`` (3x224x224, 1000 classes) or ``"digits"`` (1x8x8, 10 classes);
    ``num_classes`` defaults to the preset's, or 10. A single dataset is returned:
    use ``.split()`` for a held-out part. Memory is ``n * C * H * W * 4`` bytes: 1,000
    ImageNet-sized samples take 600 MB.

    Example:
        >>> ds = synthetic("cifar", n=64, seed=3)
        >>> ds.sample_shape, len(ds), ds.num_classes
        ((3, 32, 32), 64, 10)
        >>> bool((synthetic("cifar", n=64, seed=3).x == ds.x).all())
        True
    """
    default_classes = 10
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise ValueError(
                f"synthetic: unknown preset {shape!r}; expected one of {sorted(PRESETS)} "
                "or a (C, H, W) tuple"
            )
        sample_shape, default_classes = PRESETS[shape]
    else:
        if len(shape) != 3 or any(int(d) < 1 for d in shape):
            raise ValueError(f"synthetic: shape must be (C, H, W) with positive sizes, got {shape}")
        c, h, w = (int(d) for d in shape)
        sample_shape = (c, h, w)
    classes = default_classes if num_classes is None else num_classes
    if classes < 1:
        raise ValueError(f"synthetic: num_classes must be >= 1, got {classes}")
    if n < 1:
        raise ValueError(f"synthetic: n must be >= 1, got {n}")
    if noise < 0:
        raise ValueError(f"synthetic: noise must be >= 0, got {noise}")

    rng = np.random.default_rng(seed)
    waves = _draw_waves(rng, classes, sample_shape[0])
    y = rng.permutation(np.arange(n) % classes).astype(np.int32)
    amplitude = rng.uniform(0.5, 1.5, size=n).astype(np.float32)
    x = rng.standard_normal((n, *sample_shape), dtype=np.float32)
    x *= np.float32(noise)
    # One class at a time: an ImageNet-sized template for each of 1,000 classes
    # would take 600 MB, more than the samples themselves.
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        template = _template(waves[:, label], sample_shape)
        x[members] += amplitude[members, None, None, None] * template
    return ArrayDataset(x, y, classes)


def _draw_waves(rng: np.random.Generator, classes: int, channels: int) -> np.ndarray:
    """Parameters ``(fy, fx, phase)`` of 3 plane waves per class and channel.

    Shape ``[3 waves, classes, channels, 3]``. Frequencies of 0..2 cycles per image
    keep the patterns smooth at any size; a wave with both frequencies zero is a
    constant that the centring would remove, so it gets fx = 1.
    """
    size = (3, classes, channels)
    fy = rng.integers(0, 3, size=size).astype(np.float64)
    fx = rng.integers(0, 3, size=size).astype(np.float64)
    fx[(fx == 0) & (fy == 0)] = 1.0
    phase = rng.uniform(0.0, 2.0 * np.pi, size=size)
    return np.stack([fy, fx, phase], axis=-1)


def _template(waves: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The zero-mean, unit-variance template ``[C, H, W]`` of one class's waves."""
    _, h, w = shape
    rows = np.arange(h).reshape(1, h, 1) / h
    cols = np.arange(w).reshape(1, 1, w) / w
    template = np.zeros(shape, dtype=np.float64)
    for fy, fx, phase in (wave.T[:, :, None, None] for wave in waves):
        # cos(a + b) = cos a cos b - sin a sin b: trigonometry on one row and one
        # column per channel instead of on every pixel.
        a = 2.0 * np.pi * fy * rows + phase
        b = 2.0 * np.pi * fx * cols
        template += np.cos(a) * np.cos(b) - np.sin(a) * np.sin(b)
    template -= template.mean()
    template /= max(float(template.std()), 1e-6)
    return template.astype(np.float32)
