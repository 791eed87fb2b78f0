"""``Cluster``: what a live test sees, whatever the cluster's methodology (layer: core).

The ``cluster`` fixture is one of these (or a subclass a methodology adds
views to, see :mod:`pytest_livecluster.methodology`): the live state with
reading helpers, the health of every source, the journal, a cursor on the
shards that arrived during the current test, and ``eventually``/
``consistently``. Paths a check reads through :meth:`Cluster.get` (or a
subclass's :meth:`Cluster._watch`) are remembered, so a failure can show how
exactly that part of the state changed and which shards touched it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import tenacity

from .._values import positive_seconds
from . import jsonutil
from .collector import Collector
from .entry import describe_entry
from .invariants import Invariant
from .paths import format_path
from .source import SourceHealth
from .state import JournalEntry, State, StateStats
from .waiting import Check, TestTiming, consistently, eventually, eventually_attempts
from .windows import Mode

__all__ = ["Cluster", "Cursor", "describe_entry"]

MAX_DIFF_LINES = 40


class Cursor:
    """The shards that arrived since a point in time (the start of a test)."""

    def __init__(self, state: State, start_seq: int, start_version: int) -> None:
        self._state = state
        self.start_seq = start_seq
        self.start_version = start_version

    @property
    def count(self) -> int:
        """Accepted shards since the cursor was made."""
        return self._state.version - self.start_version

    def entries(self) -> list[JournalEntry]:
        """The accepted lines since the cursor, oldest first (as far as the journal reaches)."""
        return self._state.journal(self.start_seq)

    @property
    def complete(self) -> bool:
        """Whether :meth:`entries` still holds every shard since the cursor."""
        return len(self.entries()) >= self.count

    def shards(self) -> list[dict[str, Any]]:
        return [entry.shard for entry in self.entries()]

    def touched(self, *path: Hashable) -> list[JournalEntry]:
        """Entries since the cursor whose shard wrote ``path`` (or below, or an ancestor)."""
        return [entry for entry in self.entries() if entry.touches(path)]

    def saw(self, *path: Hashable) -> bool:
        """Whether any shard since the cursor wrote ``path``."""
        return any(entry.touches(path) for entry in self.entries())


@dataclass
class _TestContext:
    cursor: Cursor
    timing: TestTiming
    before: dict[str, Any]


class Cluster:
    """The live cluster, as its logs show it."""

    def __init__(
        self,
        state: State,
        collector: Collector | None,
        timing: TestTiming,
    ) -> None:
        self.state = state
        self.collector = collector
        self._default_timing = timing
        self._test: _TestContext | None = None
        self._watched: list[tuple[Hashable, ...]] | None = None
        self._watcher = 0  # the thread whose check's paths _watched collects
        #: Every invariant registered with :meth:`always`, :meth:`never` or :meth:`sometimes`.
        self.invariants: list[Invariant] = []
        #: Called with each new invariant (the plugin closes it with its fixture).
        self.on_invariant: Callable[[Invariant], None] | None = None

    # -- reading ---------------------------------------------------------------

    def get(self, *path: Hashable, default: Any = None) -> Any:
        """A copy of the subtree at ``path`` (``default`` if there is none)."""
        self._watch(path)
        return self.state.get(*path, default=default)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state."""
        return self.state.snapshot()

    def total(self, pattern: str) -> int | float:
        """Sum of the numeric leaves ``pattern`` selects (see counters in the README)."""
        return self.state.total(pattern)

    def read(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Evaluate ``fn(root)`` on the live state without copying it."""
        return self.state.read(fn)

    @property
    def version(self) -> int:
        return self.state.version

    def stats(self) -> StateStats:
        return self.state.stats()

    def journal(self, since_seq: int = 0) -> list[JournalEntry]:
        return self.state.journal(since_seq)

    def last_writes(self, *path: Hashable, limit: int = 5) -> list[JournalEntry]:
        return self.state.last_writes(*path, limit=limit)

    def health(self) -> list[SourceHealth]:
        """The health of every source followed."""
        return self.collector.health() if self.collector is not None else []

    def origin_labels(self) -> dict[str, dict[str, str]]:
        """Labels of where lines come from (Docker containers), by envelope source."""
        return self.collector.origin_labels() if self.collector is not None else {}

    def host_of(self, origin: str) -> str:
        """The host behind an envelope source (``web-1`` for ``docker:web-1``)."""
        return self.collector.host_of(origin) if self.collector is not None else origin

    def endpoints(self) -> dict[str, str]:
        """Services the sources know the address of (the simulated orchestrator's API)."""
        return self.collector.endpoints() if self.collector is not None else {}

    def _watch(self, path: tuple[Hashable, ...]) -> None:
        """Remember that a check read ``path``, for the failure's diff and shards.

        Only the waiting thread's reads count: an invariant evaluated on the
        ingest thread meanwhile is not what the test is waiting for.
        """
        watched = self._watched
        if watched is not None and path not in watched and threading.get_ident() == self._watcher:
            watched.append(path)

    @property
    def since_test(self) -> Cursor:
        """The shards that arrived since the current test began."""
        if self._test is None:
            return Cursor(self.state, self.state.seq, self.state.version)
        return self._test.cursor

    # -- waiting ---------------------------------------------------------------

    @property
    def timing(self) -> TestTiming:
        return self._test.timing if self._test is not None else self._default_timing

    def eventually(
        self,
        check: Check | None = None,
        *,
        timeout: float | None = None,
        tick: float | None = None,
        what: str | None = None,
        at_least: float | None = None,
    ) -> Any:
        """Wait until ``check`` passes; re-checked on every change of the state.

        With a check: returns the check's value. Without one: returns the
        attempts of the inline form,
        ``for attempt in cluster.eventually(timeout=30): with attempt: assert ...``.
        With ``at_least``, passing sooner than that many seconds fails too.
        """
        __tracebackhide__ = True
        timing = self.timing
        options: dict[str, Any] = {
            "timeout": _seconds("eventually timeout", timing.timeout, timeout),
            "tick": _seconds("eventually tick", timing.tick, tick),
            "what": what,
            "explain": self._explain,
            "at_least": 0.0 if at_least is None else positive_seconds("at_least", at_least),
        }
        if check is None:
            return self._inline(options)
        outer = self._begin_watch()
        try:
            return eventually(self.state, check, **options)
        finally:
            self._end_watch(outer)

    def _inline(self, options: dict[str, Any]) -> Iterator[tenacity.AttemptManager]:
        __tracebackhide__ = True
        outer = self._begin_watch()
        try:
            yield from eventually_attempts(self.state, **options)
        finally:
            self._end_watch(outer)

    def _begin_watch(self) -> list[tuple[Hashable, ...]] | None:
        """Start remembering a check's paths; return the enclosing check's."""
        outer = self._watched
        self._watched = []
        self._watcher = threading.get_ident()
        return outer

    def _end_watch(self, outer: list[tuple[Hashable, ...]] | None) -> None:
        """Back to the enclosing check, which read what the inner one read too."""
        inner = self._watched or []
        if outer is not None:
            outer.extend(path for path in inner if path not in outer)
        self._watched = outer

    def consistently(
        self,
        check: Check,
        *,
        for_: float | None = None,
        tick: float | None = None,
        what: str | None = None,
    ) -> None:
        """Require ``check`` to hold after every accepted shard for ``for_`` seconds.

        The check is evaluated against the state after each shard that touches
        what it read, so a condition broken and repaired within a millisecond
        still fails it, naming the shard that broke it.
        """
        __tracebackhide__ = True
        timing = self.timing
        consistently(
            self.state,
            check,
            window=_seconds("consistently for_", timing.window, for_),
            tick=_seconds("consistently tick", timing.tick, tick),
            what=what,
        )

    # -- session invariants ------------------------------------------------------

    def always(self, check: Check, *, what: str | None = None) -> Invariant:
        """Require ``check`` to hold after every shard from now until the session ends.

        Registered in a fixture, it ends with that fixture instead. A broken
        invariant fails the run, naming the shard that broke it.
        """
        return self._invariant(check, "always", what)

    def never(self, check: Check, *, what: str | None = None) -> Invariant:
        """Require ``check`` never to be truthy after any shard (see :meth:`always`)."""
        return self._invariant(check, "never", what)

    def sometimes(self, check: Check, *, what: str | None = None) -> Invariant:
        """Require ``check`` to be truthy after at least one shard before it ends."""
        return self._invariant(check, "sometimes", what)

    def _invariant(self, check: Check, mode: Mode, what: str | None) -> Invariant:
        if not callable(check):
            raise TypeError(f"{mode} needs a callable check, got {type(check).__name__}")
        invariant = Invariant.open(self.state, check, mode, what=what)
        self.invariants.append(invariant)
        if self.on_invariant is not None:
            self.on_invariant(invariant)
        return invariant

    # -- per test (driven by the plugin) ----------------------------------------

    def begin_test(self, timing: TestTiming) -> None:
        self._test = _TestContext(
            Cursor(self.state, self.state.seq, self.state.version), timing, self.state.snapshot()
        )

    def end_test(self) -> int:
        """Forget the test; return how many shards arrived during it."""
        count = self._test.cursor.count if self._test is not None else 0
        self._test = None
        return count

    # -- failure text ------------------------------------------------------------

    def _explain(self) -> str:
        paths = list(self._watched or [()])
        parts = []
        before = self._test.before if self._test is not None else None
        for path in paths:
            parts.append(self._diff_text(path, before))
            parts.append(self._writes_text(path))
        return "\n".join(p for p in parts if p)

    def _diff_text(self, path: tuple[Hashable, ...], before: dict[str, Any] | None) -> str:
        where = format_path(path) or "the whole state"
        now = self.state.get(*path)
        if before is None:
            return f"{where} now: {_short(now, 2000)}"
        then = _at(before, path)
        if then == now:
            return f"{where} did not change since the test began: {_short(now, 2000)}"
        from deepdiff import DeepDiff  # only to explain a failure: kept off the start-up path

        diff = DeepDiff(then, now, verbose_level=2)
        lines = diff.pretty().splitlines()
        if len(lines) > MAX_DIFF_LINES:
            lines = [*lines[:MAX_DIFF_LINES], f"... and {len(lines) - MAX_DIFF_LINES} more changes"]
        body = "\n".join(f"  {line}" for line in lines)
        return f"{where} since the test began:\n{body}"

    def _writes_text(self, path: tuple[Hashable, ...]) -> str:
        entries = self.state.last_writes(*path, limit=5)
        if not entries:
            return f"no kept shard wrote {format_path(path) or 'the state'}"
        lines = [f"last shards that wrote {format_path(path) or 'the state'} (newest first):"]
        lines += [f"  {describe_entry(entry)}" for entry in entries]
        return "\n".join(lines)


def _seconds(name: str, default: float, given: float | None) -> float:
    """A waiting argument of a call, held to the same range as the settings."""
    return default if given is None else positive_seconds(name, given)


def _at(tree: Any, path: tuple[Hashable, ...]) -> Any:
    for key in path:
        if type(tree) is not dict or key not in tree:
            return None
        tree = tree[key]
    return tree


def _short(value: Any, limit: int) -> str:
    text = jsonutil.dumps_text(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."
