"""The one retry policy: waits, budgets, ``closed``, polling and reconnect pacing.

Sleep and clock are injected, as in tenacity's own tests: every case asserts
on the recorded waits and the number of attempts, never on elapsed time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest
import tenacity

from pytest_livecluster._retry import (
    RETRYABLE_STATUS,
    Backoff,
    Deadline,
    Retryable,
    retryable_http_error,
    retryable_status,
    retrying,
    wait_until,
)


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Flaky:
    """Raises ``error(n)`` on attempts 1..``failures``, then returns ``"ok"``."""

    def __init__(
        self, failures: int, error: Callable[[int], BaseException] = lambda n: Retryable(f"#{n}")
    ) -> None:
        self.failures = failures
        self.error = error
        self.attempts = 0

    def __call__(self) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error(self.attempts)
        return "ok"


class RecordingEvent(threading.Event):
    """An Event whose wait() is recorded and sets it, as a close() during the wait would."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.set()
        return True


# -- retrying ---------------------------------------------------------------------------


def test_waits_double_from_the_first_and_stop_at_the_cap() -> None:
    intervals: list[float] = []
    flaky = Flaky(failures=5)
    result = retrying(first_wait=0.1, max_wait=0.5, sleep=intervals.append)(flaky)
    assert result == "ok"
    assert flaky.attempts == 6
    assert intervals == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_a_cap_below_the_first_wait_never_makes_a_tight_loop() -> None:
    intervals: list[float] = []
    retrying(first_wait=0.1, max_wait=0.0, sleep=intervals.append)(Flaky(failures=3))
    assert intervals == pytest.approx([0.1, 0.1, 0.1])


def test_a_first_wait_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="first wait must be a positive number"):
        retrying(first_wait=0.0, max_wait=1.0)


def test_jitter_adds_at_most_its_amount() -> None:
    intervals: list[float] = []
    retrying(first_wait=0.1, max_wait=0.4, jitter=0.05, sleep=intervals.append)(Flaky(failures=4))
    for wait, base in zip(intervals, [0.1, 0.2, 0.4, 0.4], strict=True):
        assert base <= wait <= base + 0.05


def test_the_budget_stops_retrying_and_the_last_retryable_is_raised() -> None:
    clock = FakeClock()
    flaky = Flaky(failures=100)
    policy = retrying(first_wait=0.1, max_wait=0.4, budget=1.0, sleep=clock.sleep, clock=clock)
    with pytest.raises(Retryable) as info:
        policy(flaky)
    assert not isinstance(info.value, tenacity.RetryError)
    # 0.1 + 0.2 + 0.4 = 0.7 s; the next wait is cut to the 0.3 s left, so the
    # last attempt falls on the deadline instead of being given up.
    assert clock.slept == pytest.approx([0.1, 0.2, 0.4, 0.3])
    assert flaky.attempts == 5
    assert info.value.reason == "#5"


def test_a_budget_of_zero_allows_one_attempt() -> None:
    clock = FakeClock()
    flaky = Flaky(failures=1)
    with pytest.raises(Retryable, match="#1"):
        retrying(first_wait=0.1, max_wait=1.0, budget=0.0, sleep=clock.sleep, clock=clock)(flaky)
    assert (flaky.attempts, clock.slept) == (1, [])


def test_a_shared_deadline_is_the_budget() -> None:
    clock = FakeClock()
    deadline = Deadline(0.25, clock=clock)
    clock.now = 0.2  # spent elsewhere first, as delivery spends it on a request
    flaky = Flaky(failures=100)
    with pytest.raises(Retryable):
        retrying(first_wait=0.1, max_wait=1.0, budget=deadline, sleep=clock.sleep, clock=clock)(
            flaky
        )
    assert clock.slept == pytest.approx([0.05])
    assert flaky.attempts == 2


def test_closed_stops_retrying() -> None:
    closed = threading.Event()
    intervals: list[float] = []

    def sleep(seconds: float) -> None:
        intervals.append(seconds)
        if len(intervals) == 2:
            closed.set()

    flaky = Flaky(failures=100)
    with pytest.raises(Retryable, match="#3"):
        retrying(first_wait=0.1, max_wait=1.0, closed=closed, sleep=sleep)(flaky)
    # The attempt after the wait in which it was closed still runs (an attempt
    # checks ``closed`` itself); then no more.
    assert intervals == pytest.approx([0.1, 0.2])
    assert flaky.attempts == 3


def test_without_an_injected_sleep_the_wait_is_on_closed() -> None:
    closed = RecordingEvent()
    flaky = Flaky(failures=100)
    with pytest.raises(Retryable, match="#2"):
        retrying(first_wait=0.1, max_wait=1.0, closed=closed)(flaky)
    assert closed.waits == pytest.approx([0.1])
    assert flaky.attempts == 2


