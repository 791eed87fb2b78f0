"""The methodology views over hand-written shards."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pytest_livecluster import Envelope, State
from pytest_livecluster.methodology.schema import Methodology
from pytest_livecluster.methodology.sections import report_sections
from pytest_livecluster.methodology.views import Phase, facts_of, traceback_groups
from pytest_livecluster.methodology.views import Views as _Views

T0 = 1_764_072_000_000_000_000  # ns


def docker_host(origin: str) -> str:
    """What the Docker source answers for its envelope sources: the container."""
    return origin.removeprefix("docker:")


def Views(state: State, methodology: Methodology | None = None, **kwargs: Any) -> _Views:
    return _Views(state, methodology, host_of=docker_host, **kwargs)


def new_state(**options: Any) -> State:
    """A state that keeps the methodology's facts from its first line."""
    state = State(**options)
    facts_of(state, Methodology())
    return state


def feed(state: State, source: str, *shards: object, stream: str = "stdout", at: float = 0) -> None:
    for shard in shards:
        raw = shard if isinstance(shard, bytes) else orjson.dumps(shard)
        state.ingest(raw, Envelope(f"docker:{source}", stream, origin_ns=T0 + int(at * 1e9)))


def scraped(iid: str, host: str, domain: str, **fields: int) -> dict[str, object]:
    return {"intents": {iid: {"resolution": {host: {"item_scraped": {domain: fields}}}}}}


@pytest.fixture
def state() -> State:
    st = new_state(counters=["intents.*.resolution.*.item_scraped.*"])
    for host in ("orchestrator", "scraper-1", "scraper-2", "spotter-1"):
        feed(st, host, {host: {"msg": "Hello World"}})
    feed(
        st,
        "orchestrator",
        {"intents": {"i-1": {"host": "scraper-1", "module": "scraper@1.4"}}},
        at=1,
    )
    feed(
        st,
        "orchestrator",
        {"intents": {"i-2": {"host": "scraper-2", "module": "scraper@1.4"}}},
        at=2,
    )
    feed(
        st,
        "orchestrator",
        {"intents": {"i-3": {"host": "scraper-1", "module": "scraper@1.5"}}},
        at=3,
    )
    feed(st, "scraper-1", scraped("i-1", "scraper-1", "a.example", item_sent=4, tries=5), at=4)
    feed(st, "scraper-1", scraped("i-1", "scraper-1", "b.example", item_sent=6, tries=6), at=5)
    feed(
        st, "spotter-1", {"intents": {"i-1": {"resolution": {"spotter-1": {"received": 9}}}}}, at=6
    )
    feed(st, "scraper-2", {"intents": {"i-2": {"resolution": {"scraper-2": {"started": 1}}}}}, at=7)
    feed(st, "scraper-1", {"scraper-1": {"msg": "intent i-1 done"}}, at=8)
    return st


def test_hellos_by_role_and_missing_ones(state: State) -> None:
    views = Views(state)
    assert views.hellos() == {
        "orchestrator": ["orchestrator"],
        "scraper": ["scraper-1", "scraper-2"],
        "spotter": ["spotter-1"],
    }
    assert views.missing_hellos(["scraper-1", "scraper-3", "spotter-1"]) == ["scraper-3"]


def test_intent_phases_follow_the_seed(state: State) -> None:
    views = Views(state)
    one, two, three = (views.intent(i) for i in ("i-1", "i-2", "i-3"))
    assert one is not None
    assert two is not None
    assert three is not None
    assert one.phase is Phase.SPOTTER_RECEIVING
    assert one.answered_by == ("scraper-1", "spotter-1")
    assert two.phase is Phase.SCRAPER_STARTED
    assert three.phase is Phase.NO_ANSWER
    assert views.intent("i-9") is None
    assert views.by_phase() == {
        Phase.NO_ANSWER: ["i-3"],
        Phase.SCRAPER_STARTED: ["i-2"],
        Phase.SPOTTER_RECEIVING: ["i-1"],
    }


