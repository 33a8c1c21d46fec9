"""VGG-16 (Simonyan and Zisserman, 2015), configuration D."""

from __future__ import annotations

from superneurons.graph import Graph
from superneurons.models._common import check_common, check_image_size

__all__ = ["vgg16"]

# Output channels of the 3x3 convolutions; "M" is a 2x2/2 max pool.
_CONFIG_D: list[int | str] = [
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
]  # fmt: skip


def vgg16(num_classes: int = 1000, image_size: int = 224, in_channels: int = 3) -> Graph:
    """VGG-16: 13 3x3 convolutions in five pooled stages, then three FC layers with dropout.

    138,357,544 parameters at 224x224 with 1,000 classes. Any ``image_size >= 32``
    works (five 2x2 pools); CIFAR-sized inputs reach the classifier at 1x1.

    Example:
        >>> from superneurons.models import vgg16
        >>> g = vgg16(num_classes=10, image_size=32)
        >>> sum(spec.kind == "conv2d" for spec in g.layers)
        13
    """
    check_common("vgg16", num_classes, image_size, in_channels)
    check_image_size("vgg16", image_size, [(2, 2, 0)] * _CONFIG_D.count("M"))
    g = Graph()
    x = g.input(shape=(in_channels, image_size, image_size), name="data")
    stage, index = 1, 1
    for item in _CONFIG_D:
        if item == "M":
            x = g.maxpool(x, 2, stride=2, name=f"pool{stage}")
            stage, index = stage + 1, 1
            continue
        name = f"conv{stage}_{index}"
        x = g.conv2d(x, int(item), 3, padding=1, name=name)
        x = g.relu(x, name=f"{name}.relu")
        index += 1
    for name in ("fc6", "fc7"):
        x = g.fc(x, 4096, name=name)
        x = g.relu(x, name=f"{name}.relu")
        x = g.dropout(x, 0.5, name=f"{name}.dropout")
    logits = g.fc(x, num_classes, name="fc8")
    g.softmax_cross_entropy(logits, name="loss")
    return g
