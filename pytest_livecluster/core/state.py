"""The state: every shard deep-merged, RFC 7386 style, into one JSON object.

:func:`merge_patch` is RFC 7386's MergePatch as a pure function. :class:`State`
applies the same semantics in place, shard after shard, with three additions
that the contracts in the architecture document fix:

* **Counters.** Under a counter pattern a numeric leaf merges by ``max`` (a
  G-Counter: replays and duplicates are harmless); :meth:`State.total` sums the
  numeric leaves a pattern selects.
* **TTL.** A subtree selected by a TTL pattern and not written for longer than
  its TTL is evicted; the counters inside it are first folded into a retained
  base, so a total never drops because of eviction.
* **Journal.** Every line gets an ingest sequence number; the recent accepted
  lines are kept with their envelope, so a reader can ask which source last
  wrote a path, and when.

Threading: one writer (the collector) and any number of readers. The writer
holds the lock while it merges; readers evaluate predicates under the same lock
with :meth:`State.read` and copy only what they keep.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ..exceptions import ConfigError
from . import jsonutil
from .fastpath import quick_shard
from .ingest import BOM, DEFAULT_LIMITS, DIRECT, Envelope, Limits, Rejection, parse_shard
from .paths import GLOBSTAR, MatchNode, Pattern, PatternSet, format_path, parse_pattern

__all__ = [
    "EVICTED",
    "JournalEntry",
    "Rejected",
    "State",
    "StateStats",
    "merge_patch",
]

T = TypeVar("T")
_UNLIMITED: Final = Limits(max_line_bytes=1 << 62, max_depth=1 << 30)
_time_ns: Final = time.time_ns
_NULL: Final = b"null"
_BOM_FIRST: Final = 0xEF


class _Evicted:
    """Stands for the keys of evicted subtrees in the retained counter base."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<evicted>"


EVICTED: Final = _Evicted()


# --------------------------------------------------------------------------
# RFC 7386
# --------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Return RFC 7386 ``MergePatch(target, patch)``.

    Neither input is mutated and the result shares no mutable object with them.
    """
    if type(patch) is not dict:
        return copy_json(patch)
    result = copy_json(target) if type(target) is dict else {}
    _merge_plain(result, copy_json(patch), _NULL)
    return result


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value; other mappings become dicts, tuples lists."""
    if type(value) is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [copy_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(v) for v in value]
    return value


def _merge_plain(target: dict[str, Any], patch: dict[str, Any], text: bytes) -> None:
    """Merge ``patch`` into ``target``, taking the patch's objects.

    ``text`` is the JSON the patch was parsed from: a new subtree is searched
    for nulls to drop only when ``text`` holds one, which keeps the common
    case (updates to existing keys) free of any scan.
    """
    for key, value in patch.items():
        if type(value) is dict:
            old = target.get(key)
            if type(old) is dict:
                _merge_plain(old, value, text)
                continue
            if _NULL in text:
                _drop_nulls(value)
        elif value is None:
            target.pop(key, None)
            continue
        target[key] = value


def _merge_max(target: dict[str, Any], patch: dict[str, Any], text: bytes) -> None:
    """:func:`_merge_plain` inside a counter region: numbers never go down."""
    for key, value in patch.items():
        kind = type(value)
        if kind is dict:
            old = target.get(key)
            if type(old) is dict:
                _merge_max(old, value, text)
                continue
            if _NULL in text:
                _drop_nulls(value)
        elif kind is int or kind is float:
            old = target.get(key)
            if (type(old) is int or type(old) is float) and old > value:
                continue
        elif value is None:
            target.pop(key, None)
            continue
        target[key] = value


def _drop_nulls(tree: dict[str, Any]) -> None:
    """RFC 7386 on a new subtree: MergePatch({}, value) keeps no null."""
    for key, value in list(tree.items()):
        if value is None:
            del tree[key]
        elif type(value) is dict:
            _drop_nulls(value)


# --------------------------------------------------------------------------
# Compiled counter and TTL patterns
# --------------------------------------------------------------------------


class _Node(MatchNode):
    """An automaton state annotated with what the state engine needs."""

    __slots__ = ("counter", "ttl", "ttl_below")

    def __init__(self) -> None:
        super().__init__()
        self.counter = False  # numeric leaves here merge by max
        self.ttl: int | None = None  # index of the TTL pattern that ends here
        self.ttl_below = False  # some TTL pattern may end here or deeper


