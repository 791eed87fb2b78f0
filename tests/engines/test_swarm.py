"""``swarm:``: services followed through a real single-node swarm's manager.

Each test compares what the source delivered with what the engine itself holds
for every task's container (``docker logs`` of each, stdout and stderr apart),
once the service is scaled to zero: every line once, none invented, across a
scale-up, a killed and rescheduled task, cut connections and a manager restart.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.state import State
from pytest_livecluster.exceptions import SourceUnavailable, SpecError
from pytest_livecluster.sources import parse_specs
from pytest_livecluster.sources.docker import SwarmSource
from tests.engines.conftest import ServiceMaker
from tests.support.dockerkit import LABEL_KEY, Collection, DockerProxy, wait_until
from tests.support.engines import ExtraEngine

ORIGIN = re.compile(
    r"swarm:(?P<service>[^.@]+)\.(?P<slot>\d+)\.(?P<task>[a-z0-9]{12})@(?P<node>.+)"
)
STREAMING = {"SEQ_COUNT": "-1", "SEQ_RATE": "20", "SEQ_STREAM": "oe"}


def engine_lines(swarm: ExtraEngine, service_id: str) -> Counter[tuple[str, str, bytes]]:
    """Every line the engine holds for the service's task containers: (task, stream, line)."""
    held: Counter[tuple[str, str, bytes]] = Counter()
    containers = swarm.client.containers.list(
        all=True, filters={"label": f"com.docker.swarm.service.id={service_id}"}
    )
    for container in containers:
        task = container.labels["com.docker.swarm.task.id"][:12]
        for stream in ("stdout", "stderr"):
            body = container.logs(stdout=stream == "stdout", stderr=stream == "stderr")
            for line in body.splitlines():
                held[(task, stream, line)] += 1
    return held


def delivered(collection: Collection) -> Counter[tuple[str, str, bytes]]:
    got: Counter[tuple[str, str, bytes]] = Counter()
    for line in collection.snapshot():
        match = ORIGIN.fullmatch(line.envelope.source)
        assert match is not None, line.envelope.source
        got[(match["task"], line.envelope.stream, line.raw)] += 1
    return got


def origins(collection: Collection) -> set[str]:
    return {line.envelope.source for line in collection.snapshot()}


def scale(service: Any, replicas: int) -> None:
    service.reload()  # an update names the version it changes
    service.scale(replicas)


def stop_and_compare(
    swarm: ExtraEngine, created: Any, collection: Collection, timeout: float = 60
) -> Counter[tuple[str, str, bytes]]:
    """Scale the service to zero, then wait until the source holds exactly what the
    engine holds for it; fail naming what is missing or extra."""
    scale(created, 0)
    wait_until(
        lambda: (
            not swarm.client.containers.list(
                filters={"label": f"com.docker.swarm.service.id={created.id}"}
            )
        ),
        60,
        "the service's tasks to stop",
    )
    held = engine_lines(swarm, created.id)
    kept = {task for task, _, _ in held}
    deadline = time.monotonic() + timeout
    while True:
        got = delivered(collection)
        if +Counter({k: n for k, n in got.items() if k[0] in kept}) == held:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ours = Counter({k: n for k, n in got.items() if k[0] in kept})
    missing, extra = held - ours, ours - held
    health = collection.source.health.as_dict()
    assert not missing, f"{sum(missing.values())} missing (e.g. {list(missing)[:3]}); {health}"
    assert not extra, f"{sum(extra.values())} duplicated or invented (e.g. {list(extra)[:3]})"
    # A task whose container the swarm already removed: its lines once each, from seq 0 on.
    for (task, stream, _), count in got.items():
        assert count == 1, f"task {task} {stream}: a line delivered {count} times"
    gone: dict[tuple[str, str], list[int]] = {}
    for task, stream, raw in got:
        if task not in kept:
            gone.setdefault((task, stream), []).append(json.loads(raw)["seq"])
    for (task, stream), seqs in gone.items():
        assert sorted(seqs) == list(range(len(seqs))), f"task {task} {stream}: a gap"
    return held


