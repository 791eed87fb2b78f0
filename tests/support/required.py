"""A tool a test needs is missing: skip the test, except in CI, where it fails.

CI installs every tool (``.ci/run``), so a missing one there is a broken
set-up that must not pass as a skip.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["missing"]


def missing(reason: str, purpose: str) -> NoReturn:
    """Skip for ``reason``; when ``CI=true``, fail instead: CI must run ``purpose``."""
    __tracebackhide__ = True
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}; CI must run {purpose}", pytrace=False)
    pytest.skip(reason)
