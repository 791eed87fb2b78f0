"""Settings' values, parsed one way for the command line, the ini file and markers.

Owner of: what counts as a positive number of seconds, a positive count, and
a TTL rule ``PATTERN = SECONDS``. Each parser raises
:class:`~pytest_livecluster.exceptions.ConfigError` naming the setting, the
bad value and the valid range; the pytest plugin turns that into a usage
error, the ``livecluster`` command into argparse's.

Every number is finite and bounded, so no later arithmetic (a deadline, a
date, a buffer's size) can overflow:

- seconds (timeouts, ticks, windows, TTLs, expiry, the watch interval): above 0
  and up to :data:`MAX_SECONDS`, 2592000 (30 days);
- counts (journal size, line length, depth, rounds): 1 up to
  :data:`MAX_COUNT`, 10000000, unless a setting documents another maximum.
"""

from __future__ import annotations

import math
from typing import Any, Final

from .exceptions import ConfigError

__all__ = ["MAX_COUNT", "MAX_SECONDS", "positive_int", "positive_seconds", "ttl_rule"]

#: The longest time any setting may give: 30 days, in seconds.
MAX_SECONDS: Final = 30 * 24 * 3600.0
#: The largest count any setting may give, unless it documents its own maximum.
MAX_COUNT: Final = 10_000_000


def positive_seconds(name: str, value: Any, *, maximum: float = MAX_SECONDS) -> float:
    """``value`` as a finite number of seconds above 0 and up to ``maximum``."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not (0 < number <= maximum):
        raise ConfigError(
            f"{name} must be a positive number of seconds, got {value!r}; "
            f"valid: more than 0 and up to {maximum:.0f}{_days(maximum)}"
        )
    return number


def positive_int(name: str, value: Any, *, maximum: int = MAX_COUNT) -> int:
    """``value`` as a whole number from 1 up to ``maximum``."""
    text = str(value).strip()
    # ASCII digits only (an optional +), and not too many to read: int() of a
    # 100 000-digit string is refused by Python itself, with a ValueError.
    digits = text.removeprefix("+")
    number = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 32 else 0
    if isinstance(value, bool) or not 1 <= number <= maximum:
        raise ConfigError(
            f"{name} must be a positive integer, got {value!r}; valid: 1 to {maximum}"
        )
    return number


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f" ({days:g} days)" if days >= 1 and days == int(days) else ""


def ttl_rule(name: str, text: str) -> tuple[str, float]:
    """``PATTERN = SECONDS`` (the last ``=`` splits, so patterns may hold one)."""
    pattern, sep, seconds = text.rpartition("=")
    pattern = pattern.strip()
    if not sep or not pattern:
        raise ConfigError(f"{name}: expected 'PATTERN = SECONDS', got {text!r}")
    from .core.paths import parse_pattern  # the compiled engine: only when a rule is read

    parse_pattern(pattern)
    return pattern, positive_seconds(f"{name} for {pattern!r}", seconds.strip())
