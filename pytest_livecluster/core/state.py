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
* **Journal.** Every line gets an ingest number; the recent accepted
  lines are kept with their envelope, so a reader can ask which source last
  wrote a path, and when.

Threading: one writer (the collector) and any number of readers. The writer
holds the lock while it merges; readers evaluate predicates under the same lock
with :meth:`State.read` and copy only what they keep.

What runs for every line is in :mod:`._state`, which the build compiles with
mypyc; mypyc drops docstrings and signatures, so the public names are defined
here, in Python: :class:`State` subclasses the compiled engine and adds the
documented constructor and readers, and :func:`merge_patch` calls the compiled
merge. :meth:`State.ingest` is the engine's own method, called with no Python
frame in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ..exceptions import ConfigError
from . import _native, _state  # noqa: F401  (_native first: it chooses the engine's build)
from ._state import EVICTED, Engine, Observer, Sink, copy_json
from .entry import JournalEntry
from .ingest import DEFAULT_LIMITS, DIRECT, Envelope, Limits
from .paths import Pattern, format_path, parse_pattern

__all__ = [
    "EVICTED",
    "JournalEntry",
    "Observer",
    "Rejected",
    "Sink",
    "State",
    "StateStats",
    "merge_patch",
    "tracking_reads",
]

T = TypeVar("T")


class _Reads(threading.local):
    """What the check being evaluated on this thread has read so far."""

    paths: set[tuple[Hashable, ...]] | None = None
    evaluating = False


_READS = _Reads()
_WHOLE: tuple[Hashable, ...] = ()


def _read(path: tuple[Hashable, ...]) -> None:
    paths = _READS.paths
    if paths is not None:
        paths.add(path)


@contextmanager
def tracking_reads(*, evaluating: bool = False) -> Iterator[set[tuple[Hashable, ...]]]:
    """Collect the paths this thread reads from any state inside the block.

    :meth:`State.get` adds its path; a reader that sees more (``read``,
    ``snapshot``, ``total``, the journal, a projection) adds ``()``: the whole
    state. ``evaluating`` marks a check that runs while ingest holds the lock,
    which must not wait for a change.
    """
    saved = (_READS.paths, _READS.evaluating)
    paths: set[tuple[Hashable, ...]] = set()
    _READS.paths, _READS.evaluating = paths, evaluating
    try:
        yield paths
    finally:
        _READS.paths, _READS.evaluating = saved


def note_read(path: tuple[Hashable, ...] = _WHOLE) -> None:
    """Tell a window that its check read ``path`` (``()``: anything may matter)."""
    _read(path)


def merge_patch(target: Any, patch: Any) -> Any:
    """Return RFC 7386 ``MergePatch(target, patch)``.

    Neither input is mutated and the result shares no mutable object with them.
    """
    return _state.merge_patch(target, patch)


# --------------------------------------------------------------------------
# Journal and statistics
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------


