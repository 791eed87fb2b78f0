"""Hooks other plugins and conftest files may implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..core.cluster import Cluster
    from .report import Section


@pytest.hookspec
def pytest_livecluster_report(cluster: Cluster) -> list[Section] | None:
    """Return sections to add to the run report (blades, intents, errors, ...)."""
