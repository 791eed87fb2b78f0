"""Every shard the simulated cluster writes: the cluster's logging methodology in one place.

Each writer keeps to its own keys, so the merged state reads as a picture of
the cluster::

    {"scraper-1": {"msg": "Hello World", "boot": 1, "module": "scraper@1.4"}}
    {"intents": {"i-1": {"host": "scraper-1", "module": "scraper@1.4",
                         "kind": "scrape", "at": 1764072000.31}}}
    {"intents": {"i-1": {"resolution": {"scraper-1": {"started": 1764072000.35}}}}}
    {"intents": {"i-1": {"resolution": {"scraper-1": {"item_scraped": {"site1.example":
        {"tries": 3, "time_spent": 0.63, "item_collected": 3, "item_sent_tries": 3,
         "item_sent": 3, "errors": 0}}}}}}}
    {"intents": {"i-1": {"resolution": {"spotter-2": {"received": 17, "from": "scraper-1"}}}}}
    {"scraper-2": {"module": "scraper@1.5", "msg": "module updated"}}
    {"intents": {"i-2": {"resolution": {"scraper-2": {"updated": "scraper@1.5"}}}}}
    {"scraper-1": {"errors": {"FetchTimeout":
        {"count": 3, "last": "...", "domain": "news.example"}}}}
    {"orchestrator": {"faults": {"lossy_spotter": {"host": "spotter-1", "share": 0.3}}}}

Counts are cumulative per writer (``item_scraped`` per intent and domain,
``received`` per intent, ``errors.<type>.count`` per process), so they merge
by max and sum over writers. The key names are fields of :class:`Keys`, so a
cluster with another vocabulary needs only another ``Keys``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DomainCounts", "Keys", "Shard", "Shards"]

Shard = dict[str, Any]


@dataclass(frozen=True)
class Keys:
    """The names the shards use."""

    intents: str = "intents"
    resolution: str = "resolution"
    msg: str = "msg"
    hello: str = "Hello World"
    module_updated: str = "module updated"
    boot: str = "boot"
    module: str = "module"
    errors: str = "errors"
    faults: str = "faults"


@dataclass
class DomainCounts:
    """A scraper's cumulative counts for one domain of one intent."""

    tries: int = 0
    time_spent: float = 0.0
    item_collected: int = 0
    item_sent_tries: int = 0
    item_sent: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int | float]:
        counts = asdict(self)
        counts["time_spent"] = round(self.time_spent, 3)
        return counts


@dataclass(frozen=True)
class Shards:
    """Builds the shards of one process, ``host``."""

    host: str
    keys: Keys = field(default_factory=Keys)

    def hello(self, boot: int, module: str) -> Shard:
        k = self.keys
        return {self.host: {k.msg: k.hello, k.boot: boot, k.module: module}}

    def module_updated(self, module: str) -> Shard:
        k = self.keys
        return {self.host: {k.module: module, k.msg: k.module_updated}}

    def error(self, kind: str, count: int, last: str, domain: str | None = None) -> Shard:
        detail: dict[str, Any] = {"count": count, "last": last}
        if domain is not None:
            detail["domain"] = domain
        return {self.host: {self.keys.errors: {kind: detail}}}

    def faults(self, table: dict[str, Any]) -> Shard:
        """The whole fault table; ``None`` values delete faults switched off."""
        return {self.host: {self.keys.faults: table}}

    def intent(self, iid: str, host: str, module: str, kind: str, at: float) -> Shard:
        fields = {"host": host, "module": module, "kind": kind, "at": round(at, 3)}
        return {self.keys.intents: {iid: fields}}

    def resolution(self, iid: str, fields: dict[str, Any]) -> Shard:
        """``fields`` under ``intents.<iid>.resolution.<host>``."""
        k = self.keys
        return {k.intents: {iid: {k.resolution: {self.host: fields}}}}

    def started(self, iid: str, at: float) -> Shard:
        return self.resolution(iid, {"started": round(at, 3)})

    def item_scraped(self, iid: str, domain: str, counts: DomainCounts) -> Shard:
        return self.resolution(iid, {"item_scraped": {domain: counts.as_dict()}})

    def received(self, iid: str, count: int, sender: str) -> Shard:
        return self.resolution(iid, {"received": count, "from": sender})

    def updated(self, iid: str, module: str) -> Shard:
        return self.resolution(iid, {"updated": module})
