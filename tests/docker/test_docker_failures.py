"""Failing loudly and stopping cleanly (pitfalls 7, 16; cases 18, 21)."""

from __future__ import annotations

import gc
import threading

import psutil  # type: ignore[import-untyped]
from docker.types import LogConfig

from tests.support.dockerkit import (
    STOP_GUARD_S,
    Collect,
    DockerProxy,
    Launcher,
    assert_exact,
    follower_threads,
    wait_until,
)


def test_unreadable_logging_drivers(launch: Launcher, collect: Collect, proxy: DockerProxy) -> None:
    """Case 18: ``--log-driver none``, and syslog with ``cache-disabled=true``: the engine
    cannot serve their logs (501), so the source reports a failure naming the container
    and its driver, once, instead of 0 lines; a readable container still works."""
    collection = collect()
    source = collection.source
    silent = launch({"SEQ_COUNT": "5", "SEQ_AFTER": "hold"}, log_config=LogConfig(type="none"))
    syslog = launch(
        {"SEQ_COUNT": "5", "SEQ_AFTER": "hold"},
        log_config=LogConfig(
            type="syslog",
            config={"syslog-address": "udp://127.0.0.1:514", "cache-disabled": "true"},
        ),
    )
    readable = launch({"SEQ_COUNT": "5"})
    wait_until(lambda: len(source.failures) == 2, 15, "two failures")
    collection.wait_count(5, 15, readable.name)
    wait_until(lambda: source.health.attached == 0, 15, "followers to finish")
    failures = sorted(source.failures)
    for container, driver in ((silent, "none"), (syslog, "syslog")):
        (failure,) = [f for f in failures if container.name in f]
        assert f"logging driver {driver!r}" in failure
        assert "does not support reading" in failure
        assert failure in source.health.errors
        assert collection.snapshot(container.name) == []
        # Permanent: asked once, not retried in a loop.
        assert len(proxy.logged("logs", contains=container.id)) == 1
    assert_exact(collection.snapshot(), readable.name, 5, stream="stdout", s="o")


def test_close_while_streams_block(launch: Launcher, collect: Collect, proxy: DockerProxy) -> None:
    """Case 21: close() while every stream is blocked in a read (five silent containers,
    one busy one, the events stream): run() returns (no stream has a read timeout, and
    the silent ones would print nothing for 600 s, so only close() can end them), every
    thread ends, and no socket is left open (a leaked one would also raise
    ResourceWarning, an error here)."""
    silent = launch.many(5, {"SEQ_DELAY": "600", "SEQ_AFTER": "hold"})
    busy = launch({"SEQ_COUNT": "-1", "SEQ_RATE": "200"})
    process = psutil.Process()
    fds = process.num_fds()
    threads = threading.active_count()
    collection = collect()
    wait_until(lambda: proxy.open_connections("logs") == len(silent) + 1, 15, "six follows")
    collection.wait_count(20, 10, busy.name)
    assert proxy.open_connections("events") == 1
    collection.stop()  # asserts that run() returned, within STOP_GUARD_S
    # run() gives its followers 1.5 s and returns; a stream it did not cut would keep
    # its follower waiting for the silent containers' next line, 600 s away.
    wait_until(lambda: not follower_threads(), STOP_GUARD_S, "every follower to end")
    assert collection.error is None
    assert collection.source.health.state == "closed"
    wait_until(lambda: proxy.open_connections() == 0, 5, "the proxy to see every socket close")
    gc.collect()
    wait_until(lambda: threading.active_count() == threads, 5, "proxy threads to end")
    assert process.num_fds() == fds
