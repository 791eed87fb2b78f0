"""The methodology's part of the run report: blades, intents, counts and errors.

Registered through the plugin's own hook, ``pytest_livecluster_report``, as
any other plugin's sections would be.
"""

from __future__ import annotations

from typing import Any

from ..plugin.report import Section
from .views import Phase, Views

__all__ = ["report_sections"]


def report_sections(views: Views, *, stale_after: float) -> list[Section]:
    """The methodology's part of the run report: blades, intents, counts, errors."""
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
        stale = views.stale(stale_after)
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
        }
        sections.append(Section("intents", lines, data))
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


def _fmt(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
