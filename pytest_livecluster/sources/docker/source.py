"""``DockerSource``: the source interface over the parts of this package.

The registry builds one from a ``docker:`` spec and the collector runs it: :meth:`run`
connects to the engine (:mod:`.engine`) and runs the discovery (:mod:`.discovery`) in
the calling thread; discovery starts one follower thread (:mod:`.follower`) per
container; they share a :class:`~.fleet.Fleet`. What the collector and the start-up
ask of a source (``failures``, ``labels()``, ``host_of()``, ``caught_up(quiet)``,
``health``) is answered here from that shared state. :meth:`close` shuts the sockets
of open responses down from the closing thread, which wakes every blocked read at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from ...core.source import Emit, Source, SourceOptions, SourceState
from ...exceptions import SourceError
from .container import Container
from .discovery import Discovery
from .engine import Engine
from .errors import Closed
from .fleet import Fleet
from .follower import RESUME_MARGIN_NS, Follower
from .rotation import DIE_GRACE_S
from .spec import DockerSpec, parse_spec

__all__ = ["DockerSource"]

JOIN_TIMEOUT_S: Final = 1.5


class DockerSource(Source):
    """Every container with one label on one Docker engine, including later ones.

    ``api_timeout`` bounds the engine's answer to the short requests (version, list,
    inspect) and the wait for a stream's headers; an open stream has no read timeout.
    ``die_grace_s`` is how long a follow may stay open after its container died before
    it is taken as stalled. ``resume_margin_ns`` is how far before the mark a resume
    starts.
    :attr:`failures` lists containers whose logs the engine refuses to serve.
    """

    def __init__(
        self,
        spec: DockerSpec | str,
        options: SourceOptions | None = None,
        *,
        api_timeout: float = 30.0,
        resume_margin_ns: int = RESUME_MARGIN_NS,
        die_grace_s: float = DIE_GRACE_S,
    ) -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        super().__init__(str(self.spec))
        self._options = options or SourceOptions()
        self._margin = resume_margin_ns
        self._engine = Engine(self.spec, api_timeout)
        self.health.engine = self._engine.url
        self._fleet = Fleet(
            self._engine, self.health, self._closed, self.close, die_grace=die_grace_s
        )
        self._discovery = Discovery(
            self._fleet, self.spec.label, self._follow, max_wait=self._options.reconnect_max_wait
        )

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> DockerSource:
        return cls(parse_spec(spec), options)

    @property
    def failures(self) -> tuple[str, ...]:
        """Why some containers' lines cannot be collected; the collector fails the session."""
        with self._fleet.lock:
            return tuple(self._fleet.failures)

    def labels(self) -> dict[str, dict[str, str]]:
        """Each followed container's labels, keyed by the source id its lines carry."""
        with self._fleet.lock:
            return {origin: dict(labels) for origin, labels in self._fleet.labels.items()}

    def host_of(self, origin: str) -> str | None:
        """The container behind ``docker:NAME``, if it is one this source follows or followed
        (``NAME@ENGINE`` when the run follows several engines)."""
        fleet = self._fleet
        suffix = fleet.origin_suffix
        name = origin.removeprefix("docker:")
        if name == origin or not name.endswith(suffix):
            return None
        name = name[: len(name) - len(suffix)]
        with fleet.lock:
            ours = origin in fleet.labels or any(c.name == name for c in fleet.containers.values())
        return f"{name}{suffix}" if ours else None

    def qualify(self, sources: Sequence[Source]) -> None:
        """Among sources of several Docker engines, name the engine in each envelope source
        (``docker:NAME@ENGINE``): container names need not be unique across engines."""
        engines = {s.spec.engine for s in sources if isinstance(s, DockerSource)}
        if len(engines) > 1:
            self._fleet.origin_suffix = f"@{self.spec.engine}"

    def caught_up(self, quiet: float) -> bool:
        """Whether every followed container's backlog is read; cheap, from any thread.

        A container's backlog is read once a line stamped at or after the follower's
        first logs request has been delivered (the engine sends a log in order, so
        everything before it was backlog), once nothing came for ``quiet`` seconds
        since the request was answered or the last line, or once its follower ended.
        Never before the first list of containers has been reconciled.
        """
        if self.closed or self.health.state is SourceState.FAILED:
            return True
        if not self._fleet.listed:
            return False
        now = time.monotonic()
        with self._fleet.lock:
            return all(c.caught_up(now, quiet) for c in self._fleet.containers.values())

    def close(self) -> None:
        super().close()
        self._engine.cut_all()

    def run(self, emit: Emit) -> None:
        self._fleet.emit = emit
        try:
            if self.closed:
                return
            try:
                self._engine.connect()
            except Closed:
                return
            self._discovery.run()
            fatal = self._fleet.fatal
            if fatal is not None:
                raise SourceError(f"{self.id}: {fatal}") from fatal
        except BaseException:
            self.health.state = SourceState.FAILED
            raise
        finally:
            self._stop()

    def _follow(self, container: Container) -> None:
        """A follower thread's body."""
        Follower(self._fleet, container, self._options, self._margin).run()

    def _stop(self) -> None:
        self._closed.set()
        self._engine.cut_all()
        timers = self._fleet.stalls.cancel_all()
        stuck = self._fleet.join(timers, JOIN_TIMEOUT_S)
        if stuck:
            self._fleet.note(f"followers still busy at close: {', '.join(stuck)}")
        self._engine.close()
        with self._fleet.lock:
            self.health.attached = 0
        if self.health.state is not SourceState.FAILED:
            self.health.state = SourceState.CLOSED