def test_every_line_of_every_task_once_across_a_scale_up_and_a_killed_task(
    swarm: ExtraEngine, service: ServiceMaker, follow: Callable[..., Collection]
) -> None:
    created = service("web", replicas=3, env=STREAMING)
    collection = follow()
    source = collection.source
    assert isinstance(source, SwarmSource)
    collection.wait(lambda lines: len({x.envelope.source for x in lines}) >= 3, 60, "3 tasks")

    scale(created, 4)
    collection.wait(lambda lines: len({x.envelope.source for x in lines}) >= 4, 60, "4 tasks")

    victim = swarm.client.containers.list(
        filters={"label": f"com.docker.swarm.service.id={created.id}"}
    )[0]
    victim_task = victim.labels["com.docker.swarm.task.id"]
    victim.kill()

    def slots() -> dict[str, int]:
        tasks = swarm.client.api.tasks(filters={"service": created.id})
        return {t["ID"][:12]: t["Slot"] for t in tasks}

    victim_slot = slots()[victim_task[:12]]
    collection.wait(
        lambda lines: any(
            slots().get(task) == victim_slot and task != victim_task[:12]
            for task in {ORIGIN.fullmatch(x.envelope.source)["task"] for x in lines}
        ),
        60,
        "the killed task's replacement",
    )
    held = stop_and_compare(swarm, created, collection)
    assert len({task for task, _, _ in held}) >= 5
    assert {stream for _, stream, _ in held} == {"stdout", "stderr"}

    # Each line names its service, its task's slot and id, and its node, as the engine does.
    node = swarm.client.info()["Name"]
    engine_slots = slots()
    names = [ORIGIN.fullmatch(o) for o in origins(collection)]
    assert all(m is not None and m["service"] == created.name for m in names)
    assert {m["node"] for m in names if m} == {node}
    assert {m["task"]: int(m["slot"]) for m in names if m} == {
        task: slot for task, slot in engine_slots.items() if any(t == task for t, _, _ in held)
    }
    (victim_origin,) = [o for o in origins(collection) if f".{victim_task[:12]}@" in o]

    # Roles come from the service's labels; a task's host is its replica.
    labels = source.labels()
    assert all(labels[o]["livecluster.role"] == "scraper" for o in origins(collection))
    assert source.host_of(victim_origin) == f"{created.name}.{victim_slot}"
    assert source.host_of("swarm:other.1.abcdefabcdef@x") is None
    wrote = len(engine_slots)  # every task that had a container, whether it wrote or not
    assert source.services()[created.name] == {"tasks": wrote, "by_node": {node: wrote}}
    assert source.health.detail == [
        f"service {created.name}: {wrote} tasks followed ({node}: {wrote})"
    ]
    assert source.failures == ()


def test_caught_up_means_every_line_there_at_attach_is_read(
    swarm: ExtraEngine, service: ServiceMaker, tag: str
) -> None:
    """The caught-up rule is exact: with a quiet period longer than the test, only the
    tasks' last lines (asked with tail=1) can end the wait."""
    created = service("backlog", replicas=3, env={"SEQ_COUNT": "3000", "SEQ_AFTER": "hold"})

    def written() -> int:
        return sum(engine_lines(swarm, created.id).values())

    wait_until(lambda: written() == 9000, 120, "the tasks to write their backlog")
    state = State()
    spec = f"swarm:label={LABEL_KEY}={tag};host={swarm.url}"
    collector = Collector(state, parse_specs(spec)).start()
    try:
        assert collector.wait_caught_up(3600, timeout=120) == []
        assert state.stats().lines == 9000
    finally:
        collector.close()


def test_cut_connections_lose_and_repeat_nothing(
    swarm: ExtraEngine,
    service: ServiceMaker,
    follow: Callable[..., Collection],
    swarm_proxy: DockerProxy,
) -> None:
    created = service("cut", replicas=2, env=STREAMING)
    collection = follow()
    for cut in range(3):
        enough = len(collection.snapshot()) + 40
        collection.wait(lambda lines: len(lines) > enough, 60, f"lines before cut {cut}")  # noqa: B023
        assert swarm_proxy.cut("logs") >= 1
    collection.wait(lambda lines: len(lines) > 200, 60, "lines after the cuts")
    stop_and_compare(swarm, created, collection)
    assert collection.source.health.reconnects >= 3


def test_services_created_later_and_removed_are_followed_and_let_go(
    swarm: ExtraEngine, service: ServiceMaker, follow: Callable[..., Collection]
) -> None:
    collection = follow()
    source = collection.source
    assert isinstance(source, SwarmSource)
    assert source.health.state == "attached"
    assert "no service has the label" in " ".join(source.health.errors)
    later = service("later", replicas=1, env=STREAMING)
    service("unlabelled", replicas=1, env=STREAMING, labelled=False)
    collection.wait_count(20, 60)
    assert {ORIGIN.fullmatch(o)["service"] for o in origins(collection)} == {later.name}
    later.remove()
    wait_until(lambda: not source.services(), 30, "the removed service to be let go")
    assert source.health.state == "attached"
    assert collection.running


