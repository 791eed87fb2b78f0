"""The run report: a typed tree, its JSON round trip, and hostile text in every medium."""

from __future__ import annotations

import re

import orjson

from pytest_livecluster import Envelope, State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.plugin.report import (
    RunReport,
    Section,
    SourceSummary,
    StateSummary,
    build_report,
    merge_worker_reports,
)
from pytest_livecluster.sources.file import FileSource

HOSTILE = (
    "\x1b[2J\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \u202eevil\r| `x` [l](http://e) <b>"
)


def _report() -> RunReport:
    state = State(counters=["n.*"])
    state.ingest(b'{"n": {"a": 2, "b": 3}}', Envelope("file:x"))
    state.ingest(HOSTILE.encode(), Envelope("docker:web-1", "stderr"))
    return build_report(
        state,
        None,
        cluster="staging",
        counters=["n.*"],
        sections=[Section("errors", [f"1 x stderr on web-1: {HOSTILE}"], {"n": 1})],
    )


def test_the_report_is_typed_and_survives_the_trip_through_json() -> None:
    report = _report()
    assert isinstance(report.state, StateSummary)
    assert report.state.rejected == {"invalid_json": 1}
    assert report.rejected_samples[0].source == "docker:web-1"
    data = orjson.loads(orjson.dumps(report.as_dict()))
    again = RunReport.from_dict(data)
    assert again == report
    assert data["state"]["accepted"] == 1
    assert data["rejected_samples"][0]["text"] == HOSTILE, "the JSON keeps the text as it was"


def test_sources_are_summarised_from_their_health(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "a.ndjson"
    path.write_bytes(b'{"a": 1}\n')
    state = State()
    with Collector(state, [FileSource(str(path))]) as collector:
        assert collector.wait_finished(5)
        report = build_report(state, collector, cluster="", counters=[])
    [source] = report.sources
    assert isinstance(source, SourceSummary)
    assert (source.source, source.state, source.lines) == (f"file:{path}", "finished", 1)
    workers = {"gw0": report.as_dict(), "gw1": report.as_dict()}
    merged = merge_worker_reports(workers)
    assert merged is not None
    assert merged.sources == report.sources
    assert merged.workers == {"gw0": 1, "gw1": 1}


def test_no_log_derived_text_reaches_the_terminal_raw() -> None:
    lines = list(_report().terminal_lines())
    text = "\n".join(lines)
    for control in ("\x1b", "\x07", "\u202e", "\r"):
        assert control not in text
    assert any("\\x1b[2J" in line for line in lines)


def test_no_log_derived_text_can_take_over_the_markdown_summary() -> None:
    markdown = _report().markdown()
    for control in ("\x1b", "\u202e", "\r"):
        assert control not in markdown
    assert "<b>" not in markdown
    assert "](http://e)" not in markdown
    [bullet] = [line for line in markdown.splitlines() if line.startswith("- ")]
    assert re.search(r"(?<!\\)\|", bullet) is None, "a pipe in a line is escaped"
    assert "`x`" not in bullet, "a backtick cannot open a code span"
    assert markdown.startswith("## Live cluster `staging`\n")
