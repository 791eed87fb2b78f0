"""What the source knows about one container, and what an inspect says of its current run.

A container keeps one record for as long as it exists, across its restarts, the
source's reconnects and the engine's restarts: the deduplicator in it is what lets a
resume neither lose nor repeat a line, so the record is never rebuilt while the
container lives. The discovery thread creates and retires records; the container's
follower thread reads and updates its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .dedup import Deduplicator
from .engine import Stream

__all__ = ["Container", "Run", "run_of"]

_NEVER_STARTED: Final = "0001-01-01T00:00:00Z"


@dataclass(eq=False)
class Container:
    """What the source knows about one container, across restarts and reconnects."""

    id: str
    name: str
    dedup: Deduplicator = field(default_factory=Deduplicator)
    tty: bool | None = None  # known from the first inspect
    # The follower thread that owns this container; ``kick``: a start came, look again.
    owner: threading.Thread | None = None
    kick: bool = False
    # (StartedAt, FinishedAt) of the last run read to its end: not to be read again.
    drained: tuple[str, str] | None = None
    gone: bool = False
    unreadable: bool = False
    # The follow being read, and the check that it ends after the container died.
    stream: Stream | None = None
    stall_check: threading.Timer | None = None
    # For caught_up(): when the first logs request was sent (wall clock, as the engine
    # stamps lines); the stamp and stream of the last line the engine held then (asked
    # with tail=1 before the first follow; ``exact`` once known); when a response or line
    # last came (monotonic), for an engine that could not say; and whether every line
    # that existed at the first request has been delivered.
    asked_ns: int | None = None
    backlog_end: tuple[int, str] | None = None
    exact: bool = False
    heard: float | None = None
    caught: bool = False

    def answered(self) -> None:
        """A logs request was answered: quiet is counted from now."""
        self.heard = time.monotonic()

    def delivered(self, ts_ns: int, stream: str) -> None:
        """A line of ``stream`` stamped ``ts_ns`` has been emitted."""
        self.heard = time.monotonic()
        if self.caught:
            return
        end = self.backlog_end
        # Within one stream the engine sends lines in the order it stamped them.
        if (end is not None and stream == end[1] and ts_ns >= end[0]) or (
            self.asked_ns is not None and ts_ns >= self.asked_ns
        ):
            self.caught = True

    def caught_up(self, now: float, quiet: float) -> bool:
        """Whether every line the container held at the first request is delivered.

        Known exactly when the engine said which line was its last (or the follower
        read the container to its end); only when it could not say is a ``quiet``
        pause after the last answer taken for the end of the backlog.
        """
        if self.caught:
            return True
        if self.exact or self.heard is None:
            return False
        return now - self.heard >= quiet


@dataclass(frozen=True, slots=True)
class Run:
    """What an inspect says about the container's current run."""

    running: bool
    started: str
    finished: str
    tty: bool
    driver: str
    options: tuple[tuple[str, str], ...]
    removing: bool

    @property
    def log_options(self) -> str:
        options = "".join(f", {k}={v}" for k, v in self.options)
        return f"logging driver {self.driver}{options}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.started, self.finished)

    @property
    def never_started(self) -> bool:
        return self.started.startswith(_NEVER_STARTED[:4])


def run_of(info: Mapping[str, Any]) -> Run:
    """The run described by ``GET /containers/{id}/json``."""
    state = info.get("State") or {}
    log_config = (info.get("HostConfig") or {}).get("LogConfig") or {}
    status = state.get("Status", "")
    return Run(
        # The engine reports Running during a restart policy's delay: that run is over.
        running=bool(state.get("Running")) and not state.get("Restarting"),
        started=str(state.get("StartedAt", _NEVER_STARTED)),
        finished=str(state.get("FinishedAt", "")),
        tty=bool((info.get("Config") or {}).get("Tty")),
        driver=str(log_config.get("Type", "?")),
        options=tuple(
            sorted((str(k), str(v)) for k, v in (log_config.get("Config") or {}).items())
        ),
        # A dead container stays: reading it tells whether its logs are lost.
        removing=status == "removing",
    )
