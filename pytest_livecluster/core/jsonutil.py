"""JSON in and out: orjson, with the standard library where orjson cannot.

orjson refuses integers beyond 64 bits when writing; the state keeps them
exactly, so :func:`dumps` falls back to :mod:`json` for those values.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_text"]


def dumps(value: Any, *, sort_keys: bool = False, indent: bool = False) -> bytes:
    """Serialize ``value`` to UTF-8 JSON bytes."""
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        # orjson's result keeps a 4 KiB buffer however short the text; slicing
        # copies it to its exact size, which matters for what the journal keeps.
        return orjson.dumps(value, option=option | orjson.OPT_APPEND_NEWLINE)[:-1]
    except TypeError:
        text = json.dumps(
            value,
            sort_keys=sort_keys,
            indent=2 if indent else None,
            ensure_ascii=False,
            allow_nan=False,
            separators=None if indent else (",", ":"),
            default=_default,
        )
        return text.encode("utf-8", "surrogatepass")


def dumps_text(value: Any, *, sort_keys: bool = False, indent: bool = False) -> str:
    """Serialize ``value`` to a JSON string."""
    return dumps(value, sort_keys=sort_keys, indent=indent).decode("utf-8", "replace")


def _default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
