"""Discovery: which containers are followed, and when (pitfalls 1-6; cases 1-5, 17, 22)."""

from __future__ import annotations

import time

import pytest

from pytest_livecluster.exceptions import SourceUnavailable, SpecError
from pytest_livecluster.sources import parse_specs
from pytest_livecluster.sources.docker import DockerSource
from tests.support import LONG_WAIT, returns
from tests.support.dockerkit import (
    NINE_DIGIT_SINCE,
    Collect,
    Collection,
    DockerProxy,
    Launcher,
    assert_exact,
    follower_threads,
    wait_until,
)


def _idle(collection: Collection, timeout: float = 15) -> None:
    """Wait until no container is being followed (every one read to its end)."""
    wait_until(lambda: collection.source.health.attached == 0, timeout, "followers to finish")


def _logs_requests(proxy: DockerProxy, container_id: str) -> list[dict[str, str]]:
    return [r.params for r in proxy.reads(container_id)]


def test_only_labelled_containers(launch: Launcher, collect: Collect) -> None:
    """Case 1: a labelled and an unlabelled container; only the labelled one's lines."""
    collection = collect()
    mine = launch({"SEQ_COUNT": "30"})
    other = launch({"SEQ_COUNT": "30"}, labelled=False)
    other.wait(timeout=20)
    mine.wait(timeout=20)
    collection.wait_count(30, 15, mine.name)
    _idle(collection)
    lines = collection.snapshot()
    assert {line.name for line in lines} == {mine.name}
    assert_exact(lines, mine.name, 30, stream="stdout", s="o", boot=0)
    # The host behind each envelope source is the container; none for what is not its own.
    source = collection.source
    assert source.host_of(f"docker:{mine.name}") == mine.name
    assert source.host_of(f"docker:{other.name}") is None
    assert source.host_of(mine.name) is None


def test_lines_written_before_the_source_starts(launch: Launcher, collect: Collect) -> None:
    """Case 2: 100 lines written before the collector starts arrive once each."""
    container = launch({"SEQ_COUNT": "100", "SEQ_AFTER": "hold"})
    wait_until(lambda: container.logs().count(b"\n") >= 100, 15, "100 lines written")
    collection = collect()
    collection.wait_count(100, 15, container.name)
    time.sleep(0.5)  # anything sent twice would arrive by now
    assert_exact(collection.snapshot(), container.name, 100, stream="stdout", s="o")


