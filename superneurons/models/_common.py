"""Argument checks and small building blocks shared by the model-zoo builders."""

from __future__ import annotations

from collections.abc import Sequence

from superneurons.graph import Graph, TensorHandle

__all__ = ["SpatialStep", "check_common", "check_image_size", "conv_bn_relu"]

# One spatial reduction on the main path: (kernel, stride, padding), square.
SpatialStep = tuple[int, int, int]

# The largest image size `check_image_size` searches when it reports the minimum.
_MAX_SEARCH_SIZE = 4096  # pixels


def check_common(model: str, num_classes: int, image_size: int, in_channels: int) -> None:
    """Raise ValueError unless the arguments every zoo builder takes are positive ints."""
    for what, value in (
        ("num_classes", num_classes),
        ("image_size", image_size),
        ("in_channels", in_channels),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{model}: {what} must be an integer >= 1, got {value!r}")


def _output_size(size: int, steps: Sequence[SpatialStep]) -> int:
    for kernel, stride, padding in steps:
        size = (size + 2 * padding - kernel) // stride + 1
        if size < 1:
            return 0
    return size


def check_image_size(model: str, image_size: int, steps: Sequence[SpatialStep]) -> None:
    """Raise ValueError when ``steps`` shrink an ``image_size`` image to nothing.

    ``steps`` lists the convolutions and pools that reduce the spatial size along the
    main path; the message gives the smallest image size that survives them all.
    """
    if _output_size(image_size, steps) >= 1:
        return
    smallest = next(
        (s for s in range(image_size + 1, _MAX_SEARCH_SIZE) if _output_size(s, steps) >= 1),
        None,
    )
    hint = f"the smallest that works is {smallest}" if smallest else "no size works"
    raise ValueError(
        f"{model}: image_size={image_size} is too small: its strided and unpadded "
        f"convolutions and pools shrink the feature map to nothing; {hint}"
    )


def conv_bn_relu(
    g: Graph,
    x: TensorHandle,
    out_channels: int,
    kernel: int | tuple[int, int],
    name: str,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    relu: bool = True,
) -> TensorHandle:
    """Convolution without bias (the batch norm's shift replaces it), batch norm, ReLU."""
    y = g.conv2d(
        x, out_channels, kernel, stride=stride, padding=padding, bias=False, name=f"{name}.conv"
    )
    y = g.batchnorm(y, name=f"{name}.bn")
    return g.relu(y, name=f"{name}.relu") if relu else y
