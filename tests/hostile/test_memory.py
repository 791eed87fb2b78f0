"""Huge lines cannot make the run hold gigabytes: the journal and the file reader are bounded."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from pytest_livecluster import Limits, State
from pytest_livecluster.core.recording import iter_lines
from pytest_livecluster.sources.file import FileSource
from tests.support import Runner


def _line(n: int, size: int) -> bytes:
    return orjson.dumps({"k": {"n": n, "pad": "x" * size}})


def test_the_journal_is_bounded_in_bytes_as_well_as_entries() -> None:
    size = len(_line(10, 2_000))  # the kept lines have two-digit numbers too
    state = State(journal_bytes=5 * size)
    for n in range(50):
        assert state.ingest(_line(n, 2_000))
    kept = state.journal()
    assert [e.shard["k"]["n"] for e in kept] == [45, 46, 47, 48, 49]
    assert sum(len(e.raw) for e in kept) <= 5 * size
    assert state.get("k", "n") == 49, "the state itself keeps everything"
    assert state.stats().journal == 5


def test_the_newest_line_is_kept_even_when_it_alone_is_over_the_bound() -> None:
    state = State(journal_bytes=1_000)
    state.ingest(_line(1, 10))
    state.ingest(_line(2, 5_000))
    assert [e.shard["k"]["n"] for e in state.journal()] == [2]
    state.ingest(_line(3, 10))
    assert [e.shard["k"]["n"] for e in state.journal()] == [3]


def test_the_entry_bound_and_the_byte_bound_work_together() -> None:
    big = len(_line(10, 300_000))
    state = State(journal_size=3, journal_bytes=2 * big + 10)
    for n in range(10):
        state.ingest(_line(n, 100))
    assert [e.shard["k"]["n"] for e in state.journal()] == [7, 8, 9]
    for n in range(10, 20):
        state.ingest(_line(n, 300_000))  # three of these exceed the byte bound
    assert [e.shard["k"]["n"] for e in state.journal()] == [18, 19]


def test_a_line_over_the_read_limit_is_never_held_whole() -> None:
    data = b'{"a": 1}\n' + b"y" * 1_000_000 + b"\n" + b'{"b": 2}'
    lines = list(iter_lines(io.BufferedReader(io.BytesIO(data), 4096), limit=100))
    assert lines[0] == (b'{"a": 1}', True)
    assert lines[1] == (b"y" * 101, True), "its head, one byte over the limit"
    assert lines[2] == (b'{"b": 2}', False)


def test_a_huge_line_in_a_file_is_counted_too_large_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(b'{"a": 1}\n' + b'{"pad": "' + b"z" * 5_000_000 + b'"}\n{"b": 2}\n')
    source = FileSource(str(path), max_line_bytes=1_000)
    with Runner(source) as runner:
        runner.wait_done()
    state = State(limits=Limits(max_line_bytes=1_000))
    for raw, envelope in runner.emitted:
        state.ingest(raw, envelope)
    assert state.snapshot() == {"a": 1, "b": 2}
    assert state.stats().rejected == {"too_large": 1}
    assert max(len(raw) for raw, _ in runner.emitted) <= 2 * 1_000 + (1 << 16) + 1
