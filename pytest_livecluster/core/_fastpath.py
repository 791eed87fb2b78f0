"""The common case of decoding a line; compiled, re-exported by :mod:`.fastpath`.

:func:`quick_shard` accepts a line only when it is certainly a shard within
the limits; for anything else it returns ``None`` and
:func:`pytest_livecluster.core.ingest.parse_shard` works out why, slowly and once.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

# One translated copy serves two checks: digits become "0" (an integer orjson
# cannot hold exactly has nineteen or more digits in a row) and "[" becomes "{"
# (so one count bounds the nesting depth). It is several times faster than a
# regular expression.
_SCAN: Final = bytes.maketrans(b"123456789[", b"000000000{")
_LONG_RUN: Final = b"0" * 19


def quick_shard(line: bytes, max_bytes: int, max_depth: int) -> dict[str, Any] | None:
    """The shard ``line`` holds, or ``None`` if it needs a closer look."""
    if len(line) > max_bytes:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    scan = line.translate(_SCAN)
    if scan.count(b"{") > max_depth or _LONG_RUN in scan:
        return None
    return obj