def test_a_logging_driver_that_keeps_nothing_is_a_failure(
    service: ServiceMaker, follow: Callable[..., Collection]
) -> None:
    created = service("blind", replicas=1, env=STREAMING, log_driver="none")
    collection = follow()
    source = collection.source
    wait_until(lambda: bool(source.failures), 30, "the failure")
    assert source.failures == (
        f"service {created.name}: its logging driver 'none' keeps no logs; none of its "
        "lines are collected",
    )


def test_an_engine_outside_a_swarm_is_refused_with_what_to_do(engine_url: str) -> None:
    source = SwarmSource(f"swarm:label=a=b;host={engine_url}")
    with pytest.raises(SourceUnavailable, match="is not part of a swarm") as info:
        source.run(lambda raw, envelope: None)
    assert "docker: follows containers" in str(info.value)
    assert source.health.state == "failed"


@pytest.fixture
def engine_url(plain_engines: list[ExtraEngine]) -> str:
    return plain_engines[0].url


@pytest.fixture
def worker_engine() -> Iterator[str]:
    """An HTTP server on loopback answering as a swarm worker's engine would.

    A mock, because a real worker cannot run on this machine: a second swarm node
    would need its own ``docker_gwbridge`` and port 2377, which the manager's holds.
    It serves ``/version`` and ``/info`` as Engine 20.10 does on a worker.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.endswith("/version"):
                body: dict[str, Any] = {"ApiVersion": "1.41", "Version": "20.10.24"}
            elif self.path.endswith("/info"):
                body = {
                    "Name": "w1",
                    "Swarm": {"LocalNodeState": "active", "ControlAvailable": False},
                }
            else:
                self.send_error(503, "This node is not a swarm manager.")
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_worker_is_refused_naming_the_managers(worker_engine: str) -> None:
    source = SwarmSource(f"swarm:label=a=b;host={worker_engine}")
    with pytest.raises(SourceUnavailable, match="is a swarm worker, not a manager") as info:
        source.run(lambda raw, envelope: None)
    assert "point host= at a manager" in str(info.value)


def test_bad_swarm_specs_name_the_form() -> None:
    for spec in ("swarm:", "swarm:label=app", "swarm:name=x", "swarm:label=a=b;host=ftp://x"):
        with pytest.raises(SpecError, match=r"write swarm:label=KEY=VALUE") as info:
            parse_specs(spec)
        assert repr(spec) in str(info.value)
    (source,) = parse_specs("swarm:label=app=web;host=ssh://ops@manager-1")
    assert isinstance(source, SwarmSource)
    assert source.engine == "ssh://***@manager-1"  # the user is not shown


@pytest.mark.engine_restart
def test_a_manager_restart_loses_and_repeats_nothing(
    swarm: ExtraEngine, service: ServiceMaker, follow: Callable[..., Collection]
) -> None:
    """The manager's dockerd stops (its tasks' containers with it) and starts again: the
    swarm reschedules the tasks, and the source reads on from where it was."""
    created = service("restart", replicas=2, env=STREAMING)
    collection = follow()
    collection.wait_count(100, 60)
    swarm.restart()
    before = origins(collection)
    collection.wait(
        lambda lines: len({x.envelope.source for x in lines} - before) >= 1, 120, "new tasks"
    )
    again = swarm.client.services.get(created.id)  # the client of the restarted engine
    stop_and_compare(swarm, again, collection, timeout=90)
    assert collection.source.health.reconnects >= 1


def test_a_live_run_on_a_swarm_reads_roles_from_service_labels(
    swarm: ExtraEngine, service: ServiceMaker, tag: str, pytester: pytest.Pytester
) -> None:
    hello = '{"blade-x": {"msg": "Hello World"}}'
    created = service(
        "blade",
        replicas=2,
        env={"SEQ_TEXT": hello, "SEQ_COUNT": "3", "SEQ_AFTER": "hold"},
        role="spotter",
    )
    wait_until(lambda: sum(engine_lines(swarm, created.id).values()) == 6, 60, "the hellos")
    pytester.makepyfile(
        """
        def test_the_blade_said_hello_as_a_spotter(cluster):
            assert cluster.stats().lines == 6
            assert cluster.hellos() == {"spotter": ["blade-x"]}
        """
    )
    spec = f"swarm:label={LABEL_KEY}={tag};host={swarm.url}"
    result = pytester.runpytest_subprocess(f"--live-cluster={spec}", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    node = swarm.client.info()["Name"]
    result.stdout.fnmatch_lines([f"*service {created.name}: 2 tasks followed ({node}: 2)"])
