"""Runs sources, each in a thread of its own, into one state.

The collector is the only writer of the state it feeds. A source that fails is
kept as a :class:`SourceFailure` the user sees, never a silently dead thread.
:meth:`Collector.close` asks every source to stop and joins its thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..exceptions import SourceError
from .ingest import Envelope
from .source import Source, SourceHealth, SourceState
from .state import State

__all__ = ["Collector", "SourceFailure"]

LineHook = Callable[[bytes, Envelope, bool], object]


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
        self._failures: list[SourceFailure] = []
        self._lock = threading.Lock()
        self._activity = threading.Condition(self._lock)
        self._lines = 0
        self._started = False

    # -- life cycle ------------------------------------------------------------

    def start(self) -> Collector:
        if self._started:
            raise RuntimeError("the collector is already started")
        self._started = True
        for source in self.sources:
            thread = threading.Thread(
                target=self._run, args=(source,), name=f"livecluster {source.id}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def close(self, timeout: float = 2.0) -> list[str]:
        """Stop every source and join its thread; return the ids of any that did not end."""
        for source in self.sources:
            source.close()
        deadline = time.monotonic() + timeout
        stuck = []
        for source, thread in zip(self.sources, self._threads, strict=True):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                stuck.append(source.id)
        return stuck

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, source: Source) -> None:
        emit = self._emitter(source.health)
        try:
            source.run(emit)
        except SourceError as exc:
            self._fail(source, str(exc), "")
        except Exception as exc:  # a bug in a source must still reach the user
            detail = "".join(traceback.format_exception(exc))
            self._fail(source, f"{type(exc).__name__}: {exc}", detail)
        finally:
            with self._lock:
                self._activity.notify_all()

    def _fail(self, source: Source, message: str, detail: str) -> None:
        source.health.state = SourceState.FAILED
        source.health.error(message)
        with self._lock:
            self._failures.append(SourceFailure(source.id, message, detail))

    def _emitter(self, health: SourceHealth) -> Callable[[bytes, Envelope], None]:
        ingest = self.state.ingest
        hook = self._on_line
        lock = self._lock
        activity = self._activity

        def emit(raw: bytes, envelope: Envelope) -> None:
            accepted = ingest(raw, envelope)
            if not accepted:
                health.rejected += 1
            if hook is not None:
                hook(raw, envelope, accepted)
            with lock:
                self._lines += 1
                activity.notify_all()

        return emit

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

    def endpoints(self) -> dict[str, str]:
        """Every service address the sources know (see :meth:`Source.endpoints`)."""
        found: dict[str, str] = {}
        for source in self.sources:
            found.update(source.endpoints())
        return found

    def health(self) -> list[SourceHealth]:
        return [source.health for source in self.sources]

    @property
    def lines(self) -> int:
        """Lines handed to the state so far, by every source."""
        with self._lock:
            return self._lines

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait until every source's thread has ended; return whether they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not self.running

    def wait_caught_up(self, quiet: float, timeout: float | None = None) -> list[str]:
        """Wait until every source has read the backlog it found; the ids of those that
        have not when ``timeout`` passes (empty: all have).

        See :meth:`Source.caught_up`: a source that can tell is done as soon as
        it has read what was there when it attached; the others once they have
        been silent for ``quiet`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            behind = [s.id for s in self.sources if not s.caught_up(quiet)]
            if not behind or not self.running:
                return behind if self.running else []
            if deadline is not None and time.monotonic() >= deadline:
                return behind
            time.sleep(0.02)

    def wait_idle(self, quiet: float, timeout: float | None = None) -> bool:
        """Wait until no line has arrived for ``quiet`` seconds, or every source ended.

        Quiet is counted only once no source is still starting, so a slow start
        is not taken for an idle cluster. Returns ``False`` if ``timeout`` passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running and any(h.state is SourceState.STARTING for h in self.health()):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        with self._lock:
            while True:
                seen = self._lines
                now = time.monotonic()
                wait = quiet if deadline is None else min(quiet, deadline - now)
                if wait <= 0:
                    return False
                self._activity.wait(wait)
                if not any(t.is_alive() for t in self._threads):
                    return True
                if self._lines == seen and time.monotonic() - now >= quiet:
                    return True
