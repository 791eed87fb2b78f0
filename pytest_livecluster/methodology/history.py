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
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Final

from livecluster.keys import WRITER_SEPARATOR

from ..core.projection import Projection
from ..core.state import State
from ..exceptions import ConfigError
from ._kernels import Cell, HistoryKernel
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


class History(Projection):
    """Counters, errors and source lines per time bucket (read under :meth:`reading`)."""

    name = "history"

    def __init__(self, keys: Keys | None = None, *, max_points: int = MAX_POINTS) -> None:
        super().__init__()
        k = self.keys = key_names(keys or Keys())
        self._intents_key = k.intents_key
        self._kernel = kernel = HistoryKernel(
            k.intents_key,
            k.resolution_key,
            k.scraped_key,
            k.received_key,
            k.errors_key,
            WRITER_SEPARATOR,
            max_points,
            MAX_KEYS,
            OTHER,
        )
        #: The compiled per-shard work; it holds the buckets.
        self.apply = kernel.apply  # type: ignore[method-assign]
        self._flush = kernel.flush

    @property
    def max_points(self) -> int:
        """The most points the series keep."""
        return self._kernel.max_points

    @property
    def step(self) -> float:
        """Seconds per bucket; doubles when the series would exceed :attr:`max_points`."""
        return self._kernel.step

    @property
    def buckets(self) -> dict[int, dict[Cell, float]]:
        """Bucket index (time // step) -> {cell: count}."""
        return self._kernel.buckets

    @property
    def last(self) -> float | None:
        """The latest shard time seen (unix seconds), or None before the first shard."""
        return self._kernel.last

    def evicted(self, path: tuple[Hashable, ...]) -> None:
        if not path:
            return
        if path[0] == self._intents_key:
            if len(path) == 1:
                self._kernel.forget_intents(None)
            elif len(path) == 2:
                self._kernel.forget_intents(str(path[1]))
            return
        if len(path) <= 2:
            self._kernel.forget_host(str(path[0]))

    def note_sources(self, when: float, health: Iterable[Mapping[str, Any]]) -> None:
        """Add the reconnects and gaps the sources counted since the last call, at ``when``."""
        kernel = self._kernel
        with self._locked():
            kernel.flush()
            bucket = kernel.bucket(when)
            for h in health:
                kernel.note_source(
                    bucket,
                    str(h.get("source")),
                    int(h.get("reconnects") or 0),
                    int(h.get("gaps") or 0),
                )

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
