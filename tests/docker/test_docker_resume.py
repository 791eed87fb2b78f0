"""Resuming after a broken connection: nanosecond ``since``, per-stream deduplication,
rotation gaps and idle streams (pitfalls 12, 13, 15, 16; cases 13-15, 19, 20)."""

from __future__ import annotations

import time

import pytest
from docker.models.containers import Container
from docker.types import LogConfig

from pytest_livecluster.sources.docker import RESUME_MARGIN_NS
from tests.support.dockerkit import (
    NINE_DIGIT_SINCE,
    Collect,
    Collection,
    DockerProxy,
    Launcher,
    Line,
    assert_exact,
    multiset_problems,
    seqs,
    wait_until,
)


def _finished(collection: Collection, timeout: float = 30) -> None:
    wait_until(lambda: collection.source.health.attached == 0, timeout, "the follower to finish")


def _running(container: Container) -> bool:
    container.reload()
    return bool(container.status == "running")


def _since_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 10**9 + int(fraction)


def _resumes(proxy: DockerProxy, container: Container) -> list[str]:
    """The ``since`` of every logs request for the container that had one."""
    requests = proxy.logged("logs", contains=f"/containers/{container.id}/")
    return [r.params["since"] for r in requests if "since" in r.params]


def _assert_resumed_at_marks(resumes: list[str], lines: list[Line]) -> None:
    """Each ``since`` is nine-digit and is a delivered line's own timestamp less the
    margin: the resume point is exact, never rounded to the second."""
    __tracebackhide__ = True
    stamps = {line.envelope.origin_ns for line in lines}
    for since in resumes:
        assert NINE_DIGIT_SINCE.match(since), since
        assert _since_ns(since) + RESUME_MARGIN_NS in stamps, since


