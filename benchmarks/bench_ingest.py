"""Ingest throughput: ``State.ingest`` against plain merge loops, on the same lines.

Usage::

    python benchmarks/bench_ingest.py [--lines N] [--rounds R] [--stat best|median]
                                      [--gc] [--intent-pool P] [--json] [--profile]

Four ways of folding the same generated shard lines into one dict are timed,
interleaved round after round (the order rotates each round so none always
runs first):

* ``state``     ``State(counters=COUNTERS).ingest(line)``, default journal;
* ``plain``     ``merge(root, orjson.loads(line))``, a simple recursive dict merge;
* ``deepmerge`` ``Merger([(dict, ["merge"]), (list, ["override"])], ["override"],
  ["override"]).merge(root, orjson.loads(line))``;
* ``stdlib``    ``merge(root, json.loads(line))``.

Each timed loop starts from an empty target and a collected heap; the
``state`` loop ends with one ``state.read(len)``, so work a State deferred to
its readers would still be timed. Unless ``--gc`` is given, the cyclic
garbage collector is disabled during every timed loop alike. After the rounds
the four results are checked to be the same state, and the State's counter
totals to equal the generator's.

Targets (on the chosen statistic, ``best`` by default): ``state`` at least
0.9x ``plain`` and at least 1.5x ``deepmerge``. The exit status is 1 if a
target is missed, 2 if the results disagree.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from deepmerge import Merger

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shardgen import COUNTERS, FIELDS, counter_pattern, generate

from pytest_livecluster import State

TARGET_VS_PLAIN = 0.9
TARGET_VS_DEEPMERGE = 1.5

Runner = Callable[[Sequence[bytes]], Any]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """The simple recursive merge a user would write: objects merge, the rest replaces."""
    for key, value in patch.items():
        if isinstance(value, dict):
            old = target.get(key)
            if isinstance(old, dict):
                merge(old, value)
                continue
        target[key] = value


def run_state(lines: Sequence[bytes]) -> State:
    state = State(counters=COUNTERS)
    ingest = state.ingest
    for line in lines:
        ingest(line)
    state.read(len)  # a State that deferred work to its readers pays for it here
    return state


def run_plain(lines: Sequence[bytes]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    loads = orjson.loads
    for line in lines:
        merge(root, loads(line))
    return root


def run_deepmerge(lines: Sequence[bytes]) -> dict[str, Any]:
    merger = Merger([(dict, ["merge"]), (list, ["override"])], ["override"], ["override"])
    root: dict[str, Any] = {}
    loads = orjson.loads
    for line in lines:
        merger.merge(root, loads(line))
    return root


def run_stdlib(lines: Sequence[bytes]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    loads = json.loads
    for line in lines:
        merge(root, loads(line))
    return root


METHODS: dict[str, tuple[str, Runner]] = {
    "state": ("State.ingest (counters, journal)", run_state),
    "plain": ("orjson.loads + recursive merge", run_plain),
    "deepmerge": ("orjson.loads + deepmerge.Merger", run_deepmerge),
    "stdlib": ("json.loads + recursive merge", run_stdlib),
}


def timed(fn: Runner, lines: Sequence[bytes], keep_gc: bool) -> tuple[float, Any]:
    gc.collect()
    was_enabled = gc.isenabled()
    if not keep_gc:
        gc.disable()
    try:
        start = time.perf_counter()
        result = fn(lines)
        elapsed = time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()
    return elapsed, result


def profile_state(lines: Sequence[bytes], top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    run_state(lines)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=300_000, help="lines to generate")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--intent-pool", type=int, default=None, help="rotate intents through a window of P"
    )
    parser.add_argument(
        "--stat", choices=("best", "median"), default="best", help="statistic the targets use"
    )
    parser.add_argument("--gc", action="store_true", help="keep the cyclic GC on while timing")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of State.ingest"
    )
    args = parser.parse_args(argv)

    stream = generate(args.lines, seed=args.seed, intent_pool=args.intent_pool)
    lines = list(stream)
    mean_bytes = sum(map(len, lines)) / max(1, len(lines))

    times: dict[str, list[float]] = {name: [] for name in METHODS}
    results: dict[str, Any] = {}
    names = list(METHODS)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            elapsed, result = timed(METHODS[name][1], lines, args.gc)
            times[name].append(elapsed)
            results[name] = result
            del result
        if not args.json:
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{n} {len(lines) / times[n][-1]:,.0f}/s" for n in names),
                file=sys.stderr,
            )

    # Every method must have built the same state, and the State the exact totals.
    state: State = results["state"]
    reference = state.snapshot()
    agree = {name: results[name] == reference for name in names if name != "state"}
    totals_ok = {f: state.total(counter_pattern(f)) == stream.expected_total(f) for f in FIELDS}

    def rate(name: str, stat: str) -> float:
        t = min(times[name]) if stat == "best" else statistics.median(times[name])
        return len(lines) / t

    rows = {
        name: {
            "label": METHODS[name][0],
            "best_lines_per_s": rate(name, "best"),
            "median_lines_per_s": rate(name, "median"),
            "times_s": times[name],
        }
        for name in names
    }
    chosen = {name: rate(name, args.stat) for name in names}
    vs_plain = chosen["state"] / chosen["plain"]
    vs_deepmerge = chosen["state"] / chosen["deepmerge"]
    targets = {
        f"state >= {TARGET_VS_PLAIN}x plain": vs_plain >= TARGET_VS_PLAIN,
        f"state >= {TARGET_VS_DEEPMERGE}x deepmerge": vs_deepmerge >= TARGET_VS_DEEPMERGE,
    }
    ok = all(targets.values())
    consistent = all(agree.values()) and all(totals_ok.values())

    if args.json:
        print(
            json.dumps(
                {
                    "lines": len(lines),
                    "mean_line_bytes": mean_bytes,
                    "rounds": args.rounds,
                    "stat": args.stat,
                    "gc_enabled_while_timing": args.gc,
                    "intent_pool": args.intent_pool,
                    "python": sys.version.split()[0],
                    "methods": rows,
                    "ratios": {
                        name: {
                            "vs_plain": chosen[name] / chosen["plain"],
                            "vs_deepmerge": chosen[name] / chosen["deepmerge"],
                        }
                        for name in names
                    },
                    "targets": targets,
                    "same_state": agree,
                    "exact_totals": totals_ok,
                    "ok": ok and consistent,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{len(lines):,} lines ({mean_bytes:.0f} bytes on average), {args.rounds} rounds, "
            f"GC {'on' if args.gc else 'off'} while timing, "
            f"intent pool {args.intent_pool or 'fixed'}, Python {sys.version.split()[0]}"
        )
        print()
        header = (
            f"{'method':<10} {'what':<34} {'best/s':>11} {'median/s':>11} "
            f"{'vs plain':>9} {'vs deepm.':>9}"
        )
        print(header)
        print("-" * len(header))
        for name in names:
            row = rows[name]
            print(
                f"{name:<10} {row['label']:<34} {row['best_lines_per_s']:>11,.0f} "
                f"{row['median_lines_per_s']:>11,.0f} "
                f"{chosen[name] / chosen['plain']:>8.2f}x "
                f"{chosen[name] / chosen['deepmerge']:>8.2f}x"
            )
        print(f"(ratios use the {args.stat} of each method)")
        print()
        for what, passed in targets.items():
            print(f"target {what}: {'PASS' if passed else 'MISS'}")
        print(
            "same state from every method: "
            + ", ".join(f"{n} {'yes' if a else 'NO'}" for n, a in agree.items())
        )
        print(
            "State totals equal the generator's: "
            + ", ".join(f"{f} {'yes' if v else 'NO'}" for f, v in totals_ok.items())
        )

    if args.profile:
        print(profile_state(lines, 25), file=sys.stderr if args.json else sys.stdout)

    if not consistent:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
