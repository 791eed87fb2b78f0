"""Watch mode over many rounds: memory stays flat, and a round costs far less than a run.

A real ``pytest --live-watch`` process follows a real loopback ``/logs``
server (fed 200 lines/s of generated shards, every 100 ms, under a TTL) and
re-runs a suite
of five live tests, one of which fails every fourth round, so an alert fires
and resolves over and over at a real loopback webhook receiver.

Checks, all measured in this run:

* RSS of the watch process at round ``--late`` over RSS at round ``--early``
  is at most 1.10 (nothing grows per round);
* the mean round takes at most half the mean wall time of a fresh
  ``pytest --live-cluster`` run of the same suite against the same server
  (the baseline: start-up, attach, settle, test, report);
* every fired alert was resolved, and the receiver got one POST per transition.

    .venv/bin/python benchmarks/soak_watch.py            # ~60 s
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psutil
from shardgen import generate

from pytest_livecluster.protocol.server import LogBuffer, LogServer

SUITE = """
import pathlib
import pytest

pytestmark = pytest.mark.live


def rounds():
    path = pathlib.Path("rounds.txt")
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


def test_flaps_every_fourth_round(cluster):
    assert rounds() % 4 != 0, "the fourth round fails"


def test_state_has_intents(cluster):
    cluster.eventually(lambda: cluster.get("intents") is not None, timeout=5)


def test_a_total(cluster):
    assert cluster.total("intents.*.resolution.*.item_scraped.*.item_sent") >= 0


def test_cursor(cluster):
    assert cluster.since_test.count >= 0
    assert len(cluster.journal()) > 0


def test_views(cluster):
    assert cluster.counts().sent >= 0
"""

INI = """[pytest]
livecluster_counters = intents.*.resolution.*.item_scraped.*
livecluster_ttl = intents.* = 20
livecluster_journal_size = 2000
"""


class _Hook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Hook.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _feed(buffer: LogBuffer, stop: threading.Event, rate: int) -> None:
    """``rate`` lines a second, a tenth of them every 100 ms: the cluster never pauses."""
    lines = iter(generate(10**9, seed=1, intent_pool=50))
    while not stop.is_set():
        started = time.monotonic()
        for _ in range(rate // 10):
            buffer.append(next(lines).decode())
        stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--early", type=int, default=100)
    parser.add_argument("--late", type=int, default=600)
    parser.add_argument("--fresh-runs", type=int, default=5)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-watch-"))
    (work / "test_soak.py").write_text(SUITE)
    (work / "pytest.ini").write_text(INI)
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    stop = threading.Event()
    with LogServer(LogBuffer(capacity=20_000), heartbeat=0.5).start() as logs:
        feeder = threading.Thread(target=_feed, args=(logs.buffer, stop, args.rate), daemon=True)
        feeder.start()
        time.sleep(1.0)
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
        source = f"--live-cluster={logs.url}"

        fresh = []
        for _ in range(args.fresh_runs):
            started = time.monotonic()
            subprocess.run([*base, source], cwd=work, capture_output=True, check=False)
            fresh.append(time.monotonic() - started)
        (work / "rounds.txt").unlink(missing_ok=True)

        hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        out = work / "watch.out"
        with out.open("wb") as stdout:
            process = subprocess.Popen(
                [
                    *base,
                    source,
                    "--live-watch=0.01",
                    f"--live-watch-rounds={args.late}",
                    f"--live-alert=webhook+{hook_url}",
                    "--live-alert-ledger=ledger.json",
                ],
                cwd=work,
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )
        proc = psutil.Process(process.pid)
        rss: dict[int, int] = {}
        watch_started = time.monotonic()
        while process.poll() is None:
            done = out.read_text(errors="replace").count("\nwatch round ")
            for mark in (args.early, args.late - 1):
                if done >= mark and mark not in rss:
                    rss[mark] = proc.memory_info().rss
            time.sleep(0.02)
        watch_seconds = time.monotonic() - watch_started
        stop.set()
    hook.shutdown()

    text = out.read_text(errors="replace")
    times = [
        float(t) for t in re.findall(r"^watch round \d+ at [\d:]+: .* in ([\d.]+) s", text, re.M)
    ]
    rounds = len(times)
    fired = sum(1 for b in _Hook.bodies for a in b["alerts"] if a["status"] == "firing")
    resolved = sum(1 for b in _Hook.bodies for a in b["alerts"] if a["status"] == "resolved")
    mean_fresh = sum(fresh) / len(fresh)
    mean_round = watch_seconds / max(rounds, 1)
    growth = rss[args.late - 1] / rss[args.early] if len(rss) == 2 else float("inf")
    print(f"fresh pytest run (baseline): mean {mean_fresh:.3f} s over {len(fresh)} runs")
    print(
        f"watch: {rounds} rounds in {watch_seconds:.1f} s, mean {mean_round:.3f} s per round "
        "(wall time: tests, alerts, report and the pause between rounds)"
    )
    print(f"round / fresh run: {mean_round / mean_fresh:.3f} (target <= 0.5)")
    print(
        f"RSS at round {args.early}: {rss.get(args.early, 0) / 2**20:.1f} MiB, at round "
        f"{args.late - 1}: {rss.get(args.late - 1, 0) / 2**20:.1f} MiB, ratio {growth:.3f} "
        "(target <= 1.10)"
    )
    print(
        f"alerts: {fired} firing and {resolved} resolved notifications in "
        f"{len(_Hook.bodies)} POSTs (expected {args.late // 4} firing, as many resolved "
        "or one fewer)"
    )
    checks = [
        rounds == args.late,
        mean_round / mean_fresh <= 0.5,
        growth <= 1.10,
        fired == args.late // 4 and resolved in (fired, fired - 1),
        len(_Hook.bodies) == fired + resolved,
    ]
    print("PASS" if all(checks) else f"FAIL {checks}")
    return 0 if all(checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