def _compile(
    counters: Sequence[Pattern], ttls: Sequence[Pattern]
) -> tuple[_Node | None, PatternSet]:
    items: list[tuple[Pattern, Any]] = []
    for p in counters:
        under = Pattern(p.text + ".**", (*p.segments, GLOBSTAR))
        items.append((under, ("counter",)))
    items += [(p, ("ttl", i)) for i, p in enumerate(ttls)]
    pset = PatternSet(items, node_type=_Node)
    nodes: list[_Node] = pset.nodes  # type: ignore[assignment]
    for node in nodes:
        node.counter = any(a[0] == "counter" for a in node.accepts)
        ttl = [a[1] for a in node.accepts if a[0] == "ttl"]
        node.ttl = min(ttl) if ttl else None
        node.ttl_below = node.ttl is not None
    changed = True
    while changed:  # ttl_below: some TTL-accepting node is reachable
        changed = False
        for node in nodes:
            if node.ttl_below:
                continue
            kids = [*node.lits.values(), node.wild]
            if any(k is not None and k.ttl_below for k in kids):  # type: ignore[attr-defined]
                node.ttl_below = changed = True
    return pset.root, pset  # type: ignore[return-value]


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


# --------------------------------------------------------------------------
# Journal and statistics
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One accepted line: its ingest number, arrival time, origin and text."""

    seq: int
    recv_ns: int
    envelope: Envelope
    raw: bytes

    @property
    def shard(self) -> dict[str, Any]:
        """The shard, parsed again from the raw line (a fresh object)."""
        shard = parse_shard(self.raw, _UNLIMITED)
        assert type(shard) is dict
        return shard

    def touches(self, path: Sequence[Hashable]) -> bool:
        """Whether this shard wrote ``path``, something below it, or replaced an ancestor."""
        node: Any = self.shard
        for key in path:
            if type(node) is not dict:
                return True
            if key not in node:
                return False
            node = node[key]
        return True


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that was not a shard, kept (truncated) for the report."""

    seq: int
    recv_ns: int
    envelope: Envelope
    reason: str
    detail: str
    text: str


@dataclass(frozen=True)
class StateStats:
    """Counts since the state was made."""

    version: int
    lines: int
    accepted: int
    rejected: Mapping[str, int]
    bom_stripped: int
    evicted: int
    journal: int


Sink = Callable[[int, int, Envelope, bytes], None]


@dataclass
class _Ttl:
    pattern: Pattern
    seconds: float
    touched: collections.OrderedDict[tuple[Hashable, ...], float] = field(
        default_factory=collections.OrderedDict
    )


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------


