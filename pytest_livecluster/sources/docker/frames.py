"""Decoding the body of Docker's ``GET /containers/{id}/logs`` into lines.

Wire format (Engine API 1.41, ``timestamps=1``; checked on Engine 20.10.24 with json-file):

* **Not a TTY** (``Config.Tty`` false): a sequence of frames. Each frame is an
  8-byte header ``[type, 0, 0, 0, size as u32 big-endian]`` and ``size`` bytes
  of payload. Type 1 is stdout, 2 is stderr, 3 is the engine's own error text
  (``Error grabbing logs: ...\\n``, written in-band and without a timestamp).
  A stdout or stderr payload is one log message: the timestamp in
  RFC3339Nano with exactly 9 digits, one space, then the text. The engine
  reads container output in 16 KiB pieces, so a longer line arrives as
  several frames; only the last one ends in ``\\n`` and *every* piece carries
  the first piece's timestamp (a line of exactly 16384 bytes ends with a piece
  holding nothing but the ``\\n``). Pieces of a stdout line and of a stderr line
  interleave freely. Output left without a newline when the container exits
  is stored as a piece that is never completed.
* **A TTY**: no frames and no stderr, just ``<ts> <text>\\r\\n`` messages
  back to back. The pieces of a long line are concatenated as
  ``<ts> AAAA<ts> BBBB\\r\\n``, and a piece boundary may fall between the
  ``\\r`` and the ``\\n``.

The body is decoded here rather than through docker-py because docker-py
drops the frame type (stdout, stderr and the engine's errors become one
undistinguished stream), yields TTY output one byte per item, and floors a
``since`` datetime to whole seconds, which replays a whole second of lines on
every reconnect. The timestamps are read by :mod:`.timestamps`; what a resume
delivers twice is dropped by :mod:`.dedup`.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from ...exceptions import SourceError
from .timestamps import TS_WINDOW, parse_timestamp

__all__ = ["DockerFramingError", "LogMessage", "LogStreamDecoder"]

STREAMS: Final = {1: "stdout", 2: "stderr", 3: "system"}
_HEADER: Final = 8
_HEADER_STRUCT: Final = struct.Struct(">B3sI")
_new: Final = tuple.__new__


class DockerFramingError(SourceError, ValueError):
    """The body is not the multiplexed stream it should be (a TTY container decoded as
    non-TTY, a proxy that altered the body, or an engine speaking another format)."""


class LogMessage(NamedTuple):
    """One decoded line (a named tuple: one is made for every line read).

    ``stream`` is ``stdout``, ``stderr`` or ``system`` (the engine's in-band
    error text); ``ts_ns`` the engine's timestamp (a reassembled long line has
    its first piece's); ``line`` the text without timestamp and newline (and
    without the ``\\r`` before it, for a TTY). ``unterminated`` marks output
    the container left without a newline when it stopped; ``truncated``
    counts the bytes dropped past ``max_line_bytes``.
    """

    stream: str
    ts_ns: int
    line: bytes
    unterminated: bool = False
    truncated: int = 0


class _Pending:
    """The part of one stream's current line received so far."""

    __slots__ = ("buf", "dropped", "ts")

    def __init__(self) -> None:
        self.ts: int | None = None
        self.buf = bytearray()
        self.dropped = 0


