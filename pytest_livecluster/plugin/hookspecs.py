"""Hooks other plugins and conftest files may implement.

The blades' methodology (:mod:`pytest_livecluster.methodology`) is itself a
plugin of this plugin: it implements these hooks exactly as a project with
another methodology would, from its ``conftest.py`` or its own plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..core.cluster import Cluster
    from ..core.collector import Collector
    from ..core.projection import Projection
    from ..core.state import State
    from ..core.waiting import TestTiming
    from .report import Section


@pytest.hookspec(firstresult=True)
def pytest_livecluster_make_cluster(
    config: pytest.Config, state: State, collector: Collector | None, timing: TestTiming
) -> Cluster | None:
    """Return the object the ``cluster`` fixture hands out: a :class:`Cluster` (sub)class.

    The first implementation that returns one wins; a ``conftest.py`` is
    asked before installed plugins, so a project can replace the
    methodology's cluster with its own subclass. ``collector`` is ``None``
    until the first live test starts following the cluster; it is set on the
    returned object then.
    """


@pytest.hookspec
def pytest_livecluster_report(config: pytest.Config, cluster: Cluster) -> list[Section] | None:
    """Return sections to add to the run report (blades, intents, errors, ...)."""


@pytest.hookspec
def pytest_livecluster_projections(config: pytest.Config, state: State) -> list[Projection] | None:
    """Return projections to run on every accepted shard of this run's state.

    Called once, before the first line is read, so each projection sees every
    shard (see :mod:`pytest_livecluster.core.projection`). Keep a reference to
    what you return, or find it again with ``cluster.state.projections()``.
    """


@pytest.hookspec
def pytest_livecluster_status(config: pytest.Config, cluster: Cluster) -> dict[str, str] | None:
    """Return one-line facts about the cluster now, by name (e.g. ``throughput``).

    Asked before each alert round: every alert the round sends carries them
    as annotations, so a page says how the cluster was doing, not only what
    failed. Keep them cheap and short; the methodology's plugin gives the
    current items per second.
    """


@pytest.hookspec(firstresult=True)
def pytest_livecluster_html(config: pytest.Config, report: dict[str, Any]) -> str | None:
    """Return the run report as one self-contained HTML page (``--live-html``).

    ``report`` is the JSON report's content (:meth:`RunReport.as_dict`). The
    first implementation that returns a page wins; the methodology's plugin
    draws its throughput, intents, errors, sources and tests on one time axis.
    The run writes the page (at the end, and after each watch round).
    """
