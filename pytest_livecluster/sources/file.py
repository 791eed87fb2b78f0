"""``file:PATH``: replay a recording, or a plain NDJSON file of shards.

A recording (its first line is the recording header) is replayed with each
line's original envelope, so the rebuilt state, its journal and its rejected
lines match the run that was recorded. Any other file is read as one shard per
line. ``file:-`` reads standard input.

A recording of an unknown format version is refused (``RecordingError``). A
damaged record (bad ``line_b64``, no ``source``, a second header...) is never
merged: it is skipped and counted as a source error ``line N: damaged_record:
why``, which the report and ``livecluster state`` show.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from ..core.ingest import Envelope
from ..core.recording import check_header, decode_record, is_header, iter_lines
from ..core.source import Emit, Source, SourceOptions, SourceState
from ..exceptions import RecordingError, SourceUnavailable, SpecError

__all__ = ["DAMAGED", "FileSource"]

DAMAGED = "damaged_record"


class FileSource(Source):
    """Replays a file once; it is finite."""

    finite = True

    def __init__(self, path: str, max_line_bytes: int = SourceOptions().max_line_bytes) -> None:
        super().__init__(f"file:{path}")
        self.path = path
        # A record carries its line in base64 with its envelope: room for both, so a
        # line the state may accept still fits, and a longer one is never held whole.
        self._read_limit = 2 * max_line_bytes + (1 << 16)
        #: Records of a recording that held no line (counted, never merged).
        self.damaged = 0

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> FileSource:
        path = spec.removeprefix("file:")
        if not path:
            raise SpecError(
                f"bad source spec {spec!r}: write file:PATH (file:- for standard input)"
            )
        return cls(path, options.max_line_bytes)

    def run(self, emit: Emit) -> None:
        if self.path == "-":
            self._replay(sys.stdin.buffer, emit)
            return
        try:
            stream = open(Path(self.path), "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            self.health.state = SourceState.FAILED
            raise SourceUnavailable(f"cannot read {self.path!r}: {exc.strerror or exc}") from exc
        with stream:
            self._replay(stream, emit)

    def _replay(self, stream: IO[bytes], emit: Emit) -> None:
        self.health.state = SourceState.ATTACHED
        self.health.attached = 1
        recording: bool | None = None
        number = 0
        for line, terminated in iter_lines(stream, self._read_limit):
            if self.closed:
                break
            number += 1
            if recording is None:
                recording = is_header(line)
                if recording:
                    try:
                        check_header(line)
                    except RecordingError as exc:
                        self.health.state = SourceState.FAILED
                        raise RecordingError(f"{self.path}: {exc}") from None
                    continue
            if recording:
                try:
                    raw, envelope = decode_record(line)
                except RecordingError as exc:
                    self.damaged += 1
                    self.health.error(f"line {number}: {DAMAGED}: {exc}")
                    continue
            else:
                raw = line
                envelope = Envelope(self.id, source_seq=number, unterminated=not terminated)
            self.health.line(raw)
            emit(raw, envelope)
        self.health.state = SourceState.FINISHED