def test_already_closed_means_one_attempt() -> None:
    closed = threading.Event()
    closed.set()
    intervals: list[float] = []
    flaky = Flaky(failures=100)
    with pytest.raises(Retryable, match="#1"):
        retrying(first_wait=0.1, max_wait=1.0, closed=closed, sleep=intervals.append)(flaky)
    assert (flaky.attempts, intervals) == (1, [])


def test_other_exceptions_propagate_at_once() -> None:
    intervals: list[float] = []
    flaky = Flaky(failures=3, error=lambda n: ValueError(f"bug #{n}"))
    with pytest.raises(ValueError, match="bug #1"):
        retrying(first_wait=0.1, max_wait=1.0, budget=10, sleep=intervals.append)(flaky)
    assert (flaky.attempts, intervals) == (1, [])


def test_retry_if_retries_the_exceptions_it_names() -> None:
    intervals: list[float] = []
    flaky = Flaky(failures=2, error=lambda n: ConnectionRefusedError(f"refused #{n}"))
    policy = retrying(
        first_wait=0.05,
        max_wait=1.0,
        retry_if=lambda exc: isinstance(exc, OSError),
        sleep=intervals.append,
    )
    assert policy(flaky) == "ok"
    assert intervals == pytest.approx([0.05, 0.1])
    with pytest.raises(Retryable):  # no longer retried: retry_if replaces the default
        policy(Flaky(failures=1))


# -- what is worth another try ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(408, True), (425, True), (429, True), (500, True), (503, True), (404, False), (400, False)],
)
def test_retryable_status(status: int, retryable: bool) -> None:
    assert retryable_status(status) is retryable


def test_the_try_again_later_statuses() -> None:
    assert frozenset({408, 425, 429}) == RETRYABLE_STATUS


def test_retryable_http_errors() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/logs")
    assert retryable_http_error(httpx.ConnectError("refused", request=request))
    assert retryable_http_error(httpx.ReadTimeout("slow", request=request))
    assert retryable_http_error(httpx.RemoteProtocolError("cut", request=request))
    assert not retryable_http_error(httpx.UnsupportedProtocol("ftp", request=request))
    assert not retryable_http_error(ValueError("not httpx"))


# -- wait_until -------------------------------------------------------------------------


def test_wait_until_true() -> None:
    clock = FakeClock()
    checks = iter([False, False, True])
    assert wait_until(lambda: next(checks), timeout=5, interval=0.2, sleep=clock.sleep, clock=clock)
    assert clock.slept == pytest.approx([0.2, 0.2])


def test_wait_until_false_after_the_timeout_with_a_last_check_at_the_end() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def never() -> bool:
        calls.append(clock.now)
        return False

    assert not wait_until(never, timeout=1.0, interval=0.3, sleep=clock.sleep, clock=clock)
    assert calls == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.0])
    assert clock.slept == pytest.approx([0.3, 0.3, 0.3, 0.1])


def test_wait_until_false_once_closed() -> None:
    closed = RecordingEvent()
    calls: list[int] = []

    def never() -> bool:
        calls.append(1)
        return False

    assert not wait_until(never, timeout=60, interval=0.5, closed=closed)
    assert closed.waits == pytest.approx([0.5])
    assert len(calls) == 2


def test_wait_until_lets_the_predicates_error_through() -> None:
    def broken() -> bool:
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError, match="the process died"):
        wait_until(broken, timeout=60, interval=0.5, sleep=lambda s: None)


# -- Backoff and Deadline ---------------------------------------------------------------


def test_backoff_delays_grow_to_the_cap_and_reset() -> None:
    closed = threading.Event()
    intervals: list[float] = []
    backoff = Backoff(closed, max_wait=0.4, jitter=0.0, sleep=intervals.append)
    assert all(backoff.pause() for _ in range(4))
    backoff.reset()
    assert backoff.pause()
    assert intervals == pytest.approx([0.1, 0.2, 0.4, 0.4, 0.1])


def test_backoff_pause_is_false_once_closed() -> None:
    closed = threading.Event()
    intervals: list[float] = []
    backoff = Backoff(closed, max_wait=1.0, sleep=intervals.append)
    assert backoff.pause()
    closed.set()
    assert not backoff.pause()
    assert len(intervals) == 1  # no wait at all once closed
    assert 0.1 <= intervals[0] <= 0.15  # the default jitter is 0.05


def test_backoff_waits_on_closed_and_a_close_ends_the_wait() -> None:
    closed = RecordingEvent()
    backoff = Backoff(closed, max_wait=1.0, jitter=0.0)
    assert not backoff.pause()
    assert closed.waits == pytest.approx([0.1])


def test_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    assert (deadline.remaining(), deadline.expired) == (2.0, False)
    clock.now = 1.5
    assert (deadline.remaining(), deadline.expired) == (0.5, False)
    clock.now = 2.5
    assert (deadline.remaining(), deadline.expired) == (0.0, True)
