"""Settings' values, parsed one way for the command line, the ini file and markers."""

from __future__ import annotations

import math

import pytest

from pytest_livecluster import ConfigError, PatternError
from pytest_livecluster._values import (
    MAX_COUNT,
    MAX_SECONDS,
    positive_int,
    positive_seconds,
    ttl_rule,
)


@pytest.mark.parametrize(("value", "expected"), [("1.5", 1.5), (2, 2.0), ("1e-3", 0.001)])
def test_positive_seconds(value: object, expected: float) -> None:
    assert positive_seconds("--live-timeout", value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "soon", "", None, True, "nan", "inf", math.inf])
def test_anything_else_is_refused_naming_the_setting_and_the_value(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        positive_seconds("--live-timeout", value)
    assert str(info.value) == (
        f"--live-timeout must be a positive number of seconds, got {value!r}; "
        "valid: more than 0 and up to 2592000 (30 days)"
    )


@pytest.mark.parametrize("value", ["1e10", 1e10, "2592000.5", "1e300", "1e400", 10**400])
def test_seconds_beyond_the_maximum_are_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=r"up to 2592000 \(30 days\)"):
        positive_seconds("--live-timeout", value)


def test_the_maximum_is_allowed_and_may_be_chosen() -> None:
    assert positive_seconds("--live-timeout", "2592000") == MAX_SECONDS == 2592000
    with pytest.raises(ConfigError, match=r"got '61'; valid: more than 0 and up to 60$"):
        positive_seconds("x", "61", maximum=60)
    assert positive_int("n", MAX_COUNT) == MAX_COUNT == 10_000_000
    with pytest.raises(ConfigError, match=r"got 11; valid: 1 to 10$"):
        positive_int("n", 11, maximum=10)


@pytest.mark.parametrize(("value", "expected"), [("3", 3), (1, 1)])
def test_positive_int(value: object, expected: int) -> None:
    assert positive_int("livecluster_journal_size", value) == expected


@pytest.mark.parametrize(
    "value",
    ["0", "-2", "1.5", "many", True, "99999999999999999999", 10**20, "9" * 5000, "\u0661\u0662"],
)
def test_positive_int_refuses(value: object) -> None:
    with pytest.raises(ConfigError, match="livecluster_journal_size must be a positive integer"):
        positive_int("livecluster_journal_size", value)


def test_a_ttl_rule_splits_on_the_last_equals_sign() -> None:
    assert ttl_rule("livecluster_ttl", 'intents."a=b" = 60') == ('intents."a=b"', 60.0)
    assert ttl_rule("--ttl", "intents.*=0.5") == ("intents.*", 0.5)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("intents.*", ConfigError, "--ttl: expected 'PATTERN = SECONDS', got 'intents.*'"),
        ("= 5", ConfigError, "--ttl: expected 'PATTERN = SECONDS', got '= 5'"),
        ("intents.* = -1", ConfigError, "--ttl for 'intents.*' must be a positive number"),
        ("a..b = 5", PatternError, "a..b"),
    ],
)
def test_bad_ttl_rules(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        ttl_rule("--ttl", text)
    assert message in str(info.value)