class LogStreamDecoder:
    """Decodes the body of ``GET /containers/{id}/logs?timestamps=1`` fed in arbitrary chunks.

    One decoder per HTTP response. Take ``tty`` from the container's
    ``Config.Tty``, not from the bytes: a TTY body decoded with ``tty=False``
    raises :class:`DockerFramingError` at once, but the reverse turns frame
    headers into text silently.
    A line longer than ``max_line_bytes`` keeps its first ``max_line_bytes``
    bytes; the rest is counted, never buffered.
    """

    def __init__(self, *, tty: bool, max_line_bytes: int = 1024 * 1024) -> None:
        if type(max_line_bytes) is not int or max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be a positive integer, got {max_line_bytes!r}")
        self.tty = tty
        self.max_line_bytes = max_line_bytes
        self._last_ts = 0
        self._reset()

    def _reset(self) -> None:
        # Bytes that cannot be interpreted yet: part of a frame header, the start of a message
        # whose timestamp is incomplete, or (TTY) what may be the start of a repeated "<ts> ".
        self._stash = b""
        self._pending = {"stdout": _Pending(), "stderr": _Pending(), "system": _Pending()}
        self._stream_ts: dict[str, int] = {}
        # Non-TTY: the frame being read.
        self._remaining = 0
        self._kind = "stdout"
        self._in_frame = False
        self._head = False
        self._frame_ts = 0
        self._frame_ts_parsed = False
        # Body offset of the first byte of the data being decoded, for error messages.
        self._offset = 0
        # TTY: the current line's timestamp (None at the start of a line) and its "<ts> ".
        self._tty_ts: int | None = None
        self._marker = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes held back, waiting for the rest of their line or frame."""
        return len(self._stash) + sum(len(p.buf) for p in self._pending.values())

    def feed(self, chunk: bytes) -> list[LogMessage]:
        """Complete lines (and system messages) found so far, in arrival order."""
        out: list[LogMessage] = []
        if chunk:
            data = self._stash + bytes(chunk) if self._stash else bytes(chunk)
            self._stash = b""
            base = self._offset
            self._offset = base + len(data)
            if self.tty:
                self._tty_feed(data, out, final=False)
            else:
                self._frames_feed(data, out, base)
            self._offset -= len(self._stash)
        return out

    def finish(self, *, exited: bool) -> list[LogMessage]:
        """End of the body.

        ``exited=True`` (the container stopped, so nothing more will follow):
        each stream's partial line is delivered with ``unterminated=True``.
        ``exited=False`` (the connection broke): partial lines are discarded,
        since a ``since`` resume sends all their pieces again, and ``[]`` is
        returned.
        """
        out: list[LogMessage] = []
        if exited:
            data, self._stash = self._stash, b""
            if self.tty:
                if data:
                    self._tty_feed(data, out, final=True)
            elif self._pending["system"].ts is not None:
                # The body ended inside a system frame. (The stash is dropped: it holds part of
                # a header, or the start of a frame cut before its timestamp was complete.)
                self._flush("system", out, unterminated=True)
            for stream in ("stdout", "stderr"):
                if self._pending[stream].ts is not None:
                    self._flush(stream, out, unterminated=True)
        self._reset()
        return out

    # -- shared -----------------------------------------------------------------------------

    def _ts_or_none(self, token: bytes) -> int | None:
        try:
            return parse_timestamp(token)
        except ValueError:
            return None

    def _fallback_ts(self, stream: str) -> int:
        # A message without a timestamp takes its own stream's previous one: another stream's
        # may be older (the streams are timestamped independently), which would make the
        # deduplicator drop the line as already seen.
        return self._stream_ts.get(stream, self._last_ts)

    def _append(self, stream: str, ts: int, data: bytes) -> None:
        pending = self._pending[stream]
        if pending.ts is None:
            pending.ts = ts
        room = self.max_line_bytes - len(pending.buf)
        if len(data) <= room:
            pending.buf += data
        else:
            if room > 0:
                pending.buf += data[:room]
            pending.dropped += len(data) - max(room, 0)

    def _flush(self, stream: str, out: list[LogMessage], *, unterminated: bool) -> None:
        pending = self._pending[stream]
        ts = pending.ts if pending.ts is not None else self._fallback_ts(stream)
        out.append(LogMessage(stream, ts, bytes(pending.buf), unterminated, pending.dropped))
        self._stream_ts[stream] = ts
        pending.ts = None
        pending.buf = bytearray()
        pending.dropped = 0

    def _emit(self, stream: str, ts: int, text: bytes, out: list[LogMessage]) -> None:
        """One complete piece of text ending a line (``text`` has no newline)."""
        pending = self._pending[stream]
        if pending.ts is None and len(text) <= self.max_line_bytes:
            out.append(LogMessage(stream, ts, text))
            self._stream_ts[stream] = ts
            return
        self._append(stream, ts, text)
        self._flush(stream, out, unterminated=False)

    # -- multiplexed frames -----------------------------------------------------------------

    def _frames_feed(self, data: bytes, out: list[LogMessage], base: int) -> None:
        n = len(data)
        pos = 0
        max_line = self.max_line_bytes
        pending = self._pending
        stream_ts = self._stream_ts
        find = data.find
        append = out.append
        unpack = _HEADER_STRUCT.unpack_from
        while pos < n:
            if not self._in_frame:
                if n - pos < _HEADER:
                    self._stash = data[pos:]
                    return
                kind, padding, size = unpack(data, pos)
                stream = STREAMS.get(kind)
                if stream is None or padding != b"\0\0\0":
                    raise DockerFramingError(
                        f"not a multiplexed log stream: bad frame header "
                        f"{data[pos : pos + _HEADER]!r} at body offset {base + pos} (expected "
                        "type 1, 2 or 3, then three zero bytes, then a 32-bit size); is the "
                        "container a TTY, to be decoded with tty=True?"
                    )
                pos += _HEADER
                end = pos + size
                if end <= n and kind != 3:
                    # Fast path: a whole frame holding one complete line.
                    sp = find(b" ", pos, min(end, pos + TS_WINDOW))
                    if sp > pos and data[end - 1] == 0x0A and pending[stream].ts is None:
                        try:
                            ts = parse_timestamp(data[pos:sp])
                        except ValueError:
                            ts = -1
                        if ts >= 0 and find(b"\n", sp + 1, end - 1) < 0:
                            if end - sp - 2 <= max_line:
                                # tuple.__new__: a third of what the named tuple's own
                                # constructor costs, on every line of a backlog.
                                append(
                                    _new(LogMessage, (stream, ts, data[sp + 1 : end - 1], False, 0))
                                )
                            else:
                                text = data[sp + 1 : end - 1]
                                dropped = len(text) - max_line
                                append(LogMessage(stream, ts, text[:max_line], False, dropped))
                            stream_ts[stream] = self._last_ts = ts
                            pos = end
                            continue
                self._in_frame = True
                self._head = True
                self._kind = stream
                self._remaining = size
                if size == 0:
                    self._end_frame(out)
                    continue
            if self._head:
                avail = min(self._remaining, n - pos)
                window = min(self._remaining, TS_WINDOW)
                sp = data.find(b" ", pos, pos + min(avail, window))
                if sp < 0 and avail < window:
                    self._stash = data[pos:]
                    return
                self._head = False
                self._start_frame(data[pos:sp] if sp > pos else None)
                if sp > pos and self._frame_ts_parsed:
                    self._remaining -= sp + 1 - pos
                    pos = sp + 1
            take = min(self._remaining, n - pos)
            if take:
                self._frame_text(data[pos : pos + take], out)
                pos += take
                self._remaining -= take
            if self._remaining == 0:
                self._end_frame(out)

    def _start_frame(self, token: bytes | None) -> None:
        stream = self._kind
        ts = self._ts_or_none(token) if token is not None else None
        self._frame_ts_parsed = ts is not None
        if ts is None:
            if stream == "system":
                # The engine's errors carry no timestamp; they happen "now".
                self._frame_ts = self._last_ts
                return
            # Continue a pending line rather than guess where a new one began.
            pending_ts = self._pending[stream].ts
            self._frame_ts = pending_ts if pending_ts is not None else self._fallback_ts(stream)
            return
        self._last_ts = ts
        self._frame_ts = ts

    def _frame_text(self, text: bytes, out: list[LogMessage]) -> None:
        stream = self._kind
        if stream == "system":
            self._append(stream, self._frame_ts, text)
            return
        pending = self._pending[stream]
        if pending.ts is not None and self._frame_ts_parsed and pending.ts != self._frame_ts:
            # Every piece of a line carries its first piece's timestamp, so a piece with another
            # one starts a new line: the pending one was the last output of a previous run of the
            # container, left without a newline (seen when a restarted container is read again).
            self._flush(stream, out, unterminated=True)
        start = 0
        while True:
            nl = text.find(b"\n", start)
            if nl < 0:
                if start < len(text):
                    self._append(stream, self._frame_ts, text[start:])
                return
            self._emit(stream, self._frame_ts, text[start:nl], out)
            start = nl + 1

    def _end_frame(self, out: list[LogMessage]) -> None:
        self._in_frame = False
        self._head = False
        if self._kind == "system":
            pending = self._pending["system"]
            if pending.ts is not None:
                if not pending.dropped and pending.buf.endswith(b"\n"):
                    del pending.buf[-1]
                self._flush("system", out, unterminated=False)

    # -- TTY --------------------------------------------------------------------------------

    def _tty_feed(self, data: bytes, out: list[LogMessage], *, final: bool) -> None:
        n = len(data)
        pos = 0
        while pos < n:
            if self._tty_ts is None:
                window_end = min(n, pos + TS_WINDOW)
                nl = data.find(b"\n", pos, window_end)
                sp = data.find(b" ", pos, nl if nl >= 0 else window_end)
                if sp < 0 and nl < 0 and n - pos < TS_WINDOW and not final:
                    self._stash = data[pos:]
                    return
                ts = self._ts_or_none(data[pos:sp]) if sp > pos else None
                if ts is None:
                    self._tty_ts = self._fallback_ts("stdout")
                    self._marker = b""
                else:
                    self._tty_ts = self._last_ts = ts
                    self._marker = data[pos : sp + 1]
                    pos = sp + 1
            ts = self._tty_ts
            marker = self._marker
            nl = data.find(b"\n", pos)
            if nl >= 0:
                text = data[pos:nl]
                if marker and marker in text:
                    text = text.replace(marker, b"")
                if text.endswith(b"\r"):
                    text = text[:-1]
                self._emit("stdout", ts, text, out)
                self._tty_ts = None
                pos = nl + 1
                continue
            text = data[pos:]
            hold = b""
            if not final:
                # Keep back what may be the start of a repeated "<ts> " or a "\r" before "\n".
                for k in range(min(len(marker) - 1, len(text)), 0, -1):
                    if text.endswith(marker[:k]):
                        text, hold = text[:-k], text[-k:]
                        break
            if marker:
                text = text.replace(marker, b"")
            if not final and text.endswith(b"\r"):
                text, hold = text[:-1], b"\r" + hold
            if text or final:
                self._append("stdout", ts, text)
            self._stash = hold
            return
