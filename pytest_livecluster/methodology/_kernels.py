"""The per-shard work of the methodology's projections, compiled with the state engine.

:class:`~.facts.MethodologyFacts` and :class:`~.history.History` run on every
accepted shard, with the state's lock held; on a backlog of hundreds of
thousands of lines their Python cost was larger than the merge's. Their
writing side lives here, in plain classes that mypyc compiles (see
:mod:`pytest_livecluster.core._native`); the projections keep their reading
side, their eviction and their documentation, and read the kernels' tables.

Rules of this module, so that it compiles and stays correct from source:

* it imports nothing from the package: key names and the writer separator
  come in as arguments;
* counts are typed ``Any``: a JSON counter may be an int or a float, and
  each must stay what it is (a ``float`` annotation would make mypyc turn
  every count into a float);
* the tables are created once and never rebound (only ``HistoryKernel.buckets``
  is, when it coarsens), so a projection may hand them out by reference.
"""

from __future__ import annotations

import math
from typing import Any, Final

__all__ = ["FactsKernel", "HistoryKernel"]

#: (series, group, name); group "" is the series' total.
Cell = tuple[str, str, str]

_NONE: Final = object()
_TOTAL: Final = ""
_SCRAPE_ERROR: Final = "scrape error"
_COLLECTED_TOTAL: Final = ("collected", "", "")
_SENT_TOTAL: Final = ("sent", "", "")
_RECEIVED_TOTAL: Final = ("received", "", "")
_ERRORS_TOTAL: Final = ("errors", "", "")


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


#: How many writer keys a kernel remembers the host of before it starts over.
_MAX_HOSTS: Final = 100_000


def _host(hosts: dict[str, str], writer: str, separator: str) -> str:
    """The host of writer key ``writer`` (``host/incarnation`` -> ``host``), remembered."""
    host = hosts.get(writer)
    if host is None:
        if len(hosts) >= _MAX_HOSTS:
            hosts.clear()
        host = writer.partition(separator)[0]
        hosts[writer] = host
    return host


class FactsKernel:
    """Hello latches, restarts, writers and intent timelines, kept from every shard."""

    def __init__(
        self,
        intents_key: str,
        resolution_key: str,
        hello_key: str,
        hello_value: Any,
        boot_key: str,
        separator: str,
        max_writers: int,
    ) -> None:
        self.intents_key = intents_key
        self.resolution_key = resolution_key
        self.hello_key = hello_key
        self.hello_value = hello_value
        self.boot_key = boot_key
        self.separator = separator
        self.max_writers = max_writers
        #: host -> when it first said hello
        self.hello: dict[str, float] = {}
        #: host key -> the last ``boot`` value it wrote
        self.boots: dict[str, Any] = {}
        #: host key -> how often its ``boot`` value changed
        self.restarts: dict[str, int] = {}
        #: host -> envelope sources that wrote it, first first
        self.writers: dict[str, list[str]] = {}
        #: intent id -> {"": first seen, host: first write under its resolution}
        self.intents: dict[str, dict[str, float]] = {}
        self._hosts: dict[str, str] = {}

    def apply(self, shard: dict[str, Any], entry: tuple[Any, ...]) -> None:
        """Keep the facts of one shard; ``entry`` is its journal entry."""
        envelope: tuple[Any, ...] = entry[2]
        source: str = envelope[0]
        origin = envelope[2]
        when: float = (origin or entry[1]) / 1e9
        for key, value in shard.items():
            if key == self.intents_key:
                if type(value) is dict:
                    self._intents(value, source, when)
                continue
            host = _host(self._hosts, key, self.separator)  # a process's key: its host
            self._wrote(host, source)
            if type(value) is not dict:
                continue
            if host not in self.hello and value.get(self.hello_key) == self.hello_value:
                self.hello[host] = when
            boot = value.get(self.boot_key)
            if boot is not None:
                last = self.boots.get(key, _NONE)
                if last is not _NONE and last != boot:
                    self.restarts[key] = self.restarts.get(key, 0) + 1
                self.boots[key] = boot

    def _intents(self, intents: dict[str, Any], source: str, when: float) -> None:
        timelines = self.intents
        for iid, body in intents.items():
            if type(body) is not dict:
                if body is None:  # the intent was deleted
                    timelines.pop(iid, None)
                continue
            seen = timelines.get(iid)
            if seen is None:
                seen = {"": when}
                timelines[iid] = seen
            resolution = body.get(self.resolution_key)
            if type(resolution) is not dict:
                continue
            for writer in resolution:
                host = _host(self._hosts, writer, self.separator)  # a process: its host
                if host not in seen:
                    seen[host] = when
                self._wrote(host, source)

    def _wrote(self, host: str, source: str) -> None:
        known = self.writers.get(host)
        if known is None:
            self.writers[host] = [source]
        elif len(known) < self.max_writers and source not in known:
            known.append(source)


