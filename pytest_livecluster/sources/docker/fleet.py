"""The containers one source follows, and everything its threads share, under one lock.

The discovery thread and one follower thread per container all read and write the
container records, the set of live threads, the health counters and the failures;
keeping them in one object with one lock (and the rules for using it) lets
discovery and followers be written as if each were alone. The engine and the stall
check, which both kinds of thread use, are reached through it too. Lines are emitted
under a second lock, one at a time, so the collector sees each line whole and in the
order the followers delivered them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from ..._retry import Backoff
from ...core.ingest import Envelope
from ...core.source import Emit, SourceHealth
from .container import Container
from .engine import Engine
from .rotation import StallCheck

__all__ = ["Fleet", "hand_over"]


def hand_over(emit: Emit, batch: list[tuple[bytes, Envelope]], health: SourceHealth) -> None:
    """Emit ``batch`` in order (caller holds its source's emit lock) and count it.

    A collector's feed takes the whole batch at once (one lock on the state,
    one wake-up); any other ``emit`` is called line by line.
    """
    size = 0
    for line, _ in batch:
        size += len(line)
    many = getattr(emit, "batch", None)
    if many is not None:
        many(batch)
    else:
        for line, envelope in batch:
            emit(line, envelope)
    health.lines_read(len(batch), size)


class Fleet:
    """The shared state of one :class:`~.source.DockerSource`.

    ``lock`` guards ``containers``, ``threads``, ``failures``, ``labels`` and the
    health counters. ``close`` is the source's own, for a follower that fails;
    ``die_grace`` is the :class:`~.rotation.StallCheck`'s.
    """

    def __init__(
        self,
        engine: Engine,
        health: SourceHealth,
        closed: threading.Event,
        close: Callable[[], None],
        *,
        die_grace: float,
    ) -> None:
        self.engine = engine
        self.health = health
        self._closed = closed
        self._close = close
        self.lock = threading.Lock()
        self._emit_lock = threading.Lock()  # emit and line counts, one line at a time
        self.emit: Emit | None = None
        self.containers: dict[str, Container] = {}
        self.threads: set[threading.Thread] = set()
        self.failures: list[str] = []
        self.labels: dict[str, dict[str, str]] = {}
        self.fatal: BaseException | None = None
        self.listed = False  # the containers found at attach have their followers
        self.stalls = StallCheck(self, die_grace)
        #: Appended to every envelope source when the run follows several engines.
        self.origin_suffix = ""

    def origin(self, name: str) -> str:
        """The envelope source of container ``name``'s lines."""
        return f"docker:{name}{self.origin_suffix}"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def backoff(self, max_wait: float) -> Backoff:
        """A fresh backoff for one thread's reconnects, cut short when the source closes."""
        return Backoff(self._closed, max_wait)

    # -- records ----------------------------------------------------------------------------

    def track(self, cid: str, name: str) -> Container:
        """The record of container ``cid``, made if there is none."""
        with self.lock:
            container = self.containers.get(cid)
            if container is None or container.gone:
                # A destroyed id never comes back, but a reconcile may mark one gone early.
                container = self.containers[cid] = container or Container(cid, name)
                container.gone = False
            return container

    def forget(self, container: Container) -> None:
        """Drop a removed container's record once no follower holds it (lock held)."""
        if container.gone and container.owner is None:
            self.containers.pop(container.id, None)

    def set_labels(self, container: Container, labels: dict[str, str]) -> None:
        with self.lock:
            self.labels[self.origin(container.name)] = labels

    # -- health -----------------------------------------------------------------------------

    def note(self, message: str) -> None:
        with self.lock:
            self.health.error(message)

    def count_reconnect(self) -> None:
        with self.lock:
            self.health.reconnects += 1

    def fail(self, container: Container, message: str) -> None:
        """A container whose lines cannot be collected: a failure of the session."""
        with self.lock:
            container.unreadable = True
            self.failures.append(message)
            self.health.error(message)

    def fatal_error(self, exc: BaseException, message: str) -> None:
        """A follower failed (a bug, or emit() raising): end the whole source."""
        self.fatal = exc
        self.note(message)
        self._close()

    # -- lines ------------------------------------------------------------------------------

    def emit_lines(self, batch: list[tuple[bytes, Envelope]]) -> None:
        """Emit ``batch`` in order, holding the source's emit for the whole of it."""
        emit = self.emit
        assert emit is not None  # set by run() before any follower starts
        with self._emit_lock:
            hand_over(emit, batch, self.health)

    # -- the end ----------------------------------------------------------------------------

    def join(self, others: Iterable[threading.Thread], timeout: float) -> list[str]:
        """Join the followers and ``others`` within ``timeout`` in all; names of those still
        running."""
        deadline = time.monotonic() + timeout
        with self.lock:
            threads = [*self.threads, *others]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive()]
