"""``host=ssh://USER@HOST``: an engine reached through a real ssh server, as the docker CLI
reaches one (``ssh ... docker system dial-stdio``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.state import State
from pytest_livecluster.sources import SourceOptions, parse_specs
from pytest_livecluster.sources.docker import DockerSource
from tests.support.dockerkit import (
    IMAGE,
    LABEL_KEY,
    STOP_GUARD_S,
    Collection,
    ensure_image,
    no_engine,
    wait_until,
)
from tests.support.sshd import HOST_ALIAS, Sshd


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    server = Sshd().start()
    yield server
    server.stop()


@pytest.fixture
def main_engine(tag: str) -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        no_engine(str(exc))
    ensure_image(client)
    yield client
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_KEY}={tag}"}):
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
    client.close()


def test_an_engine_over_ssh_is_read_whole_and_closes_at_once(
    sshd: Sshd, main_engine: docker.DockerClient, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", sshd.path)
    done = main_engine.containers.run(
        IMAGE,
        name=f"lc-{tag}-done",
        labels={LABEL_KEY: tag},
        environment={"SEQ_COUNT": "500", "SEQ_STREAM": "oe"},
        detach=True,
    )
    done.wait(timeout=60)
    live = main_engine.containers.run(
        IMAGE,
        name=f"lc-{tag}-live",
        labels={LABEL_KEY: tag},
        environment={"SEQ_COUNT": "300", "SEQ_RATE": "30"},
        detach=True,
    )
    (source,) = parse_specs(
        # No port: the ssh configuration's applies, as the user's own would.
        f"docker:label={LABEL_KEY}={tag};host=ssh://root@{HOST_ALIAS}",
        SourceOptions(reconnect_max_wait=1.0),
    )
    assert isinstance(source, DockerSource)
    state = State()
    collector = Collector(state, [source]).start()
    try:
        assert collector.wait_caught_up(3600, timeout=120) == []
        done_lines = [e for e in state.journal() if e.envelope.source == f"docker:lc-{tag}-done"]
        assert len(done_lines) == 1000, (source.health.as_dict(), collector.failures)
        seqs = sorted(
            (e.envelope.stream, int(e.raw.split(b'"seq":')[1].split(b",")[0])) for e in done_lines
        )
        assert seqs == sorted((s, n) for s in ("stdout", "stderr") for n in range(500))
        before = state.stats().lines
        wait_until(lambda: state.stats().lines > before + 20, 30, "the live container's lines")
        assert source.health.engine == f"ssh://***@{HOST_ALIAS}"

        # The ssh process dies mid-stream: the forwarding is made again, nothing is lost.
        tunnel = source._engine._tunnel
        assert tunnel is not None
        process = tunnel._process
        assert process is not None
        process.kill()
        live.wait(timeout=60)
        wait_until(
            lambda: sum(1 for e in state.journal() if e.envelope.source.endswith("-live")) >= 300,
            60,
            "the live container's 300 lines",
        )
        live_seqs = [
            int(e.raw.split(b'"seq":')[1].split(b",")[0])
            for e in state.journal()
            if e.envelope.source == f"docker:lc-{tag}-live"
        ]
        assert sorted(live_seqs) == list(range(300))
        assert source.health.reconnects >= 1
    finally:
        # The live container's follow is an ssh process's stdout: close() must end it.
        assert collector.close(timeout=STOP_GUARD_S) == []
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("livecluster-docker-")],
        STOP_GUARD_S,
        "the followers to end",
    )


def test_an_unreachable_ssh_engine_is_a_clear_failure(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", sshd.path)
    source = DockerSource("docker:label=a=b;host=ssh://root@127.0.0.1:1")
    collection = Collection(source).start()
    wait_until(lambda: not collection.running, 60, "the source to give up")
    assert collection.error is not None
    assert "cannot reach the Docker engine at ssh://***@127.0.0.1:1" in str(collection.error)
