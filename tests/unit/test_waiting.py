"""eventually and consistently, without pytest's plugin around them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pytest_livecluster import State
from pytest_livecluster.core.waiting import (
    ConsistentlyFailed,
    EventuallyFailed,
    consistently,
    eventually,
    eventually_attempts,
)
from tests.support import HANG_GUARD, LONG_WAIT, returns


def later(state: State, line: bytes, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, state.ingest, args=(line,))
    timer.start()
    return timer


def test_eventually_returns_the_checks_value_once_a_shard_arrives() -> None:
    """Woken by the shard, not by the tick: the tick is LONG_WAIT, so returning within
    the HANG_GUARD means the ingest woke it."""
    state = State()
    timer = later(state, b'{"a": {"b": 7}}', 0.1)

    def wait() -> Any:
        return eventually(state, lambda: state.get("a", "b"), timeout=2 * LONG_WAIT, tick=LONG_WAIT)

    assert returns(wait) == 7
    timer.join()


def test_eventually_rechecks_on_the_tick_without_changes() -> None:
    state = State()
    deadline = time.monotonic() + 0.3
    assert eventually(state, lambda: time.monotonic() > deadline, timeout=5, tick=0.05)


def test_a_timeout_names_the_check_the_count_and_the_failures() -> None:
    """Each check takes 0.1 s of a fake clock, so the count and the times are exact."""
    state = State()
    calls = iter(range(100))
    now = [0.0]

    def never() -> None:
        now[0] += 0.1
        raise AssertionError(f"attempt {next(calls)}")

    with pytest.raises(EventuallyFailed) as info:
        eventually(
            state,
            never,
            timeout=0.3,
            tick=0.01,
            explain=lambda: "extra context",
            clock=lambda: now[0],
        )
    error = info.value
    text = str(error)
    name = "test_a_timeout_names_the_check_the_count_and_the_failures.<locals>.never"
    assert text.startswith(f"eventually: {name} (test_waiting.py:")
    assert "did not pass within 0.3 s (3 checks)" in text
    assert "first failure (at 0.100 s): AssertionError: attempt 0" in text
    assert "last failure (at 0.300 s): AssertionError: attempt 2" in text
    assert text.endswith("\n\nextra context")
    assert error.checks == 3
    assert error.first is not None
    assert error.first.message == "AssertionError: attempt 0"
    assert "RetryError" not in text


def test_other_exceptions_are_bugs_and_propagate_at_once() -> None:
    """At once: the check ran once, and was not retried until the timeout."""
    state = State()
    calls = []

    def broken() -> float:
        calls.append(1)
        return 1 / 0

    with pytest.raises(ZeroDivisionError):
        eventually(state, broken, timeout=5, tick=0.01)
    assert len(calls) == 1


def test_missing_keys_mean_not_yet() -> None:
    state = State()
    timer = later(state, b'{"x": {"y": 1}}', 0.1)
    assert eventually(state, lambda: state.get("x")["y"], timeout=5) == 1
    timer.join()


def test_the_inline_form() -> None:
    state = State()
    timer = later(state, b'{"n": 3}', 0.1)
    for attempt in eventually_attempts(state, timeout=5):
        with attempt:
            assert state.get("n") == 3
    timer.join()


def test_the_inline_form_times_out_with_the_assertion() -> None:
    state = State()
    state.ingest(b'{"n": 3}')

    def wait_for_four() -> None:
        for attempt in eventually_attempts(state, timeout=0.2, tick=0.05):
            with attempt:
                assert state.get("n") == 4

    with pytest.raises(EventuallyFailed, match=r"the block did not pass within 0\.2 s") as info:
        wait_for_four()
    assert "AssertionError: assert 3 == 4" in str(info.value)


def test_consistently_holds_for_the_window() -> None:
    state = State()
    state.ingest(b'{"ok": true}')
    began = time.monotonic()
    returns(lambda: consistently(state, lambda: state.get("ok"), window=0.3, tick=0.05))
    assert time.monotonic() - began >= 0.3  # the whole window (a lower bound: load cannot break it)


def test_consistently_returns_at_the_first_check_past_the_window() -> None:
    """On a fake clock (each check takes 0.1 s of it): checks at 0.1, 0.2 and 0.3 s, and
    the one at the end of the 0.3 s window is the last; no check after it."""
    state = State()
    state.ingest(b'{"ok": true}')
    now = [0.0]
    seen: list[float] = []

    def holds() -> bool:
        now[0] += 0.1
        seen.append(round(now[0], 3))
        return len(seen) <= 3  # a 4th check would fail the test, not hang it

    consistently(state, holds, window=0.3, tick=0.01, clock=lambda: now[0])
    assert seen == [0.1, 0.2, 0.3]


def test_consistently_fails_at_the_first_violating_shard() -> None:
    """Woken by the violating shard, not by the LONG_WAIT tick or window. The shard comes
    once the first check has passed and moves a fake clock 0.2 s on, so the message is
    exact however slow the machine."""
    state = State()
    state.ingest(b'{"ok": true}')
    now = [0.0]
    checked = threading.Event()

    def ok() -> Any:
        value = state.get("ok")
        checked.set()
        return value

    def violate() -> None:
        if checked.wait(HANG_GUARD):
            now[0] += 0.2
            state.ingest(b'{"ok": false}')

    violator = threading.Thread(target=violate, daemon=True)
    violator.start()
    with pytest.raises(ConsistentlyFailed) as info:
        returns(
            lambda: consistently(
                state,
                ok,
                window=LONG_WAIT,
                tick=LONG_WAIT,
                what="ok stays true",
                clock=lambda: now[0],
            )
        )
    violator.join()
    message = str(info.value)
    assert message.startswith(
        "consistently: ok stays true stopped holding after 0.200 s of 60 s (check 2): "
        "returned False\n\nthe shard that broke it:\n  #2 "
    )
    assert message.endswith('Z direct stdout: {"ok": false}\n\nwhat it read:\n  ok = false')
    assert (info.value.at, info.value.version) == (0.2, 2)
    assert info.value.shard is not None
    assert info.value.shard.raw == b'{"ok": false}'


def test_consistently_says_when_it_never_held() -> None:
    with pytest.raises(ConsistentlyFailed, match="it did not hold at the start"):
        consistently(State(), lambda: False, window=1)


@pytest.mark.parametrize("value", [1e10, 0, -1, float("nan"), float("inf")])
def test_a_clusters_waiting_arguments_are_held_to_the_settings_range(value: float) -> None:
    """A call's timeout is checked as the ini's is: a usage error, never an OverflowError."""
    from pytest_livecluster import Cluster, ConfigError
    from pytest_livecluster.core.waiting import TestTiming

    cluster = Cluster(State(), None, TestTiming(timeout=1, window=1, tick=0.1))
    with pytest.raises(ConfigError, match="eventually timeout must be a positive number"):
        cluster.eventually(lambda: True, timeout=value)
    with pytest.raises(ConfigError, match="consistently tick must be a positive number"):
        cluster.consistently(lambda: True, for_=0.1, tick=value)
    assert cluster.eventually(lambda: 7, timeout=1) == 7


def _break_and_repair(state: State, opened: threading.Event, *lines: bytes) -> threading.Thread:
    """Ingest ``lines`` back to back, with nothing in between, once the window is open."""

    def send() -> None:
        if opened.wait(HANG_GUARD):
            for line in lines:
                state.ingest(line)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_consistently_sees_a_condition_broken_and_repaired_by_back_to_back_shards() -> None:
    """Two shards in one send: the state between them breaks the check. A sampling wait
    never sees it (it wakes after both are merged); the window sees every state."""
    for _ in range(20):
        _fails_on_a_break_and_repair()


def _fails_on_a_break_and_repair() -> None:
    state = State()
    state.ingest(b'{"svc": {"status": "up"}}')
    opened = threading.Event()

    def ok() -> bool:
        opened.set()
        return not state.get("svc", "errors")

    sender = _break_and_repair(
        state, opened, b'{"svc": {"errors": 1}}', b'{"svc": {"errors": null}}'
    )
    with pytest.raises(ConsistentlyFailed) as info:
        returns(lambda: consistently(state, ok, window=LONG_WAIT, tick=LONG_WAIT))
    sender.join()
    assert info.value.shard is not None
    assert info.value.shard.raw == b'{"svc": {"errors": 1}}'
    assert "what it read:\n  svc.errors = 1" in str(info.value)
    assert state.get("svc") == {"status": "up"}  # repaired: a sample would pass


def test_a_window_skips_shards_that_touch_nothing_it_read() -> None:
    from pytest_livecluster.core.windows import Window

    state = State()
    state.ingest(b'{"svc": {"errors": 0}, "other": 1}')
    window = Window(lambda: state.get("svc", "errors") == 0).open(state)
    try:
        for i in range(10):
            state.ingest(b'{"other": %d}' % i)
        state.ingest(b'{"svc": {"status": "up"}}')  # below svc, not svc.errors
        state.ingest(b'{"svc": {"errors": 0}}')
    finally:
        window.close()
    assert (window.checks, window.skipped, window.done) == (2, 11, False)


def test_a_window_whose_check_reads_the_whole_state_runs_on_every_shard() -> None:
    from pytest_livecluster.core.windows import Window

    state = State()
    window = Window(lambda: state.snapshot() is not None).open(state)
    try:
        for i in range(5):
            state.ingest(b'{"other": %d}' % i)
    finally:
        window.close()
    assert (window.checks, window.skipped) == (6, 0)
    assert window.reads_everything


def test_a_check_evaluated_on_every_shard_cannot_wait() -> None:
    state = State()

    def nested() -> bool:
        return bool(eventually(state, lambda: True, timeout=1))

    with pytest.raises(RuntimeError, match="cannot wait for a change"):
        consistently(state, lambda: state.wait_for_change(state.version, 0) >= 0, window=1)
    assert nested()  # outside a window, the same call waits as usual


def test_eventually_at_least_fails_a_check_that_passes_too_soon() -> None:
    state = State()
    state.ingest(b'{"ready": true}')
    with pytest.raises(EventuallyFailed, match=r"passed after .* sooner than at_least=5 s"):
        eventually(state, lambda: state.get("ready"), timeout=10, tick=0.01, at_least=5)


def test_eventually_at_least_passes_a_check_that_passes_late_enough() -> None:
    state = State()
    now = [0.0]

    def ready() -> bool:
        now[0] += 0.5
        return now[0] >= 2.0

    assert eventually(state, ready, timeout=10, tick=0.001, at_least=1.5, clock=lambda: now[0])


def test_eventually_at_least_in_the_inline_form() -> None:
    state = State()

    def block() -> None:
        for attempt in eventually_attempts(state, timeout=10, tick=0.01, at_least=5):
            with attempt:
                assert state.version == 0

    with pytest.raises(EventuallyFailed, match="sooner than at_least"):
        block()


def test_eventually_at_least_must_be_shorter_than_the_timeout() -> None:
    with pytest.raises(ValueError, match="at_least"):
        eventually(State(), lambda: True, timeout=1, at_least=1)


def test_a_nested_eventually_keeps_the_outer_checks_paths() -> None:
    """The outer failure names what the outer check read, not "the whole state"."""
    from pytest_livecluster import Cluster
    from pytest_livecluster.core.waiting import TestTiming

    state = State()
    state.ingest(b'{"a": {"ready": false}, "b": {"ok": true}}')
    cluster = Cluster(state, None, TestTiming(timeout=0.3, window=1, tick=0.05))

    def outer() -> bool:
        cluster.eventually(lambda: cluster.get("b", "ok"), timeout=0.2, tick=0.05)
        return bool(cluster.get("a", "ready"))

    with pytest.raises(EventuallyFailed) as info:
        cluster.eventually(outer)
    message = str(info.value)
    assert "a.ready now: false" in message
    assert "b.ok now: true" in message
    assert "the whole state" not in message


def test_an_invariant_evaluated_on_the_ingest_thread_does_not_add_to_a_tests_paths() -> None:
    from pytest_livecluster import Cluster
    from pytest_livecluster.core.waiting import TestTiming

    state = State()
    state.ingest(b'{"a": 1}')
    cluster = Cluster(state, None, TestTiming(timeout=1, window=1, tick=0.05))
    cluster.always(lambda: cluster.get("unrelated") is None, what="nothing unrelated")

    def check() -> bool:
        threading.Thread(target=state.ingest, args=(b'{"other": 1}',)).start()
        assert cluster.get("a") == 2
        return True

    with pytest.raises(EventuallyFailed) as info:
        cluster.eventually(check, timeout=0.3, tick=0.05)
    assert "unrelated" not in str(info.value)
