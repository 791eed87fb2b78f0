"""Beyond one engine at scale: several engines in one run, and a swarm service of many replicas.

**Engines.** The main engine and ``--engines - 1`` more ``dockerd`` started here (see
``tests/support/engines.py``) each run ``--containers`` (100) busybox containers that
print ``{"c": <idx>, "seq": n}`` for n = 0 .. 10*D-1 at 10 lines/s, D = ``--seconds``
(60). One collector follows the same label on every engine (one ``docker:`` spec
each, so lines name their engine); once every container has exited and the
collector is idle, each container's seqs must be exactly 0 .. 10*D-1, each once.

**Swarm.** A single-node swarm (one more ``dockerd``) runs a service of
``--replicas`` (50) tasks printing the same at 10 lines/s; a ``swarm:`` source
follows it, and each task's seqs must be exactly 0 .. 10*D-1, each once.

Both report this process's CPU (``time.process_time()``) over the window in which
it only collected, as a share of one core, and lines per second.

    python benchmarks/bench_engines_scale.py [--engines 3] [--containers 100]
        [--replicas 50] [--seconds 60] [--part engines|swarm|both]

Needs root (it starts dockerd). Exits 1 on any lost or duplicated line (or a source
failure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_docker_scale import LABEL_KEY, QUIET, RATE, SCRIPT  # the same writers

from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.core.state import State
from pytest_livecluster.sources import parse_specs
from tests.support.dockerkit import IMAGE, ensure_image, multiset_problems
from tests.support.engines import ExtraEngine


def collect(specs: list[str], start: Any, wait_done: Any) -> dict[str, Any]:
    """Run a collector on ``specs``; ``start()`` starts the writers, ``wait_done()``
    returns once they are all done. Lines by envelope source, and the costs."""
    received: dict[str, list[bytes]] = defaultdict(list)

    def hook(raw: bytes, envelope: Envelope, accepted: bool) -> None:
        received[envelope.source].append(raw)

    collector = Collector(State(), parse_specs(specs), on_line=hook).start()
    try:
        deadline = time.monotonic() + 30
        while any(h.state != "attached" for h in collector.health()):
            if time.monotonic() > deadline or collector.failures:
                raise RuntimeError(f"a source did not attach: {collector.failures}")
            time.sleep(0.05)
        wall0 = time.monotonic()
        start()
        wall1, cpu1, lines1 = time.monotonic(), time.process_time(), collector.lines
        wait_done()
        idle = collector.wait_idle(quiet=QUIET, timeout=180)
        wall2, cpu2, lines2 = time.monotonic(), time.process_time(), collector.lines
        failures = [str(f) for f in collector.failures]
    finally:
        stuck = collector.close()
    window = wall2 - wall1
    return {
        "received": received,
        "start_s": wall1 - wall0,
        "window_s": window,
        "window_lines": lines2 - lines1,
        "lines": lines2,
        "cpu_s": cpu2 - cpu1,
        "cpu_share": (cpu2 - cpu1) / window,
        "idle": idle,
        "failures": failures,
        "stuck": stuck,
    }


def check(received: dict[str, list[bytes]], expected: int, count: int) -> dict[str, Any]:
    """Every source's seqs must be 0 .. count-1, each once; ``expected`` sources."""
    problems = {}
    lost = duplicated = odd = 0
    for origin, lines in received.items():
        seqs = []
        for raw in lines:
            try:
                seqs.append(int(json.loads(raw)["seq"]))
            except (ValueError, KeyError, TypeError):
                odd += 1
        problem = multiset_problems(seqs, range(count))
        if problem:
            problems[origin] = problem
        lost += count - len(set(seqs))
        duplicated += len(seqs) - len(set(seqs))
    lost += (expected - len(received)) * count if len(received) < expected else 0
    return {
        "sources": len(received),
        "expected_sources": expected,
        "lost": lost,
        "duplicated": duplicated,
        "unparsable": odd,
        "problems": dict(list(problems.items())[:10]),
    }


