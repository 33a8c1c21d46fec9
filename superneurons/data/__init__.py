"""Datasets and a prefetching loader for superneurons.

Everything here is plain NumPy: importing it needs neither the C++ core nor a graph.

Example:
    >>> from superneurons import data
    >>> train, test = data.digits(test_fraction=0.2, seed=0)
    >>> loader = data.DataLoader(train, batch_size=64, seed=0)
    >>> xb, yb = next(iter(loader))
    >>> xb.shape, xb.dtype, yb.dtype
    ((64, 1, 8, 8), dtype('float32'), dtype('int32'))
"""

from superneurons.data._builtin import PRESETS, digits, synthetic
from superneurons.data._cifar10 import load_cifar10
from superneurons.data._dataset import ArrayDataset, standardize
from superneurons.data._errors import DatasetFormatError
from superneurons.data._fashion_mnist import load_fashion_mnist
from superneurons.data._loader import BatchSource, DataLoader

__all__ = [
    "PRESETS",
    "ArrayDataset",
    "BatchSource",
    "DataLoader",
    "DatasetFormatError",
    "digits",
    "load_cifar10",
    "load_fashion_mnist",
    "standardize",
    "synthetic",
]
