"""Residual networks (He et al., 2016): CIFAR-style basic blocks and ImageNet bottlenecks."""

from __future__ import annotations

from collections.abc import Sequence

from superneurons.graph import Graph, TensorHandle
from superneurons.models._common import check_common, conv_bn_relu

__all__ = ["resnet", "resnet50", "resnet101", "resnet152"]

_BOTTLENECK_EXPANSION = 4  # a bottleneck block's output has 4x its inner width
_IMAGENET_WIDTHS = (64, 128, 256, 512)  # inner widths of the four bottleneck stages


def resnet(
    depth: int | None = None,
    n: Sequence[int] | None = None,
    num_classes: int = 10,
    image_size: int = 32,
    in_channels: int = 3,
    width: int = 16,
) -> Graph:
    """A residual network, CIFAR-style from ``depth`` or ImageNet-style from ``n``.

    * ``depth`` (= 6n + 2, n >= 1): a 3x3 stem, then three stages of n basic blocks
      (two 3x3 convolutions) of widths ``width``, 2x and 4x, the last two stages
      starting with stride 2; global average pool and FC. ResNet-20/32/44/56/110.
    * ``n=(n1, n2, n3, n4)`` (depth = 3 * (n1 + n2 + n3 + n4) + 2): a 7x7/2 stem and a
      3x3/2 max pool, then four stages of bottleneck blocks (1x1, 3x3, 1x1) of inner
      widths 64, 128, 256, 512 and outputs 4x that, stride 2 on the 3x3 convolution
      of each stage's first block from the second stage on. ``width`` is not used.

    A block whose input and output shapes differ gets a projection shortcut (1x1
    convolution and batch norm); the counted depth leaves projections out, as the
    paper does. Every convolution is followed by batch norm; the residual sum comes
    before the block's last ReLU. Giving both ``depth`` and ``n`` is allowed when they
    agree (ImageNet-style).

    Example:
        >>> from superneurons.models import resnet
        >>> g = resnet(depth=20, num_classes=10, image_size=8, in_channels=1)
        >>> sum(spec.kind in ("conv2d", "fc") and ".shortcut" not in spec.name
        ...     for spec in g.layers)
        20
        >>> big = resnet(n=(3, 4, 6, 3), num_classes=1000, image_size=224)  # ResNet-50
    """
    check_common("resnet", num_classes, image_size, in_channels)
    if n is not None:
        stages = _check_n(n)
        imagenet_depth = 3 * sum(stages) + 2
        if depth is not None and depth != imagenet_depth:
            raise ValueError(
                f"resnet: depth={depth} does not match n={tuple(stages)}: "
                f"depth = 3*(n1+n2+n3+n4)+2 = {imagenet_depth}"
            )
        return _bottleneck_resnet(stages, num_classes, image_size, in_channels)
    if depth is None:
        raise ValueError(
            "resnet: give depth (CIFAR-style, depth = 6n+2, e.g. 20, 56, 110) or "
            "n=(n1, n2, n3, n4) (ImageNet-style, depth = 3*(n1+n2+n3+n4)+2)"
        )
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"resnet: depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 56, 110, ...), got {depth!r}"
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"resnet: width must be an integer >= 1, got {width!r}")
    return _basic_resnet((depth - 2) // 6, num_classes, image_size, in_channels, width)


def resnet50(num_classes: int = 1000, image_size: int = 224, in_channels: int = 3) -> Graph:
    """ResNet-50: bottleneck stages (3, 4, 6, 3); 25,557,032 parameters at 1,000 classes.

    Example:
        >>> from superneurons.models import resnet50
        >>> resnet50(num_classes=10, image_size=64).layers[-2].shape
        (10, 1, 1)
    """
    return resnet(
        n=(3, 4, 6, 3), num_classes=num_classes, image_size=image_size, in_channels=in_channels
    )


def resnet101(num_classes: int = 1000, image_size: int = 224, in_channels: int = 3) -> Graph:
    """ResNet-101: bottleneck stages (3, 4, 23, 3).

    Example:
        >>> from superneurons.models import resnet, resnet101
        >>> len(resnet101(image_size=64)) > len(resnet(n=(3, 4, 6, 3), image_size=64))
        True
    """
    return resnet(
        n=(3, 4, 23, 3), num_classes=num_classes, image_size=image_size, in_channels=in_channels
    )


def resnet152(num_classes: int = 1000, image_size: int = 224, in_channels: int = 3) -> Graph:
    """ResNet-152: bottleneck stages (3, 8, 36, 3).

    Example:
        >>> from superneurons.models import resnet152
        >>> resnet152(image_size=64).layers[-1].kind
        'softmax_cross_entropy'
    """
    return resnet(
        n=(3, 8, 36, 3), num_classes=num_classes, image_size=image_size, in_channels=in_channels
    )


def _check_n(n: Sequence[int]) -> tuple[int, int, int, int]:
    values = tuple(n) if isinstance(n, Sequence) else ()
    if len(values) != 4 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(
            "resnet: n must be four integers >= 1, (n1, n2, n3, n4) blocks per stage "
            f"(depth = 3*(n1+n2+n3+n4)+2; ResNet-50 is (3, 4, 6, 3)), got {n!r}"
        )
    return values[0], values[1], values[2], values[3]


def _basic_resnet(
    blocks: int, num_classes: int, image_size: int, in_channels: int, width: int
) -> Graph:
    g = Graph()
    x = g.input(shape=(in_channels, image_size, image_size), name="data")
    x = conv_bn_relu(g, x, width, 3, name="stem", padding=1)
    for stage in range(3):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(g, x, width << stage, stride, f"stage{stage + 1}.block{block + 1}")
    x = g.global_avgpool(x, name="pool")
    logits = g.fc(x, num_classes, name="fc")
    g.softmax_cross_entropy(logits, name="loss")
    return g


def _basic_block(
    g: Graph, x: TensorHandle, out_channels: int, stride: int, name: str
) -> TensorHandle:
    y = conv_bn_relu(g, x, out_channels, 3, name=f"{name}.conv1", stride=stride, padding=1)
    y = conv_bn_relu(g, y, out_channels, 3, name=f"{name}.conv2", padding=1, relu=False)
    return g.relu(
        g.add(y, _shortcut(g, x, y, stride, name), name=f"{name}.add"), name=f"{name}.relu"
    )


def _bottleneck_resnet(
    stages: tuple[int, int, int, int], num_classes: int, image_size: int, in_channels: int
) -> Graph:
    # Every downsampling here is padded and rounds up, so any image size builds.
    g = Graph()
    x = g.input(shape=(in_channels, image_size, image_size), name="data")
    x = conv_bn_relu(g, x, 64, 7, name="stem", stride=2, padding=3)
    x = g.maxpool(x, 3, stride=2, padding=1, name="stem.pool")
    for stage, (blocks, inner) in enumerate(zip(stages, _IMAGENET_WIDTHS, strict=True)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _bottleneck_block(g, x, inner, stride, f"stage{stage + 1}.block{block + 1}")
    x = g.global_avgpool(x, name="pool")
    logits = g.fc(x, num_classes, name="fc")
    g.softmax_cross_entropy(logits, name="loss")
    return g


def _bottleneck_block(
    g: Graph, x: TensorHandle, inner: int, stride: int, name: str
) -> TensorHandle:
    y = conv_bn_relu(g, x, inner, 1, name=f"{name}.conv1")
    y = conv_bn_relu(g, y, inner, 3, name=f"{name}.conv2", stride=stride, padding=1)
    y = conv_bn_relu(g, y, inner * _BOTTLENECK_EXPANSION, 1, name=f"{name}.conv3", relu=False)
    return g.relu(
        g.add(y, _shortcut(g, x, y, stride, name), name=f"{name}.add"), name=f"{name}.relu"
    )


def _shortcut(g: Graph, x: TensorHandle, y: TensorHandle, stride: int, name: str) -> TensorHandle:
    """Identity when shapes agree, else a strided 1x1 projection with batch norm."""
    if x.shape == y.shape:
        return x
    return conv_bn_relu(g, x, y.shape[0], 1, name=f"{name}.shortcut", stride=stride, relu=False)
