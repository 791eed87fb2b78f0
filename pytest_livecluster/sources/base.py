"""The interface every source implements.

A source follows one place the cluster logs to (a Docker engine, a ``/logs``
endpoint, a recording, the simulated cluster) and hands each raw line, with
its :class:`~pytest_livecluster.ingest.Envelope`, to an ``emit`` callable. It
never touches the state: the collector owns that.

A source runs in a thread of its own: :meth:`Source.run` blocks until the
source is exhausted (a recording) or :meth:`Source.close` is called from
another thread (a live source). What happens along the way is kept in
:attr:`Source.health`, which the collector and the report read.
"""

from __future__ import annotations

import abc
import builtins
import collections
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..ingest import Envelope

__all__ = ["Emit", "Source", "SourceHealth", "SourceOptions"]

Emit = Callable[[bytes, Envelope], object]
"""Takes one raw line (without its newline) and where it came from."""

STATES: Final = ("starting", "attached", "reconnecting", "finished", "failed", "closed")


@dataclass
class SourceHealth:
    """What one source has done so far. Written by the source's own thread."""

    source: str
    state: str = "starting"
    attached: int = 0
    lines: int = 0
    bytes: int = 0
    rejected: int = 0
    reconnects: int = 0
    gaps: int = 0
    last_line_ns: int | None = None
    started_ns: int = field(default_factory=time.time_ns)
    errors: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))
    error_count: int = 0

    def line(self, raw: builtins.bytes) -> None:
        self.lines += 1
        self.bytes += len(raw)
        self.last_line_ns = time.time_ns()

    def error(self, message: str) -> None:
        self.error_count += 1
        self.errors.append(message)

    def silent_for(self, now_ns: int | None = None) -> float:
        """Seconds since the last line (or since the start, before any line)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        return (now_ns - (self.last_line_ns or self.started_ns)) / 1e9

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "state": self.state,
            "attached": self.attached,
            "lines": self.lines,
            "bytes": self.bytes,
            "rejected": self.rejected,
            "reconnects": self.reconnects,
            "gaps": self.gaps,
            "last_line_ns": self.last_line_ns,
            "silent_for_s": round(self.silent_for(), 3),
            "errors": self.error_count,
            "last_errors": list(self.errors)[-5:],
        }


@dataclass(frozen=True)
class SourceOptions:
    """Settings that sources of several kinds share; the plugin fills them from ini/CLI.

    ``http_headers`` values of the form ``env:NAME`` are read from the
    environment when the request is made, so secrets stay off command lines.
    """

    http_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    http_ca: str | None = None
    http_read_timeout: float = 30.0
    reconnect_max_wait: float = 5.0
    max_line_bytes: int = 1024 * 1024


class Source(abc.ABC):
    """One place the cluster logs to."""

    #: ``True`` for a source that ends by itself (a recording).
    finite: bool = False

    def __init__(self, source_id: str) -> None:
        self.id = source_id
        self.health = SourceHealth(source_id)
        self._closed = threading.Event()

    @abc.abstractmethod
    def run(self, emit: Emit) -> None:
        """Follow the source, calling ``emit`` for each line, until done or closed.

        Raises :class:`~pytest_livecluster.exceptions.SourceError` when the
        source fails for good.
        """

    def caught_up(self, quiet: float) -> bool:
        """Whether the source has read the backlog it found when it attached.

        Start-up waits for this before the first test. A source that can tell
        (a ``/logs`` server's ``Log-Last-Seq``, Docker's timestamps) says so as
        soon as it has; this default counts the backlog as read once no line
        arrived for ``quiet`` seconds, which a source that never pauses never
        reaches. A source that ended or failed has nothing more to read.
        """
        health = self.health
        if health.state in ("finished", "closed", "failed"):
            return True
        if health.state == "starting":
            return False
        return health.silent_for() >= quiet

    def close(self) -> None:
        """Ask :meth:`run` to return soon. Safe from any thread; idempotent."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
