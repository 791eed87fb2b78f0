"""``file:PATH``: replay a recording, or a plain NDJSON file of shards.

A recording (its first line is the recording header) is replayed with each
line's original envelope, so the rebuilt state, its journal and its rejected
lines match the run that was recorded. Any other file is read as one shard per
line. ``file:-`` reads standard input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from ..core.ingest import Envelope
from ..core.recording import decode_record, is_header, iter_lines
from ..core.source import Emit, Source, SourceOptions, SourceState
from ..exceptions import RecordingError, SourceUnavailable, SpecError

__all__ = ["FileSource"]


class FileSource(Source):
    """Replays a file once; it is finite."""

    finite = True

    def __init__(self, path: str) -> None:
        super().__init__(f"file:{path}")
        self.path = path

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> FileSource:
        path = spec.removeprefix("file:")
        if not path:
            raise SpecError(
                f"bad source spec {spec!r}: write file:PATH (file:- for standard input)"
            )
        return cls(path)

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
        for line, terminated in iter_lines(stream):
            if self.closed:
                break
            number += 1
            if recording is None:
                recording = is_header(line)
                if recording:
                    continue
            if recording:
                try:
                    raw, envelope = decode_record(line)
                except RecordingError as exc:
                    self.health.error(f"line {number}: {exc}")
                    raw, envelope = line, Envelope(self.id, source_seq=number)
            else:
                raw = line
                envelope = Envelope(self.id, source_seq=number, unterminated=not terminated)
            self.health.line(raw)
            emit(raw, envelope)
        self.health.state = SourceState.FINISHED