class HistoryKernel:
    """Counter growth, errors and lines per time bucket, kept from every shard."""

    def __init__(
        self,
        intents_key: str,
        resolution_key: str,
        scraped_key: str,
        received_key: str,
        errors_key: str,
        separator: str,
        max_points: int,
        max_keys: int,
        other: str,
    ) -> None:
        self.intents_key = intents_key
        self.resolution_key = resolution_key
        self.scraped_key = scraped_key
        self.received_key = received_key
        self.errors_key = errors_key
        self.separator = separator
        self.max_points = max(2, max_points)
        self.max_keys = max_keys
        self.other = other
        #: seconds per bucket; doubles when the series would exceed max_points
        self.step = 1.0
        #: bucket index (time // step) -> {cell: count}
        self.buckets: dict[int, dict[Cell, Any]] = {}
        #: The latest shard time seen (unix seconds), or None before the first shard.
        self.last: float | None = None
        self._names: dict[tuple[str, str], set[str]] = {}
        self._cells: dict[Cell, Cell] = {}
        self._line_cells: dict[str, Cell] = {}
        self._item_cells: dict[tuple[str, str], tuple[Cell, Cell, Cell, Cell, Cell, Cell]] = {}
        # The last cumulative value of each counter leaf, to add only growth.
        # intent -> writer -> domain -> [collected, sent, errors]
        self._scraped: dict[str, dict[str, dict[str, list[Any]]]] = {}
        self._received: dict[str, dict[str, Any]] = {}
        self._errors: dict[tuple[str, str], Any] = {}
        self._sources: dict[str, tuple[int, int]] = {}
        self._last_index = -1
        self._last_bucket: dict[Cell, Any] = {}
        # Items of the last bucket, per (scraper, domain), not yet added to its cells: a
        # second's shards of one scraper and domain cost one set of cell updates, not one each.
        # host -> domain -> [collected, sent]
        self._pending: dict[str, dict[str, list[Any]]] = {}
        self._hosts: dict[str, str] = {}

    # -- every shard ---------------------------------------------------------------------

    def apply(self, shard: dict[str, Any], entry: tuple[Any, ...]) -> None:
        """Add one shard's growth to its time's bucket; ``entry`` is its journal entry."""
        envelope: tuple[Any, ...] = entry[2]
        source: str = envelope[0]
        origin = envelope[2]
        when: float = (origin or entry[1]) / 1e9
        last = self.last
        if last is None or when > last:
            self.last = when
        index = math.floor(when / self.step)
        if index == self._last_index:
            bucket = self._last_bucket
        else:
            self.flush()
            bucket = self.bucket(when)
            self._last_index = math.floor(when / self.step)
            self._last_bucket = bucket
        cell = self._line_cells.get(source)
        if cell is None:
            cell = self.new_cell("lines", "source", source)
            self._line_cells[source] = cell
        bucket[cell] = bucket.get(cell, 0) + 1  # the lines total is their sum, when read
        intents_key = self.intents_key
        for key, value in shard.items():
            if type(value) is not dict:
                if value is None and key != intents_key:
                    self.forget_host(key)
                elif value is None:
                    self._scraped.clear()
                    self._received.clear()
                continue
            if key == intents_key:
                self._intents(bucket, value)
                continue
            errors = value.get(self.errors_key)
            if type(errors) is dict:
                self._structured_errors(bucket, key, errors)

    def _intents(self, bucket: dict[Cell, Any], intents: dict[str, Any]) -> None:
        resolution_key, received_key = self.resolution_key, self.received_key
        scraped_key = self.scraped_key
        for iid, body in intents.items():
            if type(body) is not dict:
                if body is None:
                    self._scraped.pop(iid, None)
                    self._received.pop(iid, None)
                continue
            resolution = body.get(resolution_key)
            if type(resolution) is not dict:
                continue
            for writer, answer in resolution.items():
                if type(answer) is not dict:
                    continue
                host = _host(self._hosts, writer, self.separator)  # credited to its host
                received = answer.get(received_key)
                if _is_number(received):
                    seen = self._received.get(iid)
                    if seen is None:
                        seen = {}
                        self._received[iid] = seen
                    grown = received - seen.get(writer, 0)
                    if grown > 0:
                        seen[writer] = received
                        self._add(bucket, _RECEIVED_TOTAL, grown, "spotter", host)
                scraped = answer.get(scraped_key)
                if type(scraped) is dict:
                    self._scraped_items(bucket, iid, writer, host, scraped)

    def _scraped_items(
        self, bucket: dict[Cell, Any], iid: str, writer: str, host: str, scraped: dict[str, Any]
    ) -> None:
        by_writer = self._scraped.get(iid)
        if by_writer is None:
            by_writer = {}
            self._scraped[iid] = by_writer
        seen = by_writer.get(writer)
        if seen is None:
            seen = {}
            by_writer[writer] = seen
        errors_key = self.errors_key
        pending = self._pending.get(host)
        if pending is None:
            pending = {}
            self._pending[host] = pending
        for domain, fields in scraped.items():
            if type(fields) is not dict:
                continue
            last = seen.get(domain)
            if last is None:
                last = [0, 0, 0]
                seen[domain] = last
            collected = fields.get("item_collected")
            sent = fields.get("item_sent")
            grew_collected = _is_number(collected) and collected > last[0]
            grew_sent = _is_number(sent) and sent > last[1]
            if grew_collected or grew_sent:
                waiting = pending.get(domain)
                if waiting is None:
                    waiting = [0, 0]
                    pending[domain] = waiting
                if grew_collected:
                    waiting[0] += collected - last[0]
                    last[0] = collected
                if grew_sent:
                    waiting[1] += sent - last[1]
                    last[1] = sent
            n = fields.get(errors_key)
            if _is_number(n) and n > last[2]:
                self._add(bucket, _ERRORS_TOTAL, n - last[2], "host", host)
                self._add_name(bucket, "errors", "type", _SCRAPE_ERROR, n - last[2])
                self._add_name(bucket, "errors", "domain", domain, n - last[2])
                last[2] = n

    def _structured_errors(
        self, bucket: dict[Cell, Any], writer: str, errors: dict[str, Any]
    ) -> None:
        host = _host(self._hosts, writer, self.separator)
        for kind, info in errors.items():
            domain: Any = None
            if type(info) is dict:
                count = info.get("count", 1)
                domain = info.get("domain")
            elif info is None:
                self._errors.pop((writer, kind), None)
                continue
            else:
                count = info if _is_number(info) and math.isfinite(info) else 1
            if not (_is_number(count) and math.isfinite(count)):
                continue
            grown = count - self._errors.get((writer, kind), 0)
            if grown <= 0:
                continue
            self._errors[(writer, kind)] = count
            self._add(bucket, _ERRORS_TOTAL, grown, "host", host)
            self._add_name(bucket, "errors", "type", kind, grown)
            if isinstance(domain, str):
                self._add_name(bucket, "errors", "domain", domain, grown)

    def forget_host(self, host: str) -> None:
        """Forget the error counts of ``host``'s key (deleted or evicted)."""
        for key in [k for k in self._errors if k[0] == host]:
            del self._errors[key]

    def forget_intents(self, iid: str | None) -> None:
        """Forget the counters of intent ``iid`` (of every intent with ``None``)."""
        if iid is None:
            self._scraped.clear()
            self._received.clear()
        else:
            self._scraped.pop(iid, None)
            self._received.pop(iid, None)

    def flush(self) -> None:
        """Add the pending items to the cells of the last bucket."""
        if not self._pending:
            return
        bucket = self._last_bucket
        for host, domains in self._pending.items():
            for domain, counts in domains.items():
                leaf = (host, domain)
                cells = self._item_cells.get(leaf)
                if cells is None:
                    cells = (
                        _COLLECTED_TOTAL,
                        self.new_cell("collected", "scraper", host),
                        self.new_cell("collected", "domain", domain),
                        _SENT_TOTAL,
                        self.new_cell("sent", "scraper", host),
                        self.new_cell("sent", "domain", domain),
                    )
                    self._item_cells[leaf] = cells
                collected, sent = counts[0], counts[1]
                if collected:
                    for cell in cells[:3]:
                        bucket[cell] = bucket.get(cell, 0) + collected
                if sent:
                    for cell in cells[3:]:
                        bucket[cell] = bucket.get(cell, 0) + sent
        self._pending.clear()

    # -- the sources' health ---------------------------------------------------------------

    def note_source(self, bucket: dict[Cell, Any], source: str, reconnects: int, gaps: int) -> None:
        """Add what ``source``'s reconnect and gap counts grew by since the last note."""
        last_r, last_g = self._sources.get(source, (0, 0))
        if reconnects > last_r:
            self._add(bucket, ("reconnects", "", ""), reconnects - last_r, "source", source)
        if gaps > last_g:
            self._add(bucket, ("gaps", "", ""), gaps - last_g, "source", source)
        self._sources[source] = (max(reconnects, last_r), max(gaps, last_g))

    # -- buckets ---------------------------------------------------------------------------

    def bucket(self, when: float) -> dict[Cell, Any]:
        """The bucket of time ``when``, made (and the series coarsened) if new."""
        index = math.floor(when / self.step)
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = {}
            self.buckets[index] = bucket
            if len(self.buckets) > 1:
                lo, hi = min(self.buckets), max(self.buckets)
                if hi - lo + 1 > self.max_points:
                    self._coarsen(lo, hi)
                    return self.bucket(when)
        return bucket

    def _coarsen(self, lo: int, hi: int) -> None:
        """Merge neighbouring buckets until the span fits in max_points."""
        while hi - lo + 1 > self.max_points:
            merged: dict[int, dict[Cell, Any]] = {}
            for index, cells in self.buckets.items():
                into = merged.setdefault(index // 2, {})
                for cell, n in cells.items():
                    into[cell] = into.get(cell, 0) + n
            self.buckets = merged
            self.step *= 2
            self._last_index = -1
            lo, hi = lo // 2, hi // 2

    def _add(self, bucket: dict[Cell, Any], total: Cell, n: Any, group: str, name: str) -> None:
        """Add ``n`` to the series' ``total`` and to its ``group`` breakdown's ``name``."""
        bucket[total] = bucket.get(total, 0) + n
        self._add_name(bucket, total[0], group, name, n)

    def _add_name(
        self, bucket: dict[Cell, Any], series: str, group: str, name: str, n: Any
    ) -> None:
        cell = self._cells.get((series, group, name))
        if cell is None:
            cell = self.new_cell(series, group, name)
        bucket[cell] = bucket.get(cell, 0) + n

    def new_cell(self, series: str, group: str, name: str) -> Cell:
        """The cell ``name`` counts in: its own, or ``other`` past ``max_keys`` names."""
        cell = self._cells.get((series, group, name))
        if cell is not None:
            return cell
        known = self._names.get((series, group))
        if known is None:
            known = set()
            self._names[(series, group)] = known
        cell = (series, group, name)
        if len(known) >= self.max_keys:
            cell = (series, group, self.other)
        else:
            known.add(name)
        self._cells[(series, group, name)] = cell
        return cell
