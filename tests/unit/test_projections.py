"""Projections: facts kept from every accepted shard, past the journal and across replays."""

from __future__ import annotations

import collections
import types
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pytest_livecluster import ConfigError, Envelope, State, merge_patch
from pytest_livecluster.core.projection import JournalEntry, Projection
from pytest_livecluster.core.recording import Recorder
from pytest_livecluster.core.waiting import TestTiming
from pytest_livecluster.methodology.cluster import MethodologyCluster
from pytest_livecluster.methodology.facts import MethodologyFacts
from pytest_livecluster.methodology.views import Phase
from pytest_livecluster.sources.file import FileSource

T0 = 1_764_072_000_000_000_000  # ns
BLADES = ("scraper-1", "scraper-2", "spotter-1")
TIMING = TestTiming(timeout=5, window=1, tick=0.1)


def cluster_of(state: State) -> MethodologyCluster:
    return MethodologyCluster(state, None, TIMING)


def feed(state: State, source: str, shard: object, at: float = 0) -> None:
    envelope = Envelope(f"docker:{source}", origin_ns=T0 + int(at * 1e9))
    state.ingest(orjson.dumps(shard), envelope)


def busy_cluster(state: State, heartbeats: int = 12_000) -> None:
    """Three blades say hello, then something else, then the journal rolls over."""
    for host in BLADES:
        feed(state, host, {host: {"msg": "Hello World", "boot": 1}})
    feed(state, "orchestrator", {"intents": {"i-1": {"host": "scraper-1"}}}, at=1)
    feed(state, "scraper-1", {"intents": {"i-1": {"resolution": {"scraper-1": {"n": 1}}}}}, at=2)
    feed(state, "spotter-1", {"intents": {"i-1": {"resolution": {"spotter-1": {"n": 1}}}}}, at=3)
    for host in BLADES:
        feed(state, host, {host: {"msg": "working"}}, at=4)
    for i in range(heartbeats):
        feed(state, "orchestrator", {"orchestrator": {"heartbeat": i}}, at=5)


def test_a_hello_is_latched_after_the_journal_rolled() -> None:
    """The issue's reproduction: 12,000 heartbeats roll the 10,000-line journal."""
    state = State()
    cluster = cluster_of(state)
    busy_cluster(state)
    assert state.stats().journal == 10_000
    assert cluster.missing_hellos(BLADES) == []
    assert cluster.hellos() == {"scraper": ["scraper-1", "scraper-2"], "spotter": ["spotter-1"]}


def test_intent_times_and_phases_survive_the_journal_rolling() -> None:
    state = State()
    cluster = cluster_of(state)
    busy_cluster(state)
    view = cluster.intent("i-1")
    assert view is not None
    assert view.phase is Phase.SPOTTER_RECEIVING
    assert view.first_seen == pytest.approx(T0 / 1e9 + 1)
    assert view.phase_since == pytest.approx(T0 / 1e9 + 3)
    assert [v.id for v in cluster.stale(older_than=10**12)] == []


def test_roles_from_container_labels_survive_the_journal_rolling() -> None:
    state = State()
    labels = {"docker:web-1": {"livecluster.role": "spotter"}}
    cluster = cluster_of(state)
    cluster.origin_labels = lambda: labels  # type: ignore[method-assign]
    cluster.views._origin_labels = cluster.origin_labels
    feed(state, "web-1", {"web-1": {"msg": "Hello World"}})
    feed(state, "web-1", {"intents": {"i-1": {"resolution": {"web-1b": {"received": 1}}}}})
    busy_cluster(state, heartbeats=11_000)
    assert cluster.views.role_of("web-1b") == "spotter"
    assert cluster.hellos()["spotter"] == ["spotter-1", "web-1"]


def test_restarts_are_the_boot_changes_of_each_host() -> None:
    state = State()
    cluster = cluster_of(state)
    busy_cluster(state, heartbeats=0)
    assert cluster.restarts() == {}
    feed(state, "scraper-2", {"scraper-2": {"msg": "Hello World", "boot": 2}})
    feed(state, "scraper-2", {"scraper-2": {"msg": "Hello World", "boot": 2}})  # a replay
    feed(state, "scraper-2", {"scraper-2": {"boot": 3}})
    assert cluster.restarts() == {"scraper-2": 2}


def test_facts_live_and_die_with_the_states_ttl() -> None:
    now = [0.0]
    state = State(ttl={"intents.*": 10, "*": 100}, clock=lambda: now[0])
    cluster = cluster_of(state)
    feed(state, "scraper-1", {"scraper-1": {"msg": "Hello World"}})
    feed(state, "orchestrator", {"intents": {"i-1": {"host": "scraper-1"}}})
    now[0] = 50
    feed(state, "orchestrator", {"orchestrator": {"msg": "Hello World"}})
    assert state.evict() == 1  # the intent, not the hosts
    facts = cluster.views.facts
    assert "i-1" not in facts.intents
    assert cluster.missing_hellos(["scraper-1"]) == []
    now[0] = 200
    feed(state, "orchestrator", {"orchestrator": {"msg": "Hello World"}})
    state.evict()
    assert cluster.missing_hellos(["scraper-1", "orchestrator"]) == ["scraper-1"]


