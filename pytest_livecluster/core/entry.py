"""One accepted line as the journal, projections and windows see it.

A :class:`JournalEntry` is an accepted line with its ingest number, arrival
time and :class:`~.ingest.Envelope`. :func:`touches` says whether a shard
wrote a path; a window uses it to skip shards that cannot change what its
check read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Sequence
from typing import Any, Final, NamedTuple

from .. import _escape
from .ingest import Envelope, Limits, parse_shard

__all__ = ["UNLIMITED", "JournalEntry", "describe_entry", "touches"]

MAX_SHARD_CHARS = 300

#: Limits no line exceeds: for lines already accepted once.
UNLIMITED: Final = Limits(max_line_bytes=1 << 62, max_depth=1 << 30)


def touches(shard: Any, path: Sequence[Hashable]) -> bool:
    """Whether ``shard`` wrote ``path``, something below it, or replaced an ancestor."""
    node: Any = shard
    for key in path:
        if type(node) is not dict:
            return True
        if key not in node:
            return False
        node = node[key]
    return True


class JournalEntry(NamedTuple):
    """One accepted line: its ingest number, arrival time, origin and text.

    A named tuple: made for every accepted shard while a projection or a
    window observes the state, so it must cost next to nothing.
    """

    seq: int
    recv_ns: int
    envelope: Envelope
    raw: bytes

    @property
    def shard(self) -> dict[str, Any]:
        """The shard, parsed again from the raw line (a fresh object)."""
        shard = parse_shard(self.raw, UNLIMITED)
        assert type(shard) is dict
        return shard

    @property
    def when(self) -> float:
        """When the line was written, in seconds since the epoch.

        The writer's own timestamp where the source has one, else the arrival time.
        """
        return (self.envelope.origin_ns or self.recv_ns) / 1e9

    def touches(self, path: Sequence[Hashable]) -> bool:
        """Whether this shard wrote ``path``, something below it, or replaced an ancestor."""
        return touches(self.shard, path)


def describe_entry(entry: JournalEntry) -> str:
    """One line about a journal entry: number, time, source, stream and text."""
    ns = entry.envelope.origin_ns or entry.recv_ns
    when = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    text = entry.raw.decode("utf-8", "replace")
    if len(text) > MAX_SHARD_CHARS:
        text = text[:MAX_SHARD_CHARS] + "..."
    line = f"#{entry.seq} {when}Z {entry.envelope.source} {entry.envelope.stream}: {text}"
    return _escape.terminal(line, one_line=True)