def test_phase_times_come_from_the_journal(state: State) -> None:
    views = Views(state)
    one = views.intent("i-1")
    assert one is not None
    assert one.first_seen == pytest.approx(T0 / 1e9 + 1)
    assert one.phase_since == pytest.approx(T0 / 1e9 + 6)  # the spotter's first receipt
    assert one.in_phase_for(now=T0 / 1e9 + 10) == pytest.approx(4)
    two = views.intent("i-2")
    assert two is not None
    assert two.phase_since == pytest.approx(T0 / 1e9 + 7)


def test_stale_intents_are_the_old_ones_short_of_a_phase(state: State) -> None:
    views = Views(state)
    # T0 is in the past, so every intent is old: the ones not receiving are stale.
    assert [v.id for v in views.stale(older_than=60)] == ["i-2", "i-3"]
    assert [v.id for v in views.stale(60, reached=Phase.SCRAPER_STARTED)] == ["i-3"]
    assert views.stale(older_than=10**12) == []


def test_module_update_and_scraping_start(state: State) -> None:
    views = Views(state)
    assert not views.module_updated("i-3")
    feed(state, "scraper-1", {"scraper-1": {"module": "scraper@1.5"}})
    assert views.module_updated("i-3")
    assert views.scraping_started("i-1")
    assert views.scraping_started("i-2")
    assert not views.scraping_started("i-3")


def test_counts_per_scraper_domain_and_loss(state: State) -> None:
    feed(state, "scraper-2", scraped("i-2", "scraper-2", "a.example", item_sent=2, tries=2))
    feed(
        state, "scraper-1", scraped("i-1", "scraper-1", "a.example", item_sent=3, tries=5)
    )  # a replay
    counts = Views(state).counts()
    assert counts.total["item_sent"] == 12
    assert counts.total["tries"] == 13
    assert counts.by_scraper == {
        "scraper-1": {"item_sent": 10, "tries": 11},
        "scraper-2": {"item_sent": 2, "tries": 2},
    }
    assert counts.by_domain["a.example"] == {"item_sent": 6, "tries": 7}
    assert counts.received == 9
    assert counts.received_by_spotter == {"spotter-1": 9}
    assert counts.loss == 3
    assert counts.loss_ratio == pytest.approx(0.25)


def test_errors_grouped_from_state_and_stderr(state: State) -> None:
    feed(
        state,
        "scraper-2",
        {
            "scraper-2": {
                "errors": {"TimeoutError": {"count": 3, "last": "x", "domain": "news.example"}}
            }
        },
    )
    feed(state, "scraper-1", scraped("i-1", "scraper-1", "c.example", errors=2))
    tb = [
        b"Traceback (most recent call last):",
        b'  File "scraper.py", line 88, in fetch',
        b"    raise ConnectionError('reset')",
        b"ConnectionError: reset",
    ]
    for _ in range(2):
        feed(state, "scraper-2", *tb, stream="stderr")
    feed(state, "scraper-2", b"plain warning text", stream="stderr")
    feed(state, "scraper-2", b"not json on stdout")  # stdout noise is not an error
    errors = {g.key(): g for g in Views(state).errors()}
    assert set(errors) == {
        ("scraper-2", "TimeoutError", "news.example"),
        ("scraper-1", "scrape error", "c.example"),
        ("scraper-2", "ConnectionError", ""),
        ("scraper-2", "stderr", ""),
    }
    assert errors[("scraper-2", "TimeoutError", "news.example")].count == 3
    conn = errors[("scraper-2", "ConnectionError", "")]
    assert conn.count == 2
    assert conn.sample.splitlines()[0] == "Traceback (most recent call last):"
    assert conn.sample.splitlines()[-1] == "ConnectionError: reset"
    assert errors[("scraper-1", "scrape error", "c.example")].count == 2


def test_an_unfinished_traceback_is_still_an_error() -> None:
    state = new_state()
    feed(
        state, "s", b"Traceback (most recent call last):", b'  File "x.py", line 1', stream="stderr"
    )
    [group] = traceback_groups(state.rejected(), docker_host)
    assert (group.host, group.type, group.count) == ("s", "traceback", 1)