def test_socket_cut_every_two_seconds(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """Case 13: 2000 lines/s (1000 on each stream) while the proxy cuts every connection
    every 2 s: no gap, no duplicate, and every resume sends ``since`` in nanoseconds."""
    collection = collect()
    container = launch({"SEQ_COUNT": "7000", "SEQ_RATE": "1000", "SEQ_STREAM": "oe"})
    cuts = 0
    while _running(container):
        time.sleep(2)
        cuts += proxy.cut("all") > 0
    collection.wait_count(14000, 60, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert_exact(lines, container.name, 7000, stream="stdout", s="o")
    assert_exact(lines, container.name, 7000, stream="stderr", s="e")
    assert len(lines) == 14000
    assert cuts >= 3
    resumes = _resumes(proxy, container)
    assert len(resumes) >= cuts - 1
    _assert_resumed_at_marks(resumes, lines)
    assert collection.source.health.reconnects >= cuts


def test_reconnect_mid_burst(launch: Launcher, collect: Collect, proxy: DockerProxy) -> None:
    """Case 14: 500 lines within one second, the logs connection cut in the middle: no
    duplicates, because the resume starts at the exact nanosecond (a whole-second
    ``since`` would send most of that second again)."""
    collection = collect()
    container = launch({"SEQ_COUNT": "250", "SEQ_RATE": "250", "SEQ_STREAM": "oe"})
    collection.wait_count(150, 15, container.name)
    assert proxy.cut("logs") == 1
    collection.wait_count(500, 20, container.name)
    _finished(collection)
    lines = collection.snapshot()
    assert_exact(lines, container.name, 250, stream="stdout", s="o")
    assert_exact(lines, container.name, 250, stream="stderr", s="e")
    resumes = _resumes(proxy, container)
    assert len(resumes) >= 1
    _assert_resumed_at_marks(resumes, lines)
    stamps = sorted(line.envelope.origin_ns or 0 for line in lines)
    assert stamps[-1] - stamps[0] < 2 * 10**9


def test_identical_lines_survive_a_reconnect(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """Case 15: the same line printed 100 times on each stream, the connection cut in the
    middle: exactly 100 per stream; deduplication keeps genuine repeats."""
    collection = collect()
    text = '{"same":"line"}'
    container = launch({"SEQ_TEXT": text, "SEQ_COUNT": "100", "SEQ_RATE": "50", "SEQ_STREAM": "oe"})
    collection.wait_count(80, 15, container.name)
    assert proxy.cut("logs") == 1
    collection.wait_count(200, 20, container.name)
    _finished(collection)
    time.sleep(0.3)
    lines = collection.snapshot()
    for stream in ("stdout", "stderr"):
        assert [x.raw for x in lines if x.envelope.stream == stream] == [text.encode()] * 100
    assert len(_resumes(proxy, container)) >= 1


def test_rotation_gap_is_reported(launch: Launcher, collect: Collect) -> None:
    """Case 19: ``max-size=10k max-file=2`` and a fast writer: rotation loses lines while
    following, and the source reports it; with ``max-size=50m`` nothing is lost.

    The source sees only timestamps, so it reports *possible* gaps (a stream going back
    in time, or a resume that does not start at the last line read). The lost lines
    themselves are counted here through seqlog's sequence numbers.
    """
    collection = collect()
    count = 20000
    rotated = launch(
        {"SEQ_COUNT": str(count)},
        log_config=LogConfig(type="json-file", config={"max-size": "10k", "max-file": "2"}),
    )
    roomy = launch(
        {"SEQ_COUNT": str(count)},
        log_config=LogConfig(type="json-file", config={"max-size": "50m", "max-file": "2"}),
    )
    rotated.wait(timeout=60)
    roomy.wait(timeout=60)
    collection.wait_count(count, 60, roomy.name)
    _finished(collection)
    lines = collection.snapshot()
    assert_exact(lines, roomy.name, count, stream="stdout", s="o")
    lost = multiset_problems(set(seqs(lines, rotated.name)), range(count))
    assert lost.startswith("missing"), "rotation at 10k lost nothing?"
    health = collection.source.health
    assert health.gaps >= 1
    gap_errors = [e for e in health.errors if "rotated under the reader" in e]
    assert gap_errors
    assert all(rotated.name in e and "max-size=10k" in e for e in gap_errors)
    assert not any(roomy.name in e for e in health.errors)


def test_idle_stream_is_not_timed_out(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """Case 20, shortened: the stream stays open through a silence longer than the
    client's timeout, and the line written after it arrives on the same connection.

    Idle log streams used to die at docker-py's 60 s default timeout
    (docker/compose#5973): the client-wide timeout applied to the stream's reads. Here
    that client-wide timeout is 1 s, and the container is silent for 4 s: the stream
    must have no read timeout of its own for the line to arrive without a reconnect.
    The engine sends nothing while a container is silent, so only the client could end
    the stream. The full 65 s version is ``test_idle_stream_past_docker_py_timeout``.
    """
    collection = collect(api_timeout=1.0)
    container = launch({"SEQ_DELAY": "4", "SEQ_COUNT": "1", "SEQ_AFTER": "hold"})
    wait_until(lambda: proxy.open_connections("logs") == 1, 10, "the follow to open")
    collection.wait_count(1, 20, container.name)
    assert [r.params.get("follow") for r in proxy.reads(container.id)] == ["1"]
    assert collection.source.health.reconnects == 0
    assert collection.source.health.error_count == 0


@pytest.mark.slow
def test_idle_stream_past_docker_py_timeout(
    launch: Launcher, collect: Collect, proxy: DockerProxy
) -> None:
    """Case 20 in full: silent for 65 s (more than docker-py's 60 s default timeout),
    then one line, on the same connection."""
    collection = collect(api_timeout=60.0)
    container = launch({"SEQ_DELAY": "65", "SEQ_COUNT": "1", "SEQ_AFTER": "hold"})
    collection.wait_count(1, 90, container.name)
    assert [r.params.get("follow") for r in proxy.reads(container.id)] == ["1"]
    assert collection.source.health.reconnects == 0
