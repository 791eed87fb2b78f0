"""Windows: a check evaluated against the state after every accepted shard.

``consistently`` and the session invariants (``always``, ``never``,
``sometimes``) are windows. While a window is open the state evaluates its
check right after each accepted shard, with the lock held, so no state the
cluster passes through is missed: two shards that break and repair a
condition in the same millisecond are seen breaking it. The check's reads are
recorded (:func:`~.state.tracking_reads`): a shard that touches none of the
paths the check last read cannot change its result and is skipped, and a check
that read the whole state (``read``, ``snapshot``, ``total``, a view) is
evaluated on every shard.

What a window keeps is the first event that decides it: the violation of an
``always``/``never`` or the satisfaction of a ``sometimes``, with the shard
that caused it, the reason, and the values the check read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal

from . import jsonutil
from .entry import JournalEntry, touches
from .paths import format_path
from .state import Observer, State, tracking_reads

__all__ = ["RETRY_ON", "Event", "Mode", "Window"]

#: Exceptions that mean "does not hold (yet)" rather than "the check is broken".
RETRY_ON: tuple[type[BaseException], ...] = (AssertionError, LookupError, TypeError)

Mode = Literal["always", "never", "sometimes"]

_MAX_READS = 8
_MAX_VALUE_CHARS = 300


@dataclass(frozen=True)
class Event:
    """What decided a window: when, on which shard, why, and what the check read.

    ``entry`` is ``None`` when the check was evaluated at the window's start or
    on a tick rather than after a shard. ``reads`` pairs each path the check
    read with the value there (as short JSON text).
    """

    at: float
    check: int
    entry: JournalEntry | None
    reason: str
    reads: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "at": round(self.at, 3),
            "check": self.check,
            "reason": self.reason,
            "shard": None
            if entry is None
            else {
                "seq": entry.seq,
                "source": entry.envelope.source,
                "stream": entry.envelope.stream,
                "time": entry.when,
                "line": entry.raw.decode("utf-8", "replace")[:1000],
            },
            "read": dict(self.reads),
        }


class Window(Observer):
    """One check over a span of shards, decided by its first event."""

    is_window = True

    def __init__(
        self,
        check: Callable[[], Any],
        mode: Mode = "always",
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_on: tuple[type[BaseException], ...] = RETRY_ON,
    ) -> None:
        if mode not in ("always", "never", "sometimes"):
            raise ValueError(f"mode must be always, never or sometimes, got {mode!r}")
        self.check = check
        self.mode: Mode = mode
        self.clock = clock
        self.retry_on = retry_on
        self.opened = clock()
        self.checks = 0
        self.skipped = 0
        self.done = False
        self.event: Event | None = None
        self.error: BaseException | None = None
        self.state: State | None = None
        self._reads: set[tuple[Hashable, ...]] | None = None

    # -- called by the state, with its lock held --------------------------------------

    def apply(self, shard: dict[str, Any], entry: JournalEntry) -> None:
        if self.done:
            return
        reads = self._reads
        if reads is not None and not any(touches(shard, path) for path in reads):
            self.skipped += 1
            return
        self.evaluate(entry)

    def failed(self, exc: Exception) -> None:  # pragma: no cover - evaluate catches all
        self.error = exc
        self.done = True

    def evaluate(self, entry: JournalEntry | None) -> None:
        """Run the check once against the state as it is now (the lock is held)."""
        with tracking_reads(evaluating=True) as reads:
            try:
                result = self.check()
            except self.retry_on as exc:
                holds, reason = False, _exception_text(exc)
            except Exception as exc:  # a bug in the check: the waiting caller raises it
                self.checks += 1
                self.error = exc
                self.done = True
                return
            else:
                holds, reason = bool(result), f"returned {_repr(result)}"
        self.checks += 1
        self._reads = None if (() in reads or not reads) else reads
        decided = (
            not holds if self.mode == "always" else holds
        )  # never: truthy breaks it; sometimes: truthy satisfies it
        if decided:
            self.event = Event(
                at=self.clock() - self.opened,
                check=self.checks,
                entry=entry,
                reason=reason,
                reads=self._values(reads),
            )
            self.done = True

    def _values(self, reads: set[tuple[Hashable, ...]]) -> tuple[tuple[str, str], ...]:
        state = self.state
        if state is None:
            return ()
        out: list[tuple[str, str]] = []
        for path in sorted(reads, key=lambda p: [str(k) for k in p]):
            if not path:
                continue
            if len(out) == _MAX_READS:
                out.append(("...", f"{len(reads) - _MAX_READS} more paths"))
                break
            out.append((format_path(path), _short(state.get(*path))))
        return tuple(out)

    # -- for the caller ------------------------------------------------------------

    def open(self, state: State) -> Window:
        """Evaluate now, then after every accepted shard of ``state`` until :meth:`close`."""
        self.state = state
        self.opened = self.clock()
        state.open_window(self)
        return self

    def close(self) -> None:
        if self.state is not None:
            self.state.close_window(self)

    def recheck(self) -> None:
        """Evaluate now, outside any shard (for what changes with time alone)."""
        if self.state is not None:
            self.state.recheck(self)

    @property
    def reads_everything(self) -> bool:
        """Whether the last evaluation read the whole state (so every shard re-runs it)."""
        return self._reads is None


def _exception_text(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


def _short(value: Any) -> str:
    try:
        text = jsonutil.dumps_text(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."
