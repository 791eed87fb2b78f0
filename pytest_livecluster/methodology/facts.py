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

from ..core.projection import Projection
from ._kernels import FactsKernel
from .schema import Keys, key_names

__all__ = ["MethodologyFacts"]

#: How many distinct sources are remembered as writers of one host key.
MAX_WRITERS: Final = 4


class MethodologyFacts(Projection):
    """Hello latches, restarts, writers and intent timelines (read under :meth:`reading`)."""

    name = "methodology"

    def __init__(self, keys: Keys | None = None) -> None:
        super().__init__()
        self.keys = key_names(keys or Keys())
        k = self.keys
        self._intents_key = k.intents_key
        self._resolution_key = k.resolution_key
        kernel = FactsKernel(
            k.intents_key,
            k.resolution_key,
            k.hello_key,
            k.hello_value,
            k.boot_key,
            WRITER_SEPARATOR,
            MAX_WRITERS,
        )
        #: The compiled per-shard work; its tables are this projection's facts.
        self.apply = kernel.apply  # type: ignore[method-assign]
        #: host -> when it first said hello
        self.hello: dict[str, float] = kernel.hello
        #: host key -> the last ``boot`` value it wrote
        self.boots: dict[str, Any] = kernel.boots
        #: host key -> how often its ``boot`` value changed
        self.restarts: dict[str, int] = kernel.restarts
        #: host -> envelope sources that wrote it, first first
        self.writers: dict[str, list[str]] = kernel.writers
        #: intent id -> {"": first seen, host: first write under its resolution}
        self.intents: dict[str, dict[str, float]] = kernel.intents

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
