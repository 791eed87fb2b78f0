"""The pattern automaton; compiled, re-exported by :mod:`.paths`.

Patterns compile into a lazily built deterministic automaton
(:class:`PatternSet`), so walking a shard costs one dict lookup per key
whatever the number of patterns. The state engine walks it on every ingested
line, which is why this module is compiled; the pattern language itself
(parsing, :class:`~.paths.Pattern`) is in :mod:`.paths`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from enum import Enum
from typing import Any, Protocol

__all__ = [
    "GLOBSTAR",
    "STAR",
    "MatchNode",
    "PatternSet",
    "Segment",
    "Segmented",
    "Wild",
    "find",
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


class Segmented(Protocol):
    """What :class:`PatternSet` needs of a pattern: its segments."""

    @property
    def segments(self) -> tuple[Segment, ...]: ...


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


def find(
    node: MatchNode, tree: Any, prefix: tuple[Hashable, ...]
) -> Iterator[tuple[tuple[Hashable, ...], Any]]:
    """Yield ``(path, value)`` for every place below ``node`` in ``tree`` a pattern ends."""
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        child = node.lits.get(key, node.wild)
        if child is None:
            continue
        path = (*prefix, key)
        if child.accepts:
            yield path, value
        yield from find(child, value, path)


_NState = tuple[int, int]  # (pattern index, position in its segments)


class PatternSet:
    """Patterns with payloads, compiled into a deterministic automaton.

    ``root`` is ``None`` when there are no patterns. Walking a path costs one
    dict lookup per key: ``node = node.lits.get(key, node.wild)``.
    """

    def __init__(
        self, items: Iterable[tuple[Segmented, Any]], node_type: type[MatchNode] = MatchNode
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
