"""The cluster over time: a bounded series of its counters and sources, kept from every shard.

:class:`History` is a projection (see :mod:`pytest_livecluster.core.projection`).
For each accepted shard it adds what changed to the time bucket of the shard:

* ``collected`` and ``sent``: the growth of each scraper's cumulative
  ``item_collected`` and ``item_sent`` (per intent and domain), by scraper
  and by domain;
* ``received``: the growth of each spotter's cumulative ``received``, by
  spotter;
* ``errors``: the growth of each host's structured error counts (by host,
  type and domain) and of the scrapers' per-domain ``errors``;
* ``lines``: accepted shards, by source.

Two more series, ``reconnects`` and ``gaps`` by source, come from the
collector's health through :meth:`History.note_sources`.

A bucket holds counts, not totals, so a line that arrives late (one
container's backlog read after another's) adds to the bucket of its own
time, and a recording replays to the same series whatever the order the
sources were read in. Times are the writer's timestamps where the source has
them, else arrival times. Buckets start one second wide; once the series
spans more than :data:`MAX_POINTS` buckets, neighbours merge and the width
doubles, so memory stays flat over a day-long watch. Each breakdown keeps
:data:`MAX_KEYS` names; later ones are counted under ``(other)``.

Counters are cumulative per writer and merge by max, as in the state: a
value lower than the last one adds nothing, so a restarted writer that
counts from zero again does not make throughput negative, and an intent
deleted or evicted is forgotten without taking its items back.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Final, TypeGuard

from livecluster.keys import WRITER_SEPARATOR

from ..core.entry import JournalEntry
from ..core.projection import Projection
from ..core.state import State
from ..exceptions import ConfigError
from .schema import Keys, key_names

__all__ = ["GROUPS", "MAX_KEYS", "MAX_POINTS", "OTHER", "SERIES", "History", "history_of"]

#: The most points a series keeps; beyond it neighbouring buckets merge.
MAX_POINTS: Final = 720
#: The most names one breakdown keeps (per series and group).
MAX_KEYS: Final = 50
OTHER: Final = "(other)"
#: Each series and the breakdowns it has.
GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "collected": ("scraper", "domain"),
    "sent": ("scraper", "domain"),
    "received": ("spotter",),
    "errors": ("host", "type", "domain"),
    "lines": ("source",),
    "reconnects": ("source",),
    "gaps": ("source",),
}
SERIES: Final = tuple(GROUPS)
#: The default window of the "last minute" rates.
RATE_WINDOW: Final = 60.0

_TOTAL: Final = ""
_TOTALS: Final = {name: (name, _TOTAL, _TOTAL) for name in GROUPS}
_BY_SCRAPER: Final = ("scraper", "domain")
_BY_HOST_TYPE: Final = ("host", "type", "domain")
_BY_SOURCE: Final = ("source",)
_SCRAPE_ERROR: Final = "scrape error"
Cell = tuple[str, str, str]  # (series, group, name); group "" is the series' total


def _number(value: Any) -> TypeGuard[int | float]:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


class History(Projection):
    """Counters, errors and source lines per time bucket (read under :meth:`reading`)."""

    name = "history"

    def __init__(self, keys: Keys | None = None, *, max_points: int = MAX_POINTS) -> None:
        super().__init__()
        k = self.keys = key_names(keys or Keys())
        self._intents_key = k.intents_key
        self._resolution_key = k.resolution_key
        self._scraped_key = k.scraped_key
        self._received_key = k.received_key
        self._errors_key = k.errors_key
        self.max_points = max(2, max_points)
        #: seconds per bucket; doubles when the series would exceed max_points
        self.step = 1.0
        #: bucket index (time // step) -> {cell: count}
        self.buckets: dict[int, dict[Cell, float]] = {}
        self._names: dict[tuple[str, str], set[str]] = {}
        self._cells: dict[Cell, Cell] = {}
        self._line_cells: dict[str, Cell] = {}
        self._item_cells: dict[tuple[str, str], tuple[tuple[Cell, ...], tuple[Cell, ...]]] = {}
        # The last cumulative value of each counter leaf, to add only growth.
        self._scraped: dict[str, dict[tuple[str, str], list[float]]] = {}
        self._received: dict[str, dict[str, float]] = {}
        self._errors: dict[tuple[str, str], float] = {}
        self._sources: dict[str, tuple[int, int]] = {}
        #: The latest shard time seen (unix seconds), or None before the first shard.
        self.last: float | None = None
        self._last_index: int | None = None
        self._last_bucket: dict[Cell, float] = {}
        # Items of the last bucket, per (scraper, domain), not yet added to its cells: a
        # second's shards of one scraper and domain cost one set of cell updates, not one each.
        self._pending: dict[tuple[str, str], list[float]] = {}

    # -- writing (ingest thread, state lock held) ---------------------------------------

    def apply(self, shard: dict[str, Any], entry: JournalEntry) -> None:
        # Runs for every shard, so written for speed: tuples unpacked, the last
        # bucket and each source's lines cell looked up once.
        _, recv_ns, envelope, _ = entry
        source, _, origin_ns, _, _ = envelope
        when = (origin_ns or recv_ns) / 1e9
        if self.last is None or when > self.last:
            self.last = when
        index = int(when / self.step)  # times are positive: int() is floor()
        if index == self._last_index:
            bucket = self._last_bucket
        else:
            self._flush()
            bucket = self._bucket(when)
            self._last_index, self._last_bucket = int(when / self.step), bucket
        cell = self._line_cells.get(source)
        if cell is None:
            cell = self._line_cells[source] = self._new_cell("lines", "source", source)
        bucket[cell] = bucket.get(cell, 0) + 1  # the lines total is their sum, when read
        if len(shard) == 1 and self._intents_key in shard:  # the common shard: one intent's
            intents = shard[self._intents_key]
            if type(intents) is dict:
                self._apply_intents(bucket, intents)
                return
        for key, value in shard.items():
            if type(value) is not dict:
                if value is None and key != self._intents_key:
                    self._forget_host(key)
                elif value is None:
                    self._scraped.clear()
                    self._received.clear()
                continue
            if key == self._intents_key:
                self._apply_intents(bucket, value)
                continue
            errors = value.get(self._errors_key)
            if type(errors) is dict:
                self._apply_errors(bucket, key, errors)

    def _apply_intents(self, bucket: dict[Cell, float], intents: dict[str, Any]) -> None:
        resolution_key, received_key = self._resolution_key, self._received_key
        scraped_key = self._scraped_key
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
                host = writer.partition(WRITER_SEPARATOR)[0]  # a process: credited to its host
                received = answer.get(received_key)
                if type(received) is int or type(received) is float:
                    seen = self._received.get(iid)
                    if seen is None:
                        seen = self._received[iid] = {}
                    grown = received - seen.get(writer, 0)
                    if grown > 0:
                        seen[writer] = received
                        self._add(bucket, "received", grown, ("spotter",), (host,))
                scraped = answer.get(scraped_key)
                if type(scraped) is dict:
                    self._apply_scraped(bucket, iid, writer, host, scraped)

    def _apply_scraped(
        self,
        bucket: dict[Cell, float],
        iid: str,
        writer: str,
        host: str,
        scraped: dict[str, Any],
    ) -> None:
        seen = self._scraped.get(iid)
        if seen is None:
            seen = self._scraped[iid] = {}
        errors_key = self._errors_key
        add = self._add
        pending = self._pending
        for domain, fields in scraped.items():
            if type(fields) is not dict:
                continue
            last = seen.get((writer, domain))
            if last is None:
                last = seen[(writer, domain)] = [0, 0, 0]
            leaf = (host, domain)
            collected: Any = fields.get("item_collected")
            sent: Any = fields.get("item_sent")
            grew_collected = (
                type(collected) is int or type(collected) is float
            ) and collected > last[0]
            grew_sent = (type(sent) is int or type(sent) is float) and sent > last[1]
            if grew_collected or grew_sent:
                waiting = pending.get(leaf)
                if waiting is None:
                    waiting = pending[leaf] = [0, 0]
                if grew_collected:
                    waiting[0] += collected - last[0]
                    last[0] = collected
                if grew_sent:
                    waiting[1] += sent - last[1]
                    last[1] = sent
            n = fields.get(errors_key)
            if (type(n) is int or type(n) is float) and n > last[2]:
                add(bucket, "errors", n - last[2], _BY_HOST_TYPE, (host, _SCRAPE_ERROR, domain))
                last[2] = n

    def _apply_errors(self, bucket: dict[Cell, float], writer: str, errors: dict[str, Any]) -> None:
        host = writer.partition(WRITER_SEPARATOR)[0]
        for kind, info in errors.items():
            domain = None
            if type(info) is dict:
                count = info.get("count", 1)
                domain = info.get("domain")
            elif info is None:
                self._errors.pop((writer, kind), None)
                continue
            else:
                count = info if _number(info) else 1
            if not _number(count):
                continue
            grown = count - self._errors.get((writer, kind), 0)
            if grown <= 0:
                continue
            self._errors[(writer, kind)] = count
            if isinstance(domain, str):
                self._add(bucket, "errors", grown, _BY_HOST_TYPE, (host, kind, domain))
            else:
                self._add(bucket, "errors", grown, _BY_HOST_TYPE[:2], (host, kind))

    def _forget_host(self, host: str) -> None:
        for key in [k for k in self._errors if k[0] == host]:
            del self._errors[key]

    def evicted(self, path: tuple[Hashable, ...]) -> None:
        if not path:
            return
        if path[0] == self._intents_key:
            if len(path) == 1:
                self._scraped.clear()
                self._received.clear()
            elif len(path) == 2:
                self._scraped.pop(str(path[1]), None)
                self._received.pop(str(path[1]), None)
            return
        if len(path) <= 2:
            self._forget_host(str(path[0]))

    def _flush(self) -> None:
        """Add the pending items to the cells of the last bucket."""
        if not self._pending:
            return
        bucket = self._last_bucket
        for leaf, (collected, sent) in self._pending.items():
            cells = self._item_cells.get(leaf)
            if cells is None:
                cells = self._item_cells[leaf] = self._new_item_cells(*leaf)
            for n, targets in ((collected, cells[0]), (sent, cells[1])):
                if n:
                    for cell in targets:
                        bucket[cell] = bucket.get(cell, 0) + n
        self._pending.clear()

    def note_sources(self, when: float, health: Iterable[Mapping[str, Any]]) -> None:
        """Add the reconnects and gaps the sources counted since the last call, at ``when``."""
        with self._locked():
            self._flush()
            bucket = self._bucket(when)
            for h in health:
                source = str(h.get("source"))
                reconnects, gaps = int(h.get("reconnects") or 0), int(h.get("gaps") or 0)
                last_r, last_g = self._sources.get(source, (0, 0))
                if reconnects > last_r:
                    self._add(bucket, "reconnects", reconnects - last_r, _BY_SOURCE, (source,))
                if gaps > last_g:
                    self._add(bucket, "gaps", gaps - last_g, _BY_SOURCE, (source,))
                self._sources[source] = (max(reconnects, last_r), max(gaps, last_g))

    # -- buckets ---------------------------------------------------------------------------

    def _bucket(self, when: float) -> dict[Cell, float]:
        index = math.floor(when / self.step)
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = {}
            if len(self.buckets) > 1:
                lo, hi = min(self.buckets), max(self.buckets)
                if hi - lo + 1 > self.max_points:
                    self._coarsen(lo, hi)
                    return self._bucket(when)
        return bucket

    def _coarsen(self, lo: int, hi: int) -> None:
        """Merge neighbouring buckets until the span fits in max_points."""
        while hi - lo + 1 > self.max_points:
            merged: dict[int, dict[Cell, float]] = {}
            for index, cells in self.buckets.items():
                into = merged.setdefault(index // 2, {})
                for cell, n in cells.items():
                    into[cell] = into.get(cell, 0) + n
            self.buckets = merged
            self.step *= 2
            self._last_index = None
            lo, hi = lo // 2, hi // 2

    def _add(
        self,
        bucket: dict[Cell, float],
        series: str,
        n: float,
        groups: tuple[str, ...],
        names: tuple[str, ...],
    ) -> None:
        """Add ``n`` to the series' total and to each ``groups[i]`` breakdown's ``names[i]``."""
        total = _TOTALS[series]
        bucket[total] = bucket.get(total, 0) + n
        cells = self._cells
        for group, name in zip(groups, names):  # noqa: B905 (callers pass equal lengths)
            cell = cells.get((series, group, name))
            if cell is None:
                cell = self._new_cell(series, group, name)
            bucket[cell] = bucket.get(cell, 0) + n

    def _new_item_cells(self, host: str, domain: str) -> tuple[tuple[Cell, ...], tuple[Cell, ...]]:
        """The cells one scraper's items on one domain count in: collected, then sent."""
        return tuple(  # type: ignore[return-value]
            (
                _TOTALS[series],
                self._new_cell(series, "scraper", host),
                self._new_cell(series, "domain", domain),
            )
            for series in ("collected", "sent")
        )

    def _new_cell(self, series: str, group: str, name: str) -> Cell:
        """The cell ``name`` counts in: its own, or ``(other)`` past :data:`MAX_KEYS` names."""
        known = self._names.get((series, group))
        if known is None:
            known = self._names[(series, group)] = set()
        cell = self._cells.get((series, group, name))
        if cell is not None:
            return cell
        cell = (series, group, name)
        if len(known) >= MAX_KEYS:
            cell = (series, group, OTHER)
        else:
            known.add(name)
        self._cells[(series, group, name)] = cell
        return cell

    def _locked(self) -> Any:
        return self.state._lock if self.state is not None else contextlib.nullcontext()

    # -- reading ---------------------------------------------------------------------------

    def series(self) -> dict[str, Any]:
        """The JSON form: ``step``, ``start`` and every series as counts per point.

        Points are contiguous from ``start`` (unix seconds), ``step`` seconds
        each; every list has one value per point.
        """
        with self.reading():
            self._flush()
            if not self.buckets:
                return {"step": self.step, "start": None, "points": 0, "series": {}}
            lo, hi = min(self.buckets), max(self.buckets)
            width = hi - lo + 1
            out: dict[str, Any] = {}
            for index, cells in self.buckets.items():
                at = index - lo
                for (series, group, name), n in cells.items():
                    entry = out.setdefault(series, {"total": [0] * width, "by": {}})
                    if group == _TOTAL:
                        values = entry["total"]
                    else:
                        by = entry["by"].setdefault(group, {})
                        values = by.setdefault(name, [0] * width)
                    values[at] += n
            lines = out.get("lines")
            if lines is not None:
                by_source = lines["by"].get("source", {})
                lines["total"] = [sum(col) for col in zip(*by_source.values(), strict=True)]
            return {
                "step": self.step,
                "start": lo * self.step,
                "points": width,
                "series": {name: out[name] for name in SERIES if name in out},
            }

    def totals(self) -> dict[str, float]:
        """Every series' total over the whole run."""
        with self.reading():
            self._flush()
            sums: dict[str, float] = {}
            for cells in self.buckets.values():
                for (series, group, _), n in cells.items():
                    # Lines are counted by source only; their total is the sum.
                    if group == _TOTAL or (series == "lines" and group == "source"):
                        sums[series] = sums.get(series, 0) + n
            return sums

    def rates(self, now: float | None = None, window: float = RATE_WINDOW) -> dict[str, Any]:
        """Items per second over the last ``window`` seconds and over the whole run.

        ``now`` ends both spans (a live run passes the clock, so a cluster
        that went quiet shows zero); by default they end with the last bucket.
        """
        with self.reading():
            self._flush()
            if not self.buckets:
                return {"window_s": window, "last_minute": _rates({}, 0), "run": _rates({}, 0)}
            lo, hi = min(self.buckets), max(self.buckets)
            step = self.step
            end = (hi + 1) * step if now is None else max(now, (hi + 1) * step)
            since = end - window
            recent: dict[Cell, float] = {}
            whole: dict[Cell, float] = {}
            for index, cells in self.buckets.items():
                in_window = (index + 1) * step > since
                for cell, n in cells.items():
                    whole[cell] = whole.get(cell, 0) + n
                    if in_window:
                        recent[cell] = recent.get(cell, 0) + n
            # A bucket wider than the window still counts whole: divide by what it spans.
            # A run shorter than the window: its whole span.
            first = min((i for i in self.buckets if (i + 1) * step > since), default=hi)
            run_span = end - lo * step
            recent_span = min(max(window, end - first * step), run_span)
            return {
                "window_s": window,
                "step": step,
                "last_minute": _rates(recent, recent_span),
                "run": _rates(whole, run_span),
            }


