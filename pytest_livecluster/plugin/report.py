"""The run report: one dataclass, rendered for the terminal, as JSON and as Markdown.

Other parts (the domain views, a user's conftest) add sections through the
``pytest_livecluster_report`` hook; each :class:`Section` carries lines for
people and data for the JSON report. Nothing is rendered when there is
nothing to say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__
from ..core.collector import Collector
from ..core.state import State

__all__ = ["RunReport", "Section", "build_report", "merge_worker_reports"]

REPORT_VERSION = 1


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    lines: list[str] = field(default_factory=list)
    data: Any = None

    def terminal_lines(self) -> Iterator[str]:
        if self.lines:
            yield f"{self.title}:"
            yield from (f"  {line}" for line in self.lines)


@dataclass
class RunReport:
    """What a run saw of the cluster."""

    cluster: str
    sources: list[dict[str, Any]]
    state: dict[str, Any]
    counters: dict[str, int | float]
    rejected_samples: list[dict[str, Any]]
    failures: list[str]
    sections: list[Section] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)
    generated: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    # -- renderers ---------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "report_version": REPORT_VERSION,
            "writer": f"pytest-livecluster {__version__}",
            "generated": self.generated,
            "cluster": self.cluster,
            "sources": self.sources,
            "state": self.state,
            "counters": self.counters,
            "rejected_samples": self.rejected_samples,
            "failures": self.failures,
            "workers": self.workers,
            "sections": [
                {"title": s.title, "lines": s.lines, "data": s.data} for s in self.sections
            ],
        }

    def terminal_lines(self) -> Iterator[str]:
        name = f" {self.cluster}" if self.cluster else ""
        st = self.state
        yield (
            f"cluster{name}: {st['lines']} lines, {st['accepted']} shards, "
            f"{sum(st['rejected'].values())} rejected, state version {st['version']}, "
            f"{st['top_level_keys']} top-level keys"
        )
        if self.workers:
            seen = ", ".join(f"{w}: {n}" for w, n in sorted(self.workers.items()))
            yield f"workers (each followed the cluster; lines seen): {seen}"
        for src in self.sources:
            yield "  " + _source_line(src)
        for failure in self.failures:
            yield f"  FAILED source {failure}"
        if st["rejected"]:
            reasons = ", ".join(f"{r}: {n}" for r, n in sorted(st["rejected"].items()))
            yield f"rejected lines by reason: {reasons}"
            for sample in self.rejected_samples[-3:]:
                where = f"{sample['source']} {sample['stream']}"
                yield f"  {where} [{sample['reason']}] {sample['text'][:120]}"
        if self.counters:
            yield "counters:"
            for pattern, total in self.counters.items():
                yield f"  {pattern} = {_number(total)}"
        for section in self.sections:
            yield from section.terminal_lines()

    def markdown(self) -> str:
        name = f" `{self.cluster}`" if self.cluster else ""
        st = self.state
        out = [
            f"## Live cluster{name}",
            "",
            f"{st['lines']} lines, {st['accepted']} shards, "
            f"{sum(st['rejected'].values())} rejected.",
            "",
            "| source | state | lines | rejected | reconnects | gaps | silent for | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for src in self.sources:
            out.append(
                f"| `{src['source']}` | {src['state']} | {src['lines']} | {src['rejected']} "
                f"| {src['reconnects']} | {src['gaps']} | {src['silent_for_s']:.1f} s "
                f"| {src['errors']} |"
            )
        for failure in self.failures:
            out += ["", f"**Source failed:** {failure}"]
        if st["rejected"]:
            out += ["", "| rejected because | lines |", "|---|---:|"]
            out += [f"| {r} | {n} |" for r, n in sorted(st["rejected"].items())]
        if self.counters:
            out += ["", "| counter | total |", "|---|---:|"]
            out += [f"| `{p}` | {_number(t)} |" for p, t in self.counters.items()]
        for section in self.sections:
            if section.lines:
                out += ["", f"### {section.title}", ""]
                out += [f"- {line}" for line in section.lines]
        return "\n".join(out) + "\n"


def _source_line(src: Mapping[str, Any]) -> str:
    parts = [
        f"{src['source']}: {src['state']}",
        f"{src['lines']} lines",
        f"{src['bytes']} bytes",
    ]
    if src.get("attached", 0) > 1:
        parts.append(f"{src['attached']} attached")
    for key in ("rejected", "reconnects", "gaps", "errors"):
        if src.get(key):
            parts.append(f"{src[key]} {key}")
    parts.append(f"silent for {src['silent_for_s']:.1f} s")
    line = ", ".join(parts)
    if src.get("last_errors"):
        line += f"; last error: {src['last_errors'][-1]}"
    return line


def _number(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"


def build_report(
    state: State,
    collector: Collector | None,
    *,
    cluster: str,
    counters: Sequence[str],
    sections: Sequence[Section] = (),
) -> RunReport:
    """A report of what ``state`` and ``collector`` have seen so far."""
    stats = state.stats()
    top = state.read(len)
    return RunReport(
        cluster=cluster,
        sources=[h.as_dict() for h in collector.health()] if collector else [],
        state={
            "version": stats.version,
            "lines": stats.lines,
            "accepted": stats.accepted,
            "rejected": dict(stats.rejected),
            "bom_stripped": stats.bom_stripped,
            "evicted": stats.evicted,
            "top_level_keys": top,
        },
        counters={name: total for p in counters for name, total in state.collapse(p).items()},
        rejected_samples=[
            {
                "source": r.envelope.source,
                "stream": r.envelope.stream,
                "reason": r.reason,
                "text": r.text,
            }
            for r in state.rejected()[-10:]
        ],
        failures=[str(f) for f in collector.failures] if collector else [],
        sections=list(sections),
    )


def report_from_dict(data: Mapping[str, Any]) -> RunReport:
    """Rebuild a report from :meth:`RunReport.as_dict` (what xdist workers send)."""
    return RunReport(
        cluster=data["cluster"],
        sources=list(data["sources"]),
        state=dict(data["state"]),
        counters=dict(data["counters"]),
        rejected_samples=list(data["rejected_samples"]),
        failures=list(data["failures"]),
        sections=[Section(s["title"], list(s["lines"]), s["data"]) for s in data["sections"]],
        generated=data["generated"],
    )


def merge_worker_reports(reports: Mapping[str, Mapping[str, Any]]) -> RunReport | None:
    """One report from xdist workers that each followed the cluster.

    Every worker saw the same cluster; the one that read the most lines stands
    for it, and the lines each worker saw are listed.
    """
    if not reports:
        return None
    chosen = max(reports, key=lambda w: reports[w]["state"]["lines"])
    report = report_from_dict(reports[chosen])
    report.workers = {w: int(r["state"]["lines"]) for w, r in reports.items()}
    report.failures = sorted({f for r in reports.values() for f in r["failures"]})
    return report
