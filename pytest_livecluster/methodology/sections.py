"""The methodology's part of the run report: blades, intents, counts and errors.

Registered through the plugin's own hook, ``pytest_livecluster_report``, as
any other plugin's sections would be.
"""

from __future__ import annotations

import time
from typing import Any, Final

from ..plugin.report import Section
from .history import History
from .views import IntentView, Phase, Views

__all__ = [
    "TIMELINE_LIMIT",
    "intent_timeline",
    "report_sections",
    "status_line",
    "throughput_section",
]

#: The most intents the report's timeline lists (stuck and stale ones first).
TIMELINE_LIMIT: Final = 300


def report_sections(
    views: Views,
    history: History | None = None,
    *,
    stale_after: float,
    now: float | None = None,
) -> list[Section]:
    """The methodology's part of the run report: blades, intents, throughput, counts, errors.

    ``now`` is the time intents' ages are measured at: the clock in a live
    run, the end of the recording when one is replayed.
    """
    sections: list[Section] = []
    hellos = views.hellos()
    if hellos:
        lines = [f"{role}: {', '.join(hosts)}" for role, hosts in hellos.items()]
        sections.append(Section("blades that said hello", lines, hellos))
    intents = views.intents()
    scrapes = [v for v in intents if v.kind != "update"]
    updates = [v for v in intents if v.kind == "update"]
    if intents:
        phases: dict[Phase, list[str]] = {phase: [] for phase in Phase}
        for view in scrapes:
            phases[view.phase].append(view.id)
        stale = views.stale(stale_after, now=now)
        lines = [f"{phase}: {len(ids)}" for phase, ids in phases.items()]
        landed = [v.id for v in updates if views.module_updated(v.id)]
        pending = [v.id for v in updates if v.id not in landed]
        if updates:
            lines.append(
                f"module updates: {len(landed)} landed"
                + (f", pending: {', '.join(pending)}" if pending else "")
            )
        if stale:
            names = ", ".join(f"{v.id} ({v.phase}, host {v.host})" for v in stale[:20])
            lines.append(f"stale (older than {stale_after:g} s, not receiving): {names}")
        data: Any = {
            "by_phase": {str(p): ids for p, ids in phases.items()},
            "module_updates": {"landed": landed, "pending": pending},
            "stale": [v.id for v in stale],
            "timeline": intent_timeline(views, intents, stale_after=stale_after, now=now),
        }
        sections.append(Section("intents", lines, data))
    if history is not None:
        section = throughput_section(history, now=now)
        if section is not None:
            sections.append(section)
    counts = views.counts()
    if counts.sent or counts.received:
        lines = [
            f"items sent {_fmt(counts.sent)}, received {_fmt(counts.received)}, "
            f"lost {_fmt(counts.loss)} ({counts.loss_ratio:.1%})"
        ]
        lines += [
            f"{scraper}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(row.items()))
            for scraper, row in sorted(counts.by_scraper.items())
        ]
        data = {
            "total": counts.total,
            "by_scraper": counts.by_scraper,
            "by_domain": counts.by_domain,
            "received": counts.received,
            "received_by_spotter": counts.received_by_spotter,
            "loss": counts.loss,
        }
        sections.append(Section("counts", lines, data))
    errors = views.errors()
    if errors:
        lines = [
            f"{g.count} x {g.type} on {g.host}"
            + (f" ({g.domain})" if g.domain else "")
            + f": {g.sample.splitlines()[-1][:120] if g.sample else ''}"
            for g in errors[:30]
        ]
        data = [
            {
                "host": g.host,
                "type": g.type,
                "domain": g.domain,
                "count": g.count,
                "first_seen": g.first_seen,
                "last_seen": g.last_seen,
                "sample": g.sample,
            }
            for g in errors
        ]
        sections.append(Section("errors", lines, data))
    return sections


def intent_timeline(
    views: Views,
    intents: list[IntentView],
    *,
    stale_after: float,
    now: float | None = None,
    limit: int = TIMELINE_LIMIT,
) -> list[dict[str, Any]]:
    """Each intent's times: set, each host's first answer, the first spotter receipt.

    ``stuck``: still short of its final phase ``stale_after`` seconds after it
    entered its current one; ``stale``: first seen more than ``stale_after``
    seconds ago and not done; ``late``: received, but more than
    ``stale_after`` seconds after it was set. At most ``limit`` intents:
    stuck, stale and late first, then the newest.
    """
    now = time.time() if now is None else now
    times = views.facts.timelines([v.id for v in intents])
    rows: list[dict[str, Any]] = []
    for view in intents:
        done = view.phase is Phase.SPOTTER_RECEIVING or (
            view.kind == "update" and views.module_updated(view.id)
        )
        answered = {h: t for h, t in times.get(view.id, {}).items() if h}
        receipts = [answered[h] for h in view.spotters if h in answered]
        received = min(receipts) if receipts else None
        in_phase = view.in_phase_for(now)
        took = (
            received - view.first_seen
            if received is not None and view.first_seen is not None
            else None
        )
        rows.append(
            {
                "id": view.id,
                "kind": "update" if view.kind == "update" else "scrape",
                "host": view.host,
                "module": view.module,
                "set": view.first_seen,
                "answered": answered,
                "received": received,
                "phase": str(view.phase),
                "done": done,
                "stuck": not done and in_phase is not None and in_phase > stale_after,
                "stale": not done and (view.age(now) or 0) > stale_after,
                "late": took is not None and took > stale_after,
            }
        )
    rows.sort(key=lambda r: (not (r["stuck"] or r["stale"] or r["late"]), -(r["set"] or 0)))
    return rows[:limit]


def throughput_section(history: History, *, now: float | None = None) -> Section | None:
    """The cluster's current perf status: items per second, last minute and whole run."""
    rates = history.rates(now)
    data = {"rates": rates, "history": history.series()}
    recent, run = rates["last_minute"], rates["run"]
    if not any(run[k] for k in ("collected", "sent", "received")):
        return Section("throughput", [], data) if data["history"]["points"] else None
    window = f"{rates['window_s']:g} s"
    lines = [
        f"items/s over the last {window}: {_rate_line(recent)}",
        f"items/s over the run: {_rate_line(run)}",
    ]
    for host, row in run["by_scraper"].items():
        last = recent["by_scraper"].get(host, {})
        lines.append(
            f"scraper {host}: collected {last.get('collected', 0):,.2f}/s, "
            f"sent {last.get('sent', 0):,.2f}/s (last {window}); "
            f"run {row['collected']:,.2f}/s, {row['sent']:,.2f}/s"
        )
    for host, row in run["by_spotter"].items():
        last = recent["by_spotter"].get(host, {})
        lines.append(
            f"spotter {host}: received {last.get('received', 0):,.2f}/s (last {window}); "
            f"run {row.get('received', 0):,.2f}/s"
        )
    return Section("throughput", lines, data)


def status_line(history: History, *, now: float | None = None) -> str:
    """The current perf status in one line, for alerts."""
    rates = history.rates(now)
    return (
        f"items/s over the last {rates['window_s']:g} s: {_rate_line(rates['last_minute'])}; "
        f"over the run: {_rate_line(rates['run'])}"
    )


def _rate_line(rates: dict[str, Any]) -> str:
    return ", ".join(f"{k} {rates[k]:,.2f}" for k in ("collected", "sent", "received"))


def _fmt(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
