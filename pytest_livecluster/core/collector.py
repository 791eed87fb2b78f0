"""Runs sources, each in a thread of its own, into one state.

The collector is the only writer of the state it feeds, and the only runner
of sources: a source that starts more sources (the simulated cluster's
processes) hands them to its feed's ``follow``, and the collector runs them
too. A source that fails is kept as a :class:`SourceFailure` the user sees,
never a silently dead thread. :meth:`Collector.close` asks every source to
stop and joins its thread.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._retry import Deadline, wait_until
from ..exceptions import SourceError
from .ingest import Envelope
from .source import Source, SourceHealth, SourceState
from .state import State

__all__ = ["Collector", "SourceFailure"]

LineHook = Callable[[bytes, Envelope, bool], object]

# How often a wait re-reads the sources' health (it is cheap, and nothing signals it).
_POLL = 0.02


@dataclass(frozen=True)
class SourceFailure:
    """A source that stopped with an error."""

    source: str
    message: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class Collector:
    """Feeds ``state`` from ``sources``.

    :param on_line: called after each line is ingested with ``(raw, envelope,
        accepted)``, from the source's thread (``livecluster tail`` uses it).
    """

    def __init__(
        self, state: State, sources: Sequence[Source], *, on_line: LineHook | None = None
    ) -> None:
        self.state = state
        self.sources = list(sources)
        self._on_line = on_line
        self._threads: list[threading.Thread] = []
        self._children: list[tuple[Source, Source, threading.Thread]] = []
        self._failures: list[SourceFailure] = []
        self._lock = threading.Lock()
        self._activity = threading.Condition(self._lock)
        self._feeds: list[_Feed] = []
        self._idle_waiters = 0
        self._started = False
        self._closing = False

    # -- life cycle ------------------------------------------------------------

    def start(self) -> Collector:
        if self._started:
            raise RuntimeError("the collector is already started")
        self._started = True
        for source in self.sources:
            self._threads.append(self._thread(source, None))
        return self

    def close(self, timeout: float = 2.0) -> list[str]:
        """Stop every source and join its thread; return the ids of any that did not end."""
        with self._lock:
            self._closing = True
            children = list(self._children)
        for source in self.sources:
            source.close()
        for _, child, _ in children:
            child.close()
        deadline = Deadline(timeout)
        stuck = []
        running = [(s, t) for s, t in zip(self.sources, self._threads, strict=True)]
        running += [(child, thread) for _, child, thread in children]
        for source, thread in running:
            thread.join(deadline.remaining())
            if thread.is_alive():
                stuck.append(source.id)
        return stuck

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _thread(self, source: Source, parent: Source | None) -> threading.Thread:
        thread = threading.Thread(
            target=self._run,
            args=(source, parent),
            name=f"livecluster {source.id}",
            daemon=True,
        )
        thread.start()
        return thread

    def _follow(self, parent: Source, child: Source) -> threading.Thread:
        with self._lock:
            closing = self._closing
        if closing:
            child.close()
        thread = self._thread(child, parent)
        with self._lock:
            self._children.append((parent, child, thread))
        return thread

    def _run(self, source: Source, parent: Source | None) -> None:
        feed = _Feed(self, source)
        try:
            source.run(feed)
        except SourceError as exc:
            self._fail(source, parent, str(exc), "")
        except Exception as exc:  # a bug in a source must still reach the user
            detail = "".join(traceback.format_exception(exc))
            self._fail(source, parent, f"{type(exc).__name__}: {exc}", detail)
        finally:
            with self._lock:
                self._activity.notify_all()

    def _fail(self, source: Source, parent: Source | None, message: str, detail: str) -> None:
        source.health.state = SourceState.FAILED
        source.health.error(message)
        owner = source
        if parent is not None:
            # A followed source fails its parent: the parent stops, and says why.
            owner = parent
            message = f"{parent.id}: following {source.id} failed: {message}"
            parent.health.error(message)
            parent.close()
        with self._lock:
            self._failures.append(SourceFailure(owner.id, message, detail))

    # -- reading ---------------------------------------------------------------

    @property
    def failures(self) -> list[SourceFailure]:
        """Sources that stopped with an error, and parts a running source cannot read.

        What a source cannot read while it goes on (:attr:`Source.failures`, a
        Docker container whose logging driver cannot be read) counts here too,
        so it is never a silent 0 lines.
        """
        with self._lock:
            failures = list(self._failures)
        for source in self.sources:
            failures.extend(SourceFailure(source.id, message) for message in source.failures)
        return failures

    def origin_labels(self) -> dict[str, dict[str, str]]:
        """Labels of where lines come from (Docker containers), keyed by envelope source."""
        found: dict[str, dict[str, str]] = {}
        for source in self.sources:
            found.update((origin, dict(labels)) for origin, labels in source.labels().items())
        return found

    def host_of(self, origin: str) -> str:
        """The host behind an envelope source, as the source that made it says."""
        for source in self.sources:
            host = source.host_of(origin)
            if host is not None:
                return host
        return origin

    def endpoints(self) -> dict[str, str]:
        """Every service address the sources know (see :meth:`Source.endpoints`)."""
        found: dict[str, str] = {}
        for source in self.sources:
            found.update(source.endpoints())
        return found

    def health(self) -> list[SourceHealth]:
        """Each source's health as of now (a parent's includes what it follows)."""
        return [source.health for source in self.sources]

    @property
    def lines(self) -> int:
        """Lines handed to the state so far, by every source."""
        with self._lock:
            return self._lines_now()

    def _lines_now(self) -> int:
        return sum(feed.lines for feed in self._feeds)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._all_threads())

    def _all_threads(self) -> list[threading.Thread]:
        with self._lock:
            return [*self._threads, *(thread for _, _, thread in self._children)]

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait until every source's thread has ended; return whether they all did."""
        deadline = Deadline(math.inf if timeout is None else timeout)
        for thread in self._all_threads():
            thread.join(None if timeout is None else deadline.remaining())
        return not self.running

    def wait_caught_up(self, quiet: float, timeout: float | None = None) -> list[str]:
        """Wait until every source has read the backlog it found; the ids of those that
        have not when ``timeout`` passes (empty: all have).

        See :meth:`Source.caught_up`: a source that can tell is done as soon as
        it has read what was there when it attached; the others once they have
        been silent for ``quiet`` seconds.
        """

        def behind() -> list[str]:
            return [s.id for s in self.sources if not s.caught_up(quiet)] if self.running else []

        wait_until(lambda: not behind(), timeout=_forever(timeout), interval=_POLL)
        return behind()

    def wait_idle(self, quiet: float, timeout: float | None = None) -> bool:
        """Wait until no line has arrived for ``quiet`` seconds, or every source ended.

        Quiet is counted only once no source is still starting, so a slow start
        is not taken for an idle cluster. Returns ``False`` if ``timeout`` passed first.
        """
        deadline = Deadline(_forever(timeout))
        started = wait_until(
            lambda: (
                not self.running or not any(h.state is SourceState.STARTING for h in self.health())
            ),
            timeout=deadline.remaining(),
            interval=_POLL,
        )
        if not started:
            return False
        with self._lock:
            self._idle_waiters += 1
            try:
                while True:
                    seen = self._lines_now()
                    now = time.monotonic()
                    wait = min(quiet, deadline.remaining())
                    if wait <= 0:
                        return False
                    self._activity.wait(wait)
                    threads = [*self._threads, *(c[2] for c in self._children)]
                    if not any(t.is_alive() for t in threads):
                        return True
                    if self._lines_now() == seen and time.monotonic() - now >= quiet:
                        return True
            finally:
                self._idle_waiters -= 1


