"""The interface every source implements (layer: sources).

A source follows one place the cluster logs to (a Docker engine, a ``/logs``
endpoint, a recording, the simulated cluster) and hands each raw line, with
its :class:`~pytest_livecluster.core.ingest.Envelope`, to an ``emit`` callable. It
never touches the state: the collector owns that.

A source runs in a thread of its own: :meth:`Source.run` blocks until the
source is exhausted (a recording) or :meth:`Source.close` is called from
another thread (a live source). What happens along the way is kept in
:attr:`Source.health`, which the collector and the report read.

Everything the collector and the readers use is declared here, with a
default a simple source keeps: :meth:`Source.caught_up` (start-up waits for
it), :attr:`Source.failures` (parts a running source cannot read),
:meth:`Source.labels` (labels of where lines come from) and
:meth:`Source.endpoints` (services the source knows the address of, such as
the simulated orchestrator's control API).
"""

from __future__ import annotations

import abc
import builtins
import collections
import enum
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .ingest import Envelope

__all__ = [
    "Emit",
    "Feed",
    "Followed",
    "Source",
    "SourceHealth",
    "SourceOptions",
    "SourceState",
]

Emit = Callable[[bytes, Envelope], object]
"""Takes one raw line (without its newline) and where it came from."""


class Followed(Protocol):
    """A source started with :meth:`Feed.follow`."""

    def join(self, timeout: float | None = None) -> None:
        """Wait (up to ``timeout`` seconds) until its :meth:`Source.run` has returned."""

    def is_alive(self) -> bool:
        """Whether its :meth:`Source.run` is still going."""


class Feed(Protocol):
    """What :meth:`Source.run` gets: call it with each line.

    The collector's feed also has ``batch(lines)``, taking a list of ``(raw,
    envelope)`` at once, in order (one lock on the state, one wake-up): a source
    that reads many lines at a time looks for it with ``getattr`` and falls back
    to one call per line for any other ``emit``.

    A source that finds more sources to follow (the simulated cluster starts
    processes that each serve ``/logs``) hands each to :meth:`follow`; the
    collector runs it in a thread of its own into the same state, counts its
    failures under the parent and closes it with the parent. No source runs
    another source's thread itself.
    """

    def __call__(self, raw: bytes, envelope: Envelope, /) -> object:
        """Take one raw line (without its newline) and where it came from."""

    def follow(self, source: Source, /) -> Followed:
        """Run ``source`` beside the one this feed belongs to."""


class SourceState(enum.StrEnum):
    """Where a source is in its life; a string, so reports and JSON show the word."""

    STARTING = "starting"  #: not attached yet
    ATTACHED = "attached"  #: reading lines
    RECONNECTING = "reconnecting"  #: lost its connection, trying again
    FINISHED = "finished"  #: read everything there was (a recording)
    FAILED = "failed"  #: stopped with an error
    CLOSED = "closed"  #: stopped because it was asked to

    @property
    def ended(self) -> bool:
        """Whether the source reads nothing more."""
        return self in (SourceState.FINISHED, SourceState.FAILED, SourceState.CLOSED)


@dataclass
class SourceHealth:
    """What one source has done so far. Written by the source's own thread."""

    source: str
    state: SourceState = SourceState.STARTING
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
    #: The engine the source reads (a Docker or Swarm source's address), for grouping.
    engine: str | None = None
    #: What the source follows, for the report (a swarm's services and their tasks).
    detail: list[str] = field(default_factory=list)

    def line(self, raw: builtins.bytes) -> None:
        self.lines += 1
        self.bytes += len(raw)
        self.last_line_ns = time.time_ns()

    def lines_read(self, count: int, size: int) -> None:
        """``count`` lines of ``size`` bytes in all, read just now."""
        self.lines += count
        self.bytes += size
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
            "state": str(self.state),
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
            "engine": self.engine,
            "detail": list(self.detail),
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
        self._health = SourceHealth(source_id)
        self._closed = threading.Event()

    @abc.abstractmethod
    def run(self, emit: Feed) -> None:
        """Follow the source, calling ``emit`` for each line, until done or closed.

        A source that only reads lines may take any :data:`Emit`; one that
        starts more sources hands them to ``emit.follow``. ``emit`` is called
        from one thread at a time (a source reading on several threads
        serializes its calls, as the Docker source does).

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
        if health.state.ended:
            return True
        if health.state is SourceState.STARTING:
            return False
        return health.silent_for() >= quiet

    @property
    def failures(self) -> Sequence[str]:
        """Parts of the source it cannot read while it goes on (none by default).

        A Docker container whose logging driver cannot be read is one: the
        collector reports each, so they are never a silent 0 lines.
        """
        return ()

    def labels(self) -> Mapping[str, Mapping[str, str]]:
        """Labels of where lines come from, keyed by the envelope source (none by default)."""
        return {}

    def host_of(self, origin: str) -> str | None:
        """The host behind an envelope source this source made, or None if not its own.

        A Docker source's lines carry ``docker:CONTAINER``; their host is the
        container. The default knows no host: the envelope source stands for it.
        """
        return None

    def qualify(self, sources: Sequence[Source]) -> None:  # noqa: B027 (a hook: no-op default)
        """Called once with every source of the run (this one included), before any
        runs: a source whose envelope sources could collide with another's makes its
        own unique here (the Docker source names its engine). Nothing by default."""

    def endpoints(self) -> Mapping[str, str]:
        """Services this source knows the address of, by name (none by default).

        The simulated cluster names its ``orchestrator`` control API here, so
        the methodology's ``orchestrator`` fixture can find it without knowing
        which kind of source started it.
        """
        return {}

    @property
    def health(self) -> SourceHealth:
        """What the source has done so far, as of now (see :meth:`current_health`)."""
        return self.current_health()

    def current_health(self) -> SourceHealth:
        """The health record; a source that sums its followers' health refreshes it here."""
        return self._health

    def close(self) -> None:
        """Ask :meth:`run` to return soon. Safe from any thread; idempotent."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
