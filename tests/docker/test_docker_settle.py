"""Settling at start-up: :meth:`DockerSource.caught_up` says when the backlog found at
attach is read, from the engine's timestamps, even for containers that never pause."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from docker.models.containers import Container

from pytest_livecluster import State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.sources.docker import DockerSource
from tests.support import HANG_GUARD, LONG_WAIT
from tests.support.dockerkit import Label, Launcher, wait_until

QUIET = 0.3
# A quiet that never comes within the guard: a source caught up under it was caught up
# from the engine's timestamps (or because it had nothing to follow), not by silence.
NEVER_QUIET = LONG_WAIT
# Each container prints {"c<C>":{"seq":N}}: BACKLOG lines at once, then one line every
# PAUSE_US microseconds forever (PAUSE_US=0: silent after the backlog).
WRITER = """
trap 'exit 0' TERM
i=0
while [ $i -lt $BACKLOG ]; do echo "{\\"c$C\\":{\\"seq\\":$i}}"; i=$((i + 1)); done
[ "$PAUSE_US" -gt 0 ] || exec sleep 1000000
while :; do echo "{\\"c$C\\":{\\"seq\\":$i}}"; i=$((i + 1)); usleep $PAUSE_US; done
"""

Start = Callable[[], tuple[Collector, float]]


def _writer(launch: Launcher, index: int, backlog: int, pause_us: int) -> Container:
    env = {"C": str(index), "BACKLOG": str(backlog), "PAUSE_US": str(pause_us)}
    container = launch(env, command=["sh", "-c", WRITER])
    wait_until(
        lambda: container.logs().count(b"\n") >= backlog, 60, f"{backlog} backlog lines written"
    )
    return container


class _Seqs:
    """Every seq the collector ingested, per writer, in order (the collector's line hook)."""

    def __init__(self) -> None:
        self.got: dict[str, list[int]] = {}

    def __call__(self, raw: bytes, envelope: Envelope, accepted: bool) -> None:
        ((key, value),) = json.loads(raw).items()
        self.got.setdefault(key, []).append(value["seq"])

    def contiguous(self, key: str) -> int:
        """How many, asserting seq 0..n-1 each once, in order."""
        got = list(self.got.get(key, []))
        assert got == list(range(len(got))), f"{key}: not 0..{len(got) - 1} in order"
        return len(got)


@pytest.fixture
def seqs() -> _Seqs:
    return _Seqs()


@pytest.fixture
def start(label: Label, seqs: _Seqs) -> Iterator[Start]:
    """Start a Collector over a DockerSource on the test's label; closed at teardown."""
    made: list[Collector] = []

    def run() -> tuple[Collector, float]:
        state = State(counters=["*.seq"])
        source = DockerSource(label.spec())
        assert not source.caught_up(QUIET), "caught up before it started"
        made.append(Collector(state, [source], on_line=seqs))
        started = time.monotonic()
        made[-1].start()
        return made[-1], started

    yield run
    for collector in made:
        assert collector.close(timeout=HANG_GUARD) == []
        assert collector.failures == []


def _settle(
    collector: Collector, started: float, *, quiet: float = QUIET, guard: float = HANG_GUARD
) -> float:
    """Poll as start-up does until every source is caught up; the seconds it took (for
    the output, and for lower bounds only). ``guard`` is a hang guard, not a speed limit:
    keep it below ``quiet`` when the test is that silence did not do it."""
    while not all(source.caught_up(quiet) for source in collector.sources):
        assert time.monotonic() - started < guard, [h.as_dict() for h in collector.health()]
        time.sleep(0.02)
    took = time.monotonic() - started
    print(f"caught up after {took:.3f}s, {collector.lines} lines ingested")
    return took


def test_busy_container_is_caught_up_without_pausing(
    launch: Launcher, start: Start, seqs: _Seqs
) -> None:
    """3000 lines of backlog, then 50 lines/s forever: never quiet, yet caught up (from
    the timestamps: NEVER_QUIET cannot pass within the guard), and by then every backlog
    line is in the state."""
    _writer(launch, 0, 3000, 20_000)
    collector, started = start()
    _settle(collector, started, quiet=NEVER_QUIET)
    assert collector.state.get("c0", "seq") >= 2999
    assert seqs.contiguous("c0") >= 3000


def test_silent_container_is_caught_up_once_its_backlog_is_read(
    launch: Launcher, start: Start, seqs: _Seqs
) -> None:
    """A few lines, then silence: caught up as soon as its last line is in the state,
    from the engine's word on which line was its last (NEVER_QUIET cannot pass within
    the guard: silence did not decide it)."""
    _writer(launch, 0, 5, 0)
    collector, started = start()
    _settle(collector, started, quiet=NEVER_QUIET)
    assert collector.state.get("c0", "seq") == 4
    assert seqs.contiguous("c0") == 5


def test_many_finished_backlogs_are_all_read_before_caught_up(
    launch: Launcher, label: Label, seqs: _Seqs
) -> None:
    """Ten containers whose backlogs are complete before the collector starts, followers
    starting one after another: ``wait_caught_up`` returns only once every line of every
    backlog is in the state, however long a follower takes to start or the engine to
    prepare a large stream (a 0.3 s quiet must not pass for the end)."""
    count, backlog = 10, 20_000
    for index in range(count):
        _writer(launch, index, backlog, 0)
    state = State(counters=["*.seq"])
    collector = Collector(state, [DockerSource(label.spec())], on_line=seqs).start()
    try:
        behind = collector.wait_caught_up(QUIET, timeout=HANG_GUARD * 4)
        assert behind == []
        assert state.stats().lines == count * backlog
        for index in range(count):
            assert seqs.contiguous(f"c{index}") == backlog
    finally:
        assert collector.close(timeout=HANG_GUARD) == []


def test_not_caught_up_until_the_big_backlog_is_read(
    launch: Launcher, start: Start, seqs: _Seqs
) -> None:
    """A busy container and one with 100 000 lines of backlog that goes on at 10 lines/s:
    caught up only once the big backlog is all in the state. (How fast it is read is
    for benchmarks/; a pause of the reader cannot pass for the end of the backlog here,
    as NEVER_QUIET is far longer than any pause.)"""
    _writer(launch, 0, 3000, 20_000)
    _writer(launch, 1, 100_000, 100_000)
    collector, started = start()
    _settle(collector, started, quiet=NEVER_QUIET)
    assert collector.state.get("c1", "seq") >= 99_999
    assert collector.state.get("c0", "seq") >= 2999
    assert seqs.contiguous("c1") >= 100_000
    assert seqs.contiguous("c0") >= 3000


def test_no_container_is_caught_up_once_listed(start: Start) -> None:
    """Nothing carries the label: caught up as soon as discovery has listed (not by a
    quiet: NEVER_QUIET cannot pass within the guard)."""
    collector, started = start()
    _settle(collector, started, quiet=NEVER_QUIET)
    assert collector.lines == 0
