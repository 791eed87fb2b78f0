"""No new errors appear while the cluster works."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import ErrorCounts, new_errors
from pytest_livecluster.methodology import MethodologyCluster, OrchestratorClient

pytestmark = pytest.mark.live


def test_no_new_errors_during_a_window(
    cluster: MethodologyCluster,
    orchestrator: OrchestratorClient,
    scrapers: list[str],
    errors_now: ErrorCounts,
) -> None:
    orchestrator.set_intent(host=scrapers[0], module="scraper@1.4")

    def no_new_errors() -> bool:
        new = new_errors(cluster, errors_now)
        assert not new, "new errors: " + "; ".join(new)
        return True

    cluster.consistently(no_new_errors, for_=3, what="no new errors")


def test_no_new_errors_since_the_run_began(
    cluster: MethodologyCluster, at_start: dict[str, Any]
) -> None:
    new = new_errors(cluster, at_start["errors"])
    assert not new, "new errors since the run began: " + "; ".join(new)
