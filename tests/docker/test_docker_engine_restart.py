"""The engine itself restarts under the source (pitfall 6; case 16).

Marked ``engine_restart``, so it runs after every other test: it stops and starts dockerd with
``.ci/dockerd.sh restart``, as CI manages it, and makes sure the engine is up again
whatever happens.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import docker
import psutil  # type: ignore[import-untyped]
import pytest

from tests.support.dockerkit import (
    Collect,
    EngineLock,
    Launcher,
    assert_contiguous,
    multiset_problems,
    wait_until,
)

DOCKERD_SH: Final = Path(__file__).resolve().parents[2] / ".ci" / "dockerd.sh"
PIDFILE: Final = Path("/var/run/docker.pid")

pytestmark = pytest.mark.engine_restart


def _dockerd(command: str) -> None:
    # The timeout is a hang guard: dockerd.sh itself gives up after 60 s per step.
    subprocess.run([str(DOCKERD_SH), command], check=True, timeout=180, capture_output=True)


def _engine_up(engine: docker.DockerClient) -> bool:
    try:
        return bool(engine.ping())
    except Exception:
        return False


def _exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def restartable(engine: docker.DockerClient, engine_lock: EngineLock) -> Iterator[None]:
    """Skip unless .ci/dockerd.sh runs this engine and no other test session uses it;
    bring it back up at teardown."""
    if not PIDFILE.exists() or not os.access(DOCKERD_SH, os.X_OK):
        pytest.skip("the engine was not started by .ci/dockerd.sh, so it cannot restart it")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("restarting dockerd would break the tests running beside it (xdist)")
    if not engine_lock.exclusive(timeout=120):
        engine_lock.share()  # a failed conversion may have dropped the shared lock
        pytest.skip("another test session kept using the Docker engine for 120s")
    try:
        yield
    finally:
        if not _engine_up(engine):
            _dockerd("start")
        wait_until(lambda: _engine_up(engine), 60, "the engine to be up again")
        engine_lock.share()


def test_engine_restart(
    restartable: None, engine: docker.DockerClient, launch: Launcher, collect: Collect
) -> None:
    """Case 16: dockerd restarts under the source. The events and logs connections come
    back with backoff, the outage is recorded in health, nothing hangs, and the
    containers the engine restarts by policy are followed again: each boot of each
    container complete on both streams, exactly the lines the engine stored."""
    collection = collect(via_proxy=False)
    source = collection.source
    writers = [
        launch(
            {"SEQ_COUNT": "-1", "SEQ_RATE": "50", "SEQ_STREAM": "oe"},
            restart_policy={"Name": "always"},
        )
        for _ in range(2)
    ]

    def boot_lines(boot: int, count: int) -> bool:
        lines = collection.snapshot()
        return all(
            sum(1 for x in lines if x.name == w.name and x.json()["boot"] == boot) >= count
            for w in writers
        )

    wait_until(lambda: boot_lines(0, 40), 20, "boot 0 of both writers")
    old_pid = int(PIDFILE.read_text())
    _dockerd("restart")
    # A real restart: the old dockerd exited (the source's open streams did not hold it
    # up until dockerd.sh gave up) and a new one runs.
    assert _exited(old_pid)
    assert int(PIDFILE.read_text()) != old_pid
    wait_until(lambda: boot_lines(1, 40), 60, "boot 1 of both writers, after the restart")
    for writer in writers:
        writer.stop(timeout=2)
    wait_until(lambda: source.health.attached == 0, 30, "the followers to finish")
    assert collection.running, collection.error

    lines = collection.snapshot()
    for writer in writers:
        for boot in (0, 1):
            for stream, s in (("stdout", "o"), ("stderr", "e")):
                assert_contiguous(lines, writer.name, stream=stream, s=s, boot=boot)
        stored = Counter(writer.logs(stdout=True, stderr=True).splitlines())
        got = Counter(x.raw for x in lines if x.name == writer.name)
        assert not multiset_problems(got.elements(), stored.elements()), writer.name
    health = source.health
    assert health.reconnects >= 1
    assert any("events" in error for error in health.errors), list(health.errors)
    assert health.state == "attached"