def _rates(cells: Mapping[Cell, float], seconds: float) -> dict[str, Any]:
    def per_s(n: float) -> float:
        return round(n / seconds, 3) if seconds > 0 else 0.0

    out: dict[str, Any] = {
        name: per_s(cells.get((name, _TOTAL, _TOTAL), 0))
        for name in ("collected", "sent", "received")
    }
    by_scraper: dict[str, dict[str, float]] = {}
    by_spotter: dict[str, dict[str, float]] = {}
    for (series, group, name), n in cells.items():
        if group == "scraper":
            by_scraper.setdefault(name, {"collected": 0.0, "sent": 0.0})[series] = per_s(n)
        elif group == "spotter":
            by_spotter.setdefault(name, {})["received"] = per_s(n)
    out["by_scraper"] = dict(sorted(by_scraper.items()))
    out["by_spotter"] = dict(sorted(by_spotter.items()))
    return out


def history_of(state: State, keys: Keys) -> History:
    """The state's history projection for these key names, registered if new.

    Like :func:`~.views.facts_of`: on a state that already took lines and has
    none, this is a :class:`~pytest_livecluster.exceptions.ConfigError`.
    """
    names = key_names(keys)
    for projection in state.projections():
        if isinstance(projection, History) and projection.keys == names:
            return projection
    history = History(names)
    try:
        state.add_projection(history)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; make the cluster before the state takes lines") from None
    return history
