"""Intents are resolved by their scraper and then a spotter; module updates land."""

from __future__ import annotations

import pytest

from pytest_livecluster.methodology import MethodologyCluster, OrchestratorClient, Phase

pytestmark = pytest.mark.live

#: How soon an intent must reach a spotter: the cluster's service level.
RESOLUTION_BUDGET = 2.0


@pytest.mark.livecluster(severity="critical")  # the label of its alert, when it fires
def test_intent_resolved_by_scraper_then_spotter(
    cluster: MethodologyCluster, orchestrator: OrchestratorClient, scrapers: list[str]
) -> None:
    for scraper in scrapers:
        iid = orchestrator.set_intent(host=scraper, module="scraper@1.4")
        for attempt in cluster.eventually(timeout=RESOLUTION_BUDGET, tick=0.1):
            with attempt:
                intent = cluster.intent(iid)
                assert intent is not None, f"intent {iid} never reached the state"
                assert intent.phase is Phase.SPOTTER_RECEIVING, (
                    f"intent {iid} on {scraper} is stuck in '{intent.phase}' "
                    f"(answered by: {', '.join(intent.answered_by) or 'nobody'})"
                )


def test_scraping_starts_after_the_intent(
    cluster: MethodologyCluster, orchestrator: OrchestratorClient, scrapers: list[str]
) -> None:
    scraper = scrapers[-1]
    iid = orchestrator.set_intent(host=scraper, module="scraper@1.4")
    for attempt in cluster.eventually(timeout=5):
        with attempt:
            assert cluster.scraping_started(iid), f"{scraper} did not start scraping {iid}"
    # The answer was written during this test, after the intent: not an old one. The
    # writers' own times say so; the order two sources' lines arrive in does not.
    answers = cluster.since_test.touched("intents", iid, "resolution", scraper)
    assert answers, f"no shard of this test answered {iid}"
    set_at = cluster.get("intents", iid, "at")
    started = cluster.get("intents", iid, "resolution", scraper, "started")
    assert set_at is not None, f"intent {iid} has no time"
    assert started is not None, f"{scraper} did not say when it started {iid}"
    assert set_at <= started, f"{scraper} answered {iid} at {started}, before it was set ({set_at})"


def test_module_update_lands(
    cluster: MethodologyCluster, orchestrator: OrchestratorClient, scrapers: list[str]
) -> None:
    scraper = scrapers[0]
    iid = orchestrator.update_module(scraper, "scraper@1.5")
    for attempt in cluster.eventually(timeout=10):
        with attempt:
            module = cluster.get(scraper, "module")
            assert cluster.module_updated(iid), (
                f"{scraper} still reports module {module}, not scraper@1.5 (intent {iid})"
            )


def test_no_stale_intents(cluster: MethodologyCluster) -> None:
    stale = cluster.stale(older_than=30)
    assert not stale, "stale intents: " + ", ".join(
        f"{v.id} on {v.host} in '{v.phase}'" for v in stale
    )
