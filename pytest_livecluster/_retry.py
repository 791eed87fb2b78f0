"""Retries, backoff and deadlines: one policy, on tenacity, for every source and sender.

Owner of: which failures are worth another try (HTTP statuses, httpx errors),
how long to wait between attempts, and when to give up. Sources, alert
delivery and the simulated cluster use these; none writes its own loop.

- :func:`retrying` is "do this until it works": a :class:`tenacity.Retrying`
  that retries :class:`Retryable` (or what ``retry_if`` accepts) and re-raises
  the last failure when it gives up, never tenacity's ``RetryError``.
- :func:`wait_until` is "poll until this is true", with the same pacing.
- :class:`Backoff` paces a loop that only ends when it is closed (a source's
  reconnects), starting again from the first wait after a healthy spell.
- :class:`Deadline` is a moment on the monotonic clock, for code that hands a
  time limit on to several calls.

All of them wait ``first_wait`` after the first failure, doubling up to
``max_wait`` (plus up to ``jitter``, so many clients do not come back in step).
A budget is spent on the monotonic clock; the last wait is cut to its end, so
one last attempt falls on the deadline instead of being given up early. A
``closed`` event stops retrying and cuts a wait short. Sleep and clock are
injectable, as in tenacity's own tests, so a test records the waits instead of
taking them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import tenacity

__all__ = [
    "RETRYABLE_STATUS",
    "Backoff",
    "Clock",
    "Deadline",
    "Retryable",
    "Sleep",
    "retryable_http_error",
    "retryable_status",
    "retrying",
    "wait_until",
]

Clock = Callable[[], float]
"""Seconds on a monotonic clock (``time.monotonic``)."""
Sleep = Callable[[float], object]
"""Waits that many seconds (``time.sleep``); a test passes ``intervals.append``."""

#: Statuses that say "try again later"; every 5xx is retryable too.
RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


def retryable_status(status: int) -> bool:
    """Whether a response with ``status`` is worth another try."""
    return status >= 500 or status in RETRYABLE_STATUS


def retryable_http_error(exc: BaseException) -> bool:
    """Whether an httpx error is worth another try: the connection failed (refused,
    dropped, timed out, cut mid-body), not the request, so a new one may work.
    """
    # Imported here so that core, which must not import httpx, can use this module.
    import httpx

    return isinstance(
        exc,
        (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            httpx.ProxyError,
            httpx.DecodingError,
        ),
    )


class Retryable(Exception):
    """This attempt failed in a way worth another try; ``reason`` says how."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Deadline:
    """The moment ``seconds`` from now on a monotonic clock."""

    __slots__ = ("_at", "_clock")

    def __init__(self, seconds: float, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self._at - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self._at

    def __repr__(self) -> str:
        return f"<Deadline in {self.remaining():.3f} s>"


def retrying(
    *,
    first_wait: float,
    max_wait: float,
    budget: float | Deadline | None = None,
    closed: threading.Event | None = None,
    jitter: float = 0.0,
    retry_if: Callable[[BaseException], bool] | None = None,
    sleep: Sleep | None = None,
    clock: Clock = time.monotonic,
) -> tenacity.Retrying:
    """A :class:`tenacity.Retrying` for one call: ``retrying(...)(fn, *args)``.

    It retries an exception for which ``retry_if`` is true (by default a
    :class:`Retryable`); any other propagates at once. It stops once
    ``budget`` is spent (seconds from this call, or a :class:`Deadline` the
    caller also uses) or ``closed`` is set, checked after every failed
    attempt, and then re-raises the last failure.
    A set ``closed`` also ends a wait early; the attempt after it still runs,
    so an attempt that must not should check ``closed`` first.
    """
    deadline = (
        budget if budget is None or isinstance(budget, Deadline) else Deadline(budget, clock=clock)
    )
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(retry_if or _is_retryable),
        wait=_Waits(first_wait, max_wait, jitter),
        stop=_stop(deadline, closed),
        sleep=_sleeper(deadline, closed, sleep),
        reraise=True,
    )


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float,
    closed: threading.Event | None = None,
    sleep: Sleep | None = None,
    clock: Clock = time.monotonic,
) -> bool:
    """Check ``predicate`` every ``interval`` s: True once it is, False after
    ``timeout`` s (it is checked once more at the end) or once ``closed`` is set.

    An exception from ``predicate`` propagates at once.
    """
    deadline = Deadline(timeout, clock=clock)
    polling = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda ok: not ok),
        wait=_Waits(interval, interval),
        stop=_stop(deadline, closed),
        sleep=_sleeper(deadline, closed, sleep),
        retry_error_callback=lambda state: False,
    )
    return bool(polling(predicate))


class Backoff:
    """Paces a loop that retries until ``closed`` is set, such as a source's reconnects.

    :meth:`pause` waits ``first_wait``, doubling up to ``max_wait`` (plus up to
    ``jitter``), as :func:`retrying` does; :meth:`reset` starts again from
    ``first_wait``, once a connection proved healthy.
    """

    def __init__(
        self,
        closed: threading.Event,
        max_wait: float,
        *,
        first_wait: float = 0.1,
        jitter: float = 0.05,
        sleep: Sleep | None = None,
    ) -> None:
        self._closed = closed
        self._waits = _Waits(first_wait, max_wait, jitter)
        self._sleep = sleep
        self._attempt = 0

    def reset(self) -> None:
        self._attempt = 0

    def pause(self) -> bool:
        """Wait before the next attempt; False (at once, if already) when closed."""
        if self._closed.is_set():
            return False
        self._attempt += 1
        delay = self._waits.delay(self._attempt)
        if self._sleep is None:
            return not self._closed.wait(delay)
        self._sleep(delay)
        return not self._closed.is_set()


# -- tenacity strategies -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Waits:
    """``first`` after the first failure, doubling after each one up to ``cap``, plus jitter."""

    first: float
    cap: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not self.first > 0:
            raise ValueError(
                f"the first wait must be a positive number of seconds, not {self.first!r}"
            )

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (from 1)."""
        # A cap below the first wait (0 included) would retry a failing peer in a
        # tight loop, burning CPU on both ends, so the cap is at least the first wait.
        wait = min(self.first * 2.0 ** min(attempt - 1, 64), max(self.cap, self.first))
        return wait + random.uniform(0.0, self.jitter) if self.jitter > 0 else wait

    def __call__(self, state: tenacity.RetryCallState) -> float:
        return self.delay(state.attempt_number)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, Retryable)


def _stop(
    deadline: Deadline | None, closed: threading.Event | None
) -> Callable[[tenacity.RetryCallState], bool]:
    def stop(state: tenacity.RetryCallState) -> bool:
        spent = deadline is not None and deadline.expired
        return spent or (closed is not None and closed.is_set())

    return stop


def _sleeper(
    deadline: Deadline | None, closed: threading.Event | None, sleep: Sleep | None
) -> Callable[[float], None]:
    def pause(seconds: float) -> None:
        if deadline is not None:
            seconds = min(seconds, deadline.remaining())
        if sleep is not None:
            sleep(seconds)
        elif closed is not None:
            closed.wait(seconds)
        else:
            time.sleep(seconds)

    return pause
