"""The simulated cluster in docker mode (``sim:mode=docker``): every process a container."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from livecluster import writer_host

from pytest_livecluster import State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.waiting import eventually
from pytest_livecluster.methodology.views import Methodology, Phase, Views, facts_of
from pytest_livecluster.sim.containers import LABEL, ROLE_LABEL
from pytest_livecluster.sources import parse_specs
from pytest_livecluster.sources.sim import SimSource

COUNTERS = ["intents.*.resolution.*.item_scraped.*", "intents.*.resolution.*.received"]
HOSTS = ["orchestrator", "scraper-1", "scraper-2", "scraper-3", "spotter-1", "spotter-2"]
DOMAINS = {"site1.example", "shop.example", "news.example"}


def _run_containers(engine: docker.DockerClient, run_id: str) -> list[Any]:
    for attempt in range(20):  # another job may restart the engine for a few seconds
        try:
            found: list[Any] = engine.containers.list(
                all=True, filters={"label": f"{LABEL}={run_id}"}
            )
            return found
        except (docker.errors.DockerException, OSError):
            if attempt == 19:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def test_docker_mode_resolves_intents_and_leaves_no_container(
    engine: docker.DockerClient,
) -> None:
    state = State(counters=COUNTERS)
    no_patterns = Methodology(roles={"none": ("nothing-*",)})
    facts_of(state, no_patterns)  # the facts see every shard, from the first one
    (source,) = parse_specs("sim:mode=docker")
    assert isinstance(source, SimSource)
    collector = Collector(state, [source]).start()

    def wait(check: Callable[[], Any], timeout: float = 10.0) -> Any:
        return eventually(state, check, timeout=timeout, tick=0.05)

    try:
        assert source.started.wait(60)
        cluster = source.cluster
        assert cluster is not None, collector.failures
        run_id = cluster.run_id
        containers = {c.name: c for c in _run_containers(engine, run_id)}
        assert sorted(containers) == sorted(f"lcsim-{run_id}-{host}" for host in HOSTS)
        for host in HOSTS:
            labels = containers[f"lcsim-{run_id}-{host}"].labels
            assert labels[ROLE_LABEL] == host.split("-")[0]
        wait(lambda: all(state.get(host, "msg") == "Hello World" for host in HOSTS))
        with cluster.client() as client:
            iid = client.set_intent("scraper-1", "scraper@1.4", spotter="spotter-1")

            def by_host(intent: str, host: str) -> dict[str, Any]:
                """The fields every process of ``host`` wrote (counts: under host/incarnation)."""
                found: dict[str, Any] = {}
                for writer, fields in state.get(
                    "intents", intent, "resolution", default={}
                ).items():
                    if writer_host(writer) == host:
                        found.update(fields)
                return found

            wait(lambda: set(by_host(iid, "scraper-1").get("item_scraped", ())) == DOMAINS)
            wait(lambda: by_host(iid, "spotter-1").get("received", 0) > 0)
            # The engine restarts a crashed process, which comes back on its ports.
            client.set_fault("crash_restart", host="scraper-2", after=0.1)
            try:
                wait(lambda: state.get("scraper-2", "boot") == 2, timeout=15)
            finally:
                client.set_fault("crash_restart", on=False)
            assert cluster.restarts()["scraper-2"] == 1
            again = client.set_intent("scraper-2", "scraper@1.4")
            wait(lambda: by_host(again, "scraper-2").get("item_scraped"))
        sources = {entry.envelope.source for entry in state.journal()}
        assert f"docker:lcsim-{run_id}-scraper-1" in sources
        # Roles come from the containers' livecluster.role labels, not from names.
        assert collector.origin_labels()[f"docker:lcsim-{run_id}-spotter-2"][ROLE_LABEL] == (
            "spotter"
        )
        views = Views(state, no_patterns, collector.origin_labels)
        assert views.hellos() == {
            "orchestrator": ["orchestrator"],
            "scraper": ["scraper-1", "scraper-2", "scraper-3"],
            "spotter": ["spotter-1", "spotter-2"],
        }
        assert views.intent(iid) is not None
        assert views.intent(iid).phase is Phase.SPOTTER_RECEIVING  # type: ignore[union-attr]
        health = source.health
        assert (health.attached, health.state) == (len(HOSTS), "attached")
    finally:
        stuck = collector.close()
    assert stuck == []
    assert collector.failures == []
    assert _run_containers(engine, run_id) == []
