"""Fixtures for the Docker source tests: a real engine, the seqlog image, labelled
containers removed at teardown, a socket proxy, and sources run in a thread.

Without a reachable engine these tests are skipped, with the reason shown, except in
CI (``CI=true``), where that is a failure: CI must run them.
"""

from __future__ import annotations

import contextlib
import gc
import re
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any, Final

import docker
import docker.errors
import pytest
import requests

from pytest_livecluster.sources import SourceOptions
from pytest_livecluster.sources.docker import DockerSource
from tests.support.dockerkit import (
    LABEL_KEY,
    OTHER_KEY,
    STOP_GUARD_S,
    Collect,
    Collection,
    DockerProxy,
    EngineLock,
    Label,
    Launcher,
    ensure_image,
    follower_threads,
    no_engine,
    wait_until,
)


def _connect() -> tuple[docker.DockerClient | None, str]:
    """A client for the engine the environment names, or why there is none."""
    reason = ""
    client = None
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed connect to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=60)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if client is not None:
                client.close()
            client = None
        gc.collect()
    return client, reason


@pytest.fixture(scope="session")
def engine_lock() -> Iterator[EngineLock]:
    """Shared while this session uses the engine; the dockerd restart test takes it
    exclusively, so it never restarts the engine under another test session's feet."""
    lock = EngineLock()
    lock.share()
    yield lock
    lock.release()


@pytest.fixture(scope="session")
def engine(engine_lock: EngineLock) -> Iterator[docker.DockerClient]:
    client, reason = _connect()
    if client is None:
        no_engine(reason)
    yield client
    client.close()


@pytest.fixture(scope="session")
def seqlog_image(engine: docker.DockerClient) -> str:
    return ensure_image(engine)


@pytest.fixture
def label(request: pytest.FixtureRequest, engine: docker.DockerClient) -> Iterator[Label]:
    name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", request.node.name)[:40].strip("-")
    value = f"{name}-{uuid.uuid4().hex[:6]}"
    yield Label(LABEL_KEY, value)
    _remove_labelled(engine, value)


def _remove_labelled(engine: docker.DockerClient, value: str) -> None:
    for key in (LABEL_KEY, OTHER_KEY):
        for container in engine.containers.list(all=True, filters={"label": f"{key}={value}"}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.fixture
def launch(engine: docker.DockerClient, seqlog_image: str, label: Label) -> Launcher:
    return Launcher(engine, seqlog_image, label)


@pytest.fixture
def proxy() -> Iterator[DockerProxy]:
    running = DockerProxy().start()
    yield running
    running.stop()


@pytest.fixture
def collect(label: Label, proxy: DockerProxy) -> Iterator[Collect]:
    """Start a DockerSource following the test's label, through the proxy by default.

    At teardown every source is closed, its run() must return (a hang guard, see
    STOP_GUARD_S), it must leave no follower thread behind, and must have made only
    read-only requests.
    """
    made: list[Collection] = []

    def start(
        *,
        via_proxy: bool = True,
        options: SourceOptions | None = None,
        attach: bool = True,
        **kwargs: Any,
    ) -> Collection:
        source = DockerSource(
            label.spec(proxy.url if via_proxy else None),
            options or SourceOptions(reconnect_max_wait=1.0),
            **kwargs,
        )
        collection = Collection(source).start()
        made.append(collection)
        if attach:
            wait_until(
                lambda: source.health.state == "attached" or not collection.running,
                15,
                "the source to attach",
            )
        return collection

    yield start
    for collection in made:
        collection.stop()
    # run() gives its followers 1.5 s, then returns; a follower whose stream close() did
    # not cut would go on waiting for its container's next line.
    wait_until(lambda: not follower_threads(), STOP_GUARD_S, "follower threads to end")
    leftover = [t.name for t in threading.enumerate() if t.name == "collection"]
    assert not leftover, leftover
    writes = [f"{r.method} {r.target}" for r in proxy.logged() if not _read_only(r.method, r.path)]
    assert not writes, f"the source must only read from the engine: {writes}"


_READ_ONLY: Final = re.compile(
    r"(/v[0-9.]+)?/(_ping|version|events|containers/json|containers/[^/]+/(json|logs))"
)


def _read_only(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and _READ_ONLY.fullmatch(path) is not None
