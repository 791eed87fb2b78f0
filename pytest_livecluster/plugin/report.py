"""The run report: a tree of dataclasses, rendered for the terminal, as JSON and as Markdown.

Other parts (the methodology, a user's conftest) add sections through the
``pytest_livecluster_report`` hook; each :class:`Section` carries lines for
people and data for the JSON report. Nothing is rendered when there is
nothing to say. Text that came from the cluster (source errors, rejected
lines, section lines) is escaped by :mod:`pytest_livecluster._escape` for the
medium it is written to, so a log line cannot move the terminal's cursor or
open a link in the Markdown summary. The JSON keeps the text as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .. import _escape
from .._secrets import scrub, scrub_data
from .._version import __version__
from ..core.collector import Collector
from ..core.source import SourceHealth
from ..core.state import State

__all__ = [
    "RejectedSample",
    "RunReport",
    "Section",
    "SourceSummary",
    "StateSummary",
    "build_report",
    "merge_worker_reports",
]

REPORT_VERSION = 1


@dataclass
class Section:
    """A titled part of the report: lines for people, data for the JSON report."""

    title: str
    lines: list[str] = field(default_factory=list)
    data: Any = None

    def terminal_lines(self) -> Iterator[str]:
        if self.lines:
            yield f"{_escape.terminal(scrub(self.title), one_line=True)}:"
            yield from (f"  {_escape.terminal(scrub(line))}" for line in self.lines)

    def markdown_lines(self) -> Iterator[str]:
        if self.lines:
            yield from ("", f"### {_escape.markdown(scrub(self.title))}", "")
            yield from (f"- {_escape.markdown(scrub(line))}" for line in self.lines)

    def as_dict(self) -> dict[str, Any]:
        return scrub_data({"title": self.title, "lines": self.lines, "data": self.data})


@dataclass
class SourceSummary:
    """One source's health at the end of the run (see :class:`SourceHealth`)."""

    source: str
    state: str
    attached: int
    lines: int
    bytes: int
    rejected: int
    reconnects: int
    gaps: int
    last_line_ns: int | None
    silent_for_s: float
    errors: int
    last_errors: list[str]
    engine: str | None = None
    detail: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, health: SourceHealth) -> SourceSummary:
        return cls.from_dict(health.as_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceSummary:
        # A report written before engine and detail existed has neither.
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        return cls(**known)

    def terminal_line(self) -> str:
        parts = [f"{self.source}: {self.state}", f"{self.lines} lines", f"{self.bytes} bytes"]
        if self.attached > 1:
            parts.append(f"{self.attached} attached")
        for key in ("rejected", "reconnects", "gaps", "errors"):
            if getattr(self, key):
                parts.append(f"{getattr(self, key)} {key}")
        parts.append(f"silent for {self.silent_for_s:.1f} s")
        line = ", ".join(parts)
        if self.last_errors:
            line += f"; last error: {self.last_errors[-1]}"
        return _escape.terminal(line, one_line=True)

    def markdown_row(self) -> str:
        return (
            f"| {_escape.markdown_code(self.source)} | {self.state} | {self.lines} "
            f"| {self.rejected} | {self.reconnects} | {self.gaps} "
            f"| {self.silent_for_s:.1f} s | {self.errors} |"
        )


@dataclass
class StateSummary:
    """How much of the cluster's output the state took in."""

    version: int
    lines: int
    accepted: int
    rejected: dict[str, int]
    bom_stripped: int
    evicted: int
    top_level_keys: int

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass
class RejectedSample:
    """One line the state did not take, and why."""

    source: str
    stream: str
    reason: str
    text: str


@dataclass
class RunReport:
    """What a run saw of the cluster."""

    cluster: str
    sources: list[SourceSummary]
    state: StateSummary
    counters: dict[str, int | float]
    rejected_samples: list[RejectedSample]
    failures: list[str]
    sections: list[Section] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)
    #: When each live test ran and how it ended (see :class:`.outcomes.TestTimeline`).
    tests: list[dict[str, Any]] = field(default_factory=list)
    generated: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    # -- renderers ---------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        # Every string: source errors and sections may quote a server's echo of a secret.
        return scrub_data(
            {
                "report_version": REPORT_VERSION,
                "writer": f"pytest-livecluster {__version__}",
                "generated": self.generated,
                "cluster": self.cluster,
                "sources": [asdict(s) for s in self.sources],
                "state": asdict(self.state),
                "counters": self.counters,
                "rejected_samples": [asdict(r) for r in self.rejected_samples],
                "failures": self.failures,
                "workers": self.workers,
                "tests": self.tests,
                "sections": [s.as_dict() for s in self.sections],
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunReport:
        """Rebuild a report from :meth:`as_dict` (what xdist workers send)."""
        return cls(
            cluster=data["cluster"],
            sources=[SourceSummary.from_dict(s) for s in data["sources"]],
            state=StateSummary(**data["state"]),
            counters=dict(data["counters"]),
            rejected_samples=[RejectedSample(**r) for r in data["rejected_samples"]],
            failures=list(data["failures"]),
            sections=[Section(s["title"], list(s["lines"]), s["data"]) for s in data["sections"]],
            tests=list(data.get("tests", [])),
            generated=data["generated"],
        )

    def terminal_lines(self) -> Iterator[str]:
        # Masked line by line: errors and samples may quote a server's echo of a secret.
        return map(scrub, self._terminal_lines())

    def _terminal_lines(self) -> Iterator[str]:
        name = f" {_escape.terminal(self.cluster, one_line=True)}" if self.cluster else ""
        st = self.state
        yield (
            f"cluster{name}: {st.lines} lines, {st.accepted} shards, "
            f"{st.rejected_total} rejected, state version {st.version}, "
            f"{st.top_level_keys} top-level keys"
        )
        if self.workers:
            seen = ", ".join(f"{w}: {n}" for w, n in sorted(self.workers.items()))
            yield f"workers (each followed the cluster; lines seen): {seen}"
        for engine, sources in _by_engine(self.sources):
            indent = "  "
            if engine is not None:
                yield f"  engine {_escape.terminal(engine, one_line=True)}:"
                indent = "    "
            for src in sources:
                yield indent + src.terminal_line()
                for line in src.detail:
                    yield f"{indent}  {_escape.terminal(line, one_line=True)}"
        for failure in self.failures:
            yield f"  FAILED source {_escape.terminal(failure, one_line=True)}"
        if st.rejected:
            reasons = ", ".join(f"{r}: {n}" for r, n in sorted(st.rejected.items()))
            yield f"rejected lines by reason: {reasons}"
            for sample in self.rejected_samples[-3:]:
                text = _escape.terminal(sample.text[:120], one_line=True)
                yield f"  {sample.source} {sample.stream} [{sample.reason}] {text}"
        if self.counters:
            yield "counters:"
            for pattern, total in self.counters.items():
                yield f"  {pattern} = {_number(total)}"
        for section in self.sections:
            yield from section.terminal_lines()

    def markdown(self) -> str:
        name = f" {_escape.markdown_code(self.cluster)}" if self.cluster else ""
        st = self.state
        out = [
            f"## Live cluster{name}",
            "",
            f"{st.lines} lines, {st.accepted} shards, {st.rejected_total} rejected.",
            "",
            "| source | state | lines | rejected | reconnects | gaps | silent for | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for engine, sources in _by_engine(self.sources):
            if engine is not None:
                out.append(f"| **engine {_escape.markdown_code(engine)}** | | | | | | | |")
            out += [src.markdown_row() for src in sources]
        for src in self.sources:
            if src.detail:
                details = "; ".join(_escape.markdown(line) for line in src.detail)
                out += ["", f"{_escape.markdown_code(src.source)}: {details}"]
        for failure in self.failures:
            out += ["", f"**Source failed:** {_escape.markdown(scrub(failure))}"]
        if st.rejected:
            out += ["", "| rejected because | lines |", "|---|---:|"]
            out += [f"| {r} | {n} |" for r, n in sorted(st.rejected.items())]
        if self.counters:
            out += ["", "| counter | total |", "|---|---:|"]
            out += [
                f"| {_escape.markdown_code(p)} | {_number(t)} |" for p, t in self.counters.items()
            ]
        for section in self.sections:
            out += section.markdown_lines()
        return scrub("\n".join(out)) + "\n"


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
    return RunReport(
        cluster=cluster,
        sources=[SourceSummary.of(h) for h in collector.health()] if collector else [],
        state=StateSummary(
            version=stats.version,
            lines=stats.lines,
            accepted=stats.accepted,
            rejected=dict(stats.rejected),
            bom_stripped=stats.bom_stripped,
            evicted=stats.evicted,
            top_level_keys=state.read(len),
        ),
        counters={name: total for p in counters for name, total in state.collapse(p).items()},
        rejected_samples=[
            RejectedSample(r.envelope.source, r.envelope.stream, r.reason, r.text)
            for r in state.rejected()[-10:]
        ],
        failures=[str(f) for f in collector.failures] if collector else [],
        sections=list(sections),
    )


def merge_worker_reports(reports: Mapping[str, Mapping[str, Any]]) -> RunReport | None:
    """One report from xdist workers that each followed the cluster.

    Every worker saw the same cluster; the one that read the most lines stands
    for it, and the lines each worker saw are listed.
    """
    if not reports:
        return None
    chosen = max(reports, key=lambda w: reports[w]["state"]["lines"])
    report = RunReport.from_dict(reports[chosen])
    report.workers = {w: int(r["state"]["lines"]) for w, r in reports.items()}
    report.failures = sorted({f for r in reports.values() for f in r["failures"]})
    return report


def _by_engine(
    sources: list[SourceSummary],
) -> list[tuple[str | None, list[SourceSummary]]]:
    """The sources in groups by engine, when they read more than one; else one group."""
    engines = list(dict.fromkeys(s.engine for s in sources if s.engine))
    if len(engines) < 2:
        return [(None, sources)]
    groups: list[tuple[str | None, list[SourceSummary]]] = [
        (engine, [s for s in sources if s.engine == engine]) for engine in engines
    ]
    others = [s for s in sources if not s.engine]
    if others:
        groups.append(("(no engine)", others))
    return groups