def _forever(timeout: float | None) -> float:
    return math.inf if timeout is None else timeout


class _Feed:
    """What the collector hands a source's :meth:`~Source.run`: ingest, and ``follow``."""

    __slots__ = ("_collector", "_health", "_hook", "_ingest", "_ingest_batch", "_source", "lines")

    def __init__(self, collector: Collector, source: Source) -> None:
        self._collector = collector
        self._source = source
        self._health = source.health
        self._ingest = collector.state.ingest
        self._ingest_batch = collector.state.ingest_batch
        self._hook = collector._on_line
        #: Lines this feed handed to the state. A source calls its feed from one thread
        #: at a time, so the count needs no lock; the collector sums the feeds'.
        self.lines = 0
        with collector._lock:
            collector._feeds.append(self)

    def __call__(self, raw: bytes, envelope: Envelope, /) -> None:
        accepted = self._ingest(raw, envelope)
        if not accepted:
            self._health.rejected += 1
        if self._hook is not None:
            self._hook(raw, envelope, accepted)
        self.lines += 1
        collector = self._collector
        if collector._idle_waiters:  # no lock or wake-up per line when nobody waits
            with collector._lock:
                collector._activity.notify_all()

    def batch(self, lines: list[tuple[bytes, Envelope]], /) -> None:
        """Take several lines at once, in order (see :meth:`State.ingest_batch`)."""
        if self._hook is not None:
            for raw, envelope in lines:
                self(raw, envelope)
            return
        accepted = self._ingest_batch(lines)
        self._health.rejected += len(lines) - accepted
        self.lines += len(lines)
        collector = self._collector
        if collector._idle_waiters:
            with collector._lock:
                collector._activity.notify_all()

    def follow(self, source: Source, /) -> threading.Thread:
        return self._collector._follow(self._source, source)
