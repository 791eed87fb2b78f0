"""Fixtures for the tests beyond one engine: a single-node swarm and extra engines.

Every engine here is a real ``dockerd`` started by the tests (see
:mod:`tests.support.engines`) and stopped at the end of the session: one is
made a single-node swarm, two others stay plain engines. Without ``dockerd``
(or root) these tests are skipped, except under ``CI=true``, where that is a
failure. Services and containers carry a label unique to their test and are
removed at its end.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

import docker
import docker.errors
import docker.types
import pytest

from pytest_livecluster.core.source import Source
from pytest_livecluster.sources import SourceOptions
from pytest_livecluster.sources.docker import SwarmSource
from tests.support.dockerkit import (
    IMAGE,
    LABEL_KEY,
    STOP_GUARD_S,
    Collection,
    DockerProxy,
    wait_until,
)
from tests.support.engines import ExtraEngine

SWARM_INDEX: Final = 1


@pytest.fixture(scope="session")
def swarm() -> Iterator[ExtraEngine]:
    """A dockerd of its own, made a single-node swarm; left and stopped at the end."""
    engine = ExtraEngine(SWARM_INDEX).start()
    try:
        engine.swarm_init()
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def plain_engines() -> Iterator[list[ExtraEngine]]:
    """Two more dockerd, not in a swarm, beside the main engine; the second also on tcp://."""
    engines: list[ExtraEngine] = []
    try:
        engines.append(ExtraEngine(2).start())
        engines.append(ExtraEngine(3, tcp=True).start())
        yield engines
    finally:
        for engine in engines:
            engine.stop()


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    """The label value of this test's services and containers."""
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name)[:30].strip("-").lower()
    return f"{name}-{uuid.uuid4().hex[:6]}"


ServiceMaker = Callable[..., Any]


@pytest.fixture
def service(swarm: ExtraEngine, tag: str) -> Iterator[ServiceMaker]:
    """Create a labelled seqlog service on the swarm: ``service(name, replicas, env, **kw)``."""
    made: list[Any] = []

    def create(
        name: str,
        replicas: int = 1,
        env: dict[str, str] | None = None,
        *,
        labelled: bool = True,
        role: str = "scraper",
        **kwargs: Any,
    ) -> Any:
        labels = {"livecluster.role": role}
        if labelled:
            labels[LABEL_KEY] = tag
        else:
            labels[f"{LABEL_KEY}.other"] = tag
        created = swarm.client.services.create(
            IMAGE,
            name=f"{name}-{tag}"[:63],
            labels=labels,
            env=[f"{k}={v}" for k, v in (env or {}).items()],
            mode=docker.types.ServiceMode("replicated", replicas=replicas),
            # A task that ends is replaced by a new task (swarm never restarts in place).
            restart_policy=docker.types.RestartPolicy(condition="any", delay=1_000_000_000),
            **kwargs,
        )
        made.append(created)
        return created

    yield create
    for created in made:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            created.remove()


@pytest.fixture
def swarm_proxy(swarm: ExtraEngine) -> Iterator[DockerProxy]:
    running = DockerProxy(str(swarm.socket)).start()
    yield running
    running.stop()


_READ_ONLY: Final = re.compile(
    r"(/v[0-9.]+)?/(_ping|version|info|events|nodes|services|services/[^/]+"
    r"|tasks|tasks/[^/]+(/logs)?)"
)


@pytest.fixture
def follow(tag: str, swarm_proxy: DockerProxy) -> Iterator[Callable[..., Collection]]:
    """Start a SwarmSource on this test's label, through a proxy in front of the swarm.

    At teardown each source is closed, its run() must return, no follower thread
    may be left, and every request it made must have been a read.
    """
    made: list[Collection] = []

    def start(options: SourceOptions | None = None, **kwargs: Any) -> Collection:
        source = SwarmSource(
            f"swarm:label={LABEL_KEY}={tag};host={swarm_proxy.url}",
            options or SourceOptions(reconnect_max_wait=1.0),
            **kwargs,
        )
        collection = Collection(source).start()  # type: ignore[arg-type]
        made.append(collection)
        wait_until(
            lambda: source.health.state in ("attached", "failed") or not collection.running,
            30,
            "the swarm source to attach",
        )
        return collection

    yield start
    for collection in made:
        collection.stop()
    wait_until(lambda: not swarm_threads(), STOP_GUARD_S, "follower threads to end")
    writes = [
        f"{r.method} {r.target}"
        for r in swarm_proxy.logged()
        if r.method not in ("GET", "HEAD") or not _READ_ONLY.fullmatch(r.path)
    ]
    assert not writes, f"the source must only read from the engine: {writes}"


def swarm_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("livecluster-swarm-")]


def source_of(collection: Collection) -> Source:
    return collection.source
