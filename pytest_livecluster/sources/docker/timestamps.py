"""The engine's timestamps as integer nanoseconds, read from a log line and sent as ``since``.

A resume is only exact if no digit is lost on the way: the engine stamps each line in
RFC3339Nano with all nine fraction digits and filters ``since`` (``seconds.nanoseconds``,
inclusive) at full precision. ``datetime.fromisoformat`` drops digits past the sixth, a
float keeps about a microsecond and docker-py floors a ``datetime`` to whole seconds, so
both directions are done here, by hand, on integers.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Final

__all__ = ["TS_WINDOW", "format_since", "parse_timestamp"]

# The longest timestamp ("YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+hh:mm") is 35 bytes; its space must
# appear within this many bytes of the start of a message, or the message has no timestamp.
TS_WINDOW: Final = 40
_NS: Final = 1_000_000_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_CIVIL: Final = re.compile(rb"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})")
_TAIL: Final = re.compile(rb"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")


def parse_timestamp(text: bytes) -> int:
    """RFC3339Nano as the engine writes it -> integer nanoseconds since the epoch.

    Accepts 0 to 9 fraction digits and ``Z`` or a ``+hh:mm``/``-hh:mm`` offset.
    Parsed by hand because ``datetime.fromisoformat`` drops digits past the
    sixth. Raises ValueError on anything else.
    """
    # The engine's own form (RFC3339NanoFixed, always 9 digits and "Z") skips the regex.
    if len(text) == 30 and text[19] == 0x2E and text[29] == 0x5A:
        fraction = text[20:29]
        if fraction.isdigit():
            return _civil_seconds(text[:19]) * _NS + int(fraction)
    tail = _TAIL.fullmatch(text, 19)
    if tail is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:TS_WINDOW]!r}")
    seconds = _civil_seconds(text[:19])
    digits, sign, hours, minutes = tail.groups()
    if sign is not None:
        if int(hours) > 23 or int(minutes) > 59:
            raise ValueError(f"bad UTC offset in timestamp {text!r}")
        offset = int(hours) * 3600 + int(minutes) * 60
        seconds -= offset if sign == b"+" else -offset
    fraction_ns = int(digits.ljust(9, b"0")) if digits else 0
    return seconds * _NS + fraction_ns


@lru_cache(maxsize=4096)
def _civil_seconds(text: bytes) -> int:
    # Consecutive log lines share their date and second; caching them keeps decoding cheap.
    match = _CIVIL.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = map(int, match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"time of day out of range in timestamp {text!r}")
    try:
        days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        raise ValueError(f"no such date in timestamp {text!r}") from None
    return days * 86400 + hour * 3600 + minute * 60 + second


def format_since(ns: int) -> str:
    """The engine's ``since`` parameter for ``ns``, keeping all nine fraction digits."""
    return f"{ns // _NS}.{ns % _NS:09d}"