def engines_part(args: argparse.Namespace, count: int) -> tuple[bool, dict[str, Any]]:
    label = f"scale-{uuid.uuid4().hex[:8]}"
    extra = [ExtraEngine(10 + i) for i in range(args.engines - 1)]
    main = docker.from_env(timeout=300)
    clients = [main]
    try:
        for engine in extra:
            engine.start()
            clients.append(engine.client)
        ensure_image(main)
        urls = ["unix:///var/run/docker.sock", *(e.url for e in extra)]
        specs = [f"docker:label={LABEL_KEY}={label};host={url}" for url in urls]
        print(f"{len(urls)} engines x {args.containers} containers x {count} lines at {RATE}/s")

        def run_one(job: tuple[docker.DockerClient, int]) -> None:
            client, idx = job
            client.containers.run(
                IMAGE,
                ["sh", "-c", SCRIPT.format(count=count, idx=idx)],
                name=f"lc-{label}-{idx}",
                detach=True,
                labels={LABEL_KEY: label},
            )

        def start() -> None:
            jobs = [(c, i) for i in range(args.containers) for c in clients]
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(run_one, jobs))

        def wait_done() -> None:
            time.sleep(max(0.0, args.seconds - 2))
            running = {"label": f"{LABEL_KEY}={label}", "status": "running"}
            while any(c.containers.list(filters=running) for c in clients):
                time.sleep(2)

        result = collect(specs, start, wait_done)
    finally:
        for client in clients:
            for container in client.containers.list(
                all=True, filters={"label": f"{LABEL_KEY}={label}"}
            ):
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
        main.close()
        for engine in extra:
            engine.stop()
    verdict = check(result.pop("received"), len(clients) * args.containers, count)
    result.update(verdict)
    ok = not (verdict["problems"] or verdict["lost"] or verdict["duplicated"])
    ok = ok and not verdict["unparsable"] and not result["failures"] and not result["stuck"]
    return ok, result


def swarm_part(args: argparse.Namespace, count: int) -> tuple[bool, dict[str, Any]]:
    label = f"swarm-{uuid.uuid4().hex[:8]}"
    engine = ExtraEngine(20)
    try:
        engine.start()
        engine.swarm_init()
        client = engine.client
        spec = f"swarm:label={LABEL_KEY}={label};host={engine.url}"
        print(f"a swarm service of {args.replicas} replicas x {count} lines at {RATE}/s")
        made: list[Any] = []

        def start() -> None:
            made.append(
                client.services.create(
                    IMAGE,
                    ["sh", "-c", SCRIPT.format(count=count, idx=0)],
                    name=f"svc-{label}",
                    labels={LABEL_KEY: label},
                    mode=docker.types.ServiceMode("replicated", replicas=args.replicas),
                    restart_policy=docker.types.RestartPolicy(condition="none"),
                )
            )

        def wait_done() -> None:
            time.sleep(max(0.0, args.seconds - 2))
            while True:
                tasks = client.api.tasks(filters={"service": made[0].id})
                states = [t["Status"]["State"] for t in tasks]
                if len(states) >= args.replicas and all(
                    s in ("complete", "failed", "shutdown", "rejected") for s in states
                ):
                    return
                time.sleep(2)

        result = collect([spec], start, wait_done)
    finally:
        engine.stop()
    verdict = check(result.pop("received"), args.replicas, count)
    result.update(verdict)
    ok = not (verdict["problems"] or verdict["lost"] or verdict["duplicated"])
    ok = ok and not verdict["unparsable"] and not result["failures"] and not result["stuck"]
    return ok, result


def report(name: str, ok: bool, result: dict[str, Any]) -> None:
    print(
        f"{name}: {result['sources']} of {result['expected_sources']} sources, "
        f"{result['lines']} lines; lost {result['lost']}, duplicated {result['duplicated']}, "
        f"unparsable {result['unparsable']}; writers started in {result['start_s']:.1f} s"
    )
    print(
        f"{name}: collection window {result['window_s']:.1f} s, "
        f"{result['window_lines'] / result['window_s']:.0f} lines/s; process CPU "
        f"{result['cpu_s']:.2f} s = {result['cpu_share']:.1%} of one core"
    )
    for origin, problem in result["problems"].items():
        print(f"  {origin}: {problem}")
    if result["failures"] or result["stuck"]:
        print(f"  failures {result['failures']}, stuck {result['stuck']}")
    print(f"{name}: {'ok: no line lost or duplicated' if ok else 'FAILED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", type=int, default=3)
    parser.add_argument("--containers", type=int, default=100, help="per engine")
    parser.add_argument("--replicas", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60, help="D: each prints 10*D lines")
    parser.add_argument("--part", choices=("engines", "swarm", "both"), default="both")
    args = parser.parse_args()
    count = RATE * args.seconds
    all_ok = True
    if args.part in ("engines", "both"):
        ok, result = engines_part(args, count)
        report("engines", ok, result)
        all_ok &= ok
    if args.part in ("swarm", "both"):
        ok, result = swarm_part(args, count)
        report("swarm", ok, result)
        all_ok &= ok
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
