"""Waiting on the state: ``eventually`` and ``consistently``.

Both re-run a check whenever the state changes (woken by ingest, not by a poll
interval) and also on a slow ``tick`` for conditions that depend on time
alone. A check passes when it returns a truthy value without raising; an
``AssertionError`` (or a ``LookupError``/``TypeError`` from reading a part of
the state that is not there yet) counts as "not yet". Any other exception is a
bug in the check and propagates at once.

``eventually`` is built on tenacity (its ``sleep`` waits for the next change);
tenacity's ``RetryError`` never reaches the user: a timeout raises
:class:`EventuallyFailed`, an :class:`AssertionError` whose message says what
was awaited, for how long, how many checks ran, the first and the last failure,
and whatever the ``explain`` hook adds (the plugin adds the diff of the watched
subtree and the shards that last touched it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import tenacity

from .. import _escape
from ..exceptions import ConsistentlyFailed, EventuallyFailed, Failure
from .entry import describe_entry
from .state import State
from .windows import RETRY_ON, Event, Window

__all__ = [
    "RETRY_ON",
    "ConsistentlyFailed",
    "EventuallyFailed",
    "Failure",
    "TestTiming",
    "consistently",
    "event_lines",
    "eventually",
    "eventually_attempts",
]

Check = Callable[[], Any]
Explain = Callable[[], str]


@dataclass(frozen=True)
class TestTiming:
    """The waiting defaults of one test (a marker may change them)."""

    __test__ = False  # not a test class, whatever pytest's name rules say

    timeout: float
    window: float
    tick: float


def describe(check: Check | None) -> str:
    """A short name for a check, for messages."""
    if check is None:
        return "the block"
    name = getattr(check, "__qualname__", None) or repr(check)
    code = getattr(check, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
    return name


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _failure_text(outcome: tenacity.Future) -> str:
    exc = outcome.exception()
    if exc is None:
        return f"returned {outcome.result()!r}"
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


@dataclass
class _Run:
    """What one ``eventually`` has seen so far."""

    state: State
    timeout: float
    tick: float
    clock: Callable[[], float]
    started: float = 0.0
    seen_version: int = 0
    checks: int = 0
    first: Failure | None = None
    last: Failure | None = None
    retry_on: tuple[type[BaseException], ...] = RETRY_ON

    def before(self, _: tenacity.RetryCallState) -> None:
        self.seen_version = self.state.version

    def after(self, retry_state: tenacity.RetryCallState) -> None:
        self.checks += 1
        outcome = retry_state.outcome
        assert outcome is not None
        failure = Failure(round(self.clock() - self.started, 3), _failure_text(outcome))
        if self.first is None:
            self.first = failure
        self.last = failure

    def sleep(self, seconds: float) -> None:
        remaining = self.started + self.timeout - self.clock()
        self.state.wait_for_change(self.seen_version, max(0.0, min(seconds, remaining)))

    def stop(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.clock() - self.started >= self.timeout

    def retrying(self, *, inline: bool = False) -> tenacity.Retrying:
        """A tenacity loop; ``inline`` blocks have no result, only exceptions."""
        self.started = self.clock()
        retry: tenacity.retry_base = tenacity.retry_if_exception_type(self.retry_on)
        if not inline:
            retry = retry | tenacity.retry_if_result(lambda result: not result)
        return tenacity.Retrying(
            sleep=self.sleep,
            stop=self.stop,
            wait=tenacity.wait_fixed(self.tick),
            retry=retry,
            before=self.before,
            after=self.after,
            reraise=False,
        )

    def not_too_early(self, what: str, at_least: float) -> None:
        """Raise if the check passed before ``at_least`` seconds."""
        __tracebackhide__ = True
        elapsed = self.clock() - self.started
        if at_least and elapsed < at_least:
            failure = Failure(round(elapsed, 3), f"passed after {elapsed:.3f} s")
            raise EventuallyFailed(
                _escape.terminal(
                    f"eventually: {what} passed after {elapsed:.3f} s, sooner than "
                    f"at_least={at_least:g} s ({self.checks} checks)"
                ),
                checks=self.checks,
                first=failure,
                last=failure,
            )

    def failed(self, what: str, explain: Explain | None) -> EventuallyFailed:
        lines = [
            f"eventually: {what} did not pass within {self.timeout:g} s "
            f"({self.checks} check{'s' if self.checks != 1 else ''})"
        ]
        if self.first is not None:
            lines.append(
                f"  first failure (at {self.first.at:.3f} s): {_indent(self.first.message)}"
            )
        if self.last is not None and self.last is not self.first:
            same = self.last.message == self.first.message if self.first else False
            why = "the same" if same else _indent(self.last.message)
            lines.append(f"  last failure (at {self.last.at:.3f} s): {why}")
        extra = explain() if explain is not None else ""
        if extra:
            lines += ["", extra]
        # pytest prints the message: state keys and values in it are the cluster's text.
        return EventuallyFailed(
            _escape.terminal("\n".join(lines)), checks=self.checks, first=self.first, last=self.last
        )


def eventually(
    state: State,
    check: Check,
    *,
    timeout: float,
    tick: float = 1.0,
    what: str | None = None,
    explain: Explain | None = None,
    retry_on: tuple[type[BaseException], ...] = RETRY_ON,
    clock: Callable[[], float] = time.monotonic,
    at_least: float = 0.0,
) -> Any:
    """Re-run ``check`` until it passes; return its value, or raise EventuallyFailed.

    With ``at_least``, a check that passes sooner than that many seconds after
    the wait began fails too (a cool-down that ended too early).
    """
    __tracebackhide__ = True
    _check_at_least(at_least, timeout)
    run = _Run(state, timeout, tick, clock, retry_on=retry_on)
    try:
        result = run.retrying()(check)
    except tenacity.RetryError:
        raise run.failed(what or describe(check), explain) from None
    run.not_too_early(what or describe(check), at_least)
    return result


def eventually_attempts(
    state: State,
    *,
    timeout: float,
    tick: float = 1.0,
    what: str | None = None,
    explain: Explain | None = None,
    retry_on: tuple[type[BaseException], ...] = RETRY_ON,
    clock: Callable[[], float] = time.monotonic,
    at_least: float = 0.0,
) -> Iterator[tenacity.AttemptManager]:
    """The inline form: ``for attempt in ...: with attempt: assert ...``."""
    __tracebackhide__ = True
    _check_at_least(at_least, timeout)
    run = _Run(state, timeout, tick, clock, retry_on=retry_on)
    try:
        yield from run.retrying(inline=True)
    except tenacity.RetryError:
        raise run.failed(what or "the block", explain) from None
    run.not_too_early(what or "the block", at_least)


def _check_at_least(at_least: float, timeout: float) -> None:
    if at_least >= timeout:
        raise ValueError(
            f"eventually: at_least ({at_least:g} s) must be shorter than the timeout "
            f"({timeout:g} s)"
        )


def consistently(
    state: State,
    check: Check,
    *,
    window: float,
    tick: float = 1.0,
    what: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Require ``check`` to hold after every accepted shard for ``window`` seconds.

    The check runs against the state after each shard (see :mod:`.windows`),
    and on a ``tick`` for what changes with time alone; the first state it
    does not hold in raises :class:`ConsistentlyFailed`, naming the shard.
    """
    __tracebackhide__ = True
    win = Window(check, "always", clock=clock).open(state)
    try:
        while not win.done:
            elapsed = clock() - win.opened
            if elapsed >= window:
                break
            version = state.version
            if state.wait_for_change(version, min(tick, window - elapsed)) == version:
                win.recheck()
    finally:
        win.close()
    if win.error is not None:
        raise win.error
    event = win.event
    if event is None or event.at > window:
        return
    lines = [
        f"consistently: {what or describe(check)} stopped holding after "
        f"{event.at:.3f} s of {window:g} s (check {event.check}): {event.reason}"
    ]
    if event.entry is None:
        lines[0] += (
            "; it did not hold at the start" if event.check == 1 else " (on a tick, no new shard)"
        )
    lines += event_lines(event, "the shard that broke it")
    raise ConsistentlyFailed(
        _escape.terminal("\n".join(lines)),
        at=event.at,
        version=state.version,
        cause=event.reason,
        shard=event.entry,
    )


def event_lines(event: Event, title: str) -> list[str]:
    """The shard and the values read that explain a window's event (not yet escaped)."""
    lines: list[str] = []
    if event.entry is not None:
        lines += ["", f"{title}:", f"  {describe_entry(event.entry)}"]
    if event.reads:
        lines += ["", "what it read:"]
        lines += [f"  {path} = {value}" for path, value in event.reads]
    return lines