class State(Engine):
    """The merged state of a cluster.

    :param counters: patterns under which numeric leaves merge by ``max``.
    :param ttl: ``{pattern: seconds}``; subtrees not written for that long are evicted.
    :param limits: what a line may be before it is rejected.
    :param journal_size: how many recent accepted lines the journal keeps.
    :param journal_bytes: how many bytes of lines it keeps at most (the newest
        line is always kept).
    :param rejected_size: how many recent rejected lines are kept as samples.
    :param sample_chars: how much of a rejected line a sample keeps.
    :param clock: monotonic seconds, for TTL (injectable for tests).
    :param sink: called with ``(seq, recv_ns, envelope, raw)`` for every line,
        accepted or not, in ingest order (a recording is such a sink).

    ``state.ingest(line, envelope=None) -> bool`` parses one log line (bytes
    or str) and merges it, returning whether it was accepted. It never raises
    for bad input: a line that is not a shard is counted by reason and kept as
    a sample (:meth:`rejected`). ``envelope`` says where the line came from
    (:class:`~.ingest.Envelope`; ``None`` for :data:`~.ingest.DIRECT`).
    :meth:`merge` takes an object instead. Each accepted shard bumps
    ``version`` and wakes :meth:`wait_for_change`; ``counter_patterns`` and
    ``limits`` hold the configuration.

    ``ingest`` is the compiled engine's own method, which the collector calls
    for every line: a documented Python method in between would cost 2% of
    ingest throughput, so it is documented here (a compiled build keeps no
    docstring of its own).
    """

    __slots__ = ()  # as the compiled engine: no per-instance dict

    def __init__(
        self,
        *,
        counters: Iterable[str] = (),
        ttl: Mapping[str, Any] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        journal_size: int = 10_000,
        journal_bytes: int = 64 * 1024 * 1024,
        rejected_size: int = 1_000,
        sample_chars: int = 512,
        clock: Callable[[], float] = time.monotonic,
        sink: Sink | None = None,
    ) -> None:
        super().__init__(
            counters=counters,
            ttl=ttl,
            limits=limits,
            journal_size=journal_size,
            journal_bytes=journal_bytes,
            rejected_size=rejected_size,
            sample_chars=sample_chars,
            clock=clock,
            sink=sink,
        )

    # -- observers -------------------------------------------------------------

    def add_projection(self, projection: Observer) -> None:
        """Run ``projection`` on every accepted shard from the first one on.

        A projection added after a line was ingested would miss facts, so
        that is an error: register projections before the collector starts
        (see :mod:`.projection`).
        """
        with self._lock:
            if self._seq:
                name = getattr(projection, "name", type(projection).__name__)
                raise ConfigError(
                    f"projection {name} registered after {self._seq} lines were ingested: "
                    "a projection must see every shard, so register it before the first line"
                )
            attach = getattr(projection, "attach", None)
            if attach is not None:
                attach(self)
            projections = [o for o in self._observers if not getattr(o, "is_window", False)]
            windows = [o for o in self._observers if getattr(o, "is_window", False)]
            self._observers = (*projections, projection, *windows)

    def projections(self) -> tuple[Observer, ...]:
        """The registered projections, in the order they run."""
        return tuple(o for o in self._observers if not getattr(o, "is_window", False))

    def open_window(self, window: Any) -> None:
        """Evaluate ``window`` now, then after every accepted shard until closed."""
        with self._lock:
            window.evaluate(None)
            self._observers = (*self._observers, window)

    def close_window(self, window: Any) -> None:
        """Stop evaluating ``window``."""
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not window)

    def recheck(self, window: Any) -> None:
        """Evaluate ``window`` now (for what changes with time alone)."""
        with self._lock:
            if not window.done:
                window.evaluate(None)

    def set_sink(self, sink: Sink | None) -> None:
        """Send every line ingested from now on to ``sink`` (see the constructor)."""
        with self._lock:
            self._sink = sink

    # -- writing -------------------------------------------------------------

    def ingest_batch(self, batch: list[tuple[bytes, Envelope]]) -> int:
        """Ingest each ``(line, envelope)`` of ``batch`` in order, as :meth:`ingest` would,
        under one taking of the lock; return how many were accepted.

        For a source that reads many lines at once (a chunk of a Docker log): the
        lines share one arrival time, and readers wait for the whole batch.
        """
        return Engine.ingest_batch(self, batch)

    def merge(self, shard: Mapping[str, Any], envelope: Envelope = DIRECT) -> None:
        """Merge a shard given as an object; the state keeps no reference to it."""
        Engine.merge(self, shard, envelope)

    def evict(self) -> int:
        """Evict every expired subtree now; return how many were evicted."""
        return Engine.evict(self)

    # -- reading ---------------------------------------------------------------

    def read(self, fn: Callable[[dict[str, Any]], T]) -> T:
        """Call ``fn(root)`` under the lock and return its result.

        ``fn`` sees the live state without a copy: it must not change it, nor
        keep a reference to any part of it after it returns.
        """
        _read(_WHOLE)
        with self._lock:
            return fn(self._root)

    @contextmanager
    def reading(self) -> Iterator[dict[str, Any]]:
        """``with state.reading() as root:``; the same rules as :meth:`read`."""
        _read(_WHOLE)
        with self._lock:
            yield self._root

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state."""
        _read(_WHOLE)
        with self._lock:
            result: dict[str, Any] = copy_json(self._root)
            return result

    def get(self, *path: Hashable, default: Any = None) -> Any:
        """A copy of the subtree at ``path``, or ``default`` if there is none."""
        _read(path)
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
        _read(_WHOLE)
        with self._lock:
            live = _state.total(pat, self._root)
            kept = _state.total(pat, self._base)
        return live + kept

    def collapse(self, pattern: str | Pattern) -> dict[str, int | float]:
        """Totals of the numeric leaves at and under ``pattern``, by their path below it.

        For the counter pattern ``intents.*.resolution.*.item_scraped.*`` this
        gives ``{"...item_scraped.*.tries": N, "...item_scraped.*.item_sent": M, ...}``:
        each field summed over every intent, writer and domain. A leaf the
        pattern selects itself is summed under the pattern's own text.
        """
        pat = parse_pattern(pattern) if isinstance(pattern, str) else pattern
        _read(_WHOLE)
        with self._lock:
            sums = _state.collapse(pat, (self._root, self._base))
        return {
            pat.text + ("." + format_path(rel) if rel else ""): total
            for rel, total in sorted(sums.items(), key=lambda kv: [str(k) for k in kv[0]])
        }

    def wait_for_change(self, version: int, timeout: float | None = None) -> int:
        """Block until :attr:`version` exceeds ``version`` or ``timeout`` passes.

        Returns the version then current. Waking is driven by ingest, not polling.
        """
        if _READS.evaluating:
            raise RuntimeError(
                "a check evaluated on every shard cannot wait for a change "
                "(no eventually or consistently inside consistently, always, never or sometimes)"
            )
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
        _read(_WHOLE)
        with self._lock:
            rows = [row for row in self._journal if row.seq > since_seq]
        return [row.entry() for row in rows]

    def last_writes(self, *path: Hashable, limit: int = 5) -> list[JournalEntry]:
        """The newest kept shards that wrote ``path`` (or below, or an ancestor), newest first."""
        _read(_WHOLE)
        with self._lock:
            rows = list(self._journal)
        found: list[JournalEntry] = []
        for row in reversed(rows):
            entry = row.entry()
            if entry.touches(path):
                found.append(entry)
                if len(found) == limit:
                    break
        return found

    def rejected(self) -> list[Rejected]:
        """The kept samples of rejected lines, oldest first."""
        with self._lock:
            rows = list(self._rejected)
        return [Rejected(*row) for row in rows]

    @property
    def seq(self) -> int:
        """The ingest number of the newest line, accepted or not."""
        return self._seq

    def stats(self) -> StateStats:
        """Counts since the state was made (see :class:`StateStats`)."""
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
