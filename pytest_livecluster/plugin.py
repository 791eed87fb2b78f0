"""pytest hooks, options, markers and fixtures; the logic lives in the other modules."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "live: a live test; it runs only with --live-cluster and checks the running cluster",
    )
