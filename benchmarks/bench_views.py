"""What the methodology's views cost, against a copy of the whole state.

Usage::

    python benchmarks/bench_views.py [--intents N] [--rounds R] [--json]

A state like a busy cluster's: ``N`` intents (20,000 by default), each set by
the orchestrator, answered by a scraper with per-domain counts and received by
a spotter, a hello from every blade, then heartbeats until the journal is
full. On it, the best of ``R`` rounds of ``cluster.snapshot()`` (a deep copy
of the whole state: the baseline) and of ``cluster.intents()`` and
``cluster.hellos()``, each printed as a ratio to the snapshot measured in the
same run.

Targets: ``intents()`` at most 2x the snapshot, ``hellos()`` at most 0.1x.
The exit status is 1 if one is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from pytest_livecluster import Envelope, State
from pytest_livecluster.core.waiting import TestTiming
from pytest_livecluster.methodology.cluster import MethodologyCluster

TARGETS = {"intents": 2.0, "hellos": 0.1}
SCRAPERS = [f"scraper-{i}" for i in range(1, 11)]
SPOTTERS = [f"spotter-{i}" for i in range(1, 6)]


def build(intents: int) -> MethodologyCluster:
    state = State(counters=["intents.*.resolution.*.item_scraped.*"])
    cluster = MethodologyCluster(state, None, TestTiming(timeout=30, window=5, tick=1))
    for host in ["orchestrator", *SCRAPERS, *SPOTTERS]:
        state.ingest(orjson.dumps({host: {"msg": "Hello World"}}), Envelope(f"docker:{host}"))
    for i in range(intents):
        iid = f"i-{i:06d}"
        scraper = SCRAPERS[i % len(SCRAPERS)]
        spotter = SPOTTERS[i % len(SPOTTERS)]
        state.ingest(
            orjson.dumps({"intents": {iid: {"host": scraper, "module": "scraper@1.4"}}}),
            Envelope("docker:orchestrator"),
        )
        counts = {"tries": 3, "item_collected": 12, "item_sent": 12, "errors": 0}
        answer = {"item_scraped": {"shop.example.com": counts, "news.example.org": counts}}
        state.ingest(
            orjson.dumps({"intents": {iid: {"resolution": {scraper: answer}}}}),
            Envelope(f"docker:{scraper}"),
        )
        state.ingest(
            orjson.dumps({"intents": {iid: {"resolution": {spotter: {"received": 24}}}}}),
            Envelope(f"docker:{spotter}"),
        )
    for i in range(state.stats().journal, 10_000 + 1):
        state.ingest(orjson.dumps({"orchestrator": {"heartbeat": i}}))
    return cluster


def best(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--intents", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cluster = build(args.intents)
    assert len(cluster.intents()) == args.intents
    assert sum(len(h) for h in cluster.hellos().values()) == 1 + len(SCRAPERS) + len(SPOTTERS)
    times = {
        "snapshot": best(cluster.snapshot, args.rounds),
        "intents": best(cluster.intents, args.rounds),
        "hellos": best(cluster.hellos, args.rounds),
    }
    ratios = {name: times[name] / times["snapshot"] for name in TARGETS}
    missed = [name for name, limit in TARGETS.items() if ratios[name] > limit]
    if args.json:
        print(json.dumps({"intents": args.intents, "seconds": times, "vs_snapshot": ratios}))
    else:
        print(f"snapshot   {times['snapshot'] * 1e3:9.2f} ms (baseline)")
        for name, limit in TARGETS.items():
            verdict = "PASS" if ratios[name] <= limit else "MISS"
            print(
                f"{name:10} {times[name] * 1e3:9.2f} ms  {ratios[name]:.3f}x snapshot "
                f"(target <= {limit:g}x: {verdict})"
            )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
