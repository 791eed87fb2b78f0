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
from .state import State

__all__ = [
    "RETRY_ON",
    "ConsistentlyFailed",
    "EventuallyFailed",
    "Failure",
    "TestTiming",
    "consistently",
    "eventually",
    "eventually_attempts",
]

#: Exceptions that mean "not yet" rather than "the check is broken".
RETRY_ON: tuple[type[BaseException], ...] = (AssertionError, LookupError, TypeError)

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
) -> Any:
    """Re-run ``check`` until it passes; return its value, or raise EventuallyFailed."""
    __tracebackhide__ = True
    run = _Run(state, timeout, tick, clock, retry_on=retry_on)
    try:
        return run.retrying()(check)
    except tenacity.RetryError:
        raise run.failed(what or describe(check), explain) from None


def eventually_attempts(
    state: State,
    *,
    timeout: float,
    tick: float = 1.0,
    what: str | None = None,
    explain: Explain | None = None,
    retry_on: tuple[type[BaseException], ...] = RETRY_ON,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[tenacity.AttemptManager]:
    """The inline form: ``for attempt in ...: with attempt: assert ...``."""
    __tracebackhide__ = True
    run = _Run(state, timeout, tick, clock, retry_on=retry_on)
    try:
        yield from run.retrying(inline=True)
    except tenacity.RetryError:
        raise run.failed(what or "the block", explain) from None


def consistently(
    state: State,
    check: Check,
    *,
    window: float,
    tick: float = 1.0,
    what: str | None = None,
    explain: Callable[[int, int], str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Re-run ``check`` on every change for ``window`` seconds; raise at the first violation.

    ``explain(good_version, bad_version)`` may describe the shards that arrived
    between the last passing check and the failing one.
    """
    __tracebackhide__ = True
    started = clock()
    good = -1
    checks = 0
    while True:
        version = state.version
        checks += 1
        try:
            result = check()
        except RETRY_ON as exc:
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            reason = "" if result else f"returned {result!r}"
        elapsed = clock() - started
        if reason:
            lines = [
                f"consistently: {what or describe(check)} stopped holding after "
                f"{elapsed:.3f} s of {window:g} s (check {checks}): {reason}"
            ]
            if good < 0:
                lines[0] += "; it did not hold at the start"
            extra = explain(good, version) if explain is not None else ""
            if extra:
                lines += ["", extra]
            raise ConsistentlyFailed(
                _escape.terminal("\n".join(lines)), at=elapsed, version=version, cause=reason
            )
        good = version
        if elapsed >= window:
            return
        state.wait_for_change(version, min(tick, window - elapsed))
