"""The common case of decoding a line; compiled, re-exported by :mod:`.fastpath`.

:func:`quick_shard` accepts a line only when it is certainly a shard within
the limits; for anything else it returns ``None`` and
:func:`pytest_livecluster.core.ingest.parse_shard` works out why, slowly and once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:  # native integers when compiled; annotations only from source
    from mypy_extensions import i64

# An integer orjson cannot hold exactly (it becomes a rounded float) has at
# least nineteen digits in a row.
LONG_RUN: Final = 19
_ZERO: Final = 48  # b"0"
_NINE: Final = 57  # b"9"
_BRACE: Final = 123  # b"{"
_BRACKET: Final = 91  # b"["
_loads: Final = orjson.loads  # one lookup, not one per line


def plain_enough(line: bytes, max_depth: i64) -> bool:
    """Whether ``line`` has at most ``max_depth`` opening brackets and no long digit run.

    The count of ``{`` and ``[`` bounds the nesting depth from above, and a
    run of fewer than :data:`LONG_RUN` digits is an integer orjson reads
    exactly. Both are conservative: brackets and digits inside strings count
    too, and such a line takes the slow, exact path. One pass over the bytes,
    compiled to a C loop.
    """
    n: i64 = len(line)
    opens: i64 = 0
    run: i64 = 0
    i: i64 = 0
    while i < n:
        c: i64 = line[i]
        i += 1
        if c > _NINE:  # letters, ":" and the brackets: the most common bytes
            run = 0
            if c in (_BRACE, _BRACKET):
                opens += 1
        elif c >= _ZERO:
            run += 1
            if run >= LONG_RUN:
                return False
        else:
            run = 0
    return opens <= max_depth


def quick_shard(line: bytes, max_bytes: int, max_depth: int) -> dict[str, Any] | None:
    """The shard ``line`` holds, or ``None`` if it needs a closer look."""
    if len(line) > max_bytes:
        return None
    try:
        obj = _loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or not plain_enough(line, max_depth):
        return None
    return obj
