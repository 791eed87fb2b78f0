"""The ``livecluster`` command: look at a cluster's state without writing a test.

``livecluster state SPEC...`` follows the sources until they end (recordings)
or have been quiet for ``--until-idle`` seconds, prints the merged state as
JSON (sorted keys) on standard output and a one-line summary on standard
error. ``--totals PATTERN`` adds counter totals: the output becomes
``{"state": ..., "totals": {PATTERN: N}}``.

``livecluster report SPEC... --html OUT.html [--json OUT.json]`` reads the
sources (a recording, typically) to their end and writes the run report the
live run would have written: the page, the JSON, or both.

``livecluster tail SPEC...`` prints every line as it arrives, each shard
flattened into ``path = value`` assignments, until interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import _escape
from ._values import positive_seconds, ttl_rule
from .core import jsonutil
from .core.collector import Collector
from .core.ingest import Envelope, parse_shard
from .core.paths import format_path
from .core.source import Source
from .core.state import State
from .exceptions import ConfigError, LiveClusterError
from .sources import parse_specs

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livecluster", description="Follow a cluster's JSON logs and show the merged state."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    state = sub.add_parser("state", help="print the merged state as JSON")
    state.add_argument("specs", nargs="+", metavar="SPEC", help="sources, e.g. file:run.ndjson")
    state.add_argument(
        "--counter",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a counter pattern: numeric leaves under it merge by max (repeatable)",
    )
    state.add_argument(
        "--ttl",
        action="append",
        default=[],
        metavar="PATTERN=SECONDS",
        help="evict subtrees matching PATTERN not written for SECONDS (repeatable)",
    )
    state.add_argument(
        "--totals",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also print the sum of the numeric leaves PATTERN selects (repeatable)",
    )
    state.add_argument("--indent", action="store_true", help="indent the JSON")
    _add_until_idle(state, "print")
    state.add_argument(
        "--timeout",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="give up waiting for the sources after SECONDS (exit 1)",
    )
    report = sub.add_parser(
        "report", help="read a recording (or any sources) and write the run report offline"
    )
    report.add_argument(
        "specs", nargs="+", metavar="SPEC", help="a recording's path, or any source spec"
    )
    report.add_argument("--html", metavar="OUT", help="write the report as an HTML page to OUT")
    report.add_argument("--json", metavar="OUT", help="write the JSON report to OUT")
    report.add_argument(
        "--counter",
        action="append",
        default=None,
        metavar="PATTERN",
        help="a counter pattern (repeatable; default: the methodology's item and receipt counters)",
    )
    report.add_argument(
        "--stale-after",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="an intent not received this long after it was set is stale (default 30)",
    )
    report.add_argument("--name", default="", help="the cluster's name in the report")
    _add_until_idle(report, "report")
    tail = sub.add_parser("tail", help="print lines and state changes as they arrive")
    tail.add_argument("specs", nargs="+", metavar="SPEC", help="sources, e.g. http://h:8080/logs")
    tail.add_argument("--raw", action="store_true", help="print raw lines, not path = value")
    return parser


def _add_until_idle(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--until-idle",
        type=_positive,
        default=2.0,
        metavar="SECONDS",
        help=f"with live sources, {verb} once no line has arrived for SECONDS (default 2)",
    )


def _follow(
    state: State, sources: Sequence[Source], until_idle: float, timeout: float | None = None
) -> tuple[Collector, bool]:
    """Follow ``sources`` into ``state`` until they end (recordings) or go quiet.

    Returns the closed collector and whether it finished within ``timeout``.
    """
    collector = Collector(state, sources).start()
    try:
        if all(source.finite for source in sources):
            done = collector.wait_finished(timeout)
        else:
            done = collector.wait_idle(until_idle, timeout)
    finally:
        collector.close()
    return collector, done


def _positive(text: str) -> float:
    """``--until-idle`` and ``--timeout``: the plugin's rule for seconds (up to 30 days)."""
    try:
        return positive_seconds("the value", text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            return _report(args)
        return _tail(args) if args.command == "tail" else _state(args)
    except ConfigError as exc:
        print(f"livecluster: error: {exc}", file=sys.stderr)
        return 2
    except LiveClusterError as exc:
        print(f"livecluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _state(args: argparse.Namespace) -> int:
    state = State(counters=args.counter, ttl=dict(ttl_rule("--ttl", rule) for rule in args.ttl))
    sources = parse_specs(args.specs)
    collector, done = _follow(state, sources, args.until_idle, args.timeout)
    for failure in collector.failures:
        print(f"livecluster: source failed: {failure}", file=sys.stderr)
    if not done:
        print(f"livecluster: the sources were still busy after {args.timeout}s", file=sys.stderr)
        return 1
    output: object = state.snapshot()
    if args.totals:
        output = {"state": output, "totals": {p: state.total(p) for p in args.totals}}
    sys.stdout.buffer.write(jsonutil.dumps(output, sort_keys=True, indent=args.indent) + b"\n")
    sys.stdout.flush()
    stats = state.stats()
    rejected = ", ".join(f"{r}: {n}" for r, n in sorted(stats.rejected.items()))
    damaged = _report_damaged(sources)
    print(
        f"livecluster: {stats.lines} lines from {len(sources)} source(s): "
        f"{stats.accepted} accepted, {sum(stats.rejected.values())} rejected"
        + (f" ({rejected})" if rejected else "")
        + (f", {damaged} damaged record(s) skipped" if damaged else ""),
        file=sys.stderr,
    )
    # A damaged recording is not the state it claims to be: say so in the exit status.
    return 1 if collector.failures or damaged else 0


def _report(args: argparse.Namespace) -> int:
    """``livecluster report``: the run report of a recording, as the live run would write it."""
    from ._files import check_writable, same_file, write_atomic
    from .core.waiting import TestTiming
    from .methodology.cluster import MethodologyCluster
    from .methodology.page import render_page
    from .methodology.schema import COUNTER_PATTERNS
    from .methodology.sections import report_sections
    from .plugin.report import build_report

    if not args.html and not args.json:
        raise ConfigError("livecluster report: give --html OUT, --json OUT or both")
    # A recording may be named by its path alone.
    args.specs = [f"file:{spec}" if Path(spec).is_file() else spec for spec in args.specs]
    outputs = (("--html", args.html), ("--json", args.json))
    for flag, path in [(flag, path) for flag, path in outputs if path]:
        check_writable(path, flag)
        for spec in args.specs:
            replayed = spec.removeprefix("file:")
            if replayed != "-" and same_file(replayed, path):
                raise ConfigError(f"{flag}: {path!r} is a recording this report reads")
    if args.html and args.json and same_file(args.html, args.json):
        raise ConfigError(f"--html and --json are the same file: {args.html!r}")
    counters = tuple(args.counter) if args.counter else COUNTER_PATTERNS
    state = State(counters=counters)
    cluster = MethodologyCluster(state, None, TestTiming(30.0, 0.0, 0.5))
    sources = parse_specs(args.specs)
    collector, _ = _follow(state, sources, args.until_idle)
    cluster.collector = collector
    history = cluster.history
    sections = report_sections(
        cluster.views, history, stale_after=args.stale_after, now=history.last
    )
    report = build_report(
        state, collector, cluster=args.name, counters=counters, sections=sections
    ).as_dict()
    if args.json:
        write_atomic(args.json, jsonutil.dumps(report, indent=True) + b"\n")
        print(f"livecluster: wrote the JSON report to {args.json}", file=sys.stderr)
    if args.html:
        write_atomic(args.html, render_page(report))
        print(f"livecluster: wrote the HTML report to {args.html}", file=sys.stderr)
    for failure in collector.failures:
        print(f"livecluster: source failed: {failure}", file=sys.stderr)
    damaged = _report_damaged(sources)
    return 1 if collector.failures or damaged else 0


def _report_damaged(sources: Sequence[Source]) -> int:
    """Print each recording's damaged records (line and why) on stderr; return how many."""
    from .sources.file import DAMAGED, FileSource

    total = 0
    for source in sources:
        if not isinstance(source, FileSource) or not source.damaged:
            continue
        total += source.damaged
        print(
            f"livecluster: {source.id}: {source.damaged} damaged record(s), skipped:",
            file=sys.stderr,
        )
        shown = [e for e in source.health.errors if f": {DAMAGED}: " in e]
        for error in shown:
            print(f"  {_escape.terminal(error, one_line=True)}", file=sys.stderr)
        if len(shown) < source.damaged:
            print(f"  ... and {source.damaged - len(shown)} more", file=sys.stderr)
    return total


def _tail(args: argparse.Namespace) -> int:
    sources = parse_specs(args.specs)
    out = sys.stdout
    lock = threading.Lock()

    def show(raw: bytes, envelope: Envelope, accepted: bool) -> None:
        with lock:
            for line in tail_lines(raw, envelope, accepted, raw_mode=args.raw):
                print(line, file=out)
            out.flush()

    collector = Collector(State(), sources, on_line=show).start()
    try:
        collector.wait_finished()
    finally:
        collector.close()
    for failure in collector.failures:
        print(f"livecluster: source failed: {failure}", file=sys.stderr)
    damaged = _report_damaged(sources)
    return 1 if collector.failures or damaged else 0


def tail_lines(raw: bytes, envelope: Envelope, accepted: bool, *, raw_mode: bool) -> Iterator[str]:
    """What ``livecluster tail`` prints for one line."""
    stamp = dt.datetime.now() if envelope.origin_ns is None else _local(envelope.origin_ns)
    when = stamp.strftime("%H:%M:%S.%f")[:-3]
    head = f"{when} {envelope.source} {envelope.stream}"
    text = raw.decode("utf-8", "replace")
    if raw_mode or not accepted:
        mark = "" if accepted else f" [rejected: {_reason(raw)}]"
        yield f"{head}{mark} {text}"
        return
    shard = parse_shard(raw)
    assert isinstance(shard, dict)
    for path, value in _flatten(shard, ()):
        yield f"{head} {format_path(path)} = {jsonutil.dumps_text(value)}"


def _local(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9)


def _reason(raw: bytes) -> str:
    result = parse_shard(raw)
    return getattr(result, "reason", "limit")


def _flatten(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if type(value) is dict and value:
        for key, sub in value.items():
            yield from _flatten(sub, (*path, key))
    else:
        yield path, value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
