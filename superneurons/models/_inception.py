"""Inception-v4 (Szegedy, Ioffe, Vanhoucke and Alemi, 2017)."""

from __future__ import annotations

from superneurons.graph import Graph, TensorHandle
from superneurons.models._common import check_common, check_image_size, conv_bn_relu

__all__ = ["inception_v4"]

# Unpadded ("valid") reductions on the main path: the stem's three 3x3 convolutions
# and its pool, conv and pool pairs, then reductions A and B. Everything else pads.
_STEPS = [(3, 2, 0), (3, 1, 0), (3, 2, 0), (3, 1, 0), (3, 2, 0), (3, 2, 0), (3, 2, 0)]

_BLOCKS_A, _BLOCKS_B, _BLOCKS_C = 4, 7, 3  # Inception-A, -B, -C modules (paper, Fig. 9)
_DROPOUT_P = 0.2  # before the classifier: the paper keeps 0.8 of the activations


def inception_v4(num_classes: int = 1000, image_size: int = 299, in_channels: int = 3) -> Graph:
    """Inception-v4: stem, 4 x Inception-A, reduction A, 7 x Inception-B, reduction B,
    3 x Inception-C, global average pool, dropout, FC.

    Branches are concatenated along channels (the fans the memory planner must
    handle); 7x7 and 3x3 filters are factorized into 1x7/7x1 and 1x3/3x1 pairs as in
    the paper. Every convolution is followed by batch norm and ReLU. The feature maps
    are 35x35, 17x17 and 8x8 at the usual 299x299; ``image_size >= 75`` builds.

    Example:
        >>> from superneurons.models import inception_v4
        >>> g = inception_v4(num_classes=10, image_size=75)
        >>> g.layers[-2].shape
        (10, 1, 1)
    """
    check_common("inception_v4", num_classes, image_size, in_channels)
    check_image_size("inception_v4", image_size, _STEPS)
    g = Graph()
    x = g.input(shape=(in_channels, image_size, image_size), name="data")
    x = _stem(g, x)
    for i in range(_BLOCKS_A):
        x = _inception_a(g, x, f"a{i + 1}")
    x = _reduction_a(g, x, "reduction_a")
    for i in range(_BLOCKS_B):
        x = _inception_b(g, x, f"b{i + 1}")
    x = _reduction_b(g, x, "reduction_b")
    for i in range(_BLOCKS_C):
        x = _inception_c(g, x, f"c{i + 1}")
    x = g.global_avgpool(x, name="pool")
    x = g.dropout(x, _DROPOUT_P, name="dropout")
    logits = g.fc(x, num_classes, name="fc")
    g.softmax_cross_entropy(logits, name="loss")
    return g


def _stem(g: Graph, x: TensorHandle) -> TensorHandle:
    """299x299x3 -> 35x35x384 (paper, Fig. 3)."""
    x = conv_bn_relu(g, x, 32, 3, name="stem.conv1", stride=2)
    x = conv_bn_relu(g, x, 32, 3, name="stem.conv2")
    x = conv_bn_relu(g, x, 64, 3, name="stem.conv3", padding=1)
    x = g.concat(
        [
            g.maxpool(x, 3, stride=2, name="stem.mixed1.pool"),
            conv_bn_relu(g, x, 96, 3, name="stem.mixed1.conv", stride=2),
        ],
        name="stem.mixed1",
    )
    left = conv_bn_relu(g, x, 64, 1, name="stem.mixed2.left1")
    left = conv_bn_relu(g, left, 96, 3, name="stem.mixed2.left2")
    right = conv_bn_relu(g, x, 64, 1, name="stem.mixed2.right1")
    right = conv_bn_relu(g, right, 64, (7, 1), name="stem.mixed2.right2", padding=(3, 0))
    right = conv_bn_relu(g, right, 64, (1, 7), name="stem.mixed2.right3", padding=(0, 3))
    right = conv_bn_relu(g, right, 96, 3, name="stem.mixed2.right4")
    x = g.concat([left, right], name="stem.mixed2")
    return g.concat(
        [
            conv_bn_relu(g, x, 192, 3, name="stem.mixed3.conv", stride=2),
            g.maxpool(x, 3, stride=2, name="stem.mixed3.pool"),
        ],
        name="stem.mixed3",
    )


def _pool_branch(g: Graph, x: TensorHandle, out_channels: int, name: str) -> TensorHandle:
    pooled = g.avgpool(x, 3, stride=1, padding=1, name=f"{name}.pool")
    return conv_bn_relu(g, pooled, out_channels, 1, name=f"{name}.conv")


def _inception_a(g: Graph, x: TensorHandle, name: str) -> TensorHandle:
    """35x35x384 -> 35x35x384 (Fig. 4)."""
    b1 = _pool_branch(g, x, 96, f"{name}.b1")
    b2 = conv_bn_relu(g, x, 96, 1, name=f"{name}.b2")
    b3 = conv_bn_relu(g, x, 64, 1, name=f"{name}.b3.conv1")
    b3 = conv_bn_relu(g, b3, 96, 3, name=f"{name}.b3.conv2", padding=1)
    b4 = conv_bn_relu(g, x, 64, 1, name=f"{name}.b4.conv1")
    b4 = conv_bn_relu(g, b4, 96, 3, name=f"{name}.b4.conv2", padding=1)
    b4 = conv_bn_relu(g, b4, 96, 3, name=f"{name}.b4.conv3", padding=1)
    return g.concat([b1, b2, b3, b4], name=f"{name}.concat")


