"""Memory soak: millions of shards over rotating intents, with a TTL, in bounded memory.

Usage::

    python benchmarks/soak_memory.py [--shards 5000000] [--baseline 1000000]
                                     [--intent-pool 200] [--rotate-every 100]
                                     [--tolerance 0.10] [--json]

Shards from :mod:`shardgen` are generated lazily (one line at a time) and
ingested into::

    State(counters=COUNTERS, ttl={"intents.*": TTL}, clock=clock)

``clock`` is a fake monotonic clock that advances by ``--tick`` seconds per
shard, so eviction depends only on the data, never on the machine's speed.
The generator keeps ``--intent-pool`` intents active and retires the oldest
every ``--rotate-every`` lines; nothing is written under a retired intent
again. The TTL is ``--ttl-factor`` times the longest an intent is ever written
(``intent_pool * rotate_every`` lines), so a retired intent is evicted and a
live one never is.

Checks (exit status 1 if any fails):

* **memory**: resident set size (psutil RSS, after ``gc.collect()``) after the
  baseline (1M shards) and at the end (5M) differ by at most ``--tolerance``;
* **exact totals**: at both points, ``state.total`` of every counter field
  (``intents.*.resolution.*.item_scraped.*.<field>``) equals the total the
  generator computed on its own from the last values it emitted;
* **eviction**: intents were evicted, the live ones stay bounded, and no intent
  went quiet for longer than the TTL before it retired (so no live intent
  could expire and be written again, which would count its counters twice).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shardgen import COUNTERS, FIELDS, ShardStream, counter_pattern, generate

from pytest_livecluster import State


class FakeClock:
    """Monotonic seconds that move only when the soak says so: ``tick`` per shard."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.shards = 0

    def __call__(self) -> float:
        return self.shards * self.tick


@dataclass
class Checkpoint:
    shards: int
    elapsed_s: float
    rate_lines_per_s: float
    rss_bytes: int
    live_intents: int
    evicted: int
    journal: int
    totals_exact: bool
    mismatches: dict[str, tuple[float, float]]


def rss_bytes(process: psutil.Process) -> int:
    gc.collect()
    return int(process.memory_info().rss)


def live_intents(root: dict[str, Any]) -> int:
    intents = root.get("intents")
    return len(intents) if isinstance(intents, dict) else 0


