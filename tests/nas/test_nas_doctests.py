"""The examples in the docstrings of every other nas module run and hold.

(``test_nas_arch_doctests.py`` covers the modules that need ``superneurons``.)
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
from test_nas_arch_doctests import MODULES as ARCH_MODULES

import nas

SKIP = {*ARCH_MODULES, "nas.__main__"}  # importing __main__ runs the CLI
ALL = ["nas", *sorted(f"nas.{m.name}" for m in pkgutil.iter_modules(nas.__path__))]
MODULES = [m for m in ALL if m not in SKIP]
WITHOUT_EXAMPLES = {"nas._arch_cli", "nas._random"}  # CLI plumbing; a one-line strategy


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0
    assert attempted > 0 or name in WITHOUT_EXAMPLES
