"""Session invariants in a pytest run: who registered them, when they end, how they report.

An invariant registered while a fixture is being set up ends with that
fixture (its finalizer closes it); one registered anywhere else ends with
the run, or with the watch round. When they end, each invariant becomes a
test result of its own: a :class:`pytest.TestReport` with the node id
``livecluster::invariants::<mode>: <what>``, sent through pytest's reporting
hooks, so the terminal, JUnit XML and the exit status count it like a test.
A broken ``always``/``never`` and a ``sometimes`` never satisfied fail it.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, Literal

import pytest

from ..alerts import InvariantOutcome
from ..core.entry import describe_entry
from ..core.invariants import Invariant, Verdict
from .report import Section

__all__ = ["INVARIANT_PREFIX", "Invariants", "invariant_section"]

#: The node id of an invariant's result is this plus its name.
INVARIANT_PREFIX = "livecluster::invariants::"


class Invariants:
    """Tracks registered invariants for one run (a plugin object of :class:`LiveRun`)."""

    def __init__(self) -> None:
        self._fixtures: list[Any] = []  # FixtureDefs being set up, innermost last
        self._item: pytest.Item | None = None
        self.pending: list[Invariant] = []
        #: Every invariant judged so far in this run (the last round's in watch mode).
        self.judged: list[Invariant] = []

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

    def judge(self) -> list[Invariant]:
        """Close every pending invariant and return them, in registration order."""
        judged, self.pending = self.pending, []
        for invariant in judged:
            invariant.close()
        self.judged = judged
        return judged


def reports(invariants: Sequence[Invariant]) -> list[list[pytest.TestReport]]:
    """The setup, call and teardown reports of each invariant, as a test's would be."""
    out: list[list[pytest.TestReport]] = []
    seen: dict[str, int] = {}
    for invariant in invariants:
        nodeid = INVARIANT_PREFIX + invariant.name
        seen[nodeid] = seen.get(nodeid, 0) + 1
        if seen[nodeid] > 1:  # the same invariant registered twice: keep both
            nodeid += f" [{seen[nodeid]}]"
        location = ("livecluster", None, f"invariant {invariant.name}")
        keywords: dict[str, Literal[1]] = {"livecluster": 1, "invariants": 1}
        failed = invariant.failed
        call = pytest.TestReport(
            nodeid,
            location,
            keywords,
            "failed" if failed else "passed",
            invariant.details() if failed else None,
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


def log(session: pytest.Session, invariants: Sequence[Invariant]) -> None:
    """Send each invariant's reports through pytest's hooks (terminal, JUnit, exit status).

    Invariants count as collected results, so the progress shown stays true.
    """
    hook = session.config.hook
    session.testscollected += len(invariants)
    for test_reports in reports(invariants):
        nodeid, location = test_reports[0].nodeid, test_reports[0].location
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for report in test_reports:
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def invariant_section(invariants: Sequence[Invariant]) -> Section | None:
    """The report's ``invariants`` section: each one's verdict, and why."""
    if not invariants:
        return None
    lines: list[str] = []
    for invariant in invariants:
        mark = "FAILED" if invariant.failed else "ok"
        lines.append(f"{mark} {invariant.headline()}")
        event = invariant.event
        if invariant.failed and event is not None and event.entry is not None:
            lines.append(f"  shard {describe_entry(event.entry)}")
        if invariant.failed and event is not None:
            lines += [f"  read {path} = {value}" for path, value in event.reads]
    return Section("invariants", lines, [i.as_dict() for i in invariants])


def outcomes(invariants: Sequence[Invariant]) -> list[InvariantOutcome]:
    """What alerting needs of each judged invariant (``LiveInvariantBroken``)."""
    found: list[InvariantOutcome] = []
    for invariant in invariants:
        if invariant.verdict == Verdict.HOLDING:
            continue
        found.append(
            InvariantOutcome(
                invariant.name,
                invariant.failed,
                headline=invariant.headline(),
                details=invariant.details(),
            )
        )
    return found
