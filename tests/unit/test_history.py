"""``History``: the cluster's counters, errors and lines per time bucket, from every shard."""

from __future__ import annotations

import json
import random

import pytest

from pytest_livecluster import State
from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.exceptions import ConfigError
from pytest_livecluster.methodology.history import MAX_KEYS, OTHER, History, history_of
from pytest_livecluster.methodology.schema import COUNTER_PATTERNS, Keys

T0 = 1_764_000_000  # a whole second, unix time


def _state(max_points: int = 720) -> tuple[State, History]:
    state = State(counters=COUNTER_PATTERNS)
    history = History(max_points=max_points)
    state.add_projection(history)
    return state, history


def _scraped(iid: str, host: str, domain: str, collected: int, sent: int, errors: int = 0) -> bytes:
    fields = {"item_collected": collected, "item_sent": sent, "errors": errors}
    shard = {"intents": {iid: {"resolution": {host: {"item_scraped": {domain: fields}}}}}}
    return json.dumps(shard).encode()


def _received(iid: str, host: str, n: int) -> bytes:
    return json.dumps({"intents": {iid: {"resolution": {host: {"received": n}}}}}).encode()


def _at(seconds: float, source: str = "docker:x") -> Envelope:
    return Envelope(source, "stdout", origin_ns=int((T0 + seconds) * 1e9))


def test_counters_grow_in_the_bucket_of_their_own_time() -> None:
    state, history = _state()
    state.ingest(_scraped("i-1", "scraper-1", "a.example", 10, 8), _at(0.2))
    state.ingest(_scraped("i-1", "scraper-1", "a.example", 25, 20), _at(1.5))
    state.ingest(_received("i-1", "spotter-1", 18), _at(2.1))
    series = history.series()
    assert series["step"] == 1.0
    assert series["start"] == T0
    assert series["points"] == 3
    assert series["series"]["collected"]["total"] == [10, 15, 0]
    assert series["series"]["sent"]["total"] == [8, 12, 0]
    assert series["series"]["sent"]["by"]["scraper"] == {"scraper-1": [8, 12, 0]}
    assert series["series"]["sent"]["by"]["domain"] == {"a.example": [8, 12, 0]}
    assert series["series"]["received"]["total"] == [0, 0, 18]
    assert series["series"]["received"]["by"]["spotter"] == {"spotter-1": [0, 0, 18]}
    assert series["series"]["lines"]["total"] == [1, 1, 1]


def test_totals_equal_the_counts_view_of_the_same_state() -> None:
    from pytest_livecluster.methodology.views import Views

    state, history = _state()
    views = Views(state)
    rng = random.Random(7)
    sent: dict[tuple[str, str, str], int] = {}
    for i in range(2_000):
        iid, host, domain = f"i-{rng.randrange(20)}", f"scraper-{rng.randrange(3)}", "d.example"
        key = (iid, host, domain)
        sent[key] = sent.get(key, 0) + rng.randrange(5)
        state.ingest(_scraped(iid, host, domain, sent[key], sent[key]), _at(i / 10))
    totals = history.totals()
    assert totals["sent"] == views.counts().sent == sum(sent.values())
    assert totals["collected"] == views.counts().total["item_collected"]


def test_a_late_backlog_adds_to_its_own_time_so_order_does_not_matter() -> None:
    lines = []
    for second in range(30):
        lines.append((_scraped("i-1", "scraper-1", "a", second * 3, second * 3), _at(second, "s1")))
        lines.append((_received("i-1", "spotter-1", second * 2), _at(second + 0.5, "s2")))
    one_by_one, history_a = _state()
    for raw, env in lines:
        one_by_one.ingest(raw, env)
    # Source s2's whole backlog first, then s1's: as two containers read one after the other.
    backlog_first, history_b = _state()
    for raw, env in sorted(lines, key=lambda item: item[1].source != "s2"):
        backlog_first.ingest(raw, env)
    assert history_a.series() == history_b.series()


