"""Settings' values, parsed one way for the command line, the ini file and markers.

Owner of: what counts as a positive number of seconds, a positive count, and
a TTL rule ``PATTERN = SECONDS``. Each parser raises
:class:`~pytest_livecluster.exceptions.ConfigError` naming the setting and the
bad value; the pytest plugin turns that into a usage error, the
``livecluster`` command into argparse's.
"""

from __future__ import annotations

import math
from typing import Any

from .exceptions import ConfigError

__all__ = ["positive_int", "positive_seconds", "ttl_rule"]


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as a finite number of seconds above 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return number


def positive_int(name: str, value: Any) -> int:
    """``value`` as a whole number from 1 up."""
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return number


def ttl_rule(name: str, text: str) -> tuple[str, float]:
    """``PATTERN = SECONDS`` (the last ``=`` splits, so patterns may hold one)."""
    pattern, sep, seconds = text.rpartition("=")
    pattern = pattern.strip()
    if not sep or not pattern:
        raise ConfigError(f"{name}: expected 'PATTERN = SECONDS', got {text!r}")
    from .core.paths import parse_pattern  # the compiled engine: only when a rule is read

    parse_pattern(pattern)
    return pattern, positive_seconds(f"{name} for {pattern!r}", seconds.strip())