def check_totals(state: State, stream: ShardStream) -> dict[str, tuple[float, float]]:
    """The fields whose State total differs from the generator's: ``{field: (got, want)}``."""
    wrong: dict[str, tuple[float, float]] = {}
    for name in FIELDS:
        got = state.total(counter_pattern(name))
        want = stream.expected_total(name)
        if got != want:
            wrong[name] = (got, want)
    return wrong


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=5_000_000)
    parser.add_argument(
        "--baseline", type=int, default=1_000_000, help="shards before the baseline RSS"
    )
    parser.add_argument("--progress", type=int, default=1_000_000, help="print every N shards")
    parser.add_argument("--intent-pool", type=int, default=200, help="active intents at once")
    parser.add_argument("--rotate-every", type=int, default=100, help="lines per intent rotation")
    parser.add_argument("--tick", type=float, default=0.001, help="fake seconds per shard")
    parser.add_argument(
        "--ttl-factor", type=float, default=1.5, help="TTL = factor * longest intent life"
    )
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed RSS change")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.baseline < args.shards:
        parser.error("--baseline must be between 0 and --shards")

    life = args.intent_pool * args.rotate_every  # lines an intent is written for, about
    ttl = args.ttl_factor * life * args.tick
    # Active intents, plus retired ones waiting out the TTL, plus eviction's granularity.
    live_bound = (
        args.intent_pool
        + math.ceil((ttl + State.EVICT_EVERY * args.tick) / (args.rotate_every * args.tick))
        + 2
    )

    clock = FakeClock(args.tick)
    state = State(counters=COUNTERS, ttl={"intents.*": ttl}, clock=clock)
    stream = generate(
        args.shards, seed=args.seed, intent_pool=args.intent_pool, rotate_every=args.rotate_every
    )
    process = psutil.Process()
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(
        f"soak: {args.shards:,} shards, {args.intent_pool} active intents rotating every "
        f"{args.rotate_every} lines, tick {args.tick}s/shard, TTL intents.* = {ttl:g}s "
        f"({ttl / args.tick:,.0f} shards), Python {sys.version.split()[0]}"
    )
    say(f"start: RSS {rss_bytes(process) / 2**20:.1f} MiB")

    marks = sorted(
        {args.baseline, args.shards, *range(args.progress, args.shards + 1, args.progress)}
    )
    lines = iter(stream)
    ingest = state.ingest
    done = 0
    checkpoints: dict[int, Checkpoint] = {}
    start = time.perf_counter()
    for mark in marks:
        for line in itertools.islice(lines, mark - done):
            clock.shards += 1
            ingest(line)
        done = mark
        elapsed = time.perf_counter() - start
        wrong = check_totals(state, stream)
        point = Checkpoint(
            shards=done,
            elapsed_s=elapsed,
            rate_lines_per_s=done / elapsed,
            rss_bytes=rss_bytes(process),
            live_intents=state.read(live_intents),
            evicted=state.stats().evicted,
            journal=state.stats().journal,
            totals_exact=not wrong,
            mismatches=wrong,
        )
        checkpoints[done] = point
        say(
            f"{done:>10,} shards  {elapsed:7.1f}s  {point.rate_lines_per_s:>8,.0f} lines/s  "
            f"RSS {point.rss_bytes / 2**20:7.1f} MiB  live intents {point.live_intents:>4}  "
            f"evicted {point.evicted:>7,}  totals {'exact' if not wrong else f'WRONG {wrong}'}"
        )

    base, end = checkpoints[args.baseline], checkpoints[args.shards]
    ratio = end.rss_bytes / base.rss_bytes
    max_span = stream.max_span
    checks = {
        f"RSS at {args.shards:,} within {args.tolerance:.0%} of RSS at {args.baseline:,}": (
            abs(ratio - 1) <= args.tolerance
        ),
        "counter totals exact at both points": base.totals_exact and end.totals_exact,
        "intents were evicted": end.evicted > 0,
        f"live intents bounded (<= {live_bound})": all(
            c.live_intents <= live_bound for c in checkpoints.values()
        ),
        "no live intent could expire (longest quiet stretch < TTL)": (
            stream.max_gap * args.tick < ttl
        ),
    }
    ok = all(checks.values())
    if args.json:
        print(
            json.dumps(
                {
                    "config": vars(args) | {"ttl_s": ttl, "live_bound": live_bound},
                    "checkpoints": [asdict(c) for c in checkpoints.values()],
                    "rss_ratio": ratio,
                    "expected_totals": stream.expected_totals(),
                    "intents_created": stream.intents_created,
                    "max_intent_span_lines": max_span,
                    "max_intent_gap_lines": stream.max_gap,
                    "checks": checks,
                    "ok": ok,
                },
                indent=2,
            )
        )
    else:
        print()
        print(f"RSS after {args.baseline:,}: {base.rss_bytes / 2**20:.1f} MiB")
        print(f"RSS after {args.shards:,}: {end.rss_bytes / 2**20:.1f} MiB")
        print(f"ratio: {ratio:.3f}")
        print(
            f"intents created {stream.intents_created:,}, evicted {end.evicted:,}, "
            f"live {end.live_intents}; longest intent life {max_span:,} lines "
            f"({max_span * args.tick:g}s), longest quiet stretch {stream.max_gap:,} lines "
            f"({stream.max_gap * args.tick:g}s); TTL {ttl:g}s"
        )
        print("totals: " + ", ".join(f"{k} {v:,}" for k, v in stream.expected_totals().items()))
        for what, passed in checks.items():
            print(f"check {what}: {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
