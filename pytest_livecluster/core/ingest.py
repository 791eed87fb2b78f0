"""From one raw log line to a shard, or to a counted rejection.

:func:`parse_shard` is the only place a line is decoded. A line becomes a
shard only when it is a JSON object within the limits; anything else becomes
a :class:`Rejection` whose ``reason`` is one of :data:`REASONS`:

=================== ===========================================================
``empty``           nothing but white space
``too_large``       longer than ``Limits.max_line_bytes``
``invalid_utf8``    not valid UTF-8
``invalid_json``    not JSON at all
``nan_or_infinity`` ``NaN``, ``Infinity``, or a number no value can hold: a
                    fraction or exponent beyond a double's range, an integer of
                    more than 4300 digits
``not_an_object``   valid JSON, but not an object at the top level
``too_deep``        nested deeper than ``Limits.max_depth``
=================== ===========================================================

Integers beyond 64 bits keep their exact value (orjson would turn them into
floats, so such lines are parsed again by the standard library). A UTF-8 byte
order mark in front of an object is removed and the line accepted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import orjson

from ..exceptions import ConfigError
from .fastpath import quick_shard

__all__ = [
    "DEFAULT_LIMITS",
    "REASONS",
    "Envelope",
    "Limits",
    "Rejection",
    "parse_shard",
]

REASONS: Final = (
    "empty",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "nan_or_infinity",
    "not_an_object",
    "too_deep",
)

BOM: Final = b"\xef\xbb\xbf"


class Envelope(NamedTuple):
    """Where a line came from.

    ``source`` is the source id (``docker:<name>``, a URL, ``file:<path>``);
    ``stream`` is ``stdout`` or ``stderr``; ``origin_ns`` is the writer's own
    timestamp in integer nanoseconds and ``source_seq`` the source's sequence
    number, when the source has them; ``unterminated`` marks a last line that
    ended without a newline. A named tuple: sources make one for every line.
    """

    source: str = "direct"
    stream: str = "stdout"
    origin_ns: int | None = None
    source_seq: int | None = None
    unterminated: bool = False


DIRECT: Final = Envelope()


@dataclass(frozen=True, slots=True)
class Limits:
    """What a line may be before it is rejected."""

    max_line_bytes: int = 1024 * 1024
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_depth"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that is not a shard: why, and a short explanation."""

    reason: str
    detail: str = ""


def parse_shard(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any] | Rejection:
    """Decode one line; return the shard, or the reason it is not one.

    Never raises for any input bytes.
    """
    shard = quick_shard(raw, limits.max_line_bytes, limits.max_depth)
    if shard is not None:
        return shard
    if len(raw) > limits.max_line_bytes:
        return Rejection("too_large", f"{len(raw)} bytes, limit {limits.max_line_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _diagnose(raw, str(exc), limits)
    if type(obj) is not dict:
        return Rejection("not_an_object", f"top-level {type(obj).__name__}")
    if _depth(obj) > limits.max_depth:
        return Rejection("too_deep", f"deeper than {limits.max_depth}")
    # Only a long run of digits is left: an integer orjson may have rounded.
    return _exact(raw)


def _diagnose(raw: bytes, message: str, limits: Limits) -> dict[str, Any] | Rejection:
    if raw.startswith(BOM):
        return parse_shard(raw[len(BOM) :], limits)
    if not raw.strip():
        return Rejection("empty")
    if "UTF-8" in message or "utf-8" in message:
        return Rejection("invalid_utf8", message)
    if "depth limit" in message:
        return Rejection("too_deep", f"deeper than {limits.max_depth}")
    if "infinity" in message:
        # An integer too large for a double is still exact JSON.
        return _exact(raw)
    constants: list[str] = []
    try:
        json.loads(raw.decode("utf-8"), parse_constant=constants.append)
    except (ValueError, RecursionError):
        return Rejection("invalid_json", message)
    if constants:
        return Rejection("nan_or_infinity", f"{constants[0]} is not JSON")
    return Rejection("invalid_json", message)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _exact_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is beyond a double's range")
    return value


def _exact(raw: bytes) -> dict[str, Any] | Rejection:
    try:
        obj = json.loads(raw, parse_constant=_reject_constant, parse_float=_exact_float)
    except RecursionError:
        return Rejection("too_deep", "nested too deep to parse")
    except ValueError as exc:  # a double out of range, or an integer of thousands of digits
        return Rejection("nan_or_infinity", str(exc)[:200])
    if type(obj) is not dict:  # pragma: no cover - orjson already checked
        return Rejection("not_an_object", f"top-level {type(obj).__name__}")
    return obj


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed value (an empty container counts 1)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, level = stack.pop()
        if level > deepest:
            deepest = level
        children = value.values() if type(value) is dict else value
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, level + 1))
    return deepest
