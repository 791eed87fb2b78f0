"""Several Docker engines in one run: the main engine and two more, each with containers
of the same names, followed by one pytest run and one state."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.state import State
from pytest_livecluster.sources import parse_specs
from pytest_livecluster.sources.docker import DockerSource
from tests.support.dockerkit import IMAGE, LABEL_KEY, ensure_image, no_engine
from tests.support.engines import ExtraEngine

LINES = 300  # per stream and container


@pytest.fixture
def three_engines(plain_engines: list[ExtraEngine], tag: str) -> Iterator[list[str]]:
    """The URLs of three engines (two unix://, one tcp://), each running two finished
    containers named alike."""
    try:
        main = docker.from_env(timeout=60)
        main.ping()
    except docker.errors.DockerException as exc:
        no_engine(str(exc))
    ensure_image(main)
    clients = [main, *(engine.client for engine in plain_engines)]
    urls = ["unix:///var/run/docker.sock", plain_engines[0].url, plain_engines[1].tcp_url]
    made = []
    try:
        for client in clients:
            for n in range(2):
                made.append(
                    client.containers.run(
                        IMAGE,
                        name=f"lc-{tag}-{n}",
                        labels={LABEL_KEY: tag},
                        environment={"SEQ_COUNT": str(LINES), "SEQ_STREAM": "oe"},
                        detach=True,
                    )
                )
        for container in made:
            container.wait(timeout=60)
        yield urls
    finally:
        for container in made:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        main.close()


def test_one_state_follows_three_engines_and_tells_same_named_containers_apart(
    three_engines: list[str], tag: str
) -> None:
    specs = [f"docker:label={LABEL_KEY}={tag};host={url}" for url in three_engines]
    sources = parse_specs(specs)
    state = State()
    with Collector(state, sources) as collector:
        assert collector.wait_caught_up(3600, timeout=120) == []
        assert state.stats().lines == 3 * 2 * 2 * LINES
        origins = {e.envelope.source for e in state.journal()}
    # Two containers on each engine, named alike across engines: six sources of lines.
    assert len(origins) == 6
    for source, url in zip(sources, three_engines, strict=True):
        assert isinstance(source, DockerSource)
        engine = url.removeprefix("unix://").removeprefix("tcp://")
        mine = {o for o in origins if o.endswith(f"@{engine}")}
        assert mine == {f"docker:lc-{tag}-{n}@{engine}" for n in range(2)}
        assert {source.host_of(o) for o in mine} == {o.removeprefix("docker:") for o in mine}
        assert source.labels().keys() == mine


def test_one_engine_keeps_plain_names(three_engines: list[str], tag: str) -> None:
    (source,) = parse_specs(f"docker:label={LABEL_KEY}={tag};host={three_engines[1]}")
    state = State()
    with Collector(state, [source]) as collector:
        assert collector.wait_caught_up(3600, timeout=120) == []
        origins = {e.envelope.source for e in state.journal()}
    assert origins == {f"docker:lc-{tag}-{n}" for n in range(2)}


def test_the_report_groups_sources_by_engine(
    three_engines: list[str], tag: str, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        f"""
        def test_every_line(cluster):
            assert cluster.stats().lines == {3 * 2 * 2 * LINES}
        """
    )
    specs = ",".join(f"docker:label={LABEL_KEY}={tag};host={url}" for url in three_engines)
    result = pytester.runpytest_subprocess(f"--live-cluster={specs}", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    groups = re.findall(r"^  engine (\S+):$", out, re.MULTILINE)
    assert len(groups) == 3, out
    for url in three_engines:
        # Each engine's heading is followed by its own source, attached.
        assert re.search(
            rf"^  engine {re.escape(url)}:\n    docker:label=\S+;host=\S+: \w+, {2 * 2 * LINES} "
            "lines",
            out,
            re.MULTILINE,
        ), out
