"""``MethodologyCluster``: the ``cluster`` fixture with the methodology's questions.

A :class:`~pytest_livecluster.core.cluster.Cluster` plus what the blades'
methodology lets a test ask: who said hello, what phase an intent is in and
since when, whether a module update landed, the counts with their loss and
the errors grouped. The views read the state and the methodology's
projection (:mod:`.facts`), registered on the state when the cluster is made,
so a hello or an intent's first sighting is never lost with the journal. The
methodology's plugin makes the fixture one of these
through the ``pytest_livecluster_make_cluster`` hook, the same hook a project
with another methodology implements to hand out its own subclass.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..core.cluster import Cluster
from ..core.collector import Collector
from ..core.state import State
from ..core.waiting import TestTiming
from .history import history_of
from .schema import Methodology
from .views import Counts, ErrorGroup, IntentView, Views

__all__ = ["MethodologyCluster"]


class MethodologyCluster(Cluster):
    """The live cluster, read with the blades' logging methodology."""

    def __init__(
        self,
        state: State,
        collector: Collector | None,
        timing: TestTiming,
        methodology: Methodology | None = None,
    ) -> None:
        super().__init__(state, collector, timing)
        self.methodology = methodology or Methodology()
        self.views = Views(state, self.methodology, self.origin_labels, self.host_of)
        #: Counters, errors and source lines over time (the report's throughput and page).
        self.history = history_of(state, self.methodology)

    def begin_test(self, timing: TestTiming) -> None:
        super().begin_test(timing)
        self.note_sources()

    def note_sources(self) -> None:
        """Put the sources' reconnects and gaps since the last call into the history, now."""
        if self.collector is not None:
            self.history.note_sources(time.time(), [h.as_dict() for h in self.collector.health()])

    def intent(self, iid: str) -> IntentView | None:
        """The intent ``iid``: host, module, who answered, its phase and since when."""
        self._watch((self.methodology.intents_key, iid))
        return self.views.intent(iid)

    def intents(self) -> list[IntentView]:
        """Every intent the state holds, in natural order of their ids."""
        self._watch((self.methodology.intents_key,))
        return self.views.intents()

    def hellos(self) -> dict[str, list[str]]:
        """Hosts that said hello, by role."""
        return self.views.hellos()

    def missing_hellos(self, expected: Iterable[str]) -> list[str]:
        """Expected hosts that never said hello."""
        return self.views.missing_hellos(expected)

    def restarts(self) -> dict[str, int]:
        """Hosts that restarted (their ``boot`` value changed), with how many times."""
        return self.views.restarts()

    def stale(self, older_than: float) -> list[IntentView]:
        """Intents older than ``older_than`` seconds that no spotter receives yet."""
        return self.views.stale(older_than)

    def module_updated(self, iid: str) -> bool:
        """Whether the blade the update intent names reports the intent's module."""
        self._watch((self.methodology.intents_key, iid))
        return self.views.module_updated(iid)

    def scraping_started(self, iid: str) -> bool:
        """Whether the intent's scraper answered it."""
        self._watch((self.methodology.intents_key, iid))
        return self.views.scraping_started(iid)

    def counts(self) -> Counts:
        """Counter totals: overall, per scraper and per domain, and the loss to spotters."""
        return self.views.counts()

    def errors(self) -> list[ErrorGroup]:
        """Every error the state and the unstructured output show, grouped."""
        return self.views.errors()
