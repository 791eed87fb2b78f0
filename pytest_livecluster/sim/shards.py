"""Every shard the simulated cluster writes: the cluster's logging methodology in one place.

Each writer keeps to its own keys, so the merged state reads as a picture of
the cluster::

    {"scraper-1": {"msg": "Hello World", "boot": 1, "module": "scraper@1.4"}}
    {"intents": {"i-1": {"host": "scraper-1", "module": "scraper@1.4",
                         "kind": "scrape", "at": 1764072000.31}}}
    {"intents": {"i-1": {"resolution": {"scraper-1": {"started": 1764072000.35}}}}}
    {"intents": {"i-1": {"resolution": {"scraper-1/4242-a1b2c3": {"item_scraped":
        {"site1.example": {"tries": 3, "time_spent": 0.63, "item_collected": 3,
         "item_sent_tries": 3, "item_sent": 3, "errors": 0}}}}}}}
    {"intents": {"i-1": {"resolution": {"spotter-2/4250-c3d4e5": {"received": 17,
        "from": "scraper-1"}}}}}
    {"scraper-2": {"module": "scraper@1.5", "msg": "module updated"}}
    {"intents": {"i-2": {"resolution": {"scraper-2": {"updated": "scraper@1.5"}}}}}
    {"scraper-1": {"errors": {"FetchTimeout":
        {"count": 3, "last": "...", "domain": "news.example"}}}}
    {"orchestrator": {"faults": {"lossy_spotter": {"host": "spotter-1", "share": 0.3}}}}

Counts are cumulative per writer (``item_scraped`` per intent and domain,
``received`` per intent, ``errors.<type>.count`` per process), so they merge
by max and sum over writers. Items and receipts are counted by the writer kit
(:mod:`livecluster`, through :class:`~.output.Output`), under each process's
writer key ``host/incarnation``; this module builds the shards written as
they are. The names views read come from the methodology's vocabulary
(:class:`~pytest_livecluster.methodology.schema.Keys`, the one place they are
written); the few below are the simulator's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ..methodology.schema import Keys

__all__ = ["Keys", "Shard", "Shards"]

Shard = dict[str, Any]

#: What a blade says after a module update, under the hello key.
MODULE_UPDATED: Final = "module updated"
#: A name only the simulator writes: its fault table.
FAULTS: Final = "faults"


@dataclass(frozen=True)
class Shards:
    """Builds the shards of one process, ``host``."""

    host: str
    keys: Keys = field(default_factory=Keys)

    def hello(self, boot: int, module: str) -> Shard:
        k = self.keys
        return {self.host: {k.hello_key: k.hello_value, k.boot_key: boot, k.module_key: module}}

    def module_updated(self, module: str) -> Shard:
        k = self.keys
        return {self.host: {k.module_key: module, k.hello_key: MODULE_UPDATED}}

    def error(self, kind: str, count: int, last: str, domain: str | None = None) -> Shard:
        detail: dict[str, Any] = {"count": count, "last": last}
        if domain is not None:
            detail["domain"] = domain
        return {self.host: {self.keys.errors_key: {kind: detail}}}

    def faults(self, table: dict[str, Any]) -> Shard:
        """The whole fault table; ``None`` values delete faults switched off."""
        return {self.host: {FAULTS: table}}

    def intent(self, iid: str, host: str, module: str, kind: str, at: float) -> Shard:
        fields = {"host": host, "module": module, "kind": kind, "at": round(at, 3)}
        return {self.keys.intents_key: {iid: fields}}

    def resolution(self, iid: str, fields: dict[str, Any]) -> Shard:
        """``fields`` under ``intents.<iid>.resolution.<host>``."""
        k = self.keys
        return {k.intents_key: {iid: {k.resolution_key: {self.host: fields}}}}

    def started(self, iid: str, at: float) -> Shard:
        return self.resolution(iid, {"started": round(at, 3)})

    def updated(self, iid: str, module: str) -> Shard:
        return self.resolution(iid, {"updated": module})
