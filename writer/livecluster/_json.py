"""One shard as one line of JSON: orjson when it is importable, else the standard library."""

from __future__ import annotations

import json
from typing import Any, Callable

__all__ = ["dumps", "fast"]


def _std(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def _load_fast() -> Callable[[Any], str] | None:
    try:
        import orjson
    except ImportError:
        return None
    option = orjson.OPT_NON_STR_KEYS

    def dumps(obj: Any) -> str:
        try:
            return orjson.dumps(obj, default=str, option=option).decode()
        except TypeError:  # an integer beyond 64 bits, say: the standard library can
            return _std(obj)

    return dumps


_fast = _load_fast()

#: Whether orjson does the encoding.
fast: bool = _fast is not None


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON on one line (non-ASCII kept; unknown types as ``str()``).

    Raises :class:`TypeError` or :class:`ValueError` for what neither encoder can write.
    """
    return _fast(obj) if _fast is not None else _std(obj)
