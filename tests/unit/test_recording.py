"""Recordings and the ``file:`` source: a replay rebuilds the recorded state."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from pytest_livecluster import Envelope, RecordingError, SourceUnavailable, State
from pytest_livecluster.core.recording import Recorder, decode_record, encode_record, is_header
from pytest_livecluster.sources.file import FileSource

COUNTERS = ["intents.*.resolution.*.item_scraped.*"]

LINES: list[tuple[bytes, Envelope]] = [
    (b'{"scraper-1": {"msg": "Hello World"}}', Envelope("docker:scraper-1", origin_ns=10)),
    (b'{"intents": {"i-1": {"host": "scraper-1"}}}', Envelope("http://o:8080/logs", source_seq=1)),
    (
        b'{"intents": {"i-1": {"resolution": {"scraper-1": '
        b'{"item_scraped": {"a.example": {"item_sent": 4}}}}}}}',
        Envelope("docker:scraper-1", origin_ns=20),
    ),
    (b"Traceback (most recent call last):", Envelope("docker:scraper-1", "stderr", origin_ns=30)),
    (b'{"big": 123456789012345678901234567890}', Envelope("docker:x", unterminated=True)),
    (b'{"bad": "\xff\xfe"}', Envelope("docker:x")),
    (b'{"scraper-1": {"msg": null, "state": "busy"}}', Envelope("docker:scraper-1")),
]


def record(path: Path) -> State:
    with Recorder(path) as recorder:
        state = State(counters=COUNTERS, sink=recorder)
        for raw, envelope in LINES:
            state.ingest(raw, envelope)
    return state


def replay(spec_path: str) -> tuple[State, FileSource]:
    state = State(counters=COUNTERS)
    source = FileSource(spec_path)
    source.run(state.ingest)
    return state, source


def test_replay_rebuilds_the_same_state_journal_and_rejections(tmp_path: Path) -> None:
    path = tmp_path / "run.ndjson"
    original = record(path)

    rebuilt, source = replay(str(path))

    assert rebuilt.snapshot() == original.snapshot()
    assert rebuilt.snapshot()["big"] == 123456789012345678901234567890
    assert (
        rebuilt.stats().rejected
        == original.stats().rejected
        == {"invalid_json": 1, "invalid_utf8": 1}
    )
    assert [(e.envelope, e.raw) for e in rebuilt.journal()] == [
        (e.envelope, e.raw) for e in original.journal()
    ]
    assert [r.envelope.stream for r in rebuilt.rejected()] == ["stderr", "stdout"]
    assert rebuilt.total("intents.*.resolution.*.item_scraped.*.item_sent") == 4
    assert source.health.state == "finished"
    assert source.health.lines == len(LINES)


def test_recording_starts_with_a_header_and_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "run.ndjson"
    record(path)
    lines = path.read_bytes().splitlines()
    assert is_header(lines[0])
    assert len(lines) == 1 + len(LINES)
    records = [orjson.loads(line) for line in lines[1:]]
    assert [r["seq"] for r in records] == list(range(1, len(LINES) + 1))
    assert "line_b64" in records[5]
    assert "line" not in records[5]
    assert records[4]["unterminated"] is True
    assert records[0]["origin_ns"] == 10
    assert "source_seq" not in records[0]


def test_record_round_trip_keeps_the_envelope() -> None:
    envelope = Envelope("docker:a", "stderr", origin_ns=1, source_seq=2, unterminated=True)
    raw, back = decode_record(encode_record(5, 6, envelope, b"\x00\xff line").rstrip(b"\n"))
    assert (raw, back) == (b"\x00\xff line", envelope)


def test_plain_ndjson_is_read_one_shard_per_line(tmp_path: Path) -> None:
    path = tmp_path / "shards.ndjson"
    path.write_bytes(b'{"a": {"b": 1}}\r\n\n{"a": {"c": 2}}\n{"u": "\xe2\x80\xa8"}\n{"tail": 1}')

    state, source = replay(str(path))

    assert state.snapshot() == {"a": {"b": 1, "c": 2}, "u": "\u2028", "tail": 1}
    assert state.stats().rejected == {"empty": 1}
    entries = state.journal()
    assert [e.envelope.source_seq for e in entries] == [1, 3, 4, 5]
    assert {e.envelope.source for e in entries} == {f"file:{path}"}
    assert [e.envelope.unterminated for e in entries] == [False, False, False, True]
    assert source.health.lines == 5


def test_a_broken_record_is_reported_and_counted_never_merged(tmp_path: Path) -> None:
    path = tmp_path / "run.ndjson"
    original = record(path)
    with path.open("ab") as f:
        f.write(b'{"seq": 99, "recv_ns": 1, "sou')  # the writer died mid-line

    state, source = replay(str(path))

    assert source.health.error_count == 1
    assert source.health.errors[0].startswith("line 9: damaged_record: not JSON")
    assert source.damaged == 1
    assert state.stats().rejected == original.stats().rejected
    assert state.snapshot() == original.snapshot()


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match=r"cannot read '.*nope.ndjson': No such file"):
        replay(str(tmp_path / "nope.ndjson"))


def test_a_record_without_a_line_is_a_recording_error() -> None:
    with pytest.raises(RecordingError, match="neither line nor line_b64"):
        decode_record(b'{"seq": 1, "source": "x"}')


def test_recorder_writes_to_a_stream() -> None:
    buffer = io.BytesIO()
    recorder = Recorder(buffer)
    State(sink=recorder).ingest(b'{"a": 1}')
    recorder.close()
    assert recorder.lines == 1
    assert buffer.getvalue().count(b"\n") == 2


def test_recorder_names_an_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot write the recording"):
        Recorder(tmp_path / "missing-dir" / "run.ndjson")
