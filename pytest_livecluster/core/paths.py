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
whatever the number of patterns.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..exceptions import PatternError

__all__ = [
    "GLOBSTAR",
    "STAR",
    "MatchNode",
    "Pattern",
    "PatternSet",
    "format_path",
    "parse_pattern",
]


class Wild(Enum):
    """The two wildcard segments."""

    STAR = "*"
    GLOBSTAR = "**"

    def __repr__(self) -> str:
        return self.value


STAR = Wild.STAR
GLOBSTAR = Wild.GLOBSTAR

Segment = str | Wild


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
        if root is not None:
            yield from _find(root, tree, ())


def _find(
    node: MatchNode, tree: Any, prefix: tuple[Hashable, ...]
) -> Iterator[tuple[tuple[Hashable, ...], Any]]:
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        child = node.lits.get(key, node.wild)
        if child is None:
            continue
        path = (*prefix, key)
        if child.accepts:
            yield path, value
        yield from _find(child, value, path)


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


class MatchNode:
    """One state of a compiled :class:`PatternSet`.

    ``lits`` maps the literal keys some pattern names here to the next state;
    every other key goes to ``wild``. ``None`` means no pattern can match below.
    ``accepts`` holds the payloads of the patterns that end exactly here.
    """

    __slots__ = ("accepts", "lits", "wild")

    def __init__(self) -> None:
        self.lits: dict[Hashable, MatchNode | None] = {}
        self.wild: MatchNode | None = None
        self.accepts: tuple[Any, ...] = ()

    def step(self, key: Hashable) -> MatchNode | None:
        return self.lits.get(key, self.wild)


_NState = tuple[int, int]  # (pattern index, position in its segments)


class PatternSet:
    """Patterns with payloads, compiled into a deterministic automaton.

    ``root`` is ``None`` when there are no patterns. Walking a path costs one
    dict lookup per key: ``node = node.lits.get(key, node.wild)``.
    """

    def __init__(
        self, items: Iterable[tuple[Pattern, Any]], node_type: type[MatchNode] = MatchNode
    ) -> None:
        self._items = [(p.segments, payload) for p, payload in items]
        self._node_type = node_type
        self._memo: dict[frozenset[_NState], MatchNode] = {}
        start = self._closure({(i, 0) for i in range(len(self._items))})
        self.root: MatchNode | None = self._node(start) if start else None

    @property
    def nodes(self) -> list[MatchNode]:
        """Every state of the automaton."""
        return list(self._memo.values())

    def _closure(self, states: set[_NState]) -> frozenset[_NState]:
        todo = list(states)
        seen = set(states)
        while todo:
            i, p = todo.pop()
            segs = self._items[i][0]
            if p < len(segs) and segs[p] is GLOBSTAR and (i, p + 1) not in seen:
                seen.add((i, p + 1))
                todo.append((i, p + 1))
        return frozenset(seen)

    def _step(self, states: frozenset[_NState], key: object) -> frozenset[_NState]:
        out: set[_NState] = set()
        for i, p in states:
            segs = self._items[i][0]
            if p == len(segs):
                continue
            seg = segs[p]
            if seg is GLOBSTAR:
                out.add((i, p))
            elif seg is STAR or seg == key:
                out.add((i, p + 1))
        return self._closure(out)

    def _node(self, states: frozenset[_NState]) -> MatchNode:
        node = self._memo.get(states)
        if node is not None:
            return node
        node = self._memo[states] = self._node_type()
        node.accepts = tuple(
            self._items[i][1] for i, p in sorted(states) if p == len(self._items[i][0])
        )
        other = self._step(states, _OTHER)
        node.wild = self._node(other) if other else None
        literals = {
            seg
            for i, p in states
            if p < len(self._items[i][0]) and isinstance(seg := self._items[i][0][p], str)
        }
        for lit in literals:
            nxt = self._step(states, lit)
            node.lits[lit] = self._node(nxt) if nxt else None
        return node


_OTHER = object()  # a key equal to no literal
