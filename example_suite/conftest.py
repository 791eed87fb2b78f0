"""Shared fixtures of the example live suite.

Run it against the simulated cluster, or against a real one:

    pytest example_suite --live-cluster=sim
    pytest example_suite --live-cluster=sim --inject=lossy_spotter   # watch it catch a fault
    pytest example_suite --live-cluster=docker:label=livecluster=staging \\
        -o livecluster_orchestrator_url=http://orchestrator.staging:8000
"""

from __future__ import annotations

import pytest

from pytest_livecluster.methodology import MethodologyCluster, OrchestratorClient

#: Tolerated share of items sent by scrapers that no spotter reported.
LOSS_TOLERANCE = 0.02

ErrorCounts = dict[tuple[str, str, str], int]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--inject",
        action="append",
        default=[],
        metavar="FAULT[:K=V...]",
        help="switch a fault of the simulated cluster on once it has started "
        "(silent_scraper, lossy_spotter, failed_update, error_burst, crash_restart, "
        "slow_resolution), with its parameters, e.g. slow_resolution:factor=30",
    )


@pytest.fixture(scope="session")
def hosts(orchestrator: OrchestratorClient) -> dict[str, list[str]]:
    """The cluster's hosts by role, as the orchestrator knows them."""
    return orchestrator.hosts()


@pytest.fixture(scope="session")
def scrapers(hosts: dict[str, list[str]]) -> list[str]:
    return hosts.get("scraper", [])


@pytest.fixture(scope="session")
def at_start(cluster: MethodologyCluster, hosts: dict[str, list[str]]) -> dict[str, object]:
    """What the cluster looked like when the run began: errors and each blade's boot."""
    blades = [host for role_hosts in hosts.values() for host in role_hosts]
    return {
        "errors": {group.key(): group.count for group in cluster.errors()},
        "boots": {host: cluster.get(host, "boot") for host in blades},
    }


@pytest.fixture(scope="session", autouse=True)
def _inject(request: pytest.FixtureRequest) -> None:
    faults = request.config.getoption("--inject")
    if not faults:
        return
    request.getfixturevalue("at_start")  # the baseline is taken before the fault
    orchestrator: OrchestratorClient = request.getfixturevalue("orchestrator")
    for text in faults:
        name, *pairs = text.split(":")
        params = dict(pair.split("=", 1) for pair in pairs)
        orchestrator.set_fault(name, **params)


@pytest.fixture
def errors_now(cluster: MethodologyCluster) -> ErrorCounts:
    """The errors known when the test began, by (host, type, domain)."""
    return {group.key(): group.count for group in cluster.errors()}


def new_errors(cluster: MethodologyCluster, before: ErrorCounts) -> list[str]:
    return [
        f"{g.count - before.get(g.key(), 0)} x {g.type} on {g.host}"
        + (f" ({g.domain})" if g.domain else "")
        for g in cluster.errors()
        if g.count > before.get(g.key(), 0)
    ]
