"""Reading a Docker backlog: pytest's first live test against docker-py reading the same logs.

Usage::

    python benchmarks/bench_docker_backlog.py [--containers 6] [--lines 40000]
                                              [--mode pytest|collector] [--rounds 1] [--json]

``--containers`` busybox containers (the test image of ``tests/docker``) each
print ``--lines`` realistic shards (``shardgen``, about 180 bytes each) from a
file bind-mounted read-only, then exit: the whole backlog exists before
anything reads it. Then, in the same run:

* **baseline**: docker-py reads every container's log with timestamps, one
  thread per container (``container.logs(stream=True, timestamps=True)``),
  splitting lines and counting them: what reading the engine costs;
* **pytest** (``--mode pytest``): a ``pytest --live-cluster=docker:label=...``
  process with one live test; the time from starting the process to the first
  test, which asserts that every line of the backlog is in the state;
* **collector** (``--mode collector``): a :class:`Collector` in this process
  following the label until ``wait_caught_up`` says so; every line must then
  be in the state.

The ratio of each to the baseline is printed. Targets: pytest <= 1.5x with 6
containers; the collector <= 1.5x (10 x 50,000), and <= 1.3x with one container.
The exit status is 1 if a line is missing, 2 if the target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shardgen import generate

from tests.support.dockerkit import ensure_image

LABEL_KEY = "livecluster.bench-backlog"


def make_backlog(client: docker.DockerClient, workdir: Path, containers: int, lines: int) -> str:
    """Start the containers, wait until each has printed its lines; return the label value."""
    image = ensure_image(client)
    data = workdir / "lines.ndjson"
    with data.open("wb") as out:
        for line in generate(lines, seed=3):
            out.write(line + b"\n")
    value = uuid.uuid4().hex[:12]
    started = [
        client.containers.run(
            image,
            ["/bin/cat", "/data/lines.ndjson"],
            detach=True,
            labels={LABEL_KEY: value},
            volumes={str(workdir): {"bind": "/data", "mode": "ro"}},
            name=f"backlog-{value}-{i}",
        )
        for i in range(containers)
    ]
    for container in started:
        container.wait()
    return value


def remove(client: docker.DockerClient, value: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_KEY}={value}"}):
        container.remove(force=True)


def baseline(client: docker.DockerClient, value: str) -> tuple[float, int]:
    """docker-py: every container's log with timestamps, one thread each."""
    found = client.containers.list(all=True, filters={"label": f"{LABEL_KEY}={value}"})
    counts = [0] * len(found)

    def read(i: int, container: Any) -> None:
        rest = b""
        for chunk in container.logs(stream=True, timestamps=True, follow=False):
            rest += chunk
            *done, rest = rest.split(b"\n")
            counts[i] += len(done)

    start = time.perf_counter()
    threads = [threading.Thread(target=read, args=(i, c)) for i, c in enumerate(found)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, sum(counts)


TEST = """
import time, pathlib
def test_first(cluster):
    pathlib.Path("first-test").write_text(repr(time.time()))
    assert cluster.stats().lines == {expected}, cluster.stats()
"""


def by_pytest(workdir: Path, value: str, expected: int) -> tuple[float, bool]:
    suite = workdir / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "test_backlog.py").write_text(TEST.format(expected=expected))
    (suite / "first-test").unlink(missing_ok=True)
    start = time.time()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--live-cluster=docker:label={LABEL_KEY}={value}",
            "test_backlog.py",
        ],
        cwd=suite,
        capture_output=True,
        text=True,
        check=False,
    )
    first = suite / "first-test"
    if not first.exists():
        print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        return float("nan"), False
    return float(first.read_text()) - start, result.returncode == 0


def by_collector(value: str, expected: int) -> tuple[float, bool]:
    from pytest_livecluster.core.collector import Collector
    from pytest_livecluster.core.state import State
    from pytest_livecluster.sources import parse_specs

    state = State()
    start = time.perf_counter()
    collector = Collector(state, parse_specs(f"docker:label={LABEL_KEY}={value}"))
    collector.start()
    try:
        collector.wait_caught_up(0.3, timeout=600)
        took = time.perf_counter() - start
        return took, state.stats().lines == expected
    finally:
        collector.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--containers", type=int, default=6)
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--mode", choices=("pytest", "collector"), default="pytest")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    target = args.target or (1.3 if args.containers == 1 else 1.5)
    client = docker.from_env(timeout=300)
    expected = args.containers * args.lines
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        value = make_backlog(client, workdir, args.containers, args.lines)
        try:
            base: list[float] = []
            ours: list[float] = []
            complete = True
            for _ in range(args.rounds):
                took, count = baseline(client, value)
                base.append(took)
                complete &= count == expected
                if args.mode == "pytest":
                    took, ok = by_pytest(workdir, value, expected)
                else:
                    took, ok = by_collector(value, expected)
                ours.append(took)
                complete &= ok
        finally:
            remove(client, value)
    ratio = min(ours) / min(base)
    result = {
        "containers": args.containers,
        "lines": args.lines,
        "mode": args.mode,
        "baseline_s": min(base),
        "ours_s": min(ours),
        "ratio": ratio,
        "complete": complete,
        "target": target,
    }
    if args.json:
        print(json.dumps(result))
    else:
        what = "first live test" if args.mode == "pytest" else "collector caught up"
        print(
            f"{args.containers} x {args.lines:,} lines: docker-py {min(base):.2f} s, "
            f"{what} {min(ours):.2f} s: {ratio:.2f}x (target <= {target:g}x: "
            f"{'PASS' if ratio <= target else 'MISS'}); every line in the state: "
            f"{'yes' if complete else 'NO'}"
        )
    if not complete:
        return 1
    return 2 if ratio > target else 0


if __name__ == "__main__":
    sys.exit(main())
