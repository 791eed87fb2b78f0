"""Session invariants: ``always``, ``never`` and ``sometimes``.

An invariant is a :class:`~.windows.Window` that stays open from its
registration until it is closed (by the plugin: when the fixture that
registered it is torn down, else at the end of the session, or at the end of
each watch round). ``always`` is broken by the first state its check does not
hold in, ``never`` by the first state its check is truthy in; ``sometimes``
is satisfied by the first state its check is truthy in and fails if it was
never satisfied when closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _escape
from .state import State
from .waiting import describe, event_lines
from .windows import Event, Mode, Window

__all__ = ["Invariant", "Verdict"]


class Verdict:
    """The outcomes an invariant can have."""

    HOLDING = "holding"  # open, nothing decided it yet
    KEPT = "kept"
    BROKEN = "broken"
    SATISFIED = "satisfied"
    NEVER_SATISFIED = "never satisfied"
    ERROR = "error"

    FAILED = frozenset({BROKEN, NEVER_SATISFIED, ERROR})


@dataclass(eq=False)
class Invariant:
    """One registered invariant and, once decided or closed, its verdict."""

    mode: Mode
    what: str
    window: Window
    registered_by: str = "the session"
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None

    @classmethod
    def open(
        cls,
        state: State,
        check: Callable[[], Any],
        mode: Mode,
        *,
        what: str | None = None,
        registered_by: str = "the session",
    ) -> Invariant:
        window = Window(check, mode)
        invariant = cls(mode, what or describe(check), window, registered_by)
        window.open(state)
        return invariant

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def close(self) -> None:
        """Stop evaluating; the verdict is final from now on. Idempotent."""
        if self.closed_at is None:
            self.window.close()
            self.closed_at = time.time()

    @property
    def event(self) -> Event | None:
        return self.window.event

    @property
    def verdict(self) -> str:
        window = self.window
        if window.error is not None:
            return Verdict.ERROR
        if self.mode == "sometimes":
            if window.event is not None:
                return Verdict.SATISFIED
            return Verdict.NEVER_SATISFIED if self.closed else Verdict.HOLDING
        if window.event is not None:
            return Verdict.BROKEN
        return Verdict.KEPT if self.closed else Verdict.HOLDING

    @property
    def failed(self) -> bool:
        return self.verdict in Verdict.FAILED

    @property
    def name(self) -> str:
        """``always: no service errors``: the mode and what it checks."""
        return f"{self.mode}: {self.what}"

    def headline(self) -> str:
        """The verdict in one line (not yet escaped)."""
        verdict = self.verdict
        event = self.window.event
        checks = f"{self.window.checks} check{'s' if self.window.checks != 1 else ''}"
        if verdict == Verdict.ERROR:
            exc = self.window.error
            return f"{self.name}: the check raised {type(exc).__name__}: {exc}"
        if verdict == Verdict.BROKEN and event is not None:
            when = (
                "at registration"
                if event.check == 1 and event.entry is None
                else (f"after {event.at:.3f} s")
            )
            return f"{self.name}: broken {when} (check {event.check}): {event.reason}"
        if verdict == Verdict.SATISFIED and event is not None:
            return f"{self.name}: satisfied after {event.at:.3f} s (check {event.check})"
        if verdict == Verdict.NEVER_SATISFIED:
            return f"{self.name}: never satisfied ({checks})"
        return f"{self.name}: {verdict} ({checks})"

    def details(self) -> str:
        """The headline, the shard that decided it and what the check read (escaped)."""
        lines = [self.headline(), f"registered by {self.registered_by}"]
        event = self.window.event
        if event is not None:
            title = (
                "the shard that satisfied it"
                if self.mode == "sometimes"
                else "the shard that broke it"
            )
            lines += event_lines(event, title)
        return _escape.terminal("\n".join(lines))

    def as_dict(self) -> dict[str, Any]:
        event = self.window.event
        return {
            "name": self.name,
            "mode": self.mode,
            "what": self.what,
            "verdict": self.verdict,
            "failed": self.failed,
            "registered_by": self.registered_by,
            "checks": self.window.checks,
            "event": event.as_dict() if event is not None else None,
            "error": None
            if self.window.error is None
            else f"{type(self.window.error).__name__}: {self.window.error}",
        }
