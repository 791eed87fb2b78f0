"""What the engine sends, decoded: streams, long lines, tails, TTY (pitfalls 8-11, 13;
cases 8-12)."""

from __future__ import annotations

import pytest

from pytest_livecluster import Limits, State
from pytest_livecluster.sources import SourceOptions
from tests.support.dockerkit import (
    Collect,
    Collection,
    Launcher,
    assert_exact,
    has_embedded_timestamp,
    wait_until,
)


def _finished(collection: Collection) -> None:
    wait_until(lambda: collection.source.health.attached == 0, 20, "the follower to finish")


def test_stdout_and_stderr_at_full_speed(launch: Launcher, collect: Collect) -> None:
    """Case 8: 5000 stdout and 5000 stderr lines at full speed: each stream exact, and
    each stream's timestamps in order, whatever the merged order did."""
    collection = collect()
    container = launch({"SEQ_COUNT": "5000", "SEQ_STREAM": "oe"})
    collection.wait_count(10000, 60, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert_exact(lines, container.name, 5000, stream="stdout", s="o")
    assert_exact(lines, container.name, 5000, stream="stderr", s="e")
    assert len(lines) == 10000
    for stream in ("stdout", "stderr"):
        stamps = [x.envelope.origin_ns or 0 for x in lines if x.envelope.stream == stream]
        assert stamps == sorted(stamps)


def test_long_lines_are_reassembled(launch: Launcher, collect: Collect) -> None:
    """Case 9: lines of 16383, 16384, 16385, 40000 and 100000 bytes each arrive as one
    valid JSON object of that size, without an embedded timestamp."""
    sizes = [16383, 16384, 16385, 40000, 100000]
    collection = collect()
    container = launch({"SEQ_SIZES": " ".join(map(str, sizes))})
    collection.wait_count(len(sizes), 20, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert [len(x.raw) for x in lines] == sizes
    assert [x.json()["seq"] for x in lines] == list(range(len(sizes)))
    assert not any(has_embedded_timestamp(x.raw) for x in lines)
    assert not any(x.envelope.unterminated for x in lines)


def test_line_over_the_limit_is_cut_and_reported(launch: Launcher, collect: Collect) -> None:
    """A line longer than ``max_line_bytes`` is still delivered, cut one byte past the
    limit (so ingest counts it too large), and reported in the health."""
    collection = collect(options=SourceOptions(max_line_bytes=20000, reconnect_max_wait=1.0))
    container = launch({"SEQ_SIZES": "100 50000 100"})
    collection.wait_count(3, 20, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert [len(x.raw) for x in lines] == [100, 20001, 100]
    (error,) = collection.source.health.errors
    assert container.name in error
    assert "a stdout line of 50000 bytes was cut to its first 20001" in error
    state = State(limits=Limits(max_line_bytes=20000))
    for line in lines:
        state.ingest(line.raw, line.envelope)
    assert state.stats().rejected == {"too_large": 1}


def test_long_lines_on_both_streams_at_once(launch: Launcher, collect: Collect) -> None:
    """Case 10: 40000-byte lines on stdout and stderr at the same time: the partial frames
    interleave, and each stream's line is joined from its own pieces only."""
    collection = collect()
    container = launch({"SEQ_COUNT": "50", "SEQ_STREAM": "oe", "SEQ_SIZE": "40000"})
    collection.wait_count(100, 30, container.name)
    _finished(collection)
    lines = collection.snapshot()
    for stream, s in (("stdout", "o"), ("stderr", "e")):
        assert_exact(lines, container.name, 50, stream=stream, s=s)
    for line in lines:
        assert 40000 <= len(line.raw) <= 40002
        assert line.json()["p"] == "x" * len(line.json()["p"])
        assert not has_embedded_timestamp(line.raw)


@pytest.mark.parametrize("lines_before", [0, 30])
def test_last_output_without_newline(launch: Launcher, collect: Collect, lines_before: int) -> None:
    """Case 11: ``printf '{"seq":0}'`` (no newline), then exit: delivered once, flagged
    unterminated; also after 30 lines read with a follow open, which the engine can end
    before sending that last piece (2 runs in 5, measured on 20.10.24)."""
    collection = collect()
    tail = '{"seq":0,"s":"t","boot":0}'
    env = {"SEQ_COUNT": str(lines_before), "SEQ_RATE": "60"}
    container = launch(env, command=["sh", "-c", f"seqlog; printf '{tail}'"])
    collection.wait_count(lines_before + 1, 20, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert [x.raw for x in lines if x.envelope.unterminated] == [tail.encode()]
    assert lines[-1].raw == tail.encode()
    assert_exact(lines, container.name, lines_before, stream="stdout", s="o")
    assert len(lines) == lines_before + 1


def test_tty_container(launch: Launcher, collect: Collect) -> None:
    """Case 12: a TTY: ``\\r\\n`` stripped, stderr arrives as stdout, no framing errors."""
    collection = collect()
    container = launch({"SEQ_COUNT": "200", "SEQ_STREAM": "oe"}, tty=True)
    collection.wait_count(400, 20, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert {x.envelope.stream for x in lines} == {"stdout"}
    assert not any(x.raw.endswith(b"\r") or b"\r" in x.raw for x in lines)
    assert_exact(lines, container.name, 200, s="o")
    assert_exact(lines, container.name, 200, s="e")
    assert collection.source.health.error_count == 0
