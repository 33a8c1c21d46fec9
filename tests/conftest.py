"""Test-wide settings.

Under CI (CI=true) Hypothesis runs derandomized, so a red build always reproduces; local
runs keep exploring new examples (and remember failures in .hypothesis/).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
