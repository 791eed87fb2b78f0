"""The state engine: the compiled writer under :class:`.state.State`.

The build compiles this module with mypyc, which keeps neither docstrings nor
the signatures ``help()`` and :func:`inspect.signature` read. So nothing here
is public: :mod:`.state` is a Python module whose ``State`` subclasses
:class:`Engine` and holds the documented API (the readers are written there);
this module holds what runs for every line, and it runs compiled.

:class:`Engine` allows that interpreted subclass. mypyc then dispatches every
method call on ``self`` through Python attribute lookup, since a subclass
might override the method, which costs ingest about 14% of its throughput.
So the writer's helpers are module-level functions taking the engine: those are
direct C calls. Keep it so: a method called from :meth:`Engine.ingest` is a
function here.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..exceptions import ConfigError
from . import jsonutil
from ._fastpath import quick_shard
from ._native import mypyc_attr
from ._paths import GLOBSTAR, MatchNode, PatternSet
from .entry import UNLIMITED, JournalEntry
from .ingest import BOM, DIRECT, Envelope, Limits, Rejection, parse_shard
from .paths import Pattern, parse_pattern

if TYPE_CHECKING:  # native integers when compiled; annotations only from source
    from mypy_extensions import i64

__all__ = [
    "EVICTED",
    "UNLIMITED",
    "Engine",
    "JournalRow",
    "Observer",
    "Sink",
    "copy_json",
    "merge_patch",
]
_time_ns: Final = time.time_ns
_new_tuple: Final[Any] = tuple.__new__
_NULL: Final = b"null"
_BOM_FIRST: Final = 0xEF

Sink = Callable[[int, int, Envelope, bytes], None]
RejectedRow = tuple[int, int, Envelope, str, str, str]  # seq, recv_ns, envelope, reason, ...


class JournalRow:
    """One kept accepted line, as the journal holds it.

    A compiled class keeps ``seq`` and ``recv_ns`` unboxed inside the row:
    one object per line instead of a tuple and two integers, which matters
    when the oldest row, cold in memory, is dropped for each new one.
    """

    __slots__ = ("envelope", "raw", "recv_ns", "seq")

    def __init__(self, seq: i64, recv_ns: i64, envelope: Envelope, raw: bytes) -> None:
        self.seq = seq
        self.recv_ns = recv_ns
        self.envelope = envelope
        self.raw = raw

    def entry(self) -> JournalEntry:
        return _entry(self.seq, self.recv_ns, self.envelope, self.raw)


def _entry(seq: int, recv_ns: int, envelope: Envelope, raw: bytes) -> JournalEntry:
    """A journal entry, made without the named tuple's Python ``__new__``: once per shard."""
    entry: JournalEntry = _new_tuple(JournalEntry, (seq, recv_ns, envelope, raw))
    return entry


