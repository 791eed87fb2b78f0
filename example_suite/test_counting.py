"""Items sent by scrapers match items received by spotters."""

from __future__ import annotations

import pytest

from conftest import LOSS_TOLERANCE
from pytest_livecluster.methodology import Counts, MethodologyCluster, OrchestratorClient, Phase

pytestmark = pytest.mark.live


def test_items_sent_match_items_received(
    cluster: MethodologyCluster, orchestrator: OrchestratorClient, scrapers: list[str]
) -> None:
    ids = [orchestrator.set_intent(host=s, module="scraper@1.4") for s in scrapers]
    for attempt in cluster.eventually(timeout=10):
        with attempt:
            phases = {i: getattr(cluster.intent(i), "phase", None) for i in ids}
            assert all(p is Phase.SPOTTER_RECEIVING for p in phases.values()), phases

    # Scrapers and spotters log through separate streams, so the two sides
    # agree only once the work is done: wait until the counts stop moving.
    def settled() -> Counts:
        counts = cluster.counts()
        cluster.consistently(
            lambda: (
                (cluster.counts().total, cluster.counts().received)
                == (counts.total, counts.received)
            ),
            for_=1.0,
            tick=0.2,
            what="counts stay still",
        )
        return counts

    counts = cluster.eventually(settled, timeout=20)
    assert counts.loss_ratio <= LOSS_TOLERANCE, (
        f"lost {counts.loss} of {counts.sent} items ({counts.loss_ratio:.1%}) between "
        f"scrapers and spotters; received by spotter: {counts.received_by_spotter}"
    )


def test_counts_never_go_down(cluster: MethodologyCluster) -> None:
    before = cluster.counts().total

    def not_lower() -> bool:
        now = cluster.counts().total
        lower = {k: (before[k], now[k]) for k in before if now.get(k, 0) < before[k]}
        assert not lower, f"counters went down: {lower}"
        return True

    cluster.consistently(not_lower, for_=2)
