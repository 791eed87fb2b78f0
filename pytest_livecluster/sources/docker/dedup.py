"""Line identity across reconnects: which lines a ``since`` resume delivers a second time.

A resume asks the engine for everything from a timestamp on, and ``since`` is
inclusive, so the lines at the resume timestamp come again; resuming any later could
lose a line, so the replay is taken and dropped here instead. Two things make this
harder than "drop what is not newer":

* the engine timestamps stdout and stderr in separate goroutines, so merged, the
  timestamps go backwards; within one stream, they never do. The mark is kept per
  stream.
* identical lines at one timestamp are genuine repeats (a loop printing the same
  line), not replays. At the mark, lines are counted by content, per connection.

A line's identity is therefore (stream, timestamp, content, occurrence), with the
content hashed so that a mark's memory does not grow with long lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from hashlib import blake2b
from typing import Any

from .frames import LogMessage

__all__ = ["Deduplicator"]


class _Mark:
    """One stream's high-water mark.

    Lines at ``ts``: how many of each were admitted in all (``counted``), and how
    many of each the current connection has delivered (``seen``); admitted ==
    seen except while a replay catches up. Most marks only ever hold one line
    (timestamps are nanoseconds), so the multisets, and the line's hash, are
    made only when a second line at ``ts`` or a replay needs them.
    """

    __slots__ = ("_counted", "_line", "_replayed", "_seen", "admitted", "dropped", "ts")

    def __init__(self, ts: int, line: bytes) -> None:
        self.admitted = 1
        self.dropped = 0
        self.move(ts, line)

    def move(self, ts: int, line: bytes) -> None:
        """A line above the mark: it is the only one at the new mark."""
        self.ts = ts
        self._line: bytes | None = line
        self._replayed = False
        self._counted: Counter[bytes] | None = None
        self._seen: Counter[bytes] | None = None

    def multisets(self) -> tuple[Counter[bytes], Counter[bytes]]:
        if self._counted is None or self._seen is None:
            assert self._line is not None
            digest = _digest(self._line)
            self._line = None
            self._counted = Counter((digest,))
            self._seen = Counter() if self._replayed else Counter((digest,))
        return self._counted, self._seen

    def begin_replay(self) -> None:
        if self._seen is None:
            self._replayed = True
        else:
            self._seen.clear()

    @property
    def ties(self) -> int:
        return 1 if self._counted is None else self._counted.total()


class Deduplicator:
    """Drops the lines a ``since`` resume delivers again, for one container.

    Per stream it keeps the highest timestamp admitted (the mark) and a
    multiset of the hashes of the lines admitted at that timestamp. A line
    above the mark is new; below it, already seen (within one stream the
    engine's timestamps never go backwards); at the mark, new only once the
    current connection has delivered it more often than it was admitted, so
    identical lines that share a timestamp all survive, while the replay of
    the lines at the resume timestamp is dropped.

    ``system`` messages are always admitted and not tracked: they are the
    engine's errors about this request, not replayed log content.

    ``streams`` are the streams the request asks for (pass ``("stdout",)`` for
    a TTY). A stream with no line yet has no mark to resume from, and the
    marks of the others do not bound it: the engine stamps a line before it
    stores it, so a stdout line stamped just before a stderr line can be sent
    just after it, and a partial line discarded at a cut keeps the timestamp
    of its first piece, however long ago that was.
    """

    def __init__(self, *, streams: Iterable[str] = ("stdout", "stderr")) -> None:
        self.streams = tuple(streams)
        self._marks: dict[str, _Mark] = {}

    def admit(self, msg: LogMessage) -> bool:
        """True if ``msg`` is new, and record it; False if it was delivered before."""
        if msg.stream == "system":
            return True
        ts = msg.ts_ns
        mark = self._marks.get(msg.stream)
        if mark is None:
            self._marks[msg.stream] = _Mark(ts, msg.line)
            return True
        if ts > mark.ts:
            mark.move(ts, msg.line)
            mark.admitted += 1
            return True
        if ts < mark.ts:
            mark.dropped += 1
            return False
        counted, seen_at = mark.multisets()
        digest = _digest(msg.line)
        seen = seen_at[digest] + 1
        seen_at[digest] = seen
        if seen > counted[digest]:
            counted[digest] = seen
            mark.admitted += 1
            return True
        mark.dropped += 1
        return False

    def resume_since_ns(self) -> int | None:
        """Where to resume (send it with :func:`~.timestamps.format_since`): the lowest
        stream's mark, so that every stream's lines from its own mark on are sent again.

        None while one of ``streams`` has had no line (so also before the first line): then
        repeat the original request, with its own ``since`` if it had one. That replays more,
        and the replay is dropped here; resuming from the other streams' marks could skip the
        silent stream's first line.
        """
        if not self._marks or any(stream not in self._marks for stream in self.streams):
            return None
        return min(mark.ts for mark in self._marks.values())

    def begin_replay(self) -> None:
        """Call when a new connection starts, before feeding its lines: it will deliver the
        lines at each mark again, so counting what the connection delivered starts over."""
        for mark in self._marks.values():
            mark.begin_replay()

    def state(self) -> dict[str, Any]:
        """Per stream: the mark, lines admitted at it, and lines admitted and dropped in all."""
        return {
            stream: {
                "mark_ns": mark.ts,
                "ties": mark.ties,
                "admitted": mark.admitted,
                "dropped": mark.dropped,
            }
            for stream, mark in sorted(self._marks.items())
        }


def _digest(line: bytes) -> bytes:
    return blake2b(line, digest_size=16).digest()
