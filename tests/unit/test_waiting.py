"""eventually and consistently, without pytest's plugin around them."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_livecluster import State
from pytest_livecluster.core.waiting import (
    ConsistentlyFailed,
    EventuallyFailed,
    consistently,
    eventually,
    eventually_attempts,
)


def later(state: State, line: bytes, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, state.ingest, args=(line,))
    timer.start()
    return timer


def test_eventually_returns_the_checks_value_once_a_shard_arrives() -> None:
    state = State()
    timer = later(state, b'{"a": {"b": 7}}', 0.1)
    began = time.monotonic()
    assert eventually(state, lambda: state.get("a", "b"), timeout=5, tick=10) == 7
    assert time.monotonic() - began < 1.0  # woken by the shard, not the 10 s tick
    timer.join()


def test_eventually_rechecks_on_the_tick_without_changes() -> None:
    state = State()
    deadline = time.monotonic() + 0.3
    assert eventually(state, lambda: time.monotonic() > deadline, timeout=5, tick=0.05)


def test_a_timeout_names_the_check_the_count_and_the_failures() -> None:
    state = State()
    calls = iter(range(100))

    def never() -> None:
        raise AssertionError(f"attempt {next(calls)}")

    with pytest.raises(EventuallyFailed) as info:
        eventually(state, never, timeout=0.3, tick=0.1, explain=lambda: "extra context")
    error = info.value
    text = str(error)
    name = "test_a_timeout_names_the_check_the_count_and_the_failures.<locals>.never"
    assert text.startswith(f"eventually: {name} (test_waiting.py:")
    assert f"did not pass within 0.3 s ({error.checks} checks)" in text
    assert "first failure (at 0.000 s): AssertionError: attempt 0" in text
    assert f"AssertionError: attempt {error.checks - 1}" in text
    assert text.endswith("\n\nextra context")
    assert 3 <= error.checks <= 6
    assert "RetryError" not in text


def test_other_exceptions_are_bugs_and_propagate_at_once() -> None:
    state = State()
    began = time.monotonic()
    with pytest.raises(ZeroDivisionError):
        eventually(state, lambda: 1 / 0, timeout=5)
    assert time.monotonic() - began < 0.5


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
    consistently(state, lambda: state.get("ok"), window=0.3, tick=0.05)
    assert 0.3 <= time.monotonic() - began < 1.0


def test_consistently_fails_at_the_first_violating_shard() -> None:
    state = State()
    state.ingest(b'{"ok": true}')
    timer = later(state, b'{"ok": false}', 0.2)
    began = time.monotonic()
    with pytest.raises(ConsistentlyFailed) as info:
        consistently(
            state,
            lambda: state.get("ok"),
            window=10,
            what="ok stays true",
            explain=lambda good, bad: f"between versions {good} and {bad}",
        )
    assert time.monotonic() - began < 2
    text = str(info.value)
    assert text.startswith("consistently: ok stays true stopped holding after 0.")
    assert text.endswith("returned False\n\nbetween versions 1 and 2")
    timer.join()


def test_consistently_says_when_it_never_held() -> None:
    with pytest.raises(ConsistentlyFailed, match="it did not hold at the start"):
        consistently(State(), lambda: False, window=1)
