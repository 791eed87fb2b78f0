"""Many containers through one Docker source: no line lost or duplicated, and its CPU.

``--containers`` (200) busybox containers (the test image of ``tests/docker``) each
print ``{"c": <idx>, "seq": n}`` for n = 0 .. 10*D-1 at 10 lines/s (``usleep 100000``
between lines), D = ``--seconds`` (60). The collector follows their label from the
start; the containers are started afterwards from a thread pool (docker SDK). Once
they have all exited and the collector has been idle for 2 s, every container's seqs
must be exactly 0 .. 10*D-1, each once.

CPU: ``time.process_time()`` of this whole process, over the window from the last
container started to the collector idle; in that window the process runs only the
collector (the main thread sleeps and lists running containers every 2 s). The start
phase is reported apart, as it also includes the docker SDK calls starting containers.

    python benchmarks/bench_docker_scale.py [--containers 200] [--seconds 60]

Exits 1 on any lost or duplicated line (or a source failure).
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
from typing import Final

import docker
import docker.errors
import psutil
from docker.models.containers import Container

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.core.state import State
from pytest_livecluster.sources import parse_specs
from tests.support.dockerkit import ensure_image, multiset_problems

LABEL_KEY: Final = "livecluster.bench"
RATE: Final = 10
QUIET: Final = 2.0
SCRIPT: Final = (
    'i=0; while [ "$i" -lt {count} ]; do '
    'echo "{{\\"c\\": {idx}, \\"seq\\": $i}}"; i=$((i + 1)); usleep 100000; done'
)


def dockerd_cpu() -> float | None:
    """CPU seconds used so far by dockerd, if it can be found."""
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        times = psutil.Process(int(Path("/var/run/docker.pid").read_text())).cpu_times()
        return float(times.user + times.system)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60, help="D: each prints 10*D lines")
    parser.add_argument("--workers", type=int, default=16, help="threads starting containers")
    args = parser.parse_args()
    count = RATE * args.seconds

    client = docker.from_env(timeout=300)
    label = f"scale-{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []

    def hook(raw: bytes, envelope: Envelope, accepted: bool) -> None:
        received.append(raw)

    collector = Collector(State(), parse_specs(f"docker:label={LABEL_KEY}={label}"), on_line=hook)
    try:
        image = ensure_image(client)
        print(
            f"label {LABEL_KEY}={label}: {args.containers} containers x {count} lines "
            f"at {RATE}/s, started by {args.workers} threads"
        )
        collector.start()
        deadline = time.monotonic() + 15
        while any(h.state != "attached" for h in collector.health()):
            if time.monotonic() > deadline or collector.failures:
                raise RuntimeError(f"the source did not attach: {collector.failures}")
            time.sleep(0.02)

        def start(idx: int) -> Container:
            command = ["sh", "-c", SCRIPT.format(count=count, idx=idx)]
            return client.containers.run(
                image,
                command,
                name=f"lc-{label}-{idx}",
                detach=True,
                labels={LABEL_KEY: label},
            )

        wall0, cpu0, dcpu0 = time.monotonic(), time.process_time(), dockerd_cpu()
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(start, range(args.containers)))
        wall1, cpu1, dcpu1, lines1 = (
            time.monotonic(),
            time.process_time(),
            dockerd_cpu(),
            collector.lines,
        )
        print(
            f"start: {args.containers} containers in {wall1 - wall0:.1f} s; "
            f"process CPU {cpu1 - cpu0:.2f} s ({(cpu1 - cpu0) / (wall1 - wall0):.1%} of a core)"
        )

        time.sleep(max(0.0, args.seconds - 2))
        running_filter = {"label": f"{LABEL_KEY}={label}", "status": "running"}
        while client.containers.list(filters=running_filter):
            if collector.failures:
                break
            time.sleep(2)
        exited = time.monotonic()
        idle = collector.wait_idle(quiet=QUIET, timeout=120)
        wall2, cpu2, dcpu2, lines2 = (
            time.monotonic(),
            time.process_time(),
            dockerd_cpu(),
            collector.lines,
        )
    finally:
        stuck = collector.close()
        for container in client.containers.list(
            all=True, filters={"label": f"{LABEL_KEY}={label}"}
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()

    by_container: dict[int, list[int]] = defaultdict(list)
    odd = 0
    for raw in received:
        try:
            record = json.loads(raw)
            by_container[int(record["c"])].append(int(record["seq"]))
        except (ValueError, KeyError, TypeError):
            odd += 1
    problems = {}
    for idx in range(args.containers):
        problem = multiset_problems(by_container.get(idx, []), range(count))
        if problem:
            problems[idx] = problem
    unknown = set(by_container) - set(range(args.containers))
    lost = sum(max(0, count - len(set(by_container.get(i, [])))) for i in range(args.containers))
    duplicated = sum(len(v) - len(set(v)) for v in by_container.values())

    window = wall2 - wall1
    steady_lines = lines2 - lines1
    print(
        f"all exited {exited - wall1:.1f} s after the last start; "
        f"idle {wall2 - exited:.1f} s later (idle={idle}, quiet {QUIET:g} s)"
    )
    print(
        f"collection window {window:.1f} s: {steady_lines} lines, "
        f"{steady_lines / window:.0f} lines/s; process CPU {cpu2 - cpu1:.2f} s = "
        f"{(cpu2 - cpu1) / window:.1%} of one core"
    )
    total_wall = wall2 - wall0
    print(
        f"whole run {total_wall:.1f} s: {lines2} lines, {lines2 / total_wall:.0f} lines/s; "
        f"process CPU {cpu2 - cpu0:.2f} s = {(cpu2 - cpu0) / total_wall:.1%} of one core"
    )
    if dcpu0 is not None and dcpu1 is not None and dcpu2 is not None:
        print(
            f"dockerd CPU: start {dcpu1 - dcpu0:.1f} s, window {dcpu2 - dcpu1:.1f} s "
            f"({(dcpu2 - dcpu1) / window:.1%} of one core)"
        )
    print(
        f"received {len(received)} of {args.containers * count} lines: lost {lost}, "
        f"duplicated {duplicated}, unparsable {odd}, unknown containers {len(unknown)}"
    )
    for idx, problem in sorted(problems.items())[:10]:
        print(f"  container {idx}: {problem}")
    failures = collector.failures
    if failures or stuck:
        print(f"source failures {[str(f) for f in failures]}, stuck {stuck}")
    ok = not problems and not unknown and not odd and not failures and not stuck
    print("ok: no line lost or duplicated" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
