"""Session invariants in a pytest run: who registered them, when they end, how they report.

An invariant registered while a fixture is being set up ends with that
fixture (its finalizer closes it); one registered anywhere else ends with
the run, or with the watch round. When they end, each invariant becomes a
test result of its own: a :class:`pytest.TestReport` with the node id
``livecluster::invariants::<mode>: <what>``, sent through pytest's reporting
hooks, so the terminal, JUnit XML and the exit status count it like a test.
A broken ``always``/``never`` and a ``sometimes`` never satisfied fail it.

Under xdist each worker follows the cluster and judges its own invariants;
it hands the verdicts to the controller (as :class:`Judged` records), which
reports each invariant once: failed if any worker saw it fail.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pytest

from ..alerts.model import InvariantOutcome
from ..core.entry import describe_entry
from ..core.invariants import Invariant, Verdict
from .report import Section

__all__ = ["INVARIANT_PREFIX", "Invariants", "Judged", "invariant_section", "log", "merge"]

#: The node id of an invariant's result is this plus its name.
INVARIANT_PREFIX = "livecluster::invariants::"


@dataclass(frozen=True)
class Judged:
    """An invariant's verdict, detached from the run that judged it."""

    name: str
    failed: bool
    headline: str
    details: str  # escaped for the terminal
    lines: tuple[str, ...]  # for the report section (not yet escaped)
    data: dict[str, Any]

    @classmethod
    def of(cls, invariant: Invariant) -> Judged:
        lines: list[str] = []
        event = invariant.event
        if invariant.failed and event is not None:
            if event.entry is not None:
                lines.append(f"shard {describe_entry(event.entry)}")
            lines += [f"read {path} = {value}" for path, value in event.reads]
        return cls(
            invariant.name,
            invariant.failed,
            invariant.headline(),
            invariant.details(),
            tuple(lines),
            invariant.as_dict(),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judged:
        return cls(**{**data, "lines": tuple(data["lines"])})


class Invariants:
    """Tracks registered invariants for one run (a plugin object of :class:`LiveRun`)."""

    def __init__(self) -> None:
        self._fixtures: list[Any] = []  # FixtureDefs being set up, innermost last
        self._item: pytest.Item | None = None
        self.pending: list[Invariant] = []
        #: The verdicts of this run (of the last round in watch mode).
        self.judged: list[Judged] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, Any, Any]:
        self._fixtures.append(fixturedef)
        try:
            return (yield)
        finally:
            self._fixtures.pop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self._item = item
        try:
            return (yield)
        finally:
            self._item = None

    def register(self, invariant: Invariant) -> None:
        """Called by the cluster for each new invariant."""
        if self._fixtures:
            fixturedef = self._fixtures[-1]
            invariant.registered_by = f"fixture {fixturedef.argname} ({fixturedef.scope} scope)"
            fixturedef.addfinalizer(invariant.close)
        elif self._item is not None:
            invariant.registered_by = f"test {self._item.nodeid}"
        self.pending.append(invariant)

    def judge(self) -> list[Judged]:
        """Close every pending invariant; their verdicts become :attr:`judged`."""
        pending, self.pending = self.pending, []
        for invariant in pending:
            invariant.close()
        self.judged = [Judged.of(invariant) for invariant in pending]
        return self.judged

    def discard(self) -> None:
        """Close the pending invariants without a verdict (an interrupted watch round)."""
        pending, self.pending = self.pending, []
        for invariant in pending:
            invariant.close()


def merge(per_worker: Iterable[Sequence[Judged]]) -> list[Judged]:
    """One verdict per invariant name: a failing one if any worker saw it fail."""
    by_name: dict[str, Judged] = {}
    for judged in per_worker:
        for verdict in judged:
            known = by_name.get(verdict.name)
            if known is None or (verdict.failed and not known.failed):
                by_name[verdict.name] = verdict
    return list(by_name.values())


def reports(judged: Sequence[Judged]) -> list[list[pytest.TestReport]]:
    """The setup, call and teardown reports of each invariant, as a test's would be."""
    out: list[list[pytest.TestReport]] = []
    seen: dict[str, int] = {}
    for verdict in judged:
        nodeid = INVARIANT_PREFIX + verdict.name
        seen[nodeid] = seen.get(nodeid, 0) + 1
        if seen[nodeid] > 1:  # the same invariant registered twice: keep both
            nodeid += f" [{seen[nodeid]}]"
        location = ("livecluster", None, f"invariant {verdict.name}")
        keywords: dict[str, Literal[1]] = {"livecluster": 1, "invariants": 1}
        call = pytest.TestReport(
            nodeid,
            location,
            keywords,
            "failed" if verdict.failed else "passed",
            verdict.details if verdict.failed else None,
            "call",
        )
        out.append(
            [
                pytest.TestReport(nodeid, location, keywords, "passed", None, "setup"),
                call,
                pytest.TestReport(nodeid, location, keywords, "passed", None, "teardown"),
            ]
        )
    return out


def log(session: pytest.Session, judged: Sequence[Judged]) -> None:
    """Send each invariant's reports through pytest's hooks (terminal, JUnit, exit status).

    Invariants count as collected results, so the progress shown stays true.
    """
    hook = session.config.hook
    session.testscollected += len(judged)
    for test_reports in reports(judged):
        nodeid, location = test_reports[0].nodeid, test_reports[0].location
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for report in test_reports:
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def invariant_section(judged: Sequence[Judged]) -> Section | None:
    """The report's ``invariants`` section: each one's verdict, and why."""
    if not judged:
        return None
    lines: list[str] = []
    for verdict in judged:
        lines.append(f"{'FAILED' if verdict.failed else 'ok'} {verdict.headline}")
        lines += [f"  {line}" for line in verdict.lines]
    return Section("invariants", lines, [verdict.data for verdict in judged])


def outcomes(judged: Sequence[Judged]) -> list[InvariantOutcome]:
    """What alerting needs of each judged invariant (``LiveInvariantBroken``)."""
    return [
        InvariantOutcome(v.name, v.failed, headline=v.headline, details=v.details)
        for v in judged
        if v.data.get("verdict") != Verdict.HOLDING
    ]
