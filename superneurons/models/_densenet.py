"""DenseNet-BC (Huang, Liu, van der Maaten and Weinberger, 2017)."""

from __future__ import annotations

from collections.abc import Sequence

from superneurons.graph import Graph, TensorHandle
from superneurons.models._common import SpatialStep, check_common, check_image_size

__all__ = ["densenet"]

# ImageNet DenseNet-BC: depth -> (dense layers per block, growth rate); depth is
# 2 * sum(blocks) + 5 (two convolutions per dense layer, the stem, three transitions, FC).
IMAGENET_CONFIGS: dict[int, tuple[tuple[int, ...], int]] = {
    121: ((6, 12, 24, 16), 32),
    161: ((6, 12, 36, 24), 48),
    169: ((6, 12, 32, 32), 32),
    201: ((6, 12, 48, 32), 32),
}
_CIFAR_GROWTH = 12  # the paper's CIFAR DenseNet-BC growth rate (k = 12)


def densenet(
    depth: int | None = None,
    block_config: Sequence[int] | None = None,
    growth_rate: int | None = None,
    num_classes: int = 1000,
    image_size: int = 224,
    in_channels: int = 3,
    compression: float = 0.5,
    bottleneck_width: int = 4,
    dropout: float = 0.0,
) -> Graph:
    """DenseNet-BC: dense blocks whose layers each see the concat of all earlier outputs.

    A dense layer is BN-ReLU-1x1 conv (``bottleneck_width * growth_rate`` channels),
    BN-ReLU-3x3 conv (``growth_rate`` channels), optional dropout; its output is
    concatenated onto the block's running feature map. Between blocks a transition
    (BN-ReLU-1x1 conv keeping ``compression`` of the channels, 2x2/2 average pool)
    halves the size. A final BN-ReLU, global average pool and FC classify.

    * ``block_config`` (e.g. ``(6, 12, 24, 16)``) or ``depth`` in 121, 161, 169, 201:
      the ImageNet layout, with a 7x7/2 convolution of ``2 * growth_rate`` channels
      and a 3x3/2 max pool as the stem. The default is DenseNet-121 (7,978,856
      parameters at 1,000 classes); growth rate 32 (48 for DenseNet-161).
    * ``depth = 6N + 4`` otherwise (e.g. 100): the paper's CIFAR layout, three blocks of
      N dense layers after a 3x3 convolution, growth rate 12 unless given.

    Example:
        >>> from superneurons.models import densenet
        >>> g = densenet(depth=40, num_classes=10, image_size=32)  # CIFAR DenseNet-BC-40
        >>> g.layers[-2].shape
        (10, 1, 1)
        >>> g = densenet(block_config=(2, 2), growth_rate=8, num_classes=5, image_size=32)
    """
    check_common("densenet", num_classes, image_size, in_channels)
    blocks, default_growth, imagenet_stem = _layout(depth, block_config)
    growth = default_growth if growth_rate is None else growth_rate
    for what, value in (("growth_rate", growth), ("bottleneck_width", bottleneck_width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"densenet: {what} must be an integer >= 1, got {value!r}")
    if not 0.0 < compression <= 1.0:
        raise ValueError(f"densenet: compression must be in (0, 1], got {compression}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"densenet: dropout must be in [0, 1), got {dropout}")
    stem_steps: list[SpatialStep] = [(7, 2, 3), (3, 2, 1)] if imagenet_stem else []
    check_image_size("densenet", image_size, stem_steps + [(2, 2, 0)] * (len(blocks) - 1))

    g = Graph()
    x = g.input(shape=(in_channels, image_size, image_size), name="data")
    if imagenet_stem:
        x = g.conv2d(x, 2 * growth, 7, stride=2, padding=3, bias=False, name="stem.conv")
        x = g.relu(g.batchnorm(x, name="stem.bn"), name="stem.relu")
        x = g.maxpool(x, 3, stride=2, padding=1, name="stem.pool")
    else:
        x = g.conv2d(x, 2 * growth, 3, padding=1, bias=False, name="stem.conv")
    for b, layers in enumerate(blocks):
        for i in range(layers):
            new = _dense_layer(
                g, x, growth, bottleneck_width, dropout, f"block{b + 1}.layer{i + 1}"
            )
            x = g.concat([x, new], name=f"block{b + 1}.layer{i + 1}.concat")
        if b + 1 < len(blocks):
            x = _transition(g, x, max(1, int(x.shape[0] * compression)), f"transition{b + 1}")
    x = g.relu(g.batchnorm(x, name="final.bn"), name="final.relu")
    x = g.global_avgpool(x, name="pool")
    logits = g.fc(x, num_classes, name="fc")
    g.softmax_cross_entropy(logits, name="loss")
    return g


def _layout(
    depth: int | None, block_config: Sequence[int] | None
) -> tuple[tuple[int, ...], int, bool]:
    """(layers per block, default growth rate, ImageNet stem?) from the arguments."""
    if block_config is not None:
        blocks = tuple(block_config)
        if not blocks or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in blocks
        ):
            raise ValueError(
                "densenet: block_config must be a non-empty sequence of integers >= 1 "
                f"(dense layers per block, DenseNet-121 is (6, 12, 24, 16)), got {block_config!r}"
            )
        if depth is not None and depth != 2 * sum(blocks) + len(blocks) + 1:
            raise ValueError(
                f"densenet: depth={depth} does not match block_config={blocks}: "
                f"depth = 2*sum(block_config) + len(block_config) + 1 "
                f"= {2 * sum(blocks) + len(blocks) + 1}"
            )
        return blocks, 32, True
    if depth is None:
        depth = 121
    if depth in IMAGENET_CONFIGS:
        blocks, growth = IMAGENET_CONFIGS[depth]
        return blocks, growth, True
    if (
        isinstance(depth, int)
        and not isinstance(depth, bool)
        and depth >= 10
        and (depth - 4) % 6 == 0
    ):
        return ((depth - 4) // 6,) * 3, _CIFAR_GROWTH, False
    raise ValueError(
        f"densenet: depth must be one of {sorted(IMAGENET_CONFIGS)} (ImageNet DenseNet-BC) "
        f"or 6N+4 with N >= 1 (CIFAR DenseNet-BC: 3 blocks of N layers, e.g. 40, 100), "
        f"got {depth!r}; or give block_config"
    )


def _dense_layer(
    g: Graph, x: TensorHandle, growth: int, bottleneck_width: int, dropout: float, name: str
) -> TensorHandle:
    y = g.relu(g.batchnorm(x, name=f"{name}.bn1"), name=f"{name}.relu1")
    y = g.conv2d(y, bottleneck_width * growth, 1, bias=False, name=f"{name}.conv1")
    y = g.relu(g.batchnorm(y, name=f"{name}.bn2"), name=f"{name}.relu2")
    y = g.conv2d(y, growth, 3, padding=1, bias=False, name=f"{name}.conv2")
    if dropout > 0.0:
        y = g.dropout(y, dropout, name=f"{name}.dropout")
    return y


def _transition(g: Graph, x: TensorHandle, out_channels: int, name: str) -> TensorHandle:
    y = g.relu(g.batchnorm(x, name=f"{name}.bn"), name=f"{name}.relu")
    y = g.conv2d(y, out_channels, 1, bias=False, name=f"{name}.conv")
    return g.avgpool(y, 2, stride=2, name=f"{name}.pool")
