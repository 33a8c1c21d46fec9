"""Model zoo: builders that return a ready ``superneurons.Graph`` ending in the loss.

Every builder takes ``num_classes``, ``image_size`` (square inputs) and ``in_channels``
and raises ``ValueError`` for arguments the architecture cannot take, such as an
image too small for its downsampling.

Example:
    >>> from superneurons import models
    >>> g = models.resnet(depth=20, num_classes=10, image_size=8, in_channels=1)
    >>> g.layers[0].shape, g.layers[-1].kind
    ((1, 8, 8), 'softmax_cross_entropy')
"""

from superneurons.models._alexnet import alexnet
from superneurons.models._densenet import densenet
from superneurons.models._inception import inception_v4
from superneurons.models._resnet import resnet, resnet50, resnet101, resnet152
from superneurons.models._vgg import vgg16

__all__ = [
    "alexnet",
    "densenet",
    "inception_v4",
    "resnet",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
]
