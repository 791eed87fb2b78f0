"""Write-to-state latency of the Docker source, against a bare docker-py follow loop.

A container prints ``{"t": <time.time_ns()>}`` every 5 ms for ``--seconds`` (20)
seconds. It runs the host's own Python from a scratch image (an empty rootfs with
/tmp only) with /usr, /lib, /lib64 and ``sys.base_prefix`` bind-mounted read-only,
so the container and this process read the same clock.

* ``collector``: ``Collector(state, parse_specs("docker:label=K=V"), on_line=hook)``;
  the hook runs right after the line is in the state and records ``time.time_ns()``.
* ``floor``: ``docker.from_env().api.logs(cid, stream=True, follow=True)``, split on
  ``b"\\n"``, ``time.time_ns()`` on receipt: the least any follower can do.

The two run one after the other, each on a fresh container. Latency is receipt time
minus ``t``; the first ``--warmup`` (1 s) of lines of each run are left out (attach).

    python benchmarks/bench_docker_latency.py [--seconds 20]

Target: collector p99 <= floor p99 + 2 ms. Exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from typing import Final

import docker
import docker.errors
from docker.models.containers import Container

from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.core.state import State
from pytest_livecluster.sim.containers import IMAGE, ensure_scratch_image
from pytest_livecluster.sources import parse_specs

LABEL_KEY: Final = "livecluster.bench"
INTERVAL: Final = 0.005
TARGET_MARGIN_MS: Final = 2.0
# Printed by the container: sleep a second (the follower attaches), then one line per tick.
LOOP: Final = """\
import time
time.sleep(1.0)
end = time.monotonic() + {seconds}
tick = time.monotonic()
while tick < end:
    print('{{"t": %d}}' % time.time_ns())
    tick += {interval}
    time.sleep(max(0.0, tick - time.monotonic()))
"""


def run_ticker(client: docker.DockerClient, label: str, seconds: float) -> Container:
    prefix = sys.base_prefix
    volumes = {path: {"bind": path, "mode": "ro"} for path in ("/usr", "/lib", "/lib64", prefix)}
    command = [
        os.path.realpath(sys.executable),
        "-I",
        "-u",
        "-c",
        LOOP.format(seconds=seconds, interval=INTERVAL),
    ]
    return client.containers.run(
        IMAGE, command, detach=True, labels={LABEL_KEY: label}, volumes=volumes
    )


def latencies(received: list[tuple[int, bytes]], warmup: float) -> list[float]:
    """Milliseconds from ``t`` to receipt, leaving out the first ``warmup`` seconds."""
    pairs = [(now, int(json.loads(raw)["t"])) for now, raw in received]
    if not pairs:
        return []
    first = min(t for _, t in pairs)
    return [(now - t) / 1e6 for now, t in pairs if t - first >= warmup * 1e9]


def measure_collector(
    client: docker.DockerClient, label: str, seconds: float
) -> list[tuple[int, bytes]]:
    received: list[tuple[int, bytes]] = []

    def hook(raw: bytes, envelope: Envelope, accepted: bool) -> None:
        received.append((time.time_ns(), raw))

    collector = Collector(State(), parse_specs(f"docker:label={LABEL_KEY}={label}"), on_line=hook)
    collector.start()
    try:
        deadline = time.monotonic() + 15
        while any(h.state != "attached" for h in collector.health()):
            if time.monotonic() > deadline or collector.failures:
                raise RuntimeError(f"the source did not attach: {collector.failures}")
            time.sleep(0.02)
        container = run_ticker(client, label, seconds)
        container.wait(timeout=seconds + 60)
        collector.wait_idle(quiet=1.0, timeout=30)
    finally:
        stuck = collector.close()
    if collector.failures or stuck:
        raise RuntimeError(f"collector failures {collector.failures}, stuck {stuck}")
    return received


def measure_floor(
    client: docker.DockerClient, label: str, seconds: float
) -> list[tuple[int, bytes]]:
    received: list[tuple[int, bytes]] = []
    container = run_ticker(client, label, seconds)
    buffer = b""
    for chunk in docker.from_env().api.logs(container.id, stream=True, follow=True):
        now = time.time_ns()
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        received.extend((now, line) for line in lines if line)
    return received


def summary(name: str, values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    p50, p99 = q[49], q[98]
    print(
        f"{name:<10} {len(values):>6} {p50:>9.3f} {p99:>9.3f} {max(values):>9.3f} "
        f"{statistics.fmean(values):>9.3f}"
    )
    return p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="printing time per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of lines left out")
    args = parser.parse_args()

    client = docker.from_env(timeout=120)
    label = f"latency-{uuid.uuid4().hex[:8]}"
    try:
        ensure_scratch_image(client)
        print(f"label {LABEL_KEY}={label}; {args.seconds:g} s per run, a line every 5 ms")
        collected = measure_collector(client, label, args.seconds)
        floor = measure_floor(client, label, args.seconds)
    finally:
        for container in client.containers.list(
            all=True, filters={"label": f"{LABEL_KEY}={label}"}
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()

    expected = int(args.seconds / INTERVAL)
    print(f"lines received: collector {len(collected)}, floor {len(floor)} (~{expected} each)")
    print(f"{'ms':<10} {'lines':>6} {'p50':>9} {'p99':>9} {'max':>9} {'mean':>9}")
    _, floor_p99 = summary("floor", latencies(floor, args.warmup))
    _, coll_p99 = summary("collector", latencies(collected, args.warmup))
    ok = coll_p99 <= floor_p99 + TARGET_MARGIN_MS
    print(
        f"target collector p99 <= floor p99 + {TARGET_MARGIN_MS:g} ms "
        f"({coll_p99:.3f} <= {floor_p99 + TARGET_MARGIN_MS:.3f}): {'ok' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
