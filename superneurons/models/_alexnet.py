"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012)."""

from __future__ import annotations

from superneurons.graph import Graph
from superneurons.models._common import check_common, check_image_size

__all__ = ["alexnet"]

# Main-path reductions: conv1 11x11/4, pool 3x3/2, conv2, pool, conv3-5, pool.
_STEPS = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 0)]


def alexnet(num_classes: int = 1000, image_size: int = 224, in_channels: int = 3) -> Graph:
    """AlexNet: five convolutions with LRN after the first two, three FC layers with dropout.

    The paper's widths (96, 256, 384, 384, 256; 4096, 4096) on one device: the
    two-GPU channel grouping of the original is left out. Overlapping 3x3/2 max
    pools and LRN(size=5, alpha=1e-4, beta=0.75, k=2) as in the paper. Needs
    ``image_size >= 63``.

    Example:
        >>> from superneurons.models import alexnet
        >>> g = alexnet(num_classes=10, image_size=224)
        >>> g.layers[-2].shape
        (10, 1, 1)
    """
    check_common("alexnet", num_classes, image_size, in_channels)
    check_image_size("alexnet", image_size, _STEPS)
    g = Graph()
    x = g.input(shape=(in_channels, image_size, image_size), name="data")
    convs = [  # (name, out_channels, kernel, stride, padding, lrn, pool after)
        ("conv1", 96, 11, 4, 2, True, True),
        ("conv2", 256, 5, 1, 2, True, True),
        ("conv3", 384, 3, 1, 1, False, False),
        ("conv4", 384, 3, 1, 1, False, False),
        ("conv5", 256, 3, 1, 1, False, True),
    ]
    for name, out, kernel, stride, padding, lrn, pool in convs:
        x = g.conv2d(x, out, kernel, stride=stride, padding=padding, name=name)
        x = g.relu(x, name=f"{name}.relu")
        if lrn:
            x = g.lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0, name=f"{name}.lrn")
        if pool:
            x = g.maxpool(x, 3, stride=2, name=f"{name}.pool")
    for name in ("fc6", "fc7"):
        x = g.fc(x, 4096, name=name)
        x = g.relu(x, name=f"{name}.relu")
        x = g.dropout(x, 0.5, name=f"{name}.dropout")
    logits = g.fc(x, num_classes, name="fc8")
    g.softmax_cross_entropy(logits, name="loss")
    return g