def test_roles_from_patterns_or_labels() -> None:
    m = Methodology(roles={"scraper": ("scr-*",), "spotter": ("spot-*",)})
    assert m.role_of("scr-7") == "scraper"
    assert m.role_of("scraper-1") is None
    assert m.role_of("web-1", {"livecluster.role": "spotter"}) == "spotter"


def test_report_sections_keep_module_updates_apart(state: State) -> None:
    feed(
        state,
        "orchestrator",
        {"intents": {"i-4": {"host": "scraper-2", "module": "scraper@1.5", "kind": "update"}}},
    )
    feed(
        state,
        "scraper-2",
        {"intents": {"i-4": {"resolution": {"scraper-2": {"updated": "scraper@1.5"}}}}},
    )
    feed(state, "scraper-2", {"scraper-2": {"module": "scraper@1.5"}})
    sections = {s.title: s for s in report_sections(Views(state), stale_after=60)}
    intents = sections["intents"]
    assert intents.lines[:4] == [
        "no answer: 1",
        "scraper started, no data received: 1",
        "scraper sends, spotter receives: 1",
        "module updates: 1 landed",
    ]
    assert intents.data["module_updates"] == {"landed": ["i-4"], "pending": []}
    assert sections["counts"].lines[0] == "items sent 10, received 9, lost 1 (10.0%)"
    assert sections["blades that said hello"].data["spotter"] == ["spotter-1"]


def test_counts_hold_with_several_processes_per_blade_and_replays() -> None:
    state = new_state(counters=["intents.*.resolution.*.item_scraped.*"])
    # scraper-1 runs two processes; each reports its own cumulative count under its own
    # writer key (host/incarnation, as the writer kit writes them).
    for writer, sent in [("scraper-1/11-aa", 3), ("scraper-1/12-bb", 4), ("scraper-1/11-aa", 5)]:
        feed(state, "scraper-1", scraped("i-1", writer, "a.example", item_sent=sent))
    feed(state, "scraper-1", scraped("i-1", "scraper-1/11-aa", "a.example", item_sent=3))  # replay
    feed(
        state,
        "spotter-1",
        {"intents": {"i-1": {"resolution": {"spotter-1/7-cc": {"received": 5}}}}},
        {"intents": {"i-1": {"resolution": {"spotter-1/8-dd": {"received": 4}}}}},
    )
    views = Views(state)
    counts = views.counts()
    assert counts.total["item_sent"] == 9
    # Credited to the blade, whatever process wrote them.
    assert counts.by_scraper == {"scraper-1": {"item_sent": 9}}
    assert counts.received_by_spotter == {"spotter-1": 9}
    assert counts.loss == 0
    intent = views.intent("i-1")
    assert intent is not None
    assert intent.answered_by == ("scraper-1", "spotter-1")
    assert intent.phase is Phase.SPOTTER_RECEIVING


def test_errors_of_several_processes_of_a_blade_are_one_group() -> None:
    state = new_state()
    for writer, count in [("scraper-1/11-aa", 2), ("scraper-1/12-bb", 3)]:
        feed(
            state,
            "scraper-1",
            {writer: {"errors": {"Timeout": {"count": count, "domain": "a", "last": "x"}}}},
        )
    [group] = Views(state).errors()
    assert (group.host, group.type, group.domain, group.count) == ("scraper-1", "Timeout", "a", 5)


def test_a_containers_role_label_beats_the_patterns() -> None:
    state = new_state()
    feed(state, "web-1", {"web-1": {"msg": "Hello World"}})
    feed(state, "web-2", {"web-2": {"msg": "Hello World"}})
    feed(state, "web-1", {"intents": {"i-1": {"resolution": {"web-1b": {"received": 1}}}}})
    labels = {"docker:web-1": {"livecluster.role": "spotter"}, "docker:web-2": {"team": "x"}}
    views = Views(state, origin_labels=lambda: labels)
    assert views.hellos() == {"other": ["web-2"], "spotter": ["web-1"]}
    assert views.role_of("web-1b") == "spotter"  # a resolution key its container wrote
    assert views.role_of("scraper-9") == "scraper"  # no label: the patterns decide