def test_a_counter_that_drops_adds_nothing_and_a_deleted_intent_takes_nothing_back() -> None:
    state, history = _state()
    state.ingest(_scraped("i-1", "scraper-1", "a", 50, 50), _at(0))
    state.ingest(_scraped("i-1", "scraper-1", "a", 5, 5), _at(1))  # a restarted writer
    state.ingest(b'{"intents": {"i-1": null}}', _at(2))
    assert history.totals()["sent"] == 50
    series = history.series()["series"]["sent"]["total"]
    assert series == [50, 0, 0]
    assert min(series) >= 0


def test_errors_by_host_type_and_domain() -> None:
    state, history = _state()
    state.ingest(
        b'{"scraper-1": {"errors": {"Timeout": {"count": 2, "domain": "a.example", "last": "x"}}}}',
        _at(0),
    )
    state.ingest(
        b'{"scraper-1": {"errors": {"Timeout": {"count": 5, "domain": "a.example", "last": "y"}}}}',
        _at(3),
    )
    state.ingest(_scraped("i-1", "scraper-2", "b.example", 1, 1, errors=4), _at(3))
    errors = history.series()["series"]["errors"]
    assert errors["total"] == [2, 0, 0, 7]
    assert errors["by"]["host"] == {"scraper-1": [2, 0, 0, 3], "scraper-2": [0, 0, 0, 4]}
    assert errors["by"]["type"] == {"Timeout": [2, 0, 0, 3], "scrape error": [0, 0, 0, 4]}
    assert errors["by"]["domain"] == {"a.example": [2, 0, 0, 3], "b.example": [0, 0, 0, 4]}


def test_a_day_long_run_keeps_at_most_max_points_and_every_item() -> None:
    state, history = _state(max_points=720)
    for second in range(0, 86_400, 7):
        state.ingest(_scraped("i-1", "scraper-1", "a", second, second), _at(second))
    series = history.series()
    assert series["points"] <= 720
    assert len(history.buckets) <= 720
    assert series["step"] >= 86_400 / 720
    assert sum(series["series"]["sent"]["total"]) == history.totals()["sent"] == 86_394
    assert sum(series["series"]["lines"]["total"]) == len(range(0, 86_400, 7))


def test_breakdowns_keep_max_keys_names_and_count_the_rest_as_other() -> None:
    state, history = _state()
    for i in range(MAX_KEYS + 10):
        state.ingest(_scraped("i-1", f"scraper-{i}", "a", 1, 1), _at(0))
    by = history.series()["series"]["sent"]["by"]["scraper"]
    assert len(by) == MAX_KEYS + 1
    assert by[OTHER] == [10]
    assert sum(v[0] for v in by.values()) == MAX_KEYS + 10


def test_rates_over_the_last_minute_and_the_run() -> None:
    state, history = _state()
    # 10 items/s for 120 s, then 2 items/s for the last 60 s.
    total = 0
    for second in range(180):
        total += 10 if second < 120 else 2
        state.ingest(_scraped("i-1", "scraper-1", "a", total, total), _at(second))
        state.ingest(_received("i-1", "spotter-1", total), _at(second))
    rates = history.rates(now=T0 + 180)
    assert rates["last_minute"]["sent"] == pytest.approx(2.0)
    assert rates["last_minute"]["received"] == pytest.approx(2.0)
    assert rates["run"]["sent"] == pytest.approx(total / 180, abs=0.001)
    assert rates["last_minute"]["by_scraper"]["scraper-1"]["sent"] == pytest.approx(2.0)
    assert rates["last_minute"]["by_spotter"]["spotter-1"]["received"] == pytest.approx(2.0)
    # A cluster that went quiet: the last minute, measured now, shows nothing.
    assert history.rates(now=T0 + 600)["last_minute"]["sent"] == 0


def test_reconnects_and_gaps_from_the_sources_health() -> None:
    state, history = _state()
    state.ingest(b'{"a": 1}', _at(0, "docker:a"))
    history.note_sources(T0 + 0.5, [{"source": "docker:a", "reconnects": 1, "gaps": 0}])
    history.note_sources(T0 + 0.7, [{"source": "docker:a", "reconnects": 1, "gaps": 2}])
    series = history.series()["series"]
    assert series["reconnects"]["by"]["source"] == {"docker:a": [1]}
    assert series["gaps"]["total"] == [2]


