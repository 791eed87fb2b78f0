"""Restarts of a followed container: one follower, resumed per run (pitfalls 4, 5; cases 6, 7)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from docker.models.containers import Container

from tests.support.dockerkit import (
    NINE_DIGIT_SINCE,
    Collect,
    DockerProxy,
    Launcher,
    Line,
    assert_contiguous,
    assert_exact,
    multiset_problems,
    wait_until,
)


def _engine_lines(container: Container) -> Counter[bytes]:
    """Every line the engine holds for the container: the ground truth."""
    return Counter(container.logs(stdout=True, stderr=True).splitlines())


def _lines_of_boot(boot: int, count: int) -> Callable[[list[Line]], bool]:
    def enough(lines: list[Line]) -> bool:
        return sum(1 for x in lines if x.json()["boot"] == boot) >= count

    return enough


def test_restarted_three_times(launch: Launcher, collect: Collect, proxy: DockerProxy) -> None:
    """Case 6: a continuous writer (stdout and stderr) restarted 3 times: boots 0-3 each
    contiguous from seq 0 on both streams, nothing replayed, exactly the lines the engine
    stored, and every reopen resumes with a nine-digit ``since``."""
    collection = collect()
    container = launch({"SEQ_COUNT": "-1", "SEQ_RATE": "100", "SEQ_STREAM": "oe"})
    for boot in range(4):
        collection.wait(_lines_of_boot(boot, 40), 15, f"40 lines of boot {boot}")
        if boot < 3:
            container.restart(timeout=2)
    container.stop(timeout=2)
    wait_until(lambda: collection.source.health.attached == 0, 15, "the follower to finish")
    lines = collection.snapshot()
    for boot in range(4):
        assert_contiguous(lines, container.name, stream="stdout", s="o", boot=boot)
        assert_contiguous(lines, container.name, stream="stderr", s="e", boot=boot)
    got = Counter(line.raw for line in lines)
    assert not multiset_problems(got.elements(), _engine_lines(container).elements())
    resumes = [r.params for r in proxy.reads(container.id)[1:]]
    assert resumes, "every follow after the first resumes"
    assert all(NINE_DIGIT_SINCE.match(p["since"]) for p in resumes)
    assert collection.source.health.reconnects == 0


def test_crash_loop(launch: Launcher, collect: Collect, proxy: DockerProxy) -> None:
    """Case 7: ``--restart on-failure:3``, crashing after 10 lines: 40 lines, and a bounded
    number of logs requests (at most two per run), not a reconnect loop."""
    collection = collect()
    container = launch(
        {"SEQ_COUNT": "10", "SEQ_EXIT": "1"},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    )
    collection.wait_count(40, 30, container.name)

    def settled() -> bool:
        container.reload()
        return bool(container.status == "exited" and container.attrs["RestartCount"] == 3)

    wait_until(settled, 30, "the last crash")
    wait_until(lambda: collection.source.health.attached == 0, 15, "the follower to finish")
    lines = collection.snapshot()
    for boot in range(4):
        assert_exact(lines, container.name, 10, stream="stdout", s="o", boot=boot)
    assert len(lines) == 40
    requests = proxy.reads(container.id)
    assert 4 <= len(requests) <= 8, [r.params for r in requests]
