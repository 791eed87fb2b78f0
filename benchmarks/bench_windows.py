"""What projections and open windows cost ingest, and that none open costs nothing.

Usage::

    python benchmarks/bench_windows.py [--lines N] [--rounds R] [--main PATH] [--json]

On the same generated shard lines (``shardgen``), interleaved round after
round, the best time of each of:

* ``plain``      ``orjson.loads`` + a recursive dict merge: the baseline;
* ``state``      ``State.ingest`` with no projection and no window;
* ``facts``      the same plus the methodology's projection (what a live run has);
* ``window``     ``facts`` plus an open ``consistently`` window whose check reads
  one path (``cluster.get("orchestrator", "status")``): the usual check;
* ``window_all`` ``facts`` plus a window whose check reads the whole state
  (``state.read(len)``): evaluated after every shard, the worst case.

Each is printed as lines/s and as a ratio to ``plain`` measured in the same
run. With ``--main PATH`` (a checkout of another revision, built), the
``state`` and ``plain`` loops of that tree run in a subprocess, alternating
with this tree's, and the two ``state/plain`` ratios are compared: ingest with
no window open must not be slower than on that revision (exit status 1 if this
tree's ratio is more than 3% below the other's).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import run_plain
from shardgen import COUNTERS, generate

TOLERANCE = 0.03


def run_state(lines: Sequence[bytes]) -> None:
    from pytest_livecluster import State

    state = State(counters=COUNTERS)
    ingest = state.ingest
    for line in lines:
        ingest(line)
    state.read(len)


def _with_facts() -> Any:
    from pytest_livecluster import State
    from pytest_livecluster.methodology.facts import MethodologyFacts

    state = State(counters=COUNTERS)
    state.add_projection(MethodologyFacts())
    return state


def run_facts(lines: Sequence[bytes]) -> None:
    state = _with_facts()
    ingest = state.ingest
    for line in lines:
        ingest(line)
    state.read(len)


def _run_window(lines: Sequence[bytes], check_of: Callable[[Any], Callable[[], Any]]) -> None:
    from pytest_livecluster.core.windows import Window

    state = _with_facts()
    window = Window(check_of(state)).open(state)
    ingest = state.ingest
    for line in lines:
        ingest(line)
    window.close()
    assert window.error is None, window.error
    state.read(len)


def run_window(lines: Sequence[bytes]) -> None:
    _run_window(lines, lambda state: lambda: state.get("orchestrator", "status") != "broken")


def run_window_all(lines: Sequence[bytes]) -> None:
    _run_window(lines, lambda state: lambda: state.read(len) >= 0)


METHODS: dict[str, Callable[[Sequence[bytes]], None]] = {
    "plain": run_plain,
    "state": run_state,
    "facts": run_facts,
    "window": run_window,
    "window_all": run_window_all,
}


def timed(fn: Callable[[Sequence[bytes]], None], lines: Sequence[bytes]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn(lines)
        return time.perf_counter() - start
    finally:
        gc.enable()


def lines_of(count: int) -> list[bytes]:
    return list(generate(count, seed=7))


def child(names: Sequence[str], count: int) -> None:
    """One round of ``names`` in this interpreter; print their times as JSON."""
    lines = lines_of(count)
    print(json.dumps({name: timed(METHODS[name], lines) for name in names}))


def in_tree(tree: Path, names: Sequence[str], count: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", ",".join(names), "--lines", str(count)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--main", type=Path, help="another built checkout to compare with")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child.split(","), args.lines)
        return 0
    here = Path(__file__).resolve().parent.parent
    best: dict[str, float] = {}
    other: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, took in in_tree(here, list(METHODS), args.lines).items():
            best[name] = min(best.get(name, float("inf")), took)
        if args.main is not None:
            for name, took in in_tree(args.main.resolve(), ["plain", "state"], args.lines).items():
                other[name] = min(other.get(name, float("inf")), took)
    rate = {name: args.lines / took for name, took in best.items()}
    ratio = {name: rate[name] / rate["plain"] for name in rate}
    result: dict[str, Any] = {"lines": args.lines, "rounds": args.rounds, "lines_per_s": rate}
    result["vs_plain"] = ratio
    status = 0
    if other:
        theirs = (args.lines / other["state"]) / (args.lines / other["plain"])
        result["main_state_vs_plain"] = theirs
        result["state_vs_main"] = ratio["state"] / theirs
        if ratio["state"] < theirs * (1 - TOLERANCE):
            status = 1
    if args.json:
        print(json.dumps(result, indent=2))
        return status
    for name in METHODS:
        print(f"{name:11} {rate[name]:>12,.0f} lines/s  {ratio[name]:.3f}x plain")
    for name in ("facts", "window", "window_all"):
        print(f"{name} costs {1 - rate[name] / rate['state']:.1%} of state's throughput")
    if other:
        print(
            f"state/plain here {ratio['state']:.3f}x, "
            f"on {args.main} {result['main_state_vs_plain']:.3f}x: "
            f"{result['state_vs_main']:.3f} of main's ({'PASS' if not status else 'MISS'})"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
