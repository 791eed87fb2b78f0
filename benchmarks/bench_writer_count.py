"""The cost of one ``Blade.count()`` call, against a bare ``dict`` increment, in one run.

A single thread counts the seed's call
``count("i-1", "site1.example", item_collected=1, item_sent=1)`` in a loop,
and, interleaved with it, increments the same two fields in a plain ``dict``
(``group["item_collected"] += 1; group["item_sent"] += 1``). Both are timed
over the same number of calls (the loop's own cost included in both), best of
several rounds; the blade writes its coalesced lines to ``/dev/null`` through
its background thread meanwhile, as it would in a service.

    python benchmarks/bench_writer_count.py [--calls 300000] [--rounds 5]

Prints ns per call for each and their ratio. No target: it exits 0 unless
the counts come out wrong. Takes a few seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from livecluster import Blade
from livecluster import _json as kit_json


def bare_dict(calls: int) -> float:
    """Seconds for ``calls`` two-field increments of a plain dict."""
    group = {"item_collected": 0, "item_sent": 0}
    start = time.perf_counter()
    for _ in range(calls):
        group["item_collected"] += 1
        group["item_sent"] += 1
    elapsed = time.perf_counter() - start
    assert group["item_sent"] == calls
    return elapsed


def blade_count(blade: Blade, calls: int) -> float:
    """Seconds for ``calls`` calls of ``blade.count`` (flushed after the clock stops)."""
    count = blade.count
    start = time.perf_counter()
    for _ in range(calls):
        count("i-1", "site1.example", item_collected=1, item_sent=1)
    elapsed = time.perf_counter() - start
    blade.flush()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    with open(os.devnull, "w", encoding="utf-8") as sink, Blade("bench-1", stream=sink) as blade:
        dict_times, blade_times = [], []
        for _ in range(args.rounds):
            dict_times.append(bare_dict(args.calls))
            blade_times.append(blade_count(blade, args.calls))
        total = blade.counts()["i-1"]["site1.example"]["item_sent"]
        lines = blade.lines_written

    expected = args.calls * args.rounds
    dict_ns = min(dict_times) / args.calls * 1e9
    blade_ns = min(blade_times) / args.calls * 1e9
    print(f"python {sys.version.split()[0]}, JSON by {'orjson' if kit_json.fast else 'json'}")
    print(f"{args.calls:,} calls per round, best of {args.rounds} rounds, one thread")
    print(f"bare dict increment (2 fields):        {dict_ns:8.1f} ns/call")
    print(f"Blade.count (2 fields, lock, coalesce): {blade_ns:8.1f} ns/call")
    print(f"ratio count / dict:                     {blade_ns / dict_ns:8.1f} x")
    print(f"lines written for {expected:,} calls:   {lines:,}")
    if total != expected:
        print(f"WRONG: counted {total}, expected {expected}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
