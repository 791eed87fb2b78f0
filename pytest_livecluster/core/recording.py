"""Recordings: the full journal of a run as NDJSON, replayable into the same state.

The first line is a header, ``{"livecluster_recording": 1, ...}``. Every other
line is one ingested line, accepted or rejected, in ingest order::

    {"seq": 7, "recv_ns": 1732530000000000000, "source": "docker:scraper-1",
     "stream": "stdout", "origin_ns": 1732529999999000000, "line": "{\\"a\\": 1}"}

``origin_ns``, ``source_seq`` and ``unterminated`` appear only when set; a raw
line that is not valid UTF-8 is stored base64-encoded as ``line_b64``.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ..exceptions import RecordingError
from .ingest import Envelope

__all__ = [
    "FORMAT_VERSION",
    "Recorder",
    "check_header",
    "decode_record",
    "encode_record",
    "is_header",
]

FORMAT_VERSION: Final = 1
HEADER_KEY: Final = "livecluster_recording"


def encode_record(seq: int, recv_ns: int, envelope: Envelope, raw: bytes) -> bytes:
    """One recording line (with its newline) for one ingested line."""
    record: dict[str, Any] = {
        "seq": seq,
        "recv_ns": recv_ns,
        "source": envelope.source,
        "stream": envelope.stream,
    }
    if envelope.origin_ns is not None:
        record["origin_ns"] = envelope.origin_ns
    if envelope.source_seq is not None:
        record["source_seq"] = envelope.source_seq
    if envelope.unterminated:
        record["unterminated"] = True
    try:
        record["line"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["line_b64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(record) + b"\n"


def decode_record(line: bytes) -> tuple[bytes, Envelope]:
    """The raw line and envelope a recording line holds; RecordingError saying why if it
    holds none (the record itself is never a shard: a replay skips it and counts it)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordingError(f"not JSON ({exc})") from None
    if type(record) is not dict:
        raise RecordingError(f"not a JSON object but {type(record).__name__}")
    if HEADER_KEY in record:
        raise RecordingError("a second recording header (recordings concatenated?)")
    if "line" in record:
        if type(record["line"]) is not str:
            raise RecordingError(f"line is not a string: {_short(record['line'])}")
        raw = record["line"].encode("utf-8", "surrogateescape")
    elif "line_b64" in record:
        try:
            raw = base64.b64decode(record["line_b64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise RecordingError(f"line_b64 is not base64: {_short(record['line_b64'])}") from exc
    else:
        raise RecordingError("neither line nor line_b64")
    source = record.get("source")
    if type(source) is not str or not source:
        raise RecordingError(f"no source (a non-empty string), got {_short(source)}")
    stream = record.get("stream", "stdout")
    if type(stream) is not str:
        raise RecordingError(f"stream is not a string: {_short(stream)}")
    envelope = Envelope(
        source=source,
        stream=stream,
        origin_ns=_int_or_none("origin_ns", record.get("origin_ns")),
        source_seq=_int_or_none("source_seq", record.get("source_seq")),
        unterminated=record.get("unterminated", False) is True,
    )
    return raw, envelope


def _int_or_none(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise RecordingError(f"{key} is not an integer: {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_header(line: bytes) -> None:
    """Refuse a header whose format version this version cannot read."""
    header = orjson.loads(line)
    version = header.get(HEADER_KEY)
    if type(version) is not int or version != FORMAT_VERSION:
        raise RecordingError(
            f"unsupported recording format version {version!r} (supported: {FORMAT_VERSION}); "
            "was it written by a newer pytest-livecluster?"
        )


def is_header(line: bytes) -> bool:
    """Whether ``line`` is a recording's header line."""
    if HEADER_KEY.encode() not in line:
        return False
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return type(header) is dict and HEADER_KEY in header


def header_line() -> bytes:
    from .._version import __version__

    header = {
        HEADER_KEY: FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "writer": f"pytest-livecluster {__version__}",
    }
    return orjson.dumps(header) + b"\n"


class Recorder:
    """A :class:`~pytest_livecluster.core.state.State` sink that writes a recording.

    ``Recorder(path)`` opens the file and writes the header; use it as the
    state's ``sink``; :meth:`close` flushes and closes (also as a context manager).
    """

    def __init__(self, path: str | Path | IO[bytes]) -> None:
        self._lock = threading.Lock()
        if isinstance(path, str | Path):
            self.path: Path | None = Path(path)
            try:
                self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise RecordingError(f"cannot write the recording {str(path)!r}: {exc}") from exc
            self._owned = True
        else:
            self.path, self._file, self._owned = None, path, False
        self.lines = 0
        self._file.write(header_line())
        # On disk at once: a run killed before its first line still leaves a recording.
        self._file.flush()

    def __call__(self, seq: int, recv_ns: int, envelope: Envelope, raw: bytes) -> None:
        data = encode_record(seq, recv_ns, envelope, raw)
        with self._lock:
            self._file.write(data)
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.flush()
            if self._owned:
                self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(stream: IO[bytes], limit: int | None = None) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, terminated)`` splitting on ``\\n`` only.

    With ``limit``, a line longer than that is never held whole: its first
    ``limit + 1`` bytes are yielded (so whoever reads it can still tell it
    was too long, and count it) and the rest is read through and dropped.
    """
    if isinstance(stream, io.TextIOBase):  # pragma: no cover - callers pass binary streams
        raise TypeError("a binary stream is needed")
    while True:
        line = stream.readline() if limit is None else stream.readline(limit + 1)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1], True
        elif limit is not None and len(line) > limit:
            yield line, _skip_rest_of_line(stream)
        else:
            yield line, False


def _skip_rest_of_line(stream: IO[bytes]) -> bool:
    """Read to the end of the current line; whether it ended with a newline."""
    while True:
        chunk = stream.readline(1 << 16)
        if not chunk:
            return False
        if chunk.endswith(b"\n"):
            return True
