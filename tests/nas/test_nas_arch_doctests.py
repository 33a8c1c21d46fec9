"""The examples in the docstrings of the architecture-search modules run and hold.

(``scripts/test.sh`` runs the doctests of ``superneurons`` only.)
"""

from __future__ import annotations

import doctest
import importlib

import pytest

pytest.importorskip("superneurons")

MODULES = ["nas.spaces", "nas._train", "nas._table", "nas._pareto", "nas._draw"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0
