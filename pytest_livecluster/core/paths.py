"""Paths into the state and the patterns that select them.

A *path* is a sequence of keys, as the Python API takes it:
``("intents", "i-1", "resolution")``.

A *pattern* is how configuration writes a set of paths: ``.``-separated
segments, ``*`` for exactly one key, ``**`` for any number of keys (zero
included), and double quotes around a key that holds ``.``, ``*`` or ``"``
(``\\"`` and ``\\\\`` escape inside quotes)::

    intents.*.resolution.*.item_scraped."site1.example".item_sent

Patterns compile into a lazily built deterministic automaton
(:class:`PatternSet`), so walking a shard costs one dict lookup per key
whatever the number of patterns. The automaton is in :mod:`._paths`, which the
build compiles; the pattern language stays here, in Python, so that its
public names keep their signatures and docstrings (mypyc drops both).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import PatternError
from . import _native  # noqa: F401  (chooses the engine's build before its first import)
from ._paths import GLOBSTAR, STAR, MatchNode, PatternSet, Segment, Wild, find

__all__ = [
    "GLOBSTAR",
    "STAR",
    "MatchNode",
    "Pattern",
    "PatternSet",
    "Segment",
    "Wild",
    "format_path",
    "parse_pattern",
]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed pattern: its source text and its segments."""

    text: str
    segments: tuple[Segment, ...]

    def __str__(self) -> str:
        return self.text

    def matches(self, path: Sequence[Hashable]) -> bool:
        """Whether ``path`` (a sequence of keys) is selected by this pattern."""
        node: MatchNode | None = _single(self).root
        for key in path:
            if node is None:
                return False
            node = node.step(key)
        return node is not None and bool(node.accepts)

    def find(self, tree: Any) -> Iterator[tuple[tuple[Hashable, ...], Any]]:
        """Yield ``(path, value)`` for every place in ``tree`` the pattern selects.

        The values are the tree's own objects, not copies.
        """
        root = _single(self).root
        return iter(()) if root is None else find(root, tree, ())


@functools.lru_cache(maxsize=1024)
def _single(pattern: Pattern) -> PatternSet:
    return PatternSet([(pattern, True)])


def parse_pattern(text: Any) -> Pattern:
    """Parse ``text`` into a :class:`Pattern`; raise :class:`PatternError` if malformed."""
    if not isinstance(text, str):
        raise PatternError(f"a pattern is a string, got {text!r}")
    return _parse(text)


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> Pattern:
    segments: list[Segment] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            key, i = _quoted(text, i)
            segments.append(key)
        else:
            end = text.find(".", i)
            end = n if end < 0 else end
            raw = text[i:end]
            segments.append(_bare(text, raw))
            i = end
        if i == n:
            break
        if text[i] != ".":
            raise PatternError(
                f"bad pattern {text!r}: expected '.' after the quoted key at column {i + 1}"
            )
        i += 1
        if i == n:
            raise PatternError(f"bad pattern {text!r}: it ends with '.'")
    return Pattern(text, tuple(segments))


def _bare(text: str, raw: str) -> Segment:
    if raw == "":
        raise PatternError(f'bad pattern {text!r}: empty segment (write an empty key as "")')
    if raw == "*":
        return STAR
    if raw == "**":
        return GLOBSTAR
    if "*" in raw or '"' in raw:
        raise PatternError(
            f"bad pattern {text!r}: segment {raw!r} mixes '*' or '\"' with other "
            "characters; a segment is a key, '*' (one key) or '**' (any depth), "
            "and a key holding '.', '*' or '\"' is written in double quotes"
        )
    return raw


def _quoted(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text) and text[j + 1] in '"\\':
            out.append(text[j + 1])
            j += 2
        elif ch == '"':
            return "".join(out), j + 1
        else:
            out.append(ch)
            j += 1
    raise PatternError(f"bad pattern {text!r}: the quote at column {i + 1} is never closed")


def format_path(path: Iterable[Hashable]) -> str:
    """Write a path the way patterns are written, quoting where needed."""
    parts = []
    for key in path:
        text = str(key)
        if text == "" or any(c in text for c in '.*"\\'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(text)
    return ".".join(parts)