def test_an_evicted_intent_is_forgotten() -> None:
    clock = [float(T0)]
    state = State(counters=COUNTER_PATTERNS, ttl={"intents.*": 10}, clock=lambda: clock[0])
    history = History()
    state.add_projection(history)
    state.ingest(_scraped("i-1", "scraper-1", "a", 5, 5), _at(0))
    clock[0] += 60
    state.evict()
    assert history.totals()["sent"] == 5
    # The intent's counters were forgotten with it: the same id written again counts anew.
    state.ingest(_scraped("i-1", "scraper-1", "a", 3, 3), _at(61))
    assert history.totals()["sent"] == 8


def test_history_of_registers_once_and_refuses_a_state_that_took_lines() -> None:
    state = State()
    first = history_of(state, Keys())
    assert history_of(state, Keys()) is first
    late = State()
    late.ingest(b'{"a": 1}')
    with pytest.raises(ConfigError, match="before the state takes lines"):
        history_of(late, Keys())


def test_a_run_shorter_than_the_window_rates_over_its_own_span() -> None:
    state, history = _state()
    for second in range(10):
        state.ingest(_scraped("i-1", "scraper-1", "a", (second + 1) * 5, 0), _at(second))
    rates = history.rates(now=T0 + 10)
    assert rates["last_minute"]["collected"] == pytest.approx(5.0)
    assert rates["run"]["collected"] == pytest.approx(5.0)


def test_the_intent_timeline_flags_stuck_stale_and_late_intents_at_the_given_time() -> None:
    from pytest_livecluster.methodology.sections import intent_timeline
    from pytest_livecluster.methodology.views import Views

    state = State(counters=COUNTER_PATTERNS)
    views = Views(state)
    state.ingest(
        b'{"intents": {"i-fast": {"host": "scraper-1"}, "i-slow": {"host": "scraper-1"}}}', _at(0)
    )
    state.ingest(b'{"intents": {"i-stuck": {"host": "scraper-1"}}}', _at(1))
    for iid, received in (("i-fast", 1), ("i-slow", 6)):
        state.ingest(_scraped(iid, "scraper-1", "a", 3, 3), _at(received - 0.5))
        state.ingest(_received(iid, "spotter-1", 3), _at(received))
    state.ingest(_scraped("i-stuck", "scraper-1", "a", 1, 1), _at(1.5))
    timeline = intent_timeline(views, views.intents(), stale_after=2, now=T0 + 10)
    assert [r["id"] for r in timeline][:2] == ["i-stuck", "i-slow"]
    flags = {r["id"]: (r["stuck"], r["stale"], r["late"]) for r in timeline}
    assert flags == {
        "i-fast": (False, False, False),
        "i-slow": (False, False, True),
        "i-stuck": (True, True, False),
    }
    [slow] = [r for r in timeline if r["id"] == "i-slow"]
    assert (slow["set"], slow["received"]) == (T0, T0 + 6)
    assert slow["answered"] == {"scraper-1": T0 + 5.5, "spotter-1": T0 + 6}
    # Measured earlier, nothing had waited long enough to be stuck or stale yet.
    early = {r["id"]: r for r in intent_timeline(views, views.intents(), stale_after=2, now=T0 + 2)}
    assert (early["i-stuck"]["stuck"], early["i-stuck"]["stale"]) == (False, False)


def test_processes_of_a_blade_are_counted_apart_and_credited_to_it() -> None:
    state, history = _state()
    state.ingest(_scraped("i-1", "scraper-1/11-aa", "a", 5, 5), _at(0))
    state.ingest(_scraped("i-1", "scraper-1/12-bb", "a", 2, 2), _at(0))  # another process
    state.ingest(_scraped("i-1", "scraper-1/11-aa", "a", 7, 7), _at(1))
    state.ingest(_received("i-1", "spotter-1/3-cc", 9), _at(1))
    series = history.series()["series"]
    assert series["sent"]["by"]["scraper"] == {"scraper-1": [7, 2]}
    assert series["received"]["by"]["spotter"] == {"spotter-1": [0, 9]}
    assert history.totals()["sent"] == 9
