"""Wake-up latency of ``eventually``: from a shard's ingest to the check passing.

A writer thread ingests shard ``{"seq": i}`` once the reader is waiting for
it; the reader waits with ``eventually`` (woken by the state) and, in the same
run, with a polling loop that re-checks every 10 ms. Both are timed from just
before ``State.ingest`` to just after the check passed, over the same number
of shards, interleaved.

    python benchmarks/bench_wakeup.py [--shards 1000]

Target: ``eventually`` p99 under 2 ms. Exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence

from pytest_livecluster.core.state import State
from pytest_livecluster.core.waiting import eventually

TARGET_P99_MS = 2.0
POLL_INTERVAL = 0.010


def wait_eventually(state: State, check: Callable[[], bool]) -> None:
    eventually(state, check, timeout=10, tick=5)


def wait_polling(state: State, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("polling gave up")
        time.sleep(POLL_INTERVAL)


def measure(
    waiter: Callable[[State, Callable[[], bool]], None], shards: int, seed: int
) -> list[float]:
    """Latencies in milliseconds of ``shards`` waits."""
    state = State()
    rng = random.Random(seed)
    ready = threading.Event()
    sent_at: list[float] = [0.0] * shards
    stop = threading.Event()

    def writer() -> None:
        for i in range(shards):
            if not ready.wait(10) or stop.is_set():
                return
            ready.clear()
            time.sleep(rng.uniform(0.0005, 0.003))  # the reader is inside its wait by now
            sent_at[i] = time.perf_counter()
            state.ingest(b'{"seq": %d}' % i)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    latencies = []
    try:
        for i in range(shards):
            ready.set()
            waiter(state, lambda i=i: state.read(lambda root: root.get("seq", -1) >= i))
            latencies.append((time.perf_counter() - sent_at[i]) * 1000)
    finally:
        stop.set()
        ready.set()
        thread.join(5)
    return latencies


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of each")
    args = parser.parse_args(argv)
    per_round = max(1, args.shards // args.rounds)
    results: dict[str, list[float]] = {"eventually": [], "polling 10 ms": []}
    for r in range(args.rounds):
        results["eventually"] += measure(wait_eventually, per_round, seed=r)
        results["polling 10 ms"] += measure(wait_polling, per_round, seed=r)
    print(f"{per_round * args.rounds} shards per method, {args.rounds} interleaved rounds")
    columns = ("p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms")
    print(f"{'method':15s} " + " ".join(f"{c:>8s}" for c in columns))
    for name, values in results.items():
        print(
            f"{name:15s} {percentile(values, 50):8.3f} {percentile(values, 90):8.3f} "
            f"{percentile(values, 99):8.3f} {max(values):8.3f} {statistics.fmean(values):8.3f}"
        )
    p99 = percentile(results["eventually"], 99)
    base = percentile(results["polling 10 ms"], 99)
    print(f"eventually p99 / polling p99 = {p99 / base:.3f}")
    ok = p99 < TARGET_P99_MS
    print(f"target eventually p99 < {TARGET_P99_MS} ms: {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