def test_an_intent_deleted_by_a_null_is_forgotten() -> None:
    state = State()
    cluster = cluster_of(state)
    feed(state, "orchestrator", {"intents": {"i-1": {"host": "scraper-1"}}}, at=1)
    feed(state, "orchestrator", {"intents": {"i-1": None}}, at=2)
    feed(state, "orchestrator", {"intents": {"i-1": {"host": "scraper-2"}}}, at=3)
    view = cluster.intent("i-1")
    assert view is not None
    assert view.first_seen == pytest.approx(T0 / 1e9 + 3)


def test_a_replay_rebuilds_the_same_projections(tmp_path: Path) -> None:
    path = tmp_path / "run.ndjson"
    with Recorder(path) as recorder:
        live = State(sink=recorder)
        live_cluster = cluster_of(live)
        busy_cluster(live, heartbeats=11_000)
        feed(live, "scraper-1", {"scraper-1": {"boot": 2}})
    replayed = State()
    replay_cluster = cluster_of(replayed)
    FileSource(str(path)).run(replayed.ingest)
    one, two = live_cluster.views.facts, replay_cluster.views.facts
    assert (one.hello, one.restarts, one.intents) == (two.hello, two.restarts, two.intents)
    assert replay_cluster.hellos() == live_cluster.hellos()
    assert replay_cluster.restarts() == {"scraper-1": 1}


class Writers(Projection):
    """A user's projection: how many shards each source wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: collections.Counter[str] = collections.Counter()
        self.evictions: list[tuple[Hashable, ...]] = []

    def apply(self, shard: dict[str, Any], entry: JournalEntry) -> None:
        self.lines[entry.envelope.source] += 1
        if shard.get("boom"):
            raise ValueError("a bug in the projection")

    def evicted(self, path: tuple[Hashable, ...]) -> None:
        self.evictions.append(path)


def test_a_users_projection_sees_every_accepted_shard_in_order() -> None:
    state = State()
    writers = Writers()
    state.add_projection(writers)
    state.ingest(b'{"a": 1}', Envelope("x"))
    state.ingest(b"not json", Envelope("x"))
    state.ingest(b'{"boom": true}', Envelope("y"))
    state.ingest(b'{"a": 2}', Envelope("y"))
    assert writers.lines == {"x": 1, "y": 2}
    assert (writers.errors, writers.first_error) == (1, "ValueError: a bug in the projection")
    assert state.get("a") == 2  # ingest went on
    assert state.projections() == (writers,)


def test_a_projection_hears_of_evictions() -> None:
    now = [0.0]
    state = State(ttl={"jobs.*": 1}, clock=lambda: now[0])
    writers = Writers()
    state.add_projection(writers)
    state.ingest(b'{"jobs": {"j-1": {"n": 1}}}')
    now[0] = 5
    state.evict()
    assert writers.evictions == [("jobs", "j-1")]


def test_a_projection_added_after_the_first_line_is_refused() -> None:
    state = State()
    state.ingest(b'{"a": 1}')
    with pytest.raises(ConfigError, match="registered after 1 lines"):
        state.add_projection(Writers())


def test_views_made_late_say_what_to_do() -> None:
    state = State()
    state.ingest(b'{"a": 1}')
    with pytest.raises(ConfigError, match=r"make the views .* before the state takes lines"):
        cluster_of(state)


def test_facts_of_one_key_naming_are_shared_and_another_gets_its_own() -> None:
    from pytest_livecluster.methodology.schema import Methodology
    from pytest_livecluster.methodology.views import facts_of

    state = State()
    first = facts_of(state, Methodology())
    assert facts_of(state, Methodology(roles={"x": ("x*",)})) is first
    other = facts_of(state, Methodology(hello_key="greeting"))
    assert other is not first
    assert isinstance(other, MethodologyFacts)


@pytest.mark.parametrize(
    "patch",
    [
        collections.OrderedDict(b=2),
        types.MappingProxyType({"b": 2}),
        collections.ChainMap({"b": 2}),
    ],
    ids=["OrderedDict", "MappingProxyType", "ChainMap"],
)
def test_merge_patch_treats_every_mapping_as_an_object(patch: Any) -> None:
    assert merge_patch({"a": 1}, patch) == {"a": 1, "b": 2}
    assert merge_patch(types.MappingProxyType({"a": 1}), {"b": 2}) == {"a": 1, "b": 2}
    assert merge_patch({"a": 1}, collections.OrderedDict(a=None)) == {}
