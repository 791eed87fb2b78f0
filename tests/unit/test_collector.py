"""The collector: sources in threads, one state, failures the user sees."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pytest_livecluster import Envelope, State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.source import Emit, Feed, SourceState
from pytest_livecluster.exceptions import SourceError
from pytest_livecluster.sources import Source
from pytest_livecluster.sources.file import FileSource
from tests.support import HANG_GUARD, LONG_WAIT, returns


class Blocking(Source):
    """A live source that emits its lines, then blocks until closed."""

    def __init__(self, name: str, lines: list[bytes]) -> None:
        super().__init__(name)
        self.lines = lines
        self.go = threading.Event()

    def run(self, emit: Emit) -> None:
        self.health.state = "attached"
        for raw in self.lines:
            self.health.line(raw)
            emit(raw, Envelope(self.id))
        self.go.set()
        self._closed.wait()


class Broken(Source):
    """A source with a bug in it."""

    def run(self, emit: Emit) -> None:
        raise KeyError("oops")


def write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def test_sources_feed_one_state_and_count_rejections(tmp_path: Path) -> None:
    a = FileSource(write(tmp_path / "a.ndjson", [b'{"a": {"x": 1}}', b"not json"]))
    b = Blocking("live", [b'{"a": {"y": 2}}', b"[1]"])
    state = State()
    with Collector(state, [a, b]) as collector:
        assert b.go.wait(5)
        assert collector.wait_idle(0.2, timeout=5)
        assert state.snapshot() == {"a": {"x": 1, "y": 2}}
        assert collector.lines == 4
        assert (a.health.rejected, b.health.rejected) == (1, 1)
        assert a.health.state == "finished"
        assert collector.running
    assert not collector.running


class Batching(Source):
    """A live source that hands its lines over in one batch, then blocks until closed."""

    def __init__(self, name: str, lines: list[bytes]) -> None:
        super().__init__(name)
        self.lines = lines
        self.go = threading.Event()

    def run(self, emit: Feed) -> None:
        self.health.state = "attached"
        emit.batch([(raw, Envelope(self.id, origin_ns=i + 1)) for i, raw in enumerate(self.lines)])
        self.go.set()
        self._closed.wait()


def test_a_batch_is_taken_in_order_with_its_rejections() -> None:
    lines = [b'{"a": {"x": 1}}', b"not json", b'{"a": {"x": 2}}', b"[1]", b'{"a": {"y": 3}}']
    source = Batching("batch", lines)
    state = State()
    with Collector(state, [source]) as collector:
        assert source.go.wait(HANG_GUARD)
        assert collector.wait_idle(0.2, timeout=LONG_WAIT)
        assert state.snapshot() == {"a": {"x": 2, "y": 3}}
        assert collector.lines == 5
        assert source.health.rejected == 2
        assert [e.raw for e in state.journal()] == [lines[0], lines[2], lines[4]]
        assert [e.envelope.origin_ns for e in state.journal()] == [1, 3, 5]
        assert [r.reason for r in state.rejected()] == ["invalid_json", "not_an_object"]


def test_a_batch_goes_line_by_line_through_on_line() -> None:
    seen: list[tuple[bytes, bool]] = []
    source = Batching("batch", [b'{"a": 1}', b"oops"])
    collector = Collector(State(), [source], on_line=lambda r, e, ok: seen.append((r, ok)))
    with collector:
        assert source.go.wait(HANG_GUARD)
        assert collector.wait_idle(0.2, timeout=LONG_WAIT)
    assert seen == [(b'{"a": 1}', True), (b"oops", False)]


def test_a_failing_source_is_reported_not_lost(tmp_path: Path) -> None:
    missing = FileSource(str(tmp_path / "missing.ndjson"))
    broken = Broken("broken")
    collector = Collector(State(), [missing, broken]).start()
    assert collector.wait_finished(5)
    failures = {f.source: f for f in collector.failures}
    assert "No such file" in failures[missing.id].message
    assert failures["broken"].message == "KeyError: 'oops'"
    assert "Traceback" in failures["broken"].detail
    assert missing.health.state == broken.health.state == "failed"
    assert collector.close() == []


def test_close_ends_every_thread() -> None:
    """Each source would block until closed: close() ends them all (none is named as
    stuck after the hang guard), and leaves no thread behind."""
    before = set(threading.enumerate())
    sources = [Blocking(f"s{i}", [b'{"k": 1}']) for i in range(8)]
    collector = Collector(State(), sources).start()
    for source in sources:
        assert source.go.wait(HANG_GUARD)
    assert collector.close(timeout=HANG_GUARD) == []
    assert not collector.running
    assert set(threading.enumerate()) <= before


def test_on_line_sees_every_line_with_its_verdict(tmp_path: Path) -> None:
    seen: list[tuple[bytes, bool]] = []
    path = write(tmp_path / "a.ndjson", [b'{"a": 1}', b"oops"])
    collector = Collector(
        State(), [FileSource(path)], on_line=lambda r, e, ok: seen.append((r, ok))
    )
    with collector:
        assert collector.wait_finished(5)
    assert seen == [(b'{"a": 1}', True), (b"oops", False)]


def test_wait_idle_gives_up_at_the_timeout() -> None:
    class Chatty(Source):
        def run(self, emit: Emit) -> None:
            while not self._closed.wait(0.01):
                emit(b'{"tick": 1}', Envelope(self.id))

    with Collector(State(), [Chatty("chatty")]) as collector:
        began = time.monotonic()
        # Idle would take LONG_WAIT of quiet, which never comes: only the timeout ends it.
        assert returns(lambda: collector.wait_idle(LONG_WAIT, timeout=0.3)) is False
        assert time.monotonic() - began >= 0.3  # not before the timeout (a lower bound)


def test_start_twice_is_an_error() -> None:
    collector = Collector(State(), []).start()
    with pytest.raises(RuntimeError, match="already started"):
        collector.start()


def test_what_a_running_source_cannot_read_is_a_failure() -> None:
    class PartlyBlind(Blocking):
        failures = ("container web-1: logging driver none cannot be read",)

    source = PartlyBlind("docker:label=a=b", [b'{"k": 1}'])
    with Collector(State(), [source]) as collector:
        assert source.go.wait(5)
        assert [str(f) for f in collector.failures] == [
            "docker:label=a=b: container web-1: logging driver none cannot be read"
        ]


class Parent(Source):
    """A source that finds more sources to follow (as the simulated cluster does)."""

    def __init__(self, children: list[Source]) -> None:
        super().__init__("parent")
        self.children = children
        self.handed = threading.Event()

    def run(self, emit: Feed) -> None:
        self.health.state = SourceState.ATTACHED
        followed = [emit.follow(child) for child in self.children]
        self.handed.set()
        self._closed.wait()
        for child in self.children:
            child.close()
        for thread in followed:
            thread.join(2)
        self.health.state = SourceState.CLOSED


class Failing(Source):
    """A live source that fails for good after one line."""

    def run(self, emit: Emit) -> None:
        emit(b'{"f": 1}', Envelope(self.id))
        raise SourceError(f"{self.id}: gone for good")


def test_the_collector_runs_the_sources_a_source_hands_it(tmp_path: Path) -> None:
    recording = FileSource(write(tmp_path / "a.ndjson", [b'{"a": 1}', b'{"b": 2}']))
    live = Blocking("live", [b'{"c": 3}'])
    parent = Parent([recording, live])
    state = State()
    collector = Collector(state, [parent]).start()
    try:
        assert parent.handed.wait(5)
        assert live.go.wait(5)
        assert collector.wait_idle(0.2, timeout=5)
        assert state.snapshot() == {"a": 1, "b": 2, "c": 3}
        assert collector.lines == 3
        assert recording.health.state is SourceState.FINISHED
        assert collector.running
    finally:
        assert collector.close() == []
    assert live.closed, "closing the collector closes what a source handed it"
    assert not collector.running
    assert collector.failures == []


def test_a_followed_source_that_fails_fails_its_parent() -> None:
    parent = Parent([Failing("child")])
    state = State()
    with Collector(state, [parent]) as collector:
        assert collector.wait_finished(timeout=5), "the parent stops once its child failed"
        [failure] = collector.failures
        assert failure.source == "parent"
        assert failure.message == "parent: following child failed: child: gone for good"
        assert state.snapshot() == {"f": 1}
        assert "following child failed" in parent.health.errors[-1]
