"""Projections: facts kept from every accepted shard, as ingest applies them.

The state holds the latest value of every key; the journal holds the recent
lines. Neither can answer "did this blade ever say hello?" once its ``msg``
was replaced and the journal has rolled. A :class:`Projection` can: the state
calls :meth:`Projection.apply` for every accepted shard, right after merging
it and in the order shards are applied, and the projection keeps what it
needs (a latch, a first-seen time, a counter series). Readers ask the
projection, never the journal, so a verdict rests on every shard.

Rules for a projection:

* ``apply(shard, entry)`` runs with the state's lock held, on the thread that
  ingested the line. It must be cheap (O(size of the shard)) and must not keep
  a reference to ``shard`` or any part of it: those objects are now the state's.
  ``shard`` is the shard as merged: nulls inside a subtree that did not exist
  before are already dropped. ``entry`` is the line's
  :class:`~.entry.JournalEntry` (ingest number, time, envelope, raw text).
* ``evicted(path)`` is called when the state's TTL evicts ``path``; a
  projection drops what it kept about that subtree, so its facts live and die
  with the state's.
* Read a projection's facts inside :meth:`Projection.reading`, which takes the
  state's lock and tells an open window (``consistently``, ``always``...) that
  its check depends on them.
* An exception from ``apply`` is counted on the projection
  (:attr:`Projection.errors`, :attr:`Projection.first_error`) and ingest goes
  on.

Register a projection before the first line (``State.add_projection``, or
the ``pytest_livecluster_projections`` hook in a live run). Replaying a
recording into a state with the same projections rebuilds the same facts.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from .entry import JournalEntry
from .state import Observer, State, note_read

__all__ = ["JournalEntry", "Projection"]


class Projection(Observer):
    """Base class of projections: override :meth:`apply` (and :meth:`evicted`)."""

    #: A name for reports and errors (the class name by default).
    name: str = ""
    is_window = False

    def __init__(self) -> None:
        self.state: State | None = None
        self.errors = 0
        self.first_error: str | None = None
        if not self.name:
            self.name = type(self).__name__

    def attach(self, state: State) -> None:
        """Called once by :meth:`State.add_projection`."""
        if self.state is not None and self.state is not state:
            raise ValueError(f"projection {self.name} already belongs to another state")
        self.state = state

    def apply(self, shard: dict[str, Any], entry: JournalEntry) -> None:
        """Keep what this projection needs from one accepted shard."""

    def evicted(self, path: tuple[Hashable, ...]) -> None:
        """Drop what was kept about ``path``, which the state's TTL evicted."""

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"[:500]

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the state's lock while reading this projection's facts."""
        note_read()
        if self.state is None:
            yield
            return
        with self.state._lock:
            yield
