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

__all__ = ["FORMAT_VERSION", "Recorder", "decode_record", "encode_record", "is_header"]

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
    """The raw line and envelope a recording line holds; RecordingError if it holds none."""
    try:
        record = orjson.loads(line)
        if type(record) is not dict:
            raise TypeError("not an object")
        if "line" in record:
            raw = str(record["line"]).encode("utf-8", "surrogateescape")
        else:
            raw = base64.b64decode(record["line_b64"], validate=True)
        envelope = Envelope(
            source=str(record["source"]),
            stream=str(record.get("stream", "stdout")),
            origin_ns=_int_or_none(record.get("origin_ns")),
            source_seq=_int_or_none(record.get("source_seq")),
            unterminated=bool(record.get("unterminated", False)),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise RecordingError(f"not a recording line ({exc}): {line[:120]!r}") from exc
    return raw, envelope


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


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


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, terminated)`` splitting on ``\\n`` only."""
    if isinstance(stream, io.TextIOBase):  # pragma: no cover - callers pass binary streams
        raise TypeError("a binary stream is needed")
    for line in stream:
        if line.endswith(b"\n"):
            yield line[:-1], True
        else:
            yield line, False
