"""The methodology's pytest plugin: its ini keys, its cluster, its report sections and
the ``orchestrator`` fixture.

The main plugin registers this module when pytest starts, under the name
``livecluster-methodology`` (``-p no:livecluster-methodology`` leaves it out).
It uses only the hooks a project with another methodology would use.
Everything heavy is imported when a run actually follows a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ..exceptions import ConfigError
from ..plugin.options import add_options

if TYPE_CHECKING:
    from ..core.cluster import Cluster
    from ..core.collector import Collector
    from ..core.state import State
    from ..core.waiting import TestTiming
    from ..plugin.report import Section
    from .client import OrchestratorClient
    from .config import MethodologySettings

SETTINGS = pytest.StashKey["MethodologySettings"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from .config import OPTIONS

    add_options(parser, OPTIONS)


def _settings(config: pytest.Config) -> MethodologySettings:
    if SETTINGS not in config.stash:
        from .config import resolve

        try:
            config.stash[SETTINGS] = resolve(config)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from exc
    return config.stash[SETTINGS]


def pytest_livecluster_make_cluster(
    config: pytest.Config, state: State, collector: Collector | None, timing: TestTiming
) -> Cluster:
    from .cluster import MethodologyCluster

    return MethodologyCluster(state, collector, timing, _settings(config).methodology)


def pytest_livecluster_report(config: pytest.Config, cluster: Cluster) -> list[Section]:
    from .cluster import MethodologyCluster
    from .sections import report_sections

    if not isinstance(cluster, MethodologyCluster):
        return []  # a project's own cluster: its own plugin reports on it
    cluster.note_sources()
    return report_sections(
        cluster.views, cluster.history, stale_after=_settings(config).stale_after
    )


def pytest_livecluster_status(config: pytest.Config, cluster: Cluster) -> dict[str, str]:
    from .cluster import MethodologyCluster
    from .sections import status_line

    if not isinstance(cluster, MethodologyCluster):
        return {}
    return {"throughput": status_line(cluster.history)}


def pytest_livecluster_html(config: pytest.Config, report: dict[str, Any]) -> str | None:
    from .page import render_page

    return render_page(report)


@pytest.fixture(scope="session")
def orchestrator(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[OrchestratorClient]:
    """The orchestrator's client: set intents, update modules, switch faults (sim), list hosts.

    Its address comes from the sources (the simulated cluster names its own),
    else from ``livecluster_orchestrator_url``; without either the test is
    skipped with the reason.
    """
    from .client import OrchestratorClient

    url = cluster.endpoints().get("orchestrator") or _settings(request.config).orchestrator_url
    if not url:
        pytest.skip(
            "no orchestrator to talk to: follow the simulated cluster (--live-cluster=sim) "
            "or set livecluster_orchestrator_url"
        )
    client = OrchestratorClient(url)
    try:
        yield client
    finally:
        client.close()