def test_container_that_exited_before_attach(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """Case 3: 50 lines from a container that exited before the source started."""
    container = launch({"SEQ_COUNT": "50"})
    assert container.wait(timeout=20)["StatusCode"] == 0
    collection = collect()
    collection.wait_count(50, 15, container.name)
    _idle(collection)
    assert_exact(collection.snapshot(), container.name, 50, stream="stdout", s="o")
    # One read without follow (pitfall 3: following a stopped container is pointless).
    assert [p["follow"] for p in _logs_requests(proxy, container.id)] == ["0"]


def test_short_lived_containers_while_collecting(launch: Launcher, collect: Collect) -> None:
    """Case 4: 20 containers each print one line and exit while the source runs."""
    collection = collect()
    containers = launch.many(20, {"SEQ_COUNT": "1"})
    collection.wait_count(20, 30)
    _idle(collection, 30)
    time.sleep(0.3)
    lines = collection.snapshot()
    for container in containers:
        assert_exact(lines, container.name, 1, stream="stdout", s="o", boot=0)
    assert len(lines) == 20


@pytest.mark.parametrize("delay_ms", [0, 10, 50])
def test_create_then_start(
    launch: Launcher, collect: Collect, proxy: DockerProxy, delay_ms: int
) -> None:
    """Case 5: create, then start 0-50 ms later: the follow is opened on start, not create.

    A follow opened at create returns EOF at once (pitfall 3); the source waits for the
    start event, then follows (``follow=1``) and reads the end of the run (``follow=0``),
    or only the latter if the container has already exited.
    """
    collection = collect()
    quick = launch({"SEQ_COUNT": "20"}, start=False)
    steady = launch({"SEQ_COUNT": "20", "SEQ_RATE": "40"}, start=False)
    for container in (quick, steady):
        time.sleep(delay_ms / 1000)
        container.start()
    for container in (quick, steady):
        container.wait(timeout=20)
    collection.wait(
        lambda lines: sum(1 for x in lines if x.name in {quick.name, steady.name}) >= 40,
        15,
        "40 lines",
    )
    _idle(collection)
    lines = collection.snapshot()
    for container in (quick, steady):
        assert_exact(lines, container.name, 20, stream="stdout", s="o", boot=0)
        follows = [p["follow"] for p in _logs_requests(proxy, container.id)]
        assert follows in (["1", "0"], ["0"])


def test_events_connection_cut_then_container_started(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """Case 17: only the events connection is cut, and reconnecting is refused for a
    while; a container started meanwhile is found once the source reconnects and lists
    again."""
    collection = collect()
    source = collection.source
    first = launch({"SEQ_COUNT": "5"})
    collection.wait_count(5, 15, first.name)
    lists_before = len(proxy.logged(contains="/containers/json"))
    proxy.refuse("events")
    assert proxy.cut("events") == 1
    wait_until(lambda: proxy.refused >= 1, 10, "a refused events reconnect")
    container = launch({"SEQ_COUNT": "25"})
    container.wait(timeout=20)
    assert collection.snapshot(container.name) == []
    proxy.refuse(None)
    collection.wait_count(25, 20, container.name)
    _idle(collection)
    assert_exact(collection.snapshot(), container.name, 25, stream="stdout", s="o")
    assert len(proxy.logged(contains="/containers/json")) > lists_before
    assert source.health.reconnects >= 1
    assert any("events" in error for error in source.health.errors)
    # The resume starts at the last event seen (first's), in nine-digit nanoseconds.
    events = proxy.logged("events")
    first_since, resumed_since = events[0].params["since"], events[-1].params["since"]
    assert NINE_DIGIT_SINCE.match(resumed_since)
    assert float(resumed_since) > float(first_since)


def test_removed_while_following(launch: Launcher, collect: Collect, proxy: DockerProxy) -> None:
    """Case 22: ``docker rm -f`` while following ends the follower, with no reconnect loop
    and no CPU spin."""
    collection = collect()
    source = collection.source
    container = launch({"SEQ_COUNT": "-1", "SEQ_RATE": "50"})
    collection.wait_count(20, 15, container.name)
    container.remove(force=True)
    wait_until(lambda: source.health.attached == 0, 10, "the follower to end")
    wait_until(lambda: not follower_threads(), 5, "the follower thread to exit")
    requests_then = len(proxy.logged())
    cpu_then = time.process_time()
    time.sleep(2)
    assert time.process_time() - cpu_then < 0.5
    assert len(proxy.logged()) == requests_then
    assert source.health.reconnects == 0
    assert len(_logs_requests(proxy, container.id)) == 1
    seqs = [line.json()["seq"] for line in collection.snapshot(container.name)]
    assert seqs == list(range(len(seqs)))


def test_follow_that_outlives_its_container(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """A follow that stays open after its container died (the engine's follow can stall
    when the log file rotates, pitfall 15; here the proxy holds the end back): the
    source cuts it ``die_grace_s`` after the die event and reads the rest without
    follow, unterminated tail included."""
    proxy.hold_eof = True
    collection = collect(die_grace_s=1.0)
    source = collection.source
    container = launch(
        {"SEQ_COUNT": "30", "SEQ_RATE": "60"}, command=["sh", "-c", "seqlog; printf tail"]
    )
    container.wait(timeout=20)
    wait_until(lambda: source.health.attached == 0, 15, "the follower to finish")
    lines = collection.snapshot(container.name)
    assert [x.raw for x in lines[-1:]] == [b"tail"]
    assert lines[-1].envelope.unterminated
    assert_exact(lines[:-1], container.name, 30, stream="stdout", s="o")
    assert [r.params["follow"] for r in proxy.reads(container.id)] == ["1", "0"]
    assert any("still open 1s after the container stopped" in e for e in source.health.errors)


def test_bad_specs_name_the_value_and_the_form() -> None:
    for spec in ("docker:", "docker:label=app", "docker:name=x", "docker:label=a=b;host=ftp://x"):
        with pytest.raises(SpecError, match=r"write docker:label=KEY=VALUE") as info:
            parse_specs(spec)
        assert repr(spec) in str(info.value)
    (source,) = parse_specs("docker:label=app=web;host=unix:///tmp/x.sock")
    assert isinstance(source, DockerSource)
    assert source.id == "docker:label=app=web;host=unix:///tmp/x.sock"


def test_unreachable_engine_is_reported_at_once() -> None:
    """An engine that is not there at the start: SourceUnavailable naming it, no leak.
    At once, not after retries: retrying until closed, or for the api_timeout (LONG_WAIT
    here), would not return within the hang guard."""
    source = DockerSource(
        "docker:label=a=b;host=unix:///tmp/livecluster-no-engine.sock", api_timeout=LONG_WAIT
    )
    with pytest.raises(SourceUnavailable, match=r"livecluster-no-engine\.sock"):
        returns(lambda: source.run(lambda raw, envelope: None))
    assert source.health.state == "failed"
    assert source.health.reconnects == 0
