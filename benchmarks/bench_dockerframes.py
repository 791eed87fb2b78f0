"""Decoding speed of the Docker log stream decoder, against a floor measured in the same run.

Usage::

    python benchmarks/bench_dockerframes.py [--lines N] [--rounds R] [--json]

The body of ``GET /containers/{id}/logs?timestamps=1`` for ``--lines`` (10,000) short
JSON lines (``{"seq":N,"s":"o","boot":0}``, stdout and stderr alternating, 137 us
apart) is built once in each of its two forms, then fed in 64 KiB chunks, interleaved
round after round (``--rounds``, 30; the best round of each counts):

* ``frames``      ``LogStreamDecoder(tty=False)`` over the multiplexed body;
* ``frame-walk``  its floor: a Python loop that only reads each frame's 8-byte header
  and slices out its payload, over the same chunks;
* ``tty``         ``LogStreamDecoder(tty=True)`` over the TTY body (no frames);
* ``line-walk``   its floor: a Python loop that only finds each ``b"\\n"`` and slices
  out the line, over the same chunks.

Each floor is the least a decoder written in Python does per line, measured in the
same process, so the ratio says what decoding adds (timestamps, per-stream
bookkeeping, the message objects) and depends far less on the machine than a time.
Every decoder run must return each line with its stream, timestamp and text (exit
status 2 if not).

Printed: milliseconds and lines/s of each (best round), and each decoder's time over
its floor's. Targets, set from measurement (2 shared cores, Python 3.11: frames
11.5-12.1x, tty 15.1-16.6x over five runs) with 50% headroom: ``frames`` at most
18x ``frame-walk``, ``tty`` at most 24x ``line-walk``. Exit status 1 if a target is
missed. A run takes about three seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import struct
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from pytest_livecluster.sources.docker.frames import LogMessage, LogStreamDecoder

CHUNK: Final = 65536
T0: Final = 1_795_607_950_000_000_000  # 2026-11-25T11:59:10Z
STEP_NS: Final = 137_000
TARGETS: Final = {"frames": ("frame-walk", 18.0), "tty": ("line-walk", 24.0)}

Body = list[bytes]  # the chunks, as they are fed
Run = Callable[[Body], int]  # returns the number of lines it found


def engine_stamp(ns: int) -> bytes:
    """``ns`` as the engine writes it: RFC3339 with nine fraction digits, then a space."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    civil = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{civil}.{fraction:09d}Z ".encode()


def expected(lines: int) -> list[LogMessage]:
    return [
        LogMessage(
            "stdout" if i % 2 else "stderr", T0 + i * STEP_NS, b'{"seq":%d,"s":"o","boot":0}' % i
        )
        for i in range(lines)
    ]


def bodies(messages: list[LogMessage]) -> dict[str, bytes]:
    """The multiplexed body and the TTY body of the same messages."""
    framed, tty = [], []
    for msg in messages:
        entry = engine_stamp(msg.ts_ns) + msg.line
        kind = 1 if msg.stream == "stdout" else 2
        framed.append(struct.pack(">BxxxI", kind, len(entry) + 1) + entry + b"\n")
        tty.append(entry + b"\r\n")
    return {"frames": b"".join(framed), "tty": b"".join(tty)}


def chunked(data: bytes) -> Body:
    return [data[pos : pos + CHUNK] for pos in range(0, len(data), CHUNK)]


def decode(tty: bool, sink: list[LogMessage]) -> Run:
    def run(body: Body) -> int:
        decoder = LogStreamDecoder(tty=tty)
        sink.clear()
        for chunk in body:
            sink.extend(decoder.feed(chunk))
        sink.extend(decoder.finish(exited=True))
        return len(sink)

    return run


def frame_walk(body: Body) -> int:
    """Frame headers and payload slices only: the least a frame decoder in Python does."""
    unpack = struct.Struct(">BxxxI").unpack_from
    count = 0
    pending = b""
    for chunk in body:
        data = pending + chunk if pending else chunk
        pos, n = 0, len(data)
        while n - pos >= 8:
            _, size = unpack(data, pos)
            if n - pos - 8 < size:
                break
            data[pos + 8 : pos + 8 + size]
            count += 1
            pos += 8 + size
        pending = data[pos:]
    return count


def line_walk(body: Body) -> int:
    """Each line found with ``find(b"\\n")`` and sliced out: the least a line decoder in
    Python does per line."""
    count = 0
    pending = b""
    for chunk in body:
        data = pending + chunk if pending else chunk
        find = data.find
        pos = 0
        while (nl := find(b"\n", pos)) >= 0:
            data[pos:nl]
            count += 1
            pos = nl + 1
        pending = data[pos:]
    return count


def timed(run: Run, body: Body) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    count = run(body)
    return time.perf_counter() - start, count


def measure(lines: int, rounds: int) -> tuple[dict[str, float], list[str]]:
    """Best seconds of each runner, and what any decoder got wrong."""
    want = expected(lines)
    data = bodies(want)
    got: dict[str, list[LogMessage]] = {"frames": [], "tty": []}
    runs: dict[str, tuple[Run, Body]] = {
        "frames": (decode(False, got["frames"]), chunked(data["frames"])),
        "frame-walk": (frame_walk, chunked(data["frames"])),
        "tty": (decode(True, got["tty"]), chunked(data["tty"])),
        "line-walk": (line_walk, chunked(data["tty"])),
    }
    best = dict.fromkeys(runs, float("inf"))
    wrong: list[str] = []
    for round_ in range(rounds):
        names = list(runs)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in names:
            seconds, count = timed(*runs[name])
            best[name] = min(best[name], seconds)
            if count != lines:
                wrong.append(f"{name}: {count} lines, not {lines}")
    if got["frames"] != want:
        wrong.append("frames: the decoded lines differ from those encoded")
    if got["tty"] != [LogMessage("stdout", m.ts_ns, m.line) for m in want]:
        wrong.append("tty: the decoded lines differ from those encoded")
    return best, sorted(set(wrong))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    best, wrong = measure(args.lines, args.rounds)
    results = {
        name: {"ms": round(seconds * 1e3, 3), "lines_per_s": round(args.lines / seconds)}
        for name, seconds in best.items()
    }
    missed = []
    for name, (floor, target) in TARGETS.items():
        ratio = best[name] / best[floor]
        results[name] |= {"over": floor, "ratio": round(ratio, 2), "target": target}
        if ratio > target:
            missed.append(f"{name} took {ratio:.2f}x {floor}, over the target of {target}x")
    if args.json:
        print(
            json.dumps({"lines": args.lines, "results": results, "missed": missed, "wrong": wrong})
        )
    else:
        print(f"{args.lines} lines, best of {args.rounds} rounds, in {CHUNK // 1024} KiB chunks")
        for name, row in results.items():
            ratio = (
                f"  {row['ratio']:.2f}x {row['over']} (target <= {row['target']}x)"
                if "ratio" in row
                else ""
            )
            print(f"  {name:<11}{row['ms']:9.3f} ms {row['lines_per_s']:>12,} lines/s{ratio}")
        for problem in wrong + missed:
            print(f"FAIL: {problem}")
    if wrong:
        return 2
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