@mypyc_attr(allow_interpreted_subclasses=True)
class Observer:
    """What the engine calls after each accepted shard (projections and windows).

    ``apply`` runs with the engine's lock held, in the order shards are
    applied; ``evicted`` when a TTL eviction removed ``path``. Neither may keep
    a reference to the shard or to any part of it: its objects are the state's.
    """

    def apply(self, shard: dict[str, Any], entry: JournalEntry) -> None:
        raise NotImplementedError

    def evicted(self, path: tuple[Hashable, ...]) -> None:
        return None

    def failed(self, exc: Exception) -> None:
        """``apply`` or ``evicted`` raised ``exc``: the engine goes on."""
        raise NotImplementedError


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
    # Every Mapping is a JSON object (RFC 7386 knows no dict subclasses).
    if not isinstance(patch, Mapping):
        return copy_json(patch)
    result = copy_json(target) if isinstance(target, Mapping) else {}
    _merge_plain(result, copy_json(patch), _NULL)
    return result


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value; other mappings become dicts, tuples lists."""
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value  # immutable: the common leaves, without an ABC check
    if kind is list:
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


@dataclass
class _Ttl:
    pattern: Pattern
    seconds: float
    touched: collections.OrderedDict[tuple[Hashable, ...], float] = field(
        default_factory=collections.OrderedDict
    )


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


@mypyc_attr(allow_interpreted_subclasses=True)
class Engine:
    """The writer's half of :class:`.state.State`, where the parameters and defaults are."""

    EVICT_EVERY: Final = 256

    def __init__(
        self,
        *,
        counters: Iterable[str],
        ttl: Mapping[str, Any] | None,
        limits: Limits,
        journal_size: int,
        journal_bytes: int,
        rejected_size: int,
        sample_chars: int,
        clock: Callable[[], float],
        sink: Sink | None,
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
        # Re-entrant: a window's check reads the state while ingest holds the lock.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._waiters = 0
        self._root: dict[str, Any] = {}
        self._base: dict[Hashable, Any] = {}  # counters folded out of evicted subtrees
        self._journal: collections.deque[JournalRow] = collections.deque(maxlen=journal_size)
        self._journal_size = journal_size
        # The journal is bounded in bytes too: a few huge lines must not hold gigabytes.
        self._journal_max_bytes = journal_bytes
        self._journal_bytes = 0
        self._rejected: collections.deque[RejectedRow] = collections.deque(maxlen=rejected_size)
        self._reasons: collections.Counter[str] = collections.Counter()
        self._seq = 0
        self._accepted = 0
        self._bom = 0
        self._evicted = 0
        self.version = 0
        # Projections, then open windows: called after every accepted shard.
        self._observers: tuple[Observer, ...] = ()

    def ingest(self, line: Any, envelope: Envelope | None = None) -> bool:
        """Parse one log line and merge it; return whether it was accepted.

        Never raises for bad input: a line that is not a shard is counted by
        reason and kept as a sample. ``None`` stands for the envelope
        :data:`~.ingest.DIRECT` (a default mypyc can show in a signature).
        """
        if envelope is None:
            envelope = DIRECT
        if type(line) is not bytes:
            line = _to_bytes(line)
        shard = _parse(self, line)
        recv_ns = _time_ns()
        lock = self._lock
        lock.acquire()  # cheaper than ``with`` once compiled
        try:
            return _take(self, shard, recv_ns, envelope, line)
        finally:
            lock.release()

    def ingest_batch(self, batch: list[tuple[bytes, Envelope]]) -> int:
        """:meth:`ingest` each ``(line, envelope)`` of ``batch``, in order, under one
        taking of the lock; return how many were accepted.

        For a source that reads many lines at once (a chunk of a Docker log): the
        lines share one arrival time, and a reader waits for the whole batch.
        """
        recv_ns = _time_ns()
        accepted = 0
        lock = self._lock
        lock.acquire()
        try:
            for line, envelope in batch:
                if type(line) is not bytes:
                    line = _to_bytes(line)
                if _take(self, _parse(self, line), recv_ns, envelope, line):
                    accepted += 1
        finally:
            lock.release()
        return accepted

    def merge(self, shard: Mapping[str, Any], envelope: Envelope = DIRECT) -> None:
        if not isinstance(shard, Mapping):
            raise TypeError(f"a shard is a JSON object (a dict), got {type(shard).__name__}")
        # Through JSON and back: the state then holds exactly what a replay of
        # the journal would give (string keys, plain dicts and lists).
        raw = jsonutil.dumps(shard)
        own = parse_shard(raw, UNLIMITED)
        if type(own) is not dict:
            assert isinstance(own, Rejection)
            raise ValueError(f"the shard cannot be written as JSON: {own.reason} ({own.detail})")
        recv_ns = time.time_ns()
        with self._lock:
            self._seq = seq = self._seq + 1
            if self._sink is not None:
                self._sink(seq, recv_ns, envelope, raw)
            _accept(self, own, seq, recv_ns, envelope, raw)

    def evict(self) -> int:
        with self._lock:
            return _evict_expired(self)


# Called with the engine's lock held, from here down.


def _parse(engine: Engine, line: bytes) -> dict[str, Any] | Rejection:
    """The shard of ``line``, or why it is not one (no lock needed)."""
    shard: dict[str, Any] | Rejection | None = quick_shard(
        line, engine._max_bytes, engine._max_depth
    )
    if shard is None:
        shard = parse_shard(line, engine.limits)
    return shard


def _take(
    engine: Engine,
    shard: dict[str, Any] | Rejection,
    recv_ns: int,
    envelope: Envelope,
    line: bytes,
) -> bool:
    """Number one parsed line, then accept or reject it (lock held); whether accepted."""
    engine._seq = seq = engine._seq + 1
    if engine._sink is not None:
        engine._sink(seq, recv_ns, envelope, line)
    if type(shard) is not dict:
        assert isinstance(shard, Rejection)
        _reject(engine, seq, recv_ns, envelope, line, shard)
        return False
    if line[0] == _BOM_FIRST and line.startswith(BOM):
        engine._bom += 1
    _accept(engine, shard, seq, recv_ns, envelope, line)
    return True


def _accept(
    engine: Engine,
    shard: dict[str, Any],
    seq: int,
    recv_ns: int,
    envelope: Envelope,
    line: bytes,
) -> None:
    node = engine._root_node
    if node is None:
        _merge_plain(engine._root, shard, line)
    else:
        _merge(engine, engine._root, shard, node, (), line)
    journal = engine._journal
    if len(journal) == engine._journal_size:  # the append below drops the oldest entry
        engine._journal_bytes -= len(journal[0].raw)
    journal.append(JournalRow(seq, recv_ns, envelope, line))
    engine._journal_bytes += len(line)
    while engine._journal_bytes > engine._journal_max_bytes and len(journal) > 1:
        engine._journal_bytes -= len(journal.popleft().raw)
    engine._accepted += 1
    engine.version += 1
    if engine._ttls and engine._accepted % Engine.EVICT_EVERY == 0:
        _evict_expired(engine)
    observers = engine._observers
    if observers:
        entry = _entry(seq, recv_ns, envelope, line)
        for observer in observers:
            try:
                observer.apply(shard, entry)
            except Exception as exc:  # a projection's bug must not stop ingest
                observer.failed(exc)
    if engine._waiters:
        engine._changed.notify_all()


def _reject(
    engine: Engine, seq: int, recv_ns: int, envelope: Envelope, line: bytes, why: Rejection
) -> None:
    engine._reasons[why.reason] += 1
    chars = engine._sample_chars
    text = line[: chars * 4].decode("utf-8", "replace")[:chars]
    engine._rejected.append((seq, recv_ns, envelope, why.reason, why.detail, text))


def _merge(
    engine: Engine,
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
                    _touch(engine, child.ttl, sub)
                _merge(engine, old, value, child, sub, text)
                continue
            elif type(old) is dict:
                if child.counter:
                    _merge_max(old, value, text)
                else:
                    _merge(engine, old, value, child, path, text)
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
                _touch(engine, child.ttl, (*path, key))
        target[key] = value


# -- TTL ----------------------------------------------------------------------


def _touch(engine: Engine, index: int, path: tuple[Hashable, ...]) -> None:
    touched = engine._ttls[index].touched
    touched[path] = engine._clock()
    touched.move_to_end(path)


def _evict_expired(engine: Engine) -> int:
    now = engine._clock()
    count = 0
    for ttl in engine._ttls:
        touched = ttl.touched
        while touched:
            path, when = next(iter(touched.items()))
            if now - when <= ttl.seconds:
                break
            del touched[path]
            count += _evict_path(engine, ttl.pattern, path)
    engine._evicted += count
    return count


def _evict_path(engine: Engine, pattern: Pattern, path: tuple[Hashable, ...]) -> int:
    parent: Any = engine._root
    for key in path[:-1]:
        parent = parent.get(key) if type(parent) is dict else None
    if type(parent) is not dict or path[-1] not in parent:
        return 0  # already deleted by a null, or by an outer eviction
    node: MatchNode | None = engine._root_node
    for key in path:
        node = node.step(key) if node is not None else None
    general = _generalize(pattern, path)
    for rel, value in _counter_leaves(node, parent[path[-1]], ()):
        _add_at(engine._base, (*general, *rel), value)
    del parent[path[-1]]
    for observer in engine._observers:
        try:
            observer.evicted(path)
        except Exception as exc:
            observer.failed(exc)
    return 1


# -- reading (the readers themselves are in .state) ------------------------------


def total(pattern: Pattern, tree: Any) -> int | float:
    """Sum of the numeric leaves ``pattern`` selects in ``tree``."""
    result: int | float = sum(v for _, v in pattern.find(tree) if _is_number(v))
    return result


def collapse(pattern: Pattern, trees: Iterable[Any]) -> dict[tuple[Hashable, ...], int | float]:
    """Totals of the numeric leaves at and under ``pattern``, by their path below it."""
    sums: dict[tuple[Hashable, ...], int | float] = {}
    for tree in trees:
        for _, value in pattern.find(tree):
            for rel, leaf in _numeric_leaves(value, ()):
                sums[rel] = sums.get(rel, 0) + leaf
    return sums


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