class State:
    """The merged state of a cluster.

    :param counters: patterns under which numeric leaves merge by ``max``.
    :param ttl: ``{pattern: seconds}``; subtrees not written for that long are evicted.
    :param limits: what a line may be before it is rejected.
    :param journal_size: how many recent accepted lines the journal keeps.
    :param rejected_size: how many recent rejected lines are kept as samples.
    :param sample_chars: how much of a rejected line a sample keeps.
    :param clock: monotonic seconds, for TTL (injectable for tests).
    :param sink: called with ``(seq, recv_ns, envelope, raw)`` for every line,
        accepted or not, in ingest order (a recording is such a sink).
    """

    EVICT_EVERY: Final = 256

    def __init__(
        self,
        *,
        counters: Iterable[str] = (),
        ttl: Mapping[str, Any] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        journal_size: int = 10_000,
        rejected_size: int = 1_000,
        sample_chars: int = 512,
        clock: Callable[[], float] = time.monotonic,
        sink: Sink | None = None,
    ) -> None:
        self.counter_patterns = tuple(parse_pattern(p) for p in counters)
        self._ttls = [_Ttl(parse_pattern(p), _seconds(p, s)) for p, s in (ttl or {}).items()]
        self._root_node, self._patterns = _compile(
            self.counter_patterns, [t.pattern for t in self._ttls]
        )
        self.limits = limits
        self._max_bytes = limits.max_line_bytes
        self._max_depth = limits.max_depth
        self._clock = clock
        self._sink = sink
        self._sample_chars = sample_chars
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiters = 0
        self._root: dict[str, Any] = {}
        self._base: dict[Hashable, Any] = {}  # counters folded out of evicted subtrees
        self._journal: collections.deque[tuple[int, int, Envelope, bytes]] = collections.deque(
            maxlen=journal_size
        )
        self._rejected: collections.deque[Rejected] = collections.deque(maxlen=rejected_size)
        self._reasons: collections.Counter[str] = collections.Counter()
        self._seq = 0
        self._accepted = 0
        self._bom = 0
        self._evicted = 0
        self.version = 0

    def set_sink(self, sink: Sink | None) -> None:
        """Send every line ingested from now on to ``sink`` (see the constructor)."""
        with self._lock:
            self._sink = sink

    # -- writing -------------------------------------------------------------

    def ingest(self, line: Any, envelope: Envelope = DIRECT) -> bool:
        """Parse one log line and merge it; return whether it was accepted.

        Never raises for bad input: a line that is not a shard is counted by
        reason and kept as a sample.
        """
        if type(line) is not bytes:
            line = _to_bytes(line)
        shard: dict[str, Any] | Rejection | None = quick_shard(
            line, self._max_bytes, self._max_depth
        )
        if shard is None:
            shard = parse_shard(line, self.limits)
        recv_ns = _time_ns()
        with self._lock:
            self._seq = seq = self._seq + 1
            if self._sink is not None:
                self._sink(seq, recv_ns, envelope, line)
            if type(shard) is not dict:
                assert isinstance(shard, Rejection)
                self._reject(seq, recv_ns, envelope, line, shard)
                return False
            if line[0] == _BOM_FIRST and line.startswith(BOM):
                self._bom += 1
            self._apply(shard, line)
            self._journal.append((seq, recv_ns, envelope, line))
            self._accepted += 1
            self.version += 1
            if self._waiters:
                self._changed.notify_all()
            if self._ttls and self._accepted % self.EVICT_EVERY == 0:
                self._evict_expired()
        return True

    def merge(self, shard: Mapping[str, Any], envelope: Envelope = DIRECT) -> None:
        """Merge a shard given as an object; the state keeps no reference to it."""
        if not isinstance(shard, Mapping):
            raise TypeError(f"a shard is a JSON object (a dict), got {type(shard).__name__}")
        # Through JSON and back: the state then holds exactly what a replay of
        # the journal would give (string keys, plain dicts and lists).
        raw = jsonutil.dumps(shard)
        own = parse_shard(raw, _UNLIMITED)
        if type(own) is not dict:
            assert isinstance(own, Rejection)
            raise ValueError(f"the shard cannot be written as JSON: {own.reason} ({own.detail})")
        recv_ns = time.time_ns()
        with self._lock:
            self._seq = seq = self._seq + 1
            if self._sink is not None:
                self._sink(seq, recv_ns, envelope, raw)
            self._apply(own, raw)
            self._journal.append((seq, recv_ns, envelope, raw))
            self._accepted += 1
            self.version += 1
            if self._waiters:
                self._changed.notify_all()
            if self._ttls and self._accepted % self.EVICT_EVERY == 0:
                self._evict_expired()

    def _reject(
        self, seq: int, recv_ns: int, envelope: Envelope, line: bytes, why: Rejection
    ) -> None:
        self._reasons[why.reason] += 1
        text = line[: self._sample_chars * 4].decode("utf-8", "replace")[: self._sample_chars]
        self._rejected.append(Rejected(seq, recv_ns, envelope, why.reason, why.detail, text))

    def _apply(self, shard: dict[str, Any], text: bytes) -> None:
        node = self._root_node
        if node is None:
            _merge_plain(self._root, shard, text)
        else:
            self._merge(self._root, shard, node, (), text)

    def _merge(
        self,
        target: dict[str, Any],
        patch: dict[str, Any],
        node: _Node,
        path: tuple[Hashable, ...],
        text: bytes,
    ) -> None:
        # The hot path of ingest: whole subtrees go to the plain merges as soon
        # as no pattern can match below them, and paths are built only where a
        # TTL pattern may still end.
        lits, wild = node.lits, node.wild
        for key, value in patch.items():
            child: _Node | None = lits.get(key, wild) if lits else wild  # type: ignore[assignment]
            if type(value) is dict:
                old = target.get(key)
                if child is None:
                    if type(old) is dict:
                        _merge_plain(old, value, text)
                        continue
                elif child.ttl_below:
                    if type(old) is not dict:
                        old = target[key] = {}
                    sub = (*path, key)
                    if child.ttl is not None:
                        self._touch(child.ttl, sub)
                    self._merge(old, value, child, sub, text)
                    continue
                elif type(old) is dict:
                    if child.counter:
                        _merge_max(old, value, text)
                    else:
                        self._merge(old, value, child, path, text)
                    continue
                # A new subtree: nothing in it can merge by max or expire.
                if _NULL in text:
                    _drop_nulls(value)
            elif value is None:
                target.pop(key, None)
                continue
            elif child is not None:
                if child.counter and (type(value) is int or type(value) is float):
                    old = target.get(key)
                    if (type(old) is int or type(old) is float) and old > value:
                        continue
                if child.ttl is not None:
                    self._touch(child.ttl, (*path, key))
            target[key] = value

    # -- TTL -------------------------------------------------------------------

    def _touch(self, index: int, path: tuple[Hashable, ...]) -> None:
        touched = self._ttls[index].touched
        touched[path] = self._clock()
        touched.move_to_end(path)

    def evict(self) -> int:
        """Evict every expired subtree now; return how many were evicted."""
        with self._lock:
            return self._evict_expired()

    def _evict_expired(self) -> int:
        now = self._clock()
        count = 0
        for ttl in self._ttls:
            touched = ttl.touched
            while touched:
                path, when = next(iter(touched.items()))
                if now - when <= ttl.seconds:
                    break
                del touched[path]
                count += self._evict_path(ttl.pattern, path)
        self._evicted += count
        return count

    def _evict_path(self, pattern: Pattern, path: tuple[Hashable, ...]) -> int:
        parent: Any = self._root
        for key in path[:-1]:
            parent = parent.get(key) if type(parent) is dict else None
        if type(parent) is not dict or path[-1] not in parent:
            return 0  # already deleted by a null, or by an outer eviction
        node: MatchNode | None = self._root_node
        for key in path:
            node = node.step(key) if node is not None else None
        general = _generalize(pattern, path)
        for rel, value in _counter_leaves(node, parent[path[-1]], ()):
            _add_at(self._base, (*general, *rel), value)
        del parent[path[-1]]
        return 1

    # -- reading ---------------------------------------------------------------

    def read(self, fn: Callable[[dict[str, Any]], T]) -> T:
        """Call ``fn(root)`` under the lock and return its result.

        ``fn`` sees the live state without a copy: it must not change it, nor
        keep a reference to any part of it after it returns.
        """
        with self._lock:
            return fn(self._root)

    @contextmanager
    def reading(self) -> Iterator[dict[str, Any]]:
        """``with state.reading() as root:``; the same rules as :meth:`read`."""
        with self._lock:
            yield self._root

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state."""
        with self._lock:
            result: dict[str, Any] = copy_json(self._root)
            return result

    def get(self, *path: Hashable, default: Any = None) -> Any:
        """A copy of the subtree at ``path``, or ``default`` if there is none."""
        with self._lock:
            node: Any = self._root
            for key in path:
                if type(node) is not dict or key not in node:
                    return default
                node = node[key]
            return copy_json(node)

    def total(self, pattern: str | Pattern) -> int | float:
        """Sum of the numeric leaves ``pattern`` selects, evicted ones included."""
        pat = parse_pattern(pattern) if isinstance(pattern, str) else pattern
        with self._lock:
            live: int | float = sum(v for _, v in pat.find(self._root) if _is_number(v))
            kept: int | float = sum(v for _, v in pat.find(self._base) if _is_number(v))
        return live + kept

    def collapse(self, pattern: str | Pattern) -> dict[str, int | float]:
        """Totals of the numeric leaves at and under ``pattern``, by their path below it.

        For the counter pattern ``intents.*.resolution.*.item_scraped.*`` this
        gives ``{"...item_scraped.*.tries": N, "...item_scraped.*.item_sent": M, ...}``:
        each field summed over every intent, writer and domain. A leaf the
        pattern selects itself is summed under the pattern's own text.
        """
        pat = parse_pattern(pattern) if isinstance(pattern, str) else pattern
        sums: dict[tuple[Hashable, ...], int | float] = {}
        with self._lock:
            for tree in (self._root, self._base):
                for _, value in pat.find(tree):
                    for rel, leaf in _numeric_leaves(value, ()):
                        sums[rel] = sums.get(rel, 0) + leaf
        return {
            pat.text + ("." + format_path(rel) if rel else ""): total
            for rel, total in sorted(sums.items(), key=lambda kv: [str(k) for k in kv[0]])
        }

    def wait_for_change(self, version: int, timeout: float | None = None) -> int:
        """Block until :attr:`version` exceeds ``version`` or ``timeout`` passes.

        Returns the version then current. Waking is driven by ingest, not polling.
        """
        with self._lock:
            if self.version > version:
                return self.version
            self._waiters += 1
            try:
                self._changed.wait_for(lambda: self.version > version, timeout)
            finally:
                self._waiters -= 1
            return self.version

    def journal(self, since_seq: int = 0) -> list[JournalEntry]:
        """The kept accepted lines with an ingest number above ``since_seq``, oldest first."""
        with self._lock:
            entries = [e for e in self._journal if e[0] > since_seq]
        return [JournalEntry(*e) for e in entries]

    def last_writes(self, *path: Hashable, limit: int = 5) -> list[JournalEntry]:
        """The newest kept shards that wrote ``path`` (or below, or an ancestor), newest first."""
        with self._lock:
            entries = list(self._journal)
        found: list[JournalEntry] = []
        for raw in reversed(entries):
            entry = JournalEntry(*raw)
            if entry.touches(path):
                found.append(entry)
                if len(found) == limit:
                    break
        return found

    def rejected(self) -> list[Rejected]:
        """The kept samples of rejected lines, oldest first."""
        with self._lock:
            return list(self._rejected)

    @property
    def seq(self) -> int:
        """The ingest number of the newest line, accepted or not."""
        return self._seq

    def stats(self) -> StateStats:
        with self._lock:
            return StateStats(
                version=self.version,
                lines=self._seq,
                accepted=self._accepted,
                rejected=dict(self._reasons),
                bom_stripped=self._bom,
                evicted=self._evicted,
                journal=len(self._journal),
            )


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _to_bytes(line: Any) -> bytes:
    if isinstance(line, str):
        # Lone surrogates are not UTF-8: keep them as invalid bytes so they are rejected.
        return line.encode("utf-8", "surrogatepass")
    if isinstance(line, bytearray | memoryview):
        return bytes(line)
    raise TypeError(f"a log line is bytes or str, got {type(line).__name__}")


def _seconds(pattern: str, seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ConfigError(
            f"TTL for {pattern!r} must be a positive number of seconds, got {seconds!r}"
        )
    return float(seconds)


def _generalize(pattern: Pattern, path: tuple[Hashable, ...]) -> tuple[Hashable, ...]:
    """The path with the keys a wildcard matched replaced by :data:`EVICTED`."""
    out: list[Hashable] = []
    for i, key in enumerate(path):
        seg = pattern.segments[i] if i < len(pattern.segments) else GLOBSTAR
        if seg is GLOBSTAR:
            out += [EVICTED] * (len(path) - i)
            break
        out.append(key if isinstance(seg, str) else EVICTED)
    return tuple(out)


def _counter_leaves(
    node: MatchNode | None, value: Any, rel: tuple[Hashable, ...]
) -> Iterator[tuple[tuple[Hashable, ...], int | float]]:
    if node is None:
        return
    if type(value) is dict:
        for key, sub in value.items():
            yield from _counter_leaves(node.step(key), sub, (*rel, key))
    elif node.counter and _is_number(value):  # type: ignore[attr-defined]
        yield rel, value


def _numeric_leaves(
    value: Any, rel: tuple[Hashable, ...]
) -> Iterator[tuple[tuple[Hashable, ...], int | float]]:
    if type(value) is dict:
        for key, sub in value.items():
            yield from _numeric_leaves(sub, (*rel, key))
    elif type(value) is int or type(value) is float:
        yield rel, value


def _add_at(tree: dict[Hashable, Any], path: tuple[Hashable, ...], value: int | float) -> None:
    for key in path[:-1]:
        nxt = tree.get(key)
        if type(nxt) is not dict:
            nxt = tree[key] = {}
        tree = nxt
    old = tree.get(path[-1], 0)
    tree[path[-1]] = (old if _is_number(old) else 0) + value