def _reduction_a(g: Graph, x: TensorHandle, name: str) -> TensorHandle:
    """35x35x384 -> 17x17x1024 (Fig. 7 with k, l, m, n = 192, 224, 256, 384)."""
    b1 = g.maxpool(x, 3, stride=2, name=f"{name}.b1.pool")
    b2 = conv_bn_relu(g, x, 384, 3, name=f"{name}.b2", stride=2)
    b3 = conv_bn_relu(g, x, 192, 1, name=f"{name}.b3.conv1")
    b3 = conv_bn_relu(g, b3, 224, 3, name=f"{name}.b3.conv2", padding=1)
    b3 = conv_bn_relu(g, b3, 256, 3, name=f"{name}.b3.conv3", stride=2)
    return g.concat([b1, b2, b3], name=f"{name}.concat")


def _inception_b(g: Graph, x: TensorHandle, name: str) -> TensorHandle:
    """17x17x1024 -> 17x17x1024 (Fig. 5)."""
    b1 = _pool_branch(g, x, 128, f"{name}.b1")
    b2 = conv_bn_relu(g, x, 384, 1, name=f"{name}.b2")
    b3 = conv_bn_relu(g, x, 192, 1, name=f"{name}.b3.conv1")
    b3 = conv_bn_relu(g, b3, 224, (1, 7), name=f"{name}.b3.conv2", padding=(0, 3))
    b3 = conv_bn_relu(g, b3, 256, (7, 1), name=f"{name}.b3.conv3", padding=(3, 0))
    b4 = conv_bn_relu(g, x, 192, 1, name=f"{name}.b4.conv1")
    b4 = conv_bn_relu(g, b4, 192, (1, 7), name=f"{name}.b4.conv2", padding=(0, 3))
    b4 = conv_bn_relu(g, b4, 224, (7, 1), name=f"{name}.b4.conv3", padding=(3, 0))
    b4 = conv_bn_relu(g, b4, 224, (1, 7), name=f"{name}.b4.conv4", padding=(0, 3))
    b4 = conv_bn_relu(g, b4, 256, (7, 1), name=f"{name}.b4.conv5", padding=(3, 0))
    return g.concat([b1, b2, b3, b4], name=f"{name}.concat")


def _reduction_b(g: Graph, x: TensorHandle, name: str) -> TensorHandle:
    """17x17x1024 -> 8x8x1536 (Fig. 8)."""
    b1 = g.maxpool(x, 3, stride=2, name=f"{name}.b1.pool")
    b2 = conv_bn_relu(g, x, 192, 1, name=f"{name}.b2.conv1")
    b2 = conv_bn_relu(g, b2, 192, 3, name=f"{name}.b2.conv2", stride=2)
    b3 = conv_bn_relu(g, x, 256, 1, name=f"{name}.b3.conv1")
    b3 = conv_bn_relu(g, b3, 256, (1, 7), name=f"{name}.b3.conv2", padding=(0, 3))
    b3 = conv_bn_relu(g, b3, 320, (7, 1), name=f"{name}.b3.conv3", padding=(3, 0))
    b3 = conv_bn_relu(g, b3, 320, 3, name=f"{name}.b3.conv4", stride=2)
    return g.concat([b1, b2, b3], name=f"{name}.concat")


def _inception_c(g: Graph, x: TensorHandle, name: str) -> TensorHandle:
    """8x8x1536 -> 8x8x1536 (Fig. 6): the 3x3 paths split into parallel 1x3 and 3x1."""
    b1 = _pool_branch(g, x, 256, f"{name}.b1")
    b2 = conv_bn_relu(g, x, 256, 1, name=f"{name}.b2")
    b3 = conv_bn_relu(g, x, 384, 1, name=f"{name}.b3.conv1")
    b3a = conv_bn_relu(g, b3, 256, (1, 3), name=f"{name}.b3.conv2a", padding=(0, 1))
    b3b = conv_bn_relu(g, b3, 256, (3, 1), name=f"{name}.b3.conv2b", padding=(1, 0))
    b4 = conv_bn_relu(g, x, 384, 1, name=f"{name}.b4.conv1")
    b4 = conv_bn_relu(g, b4, 448, (1, 3), name=f"{name}.b4.conv2", padding=(0, 1))
    b4 = conv_bn_relu(g, b4, 512, (3, 1), name=f"{name}.b4.conv3", padding=(1, 0))
    b4a = conv_bn_relu(g, b4, 256, (1, 3), name=f"{name}.b4.conv4a", padding=(0, 1))
    b4b = conv_bn_relu(g, b4, 256, (3, 1), name=f"{name}.b4.conv4b", padding=(1, 0))
    return g.concat([b1, b2, b3a, b3b, b4a, b4b], name=f"{name}.concat")
