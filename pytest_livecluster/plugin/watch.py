"""Watch mode: one process follows the cluster and re-runs the live tests every round.

Registered by the plugin with ``--live-watch=SECONDS``. Each round runs every
collected test through pytest's own protocol (fixtures set up and torn down,
session-scoped ones included, as in a fresh run) while the sources stay
attached, then prints one line, sends the round's alert transitions and
rewrites the JSON report. Ctrl-C (or SIGTERM) stops it: fixtures are torn
down, the sources closed, and the last complete round is reported as a
normal run's result, so the exit status, JUnit XML and failure details are
those of the cluster as last seen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from .. import _escape
from . import invariants as _invariants
from .outcomes import headline, outcomes
from .run import LiveRun
from .signals import sigterm_interrupts

__all__ = ["Watch"]


class Watch:
    """The plugin object of ``--live-watch``: it owns the run loop."""

    def __init__(self, run: LiveRun, interval: float, rounds: int | None = None) -> None:
        self.run = run
        self.interval = interval
        self.rounds = rounds
        self.completed = 0
        self._failing: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        self.run.watching = True
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        last: list[pytest.TestReport] = []
        judged: list[_invariants.Judged] = []
        # SIGTERM (a service manager stopping the watch) stops it as Ctrl-C does.
        with sigterm_interrupts():
            try:
                while self.rounds is None or self.completed < self.rounds:
                    started = time.monotonic()
                    last = self._round(session)
                    # Each round's invariants are judged on that round alone.
                    judged = self.run.invariants.judge()
                    self.completed += 1
                    self._after_round(last, judged, time.monotonic() - started, terminal)
                    if self.rounds is not None and self.completed >= self.rounds:
                        break
                    time.sleep(max(0.0, started + self.interval - time.monotonic()))
            except KeyboardInterrupt:
                _teardown_all(session)
                self.run.invariants.discard()  # an interrupted round is not judged
                self._say(terminal, f"watch: stopped after {self.completed} complete round(s)")
                if not self.completed:
                    raise
        self.run.invariants.judged = judged
        self._replay(session, last)
        _invariants.log(session, judged)
        return True

    def _round(self, session: pytest.Session) -> list[pytest.TestReport]:
        reports: list[pytest.TestReport] = []
        items = session.items
        for i, item in enumerate(items):
            nextitem = items[i + 1] if i + 1 < len(items) else None
            reports += runtestprotocol(item, log=False, nextitem=nextitem)
        return reports

    def _after_round(
        self,
        reports: list[pytest.TestReport],
        judged: list[_invariants.Judged],
        seconds: float,
        terminal: Any,
    ) -> None:
        run = self.run
        for report in reports:
            run.tests.note(report)
        results = outcomes(reports)
        alerts = run.alert_round(results, run.source_observations(), _invariants.outcomes(judged))
        broken = [i for i in judged if i.failed]
        failed = [o.nodeid for o in results if o.failed] + [
            _invariants.INVARIANT_PREFIX + i.name for i in broken
        ]
        counts = {
            "passed": sum(1 for o in results if not o.failed),
            "failed": len(failed),
            "skipped": sum(1 for r in reports if r.skipped and r.when in ("setup", "call")),
        }
        when = dt.datetime.now().strftime("%H:%M:%S")
        summary = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "no tests"
        line = f"watch round {self.completed} at {when}: {summary} in {seconds:.1f} s"
        if run.collector is not None:
            line += f"; {run.state.stats().lines:,} lines read"
        if alerts is not None:
            line += f"; {alerts.summary()}"
        self._say(terminal, line, red=bool(failed), green=not failed)
        announced = set(self._failing)
        for report in reports:
            if report.failed and report.nodeid not in announced:
                announced.add(report.nodeid)
                self._say(terminal, f"  FAILED {report.nodeid} - {headline(report)[0]}", red=True)
        for invariant in broken:
            nodeid = _invariants.INVARIANT_PREFIX + invariant.name
            if nodeid not in announced:
                announced.add(nodeid)
                self._say(terminal, f"  FAILED {invariant.headline}", red=True)
        for name in set(self._failing) - set(failed):
            self._say(terminal, f"  passes again: {name}", green=True)
        if alerts is not None:
            for delivery in alerts.deliveries:
                self._say(terminal, f"  alert {delivery.line()}", yellow=not delivery.ok)
        self._failing = set(failed)
        run.write_round_report()

    def _replay(self, session: pytest.Session, reports: list[pytest.TestReport]) -> None:
        """Report the last complete round as pytest reports a run."""
        hook = session.config.hook
        by_test: dict[str, list[pytest.TestReport]] = {}
        for report in reports:
            by_test.setdefault(report.nodeid, []).append(report)
        for nodeid, test_reports in by_test.items():
            location = test_reports[0].location
            hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
            for report in test_reports:
                hook.pytest_runtest_logreport(report=report)
            hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    @staticmethod
    def _say(terminal: Any, text: str, **markup: bool) -> None:
        if terminal is not None:
            # Test ids, failure headlines and alert outcomes may carry log-derived text.
            terminal.write_line(_escape.terminal(text, one_line=True), **markup)


def _teardown_all(session: pytest.Session) -> None:
    """Run every pending finalizer after an interrupted round."""
    setupstate = getattr(session, "_setupstate", None)
    if setupstate is not None:
        with contextlib.suppress(Exception):
            setupstate.teardown_exact(None)
