"""The methodology's projection: the facts its views need, kept from every shard.

:class:`MethodologyFacts` runs on every accepted shard (see
:mod:`pytest_livecluster.core.projection`) and keeps:

* a **hello latch** per host: when it first said hello, even after its
  ``msg`` was replaced and the journal rolled;
* **restarts** per host: how often its ``boot`` value changed;
* the **writers** of each host key (top-level and under an intent's
  resolution): the envelope sources its lines came from, which give a host
  the ``livecluster.role`` label of its container;
* per intent, when it was **first seen** and when each host first wrote
  under its resolution: the phase times of :class:`~.views.IntentView`.

Each fact is dropped with the subtree the state's TTL evicts, and an intent
deleted by a null shard is forgotten with it. Times are the writer's own
timestamps where the source has them, else arrival times.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final

from livecluster.keys import WRITER_SEPARATOR

from ..core.entry import JournalEntry
from ..core.projection import Projection
from .schema import Keys, key_names

__all__ = ["MethodologyFacts"]

#: How many distinct sources are remembered as writers of one host key.
MAX_WRITERS: Final = 4

_NONE: Final = object()


class MethodologyFacts(Projection):
    """Hello latches, restarts, writers and intent timelines (read under :meth:`reading`)."""

    name = "methodology"

    def __init__(self, keys: Keys | None = None) -> None:
        super().__init__()
        self.keys = key_names(keys or Keys())
        k = self.keys
        self._intents_key = k.intents_key
        self._resolution_key = k.resolution_key
        self._hello_key = k.hello_key
        self._hello_value = k.hello_value
        self._boot_key = k.boot_key
        #: host -> when it first said hello
        self.hello: dict[str, float] = {}
        #: host -> the last ``boot`` value it wrote
        self.boots: dict[str, Any] = {}
        #: host -> how often its ``boot`` value changed
        self.restarts: dict[str, int] = {}
        #: host key -> envelope sources that wrote it, first first
        self.writers: dict[str, list[str]] = {}
        #: intent id -> {"": first seen, host: first write under its resolution}
        self.intents: dict[str, dict[str, float]] = {}

    def apply(self, shard: dict[str, Any], entry: JournalEntry) -> None:
        # Runs for every shard: written flat, with no call per key.
        envelope = entry.envelope
        source = envelope.source
        when = (envelope.origin_ns or entry.recv_ns) / 1e9
        writers = self.writers
        for key, value in shard.items():
            if key == self._intents_key:
                if type(value) is not dict:
                    continue
                timelines = self.intents
                for iid, body in value.items():
                    if type(body) is not dict:
                        if body is None:  # the intent was deleted
                            timelines.pop(iid, None)
                        continue
                    seen = timelines.get(iid)
                    if seen is None:
                        seen = timelines[iid] = {"": when}
                    resolution = body.get(self._resolution_key)
                    if type(resolution) is not dict:
                        continue
                    for writer in resolution:
                        host = writer.partition(WRITER_SEPARATOR)[0]  # a process: its host
                        if host not in seen:
                            seen[host] = when
                        known = writers.get(host)
                        if known is None:
                            writers[host] = [source]
                        elif source not in known and len(known) < MAX_WRITERS:
                            known.append(source)
                continue
            host = key.partition(WRITER_SEPARATOR)[0]  # a process's key: its host
            known = writers.get(host)
            if known is None:
                writers[host] = [source]
            elif source not in known and len(known) < MAX_WRITERS:
                known.append(source)
            if type(value) is not dict:
                continue
            if host not in self.hello and value.get(self._hello_key) == self._hello_value:
                self.hello[host] = when
            boot = value.get(self._boot_key)
            if boot is not None:
                last = self.boots.get(key, _NONE)
                if last is not _NONE and last != boot:
                    self.restarts[key] = self.restarts.get(key, 0) + 1
                self.boots[key] = boot

    def evicted(self, path: tuple[Hashable, ...]) -> None:
        if not path:
            return
        if path[0] == self._intents_key:
            if len(path) == 1:
                self.intents.clear()
            elif len(path) == 2:
                self.intents.pop(str(path[1]), None)
            elif len(path) == 4 and path[2] == self._resolution_key:
                self.intents.get(str(path[1]), {}).pop(str(path[3]), None)
            return
        if len(path) == 1:
            host = str(path[0])
            for table in (self.hello, self.boots, self.restarts, self.writers):
                table.pop(host, None)

    # -- reading (under reading()) -------------------------------------------------------

    def timelines(self, ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Copies of the timelines of ``ids`` (missing ids are left out)."""
        with self.reading():
            return {iid: dict(self.intents[iid]) for iid in ids if iid in self.intents}
