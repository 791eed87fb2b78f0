"""One pytest run against the cluster: registered by the plugin only with ``--live-cluster``.

:class:`LiveRun` owns the state, the collector, the recorder and the
:class:`~pytest_livecluster.core.cluster.Cluster` the fixture hands out. The
collector starts with the session, so the backlog is read while pytest
collects; the first test that needs the cluster waits until it is settled, and
a run in which no test needed it reports nothing of it. An xdist controller
(which runs no test) never follows the cluster unless it has a recording to
write; every worker follows the cluster itself and sends its report to the
controller, which prints it once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import _escape
from .._files import append_text, write_atomic
from .._retry import Deadline, wait_until
from .._secrets import display_spec, scrub
from ..alerts.model import InvariantOutcome, SourceObservation, TestOutcome
from ..core import jsonutil
from ..core.cluster import Cluster, describe_entry
from ..core.collector import Collector
from ..core.recording import Recorder
from ..core.source import SourceState
from ..core.state import State
from ..core.waiting import TestTiming
from ..exceptions import LiveClusterError
from ..sources import parse_specs
from . import invariants as _invariants
from .config import Settings
from .outcomes import LIVE_ATTR, TestTimeline, outcomes, tag_report
from .report import RunReport, Section, build_report, merge_worker_reports
from .signals import install_sigterm_interrupt

if TYPE_CHECKING:
    from ..alerts.alerter import Alerter, AlertRound

__all__ = ["LiveRun"]


class LiveRun:
    """The plugin object of a run with ``--live-cluster``."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.is_controller = not self.is_worker and _xdist_workers(config) > 0
        self.recorder: Recorder | None = None
        self.state = State(
            counters=settings.counters,
            ttl=settings.ttl,
            limits=settings.limits,
            journal_size=settings.journal_size,
            journal_bytes=settings.journal_bytes,
        )
        for projections in config.hook.pytest_livecluster_projections(
            config=config, state=self.state
        ):
            for projection in projections or ():
                self.state.add_projection(projection)
        self.collector: Collector | None = None
        self.cluster: Cluster = config.hook.pytest_livecluster_make_cluster(
            config=config, state=self.state, collector=None, timing=settings.timing
        ) or Cluster(self.state, None, settings.timing)
        #: The session invariants (``cluster.always`` ...), closed with their fixture or the run.
        self.invariants = _invariants.Invariants()
        self.cluster.on_invariant = self.invariants.register
        self.start_error: str | None = None
        #: Whether a test needed the cluster (and start-up waited for it to settle).
        self.settled = False
        self.settle_note: str | None = None
        self.report: RunReport | None = None
        self.worker_reports: dict[str, dict[str, Any]] = {}
        self.alerter: Alerter | None = None
        if settings.alerting is not None and not self.is_worker:
            from ..alerts.alerter import Alerter, ci_link  # HTTP clients: only when alerting

            report = str(Path(settings.report).resolve()) if settings.report else None
            self.alerter = Alerter(
                settings.alerting, cluster=settings.name, report_path=report, link=ci_link()
            )
        #: Every collected test's node id, when the run collected the whole suite (alerts of
        #: tests not in it are resolved: the tests no longer exist); None otherwise.
        self.collected: frozenset[str] | None = None
        self._narrowed: str | None = None
        self.watching = False
        self.warnings: list[str] = []
        self._restore_sigterm: Callable[[], None] = lambda: None
        self._live_reports: list[pytest.TestReport] = []
        #: When each live test ran and how it ended (the page's tests timeline).
        self.tests = TestTimeline()
        self.worker_sources: list[SourceObservation] = []
        self.worker_invariants: list[list[_invariants.Judged]] = []
        # Build the sources now, so a bad spec is a usage error before any test runs.
        self._sources = parse_specs(settings.specs, settings.source_options)

    # -- starting ------------------------------------------------------------------

    def ensure_started(self) -> Cluster:
        """Start following the cluster (once) and settle; raise if it cannot be followed."""
        __tracebackhide__ = True
        if self.collector is None:
            self._follow()
        if not self.settled:
            assert self.collector is not None
            self.settled = True
            self._settle(self.collector)
        if self.start_error is not None:
            pytest.fail(self.start_error, pytrace=False)
        return self.cluster

    def _follow(self) -> None:
        """Start following the cluster (without waiting for it to settle)."""
        if self.settings.record and not self.is_worker:
            self.recorder = Recorder(self.settings.record)
            self.state.set_sink(self.recorder)
        self.collector = Collector(self.state, self._sources).start()
        self.cluster.collector = self.collector

    def _settle(self, collector: Collector) -> None:
        settings = self.settings
        deadline = Deadline(settings.settle)

        def attached() -> bool:
            pending = (SourceState.STARTING, SourceState.RECONNECTING)
            waiting = [h for h in collector.health() if h.state in pending]
            return not waiting or bool(collector.failures)

        wait_until(attached, timeout=deadline.remaining(), interval=0.02)
        remaining = deadline.remaining()
        behind = collector.wait_caught_up(settings.settle_quiet, timeout=remaining)
        if collector.failures:
            problems = "\n".join(
                f"  {_escape.terminal(str(f), one_line=True)}" for f in collector.failures
            )
            self.start_error = f"livecluster: a source failed at start-up:\n{problems}"
            return
        not_attached = [h.source for h in collector.health() if h.state is SourceState.STARTING]
        if not_attached or behind:
            what = (
                f"not attached: {', '.join(not_attached)}"
                if not_attached
                else f"still reading their backlog: {', '.join(behind)}"
            )
            self.settle_note = (
                f"start-up did not settle within {settings.settle:g} s ({what}); "
                "tests started anyway (livecluster_settle_timeout)"
            )

    def set_cluster_timing(self, item: pytest.Item) -> None:
        self.cluster.begin_test(self._timing(item))

    def _timing(self, item: pytest.Item) -> TestTiming:
        marker = item.get_closest_marker("livecluster")
        if marker is None:
            return self.settings.timing
        if marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: the livecluster marker takes keyword arguments only "
                "(timeout=, window=, tick=, severity=)"
            )
        try:
            return self.settings.timing_for(marker.kwargs)
        except LiveClusterError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from exc

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # A bad marker is a usage error before any test runs, not a test's error.
        for item in items:
            self._timing(item)

    # -- hooks -----------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # SIGTERM ends the run as Ctrl-C does: pytest's interrupt path still runs
        # pytest_sessionfinish, so the report, JUnit XML, recording and alerts are kept.
        self._restore_sigterm = install_sigterm_interrupt()
        # An xdist controller runs no test; it follows the cluster only to record it.
        # Any other process starts reading now, while pytest collects.
        if not self.is_controller or self.settings.record:
            self._follow()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        t = self.settings.timing
        lines = [
            f"livecluster: following {', '.join(map(display_spec, self.settings.specs))}",
            f"livecluster: eventually timeout {t.timeout:g} s, consistently window "
            f"{t.window:g} s, tick {t.tick:g} s, settle up to {self.settings.settle:g} s",
        ]
        if self.settings.counters:
            lines.append(f"livecluster: counters {', '.join(self.settings.counters)}")
        alerting = self.settings.alerting
        if alerting is not None and self.alerter is not None:
            silent = (
                f", source silent after {alerting.silent_after:g} s"
                if alerting.silent_after
                else ""
            )
            lines.append(
                f"livecluster: alerts to {', '.join(t.display for t in alerting.targets)} "
                f"after {alerting.fire_after} failing run(s){silent}; ledger "
                f"{alerting.ledger or 'kept for this run only'}"
            )
        # A spec may hold credentials (masked) and any bytes (escaped).
        return [_escape.terminal(scrub(line), one_line=True) for line in lines]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        tag_report(report, item, call.excinfo)
        uses_cluster = "cluster" in getattr(item, "fixturenames", ())
        if report.failed and self.collector is not None and uses_cluster:
            text = self._failure_context()
            if text:
                report.sections.append((f"livecluster {report.when}", text))

    def _failure_context(self) -> str:
        cursor = self.cluster.since_test
        lines = [f"{cursor.count} shards arrived during the test"]
        entries = cursor.entries()[-5:]
        if entries:
            lines.append("the last of them:")
            lines += [f"  {describe_entry(e)}" for e in entries]
        for health in self.cluster.health():
            if (
                health.state not in (SourceState.ATTACHED, SourceState.FINISHED)
                or health.error_count
            ):
                last = f"; last error: {health.errors[-1]}" if health.errors else ""
                lines.append(
                    f"source {health.source} is {health.state}, silent for "
                    f"{health.silent_for():.1f} s, {health.error_count} errors{last}"
                )
        if self.settle_note:
            lines.append(self.settle_note)
        # Source errors may quote what a server or an engine sent.
        return "\n".join(_escape.terminal(scrub(line), one_line=True) for line in lines)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        try:
            return (yield)
        finally:
            # Session fixtures are torn down by now: what they registered is closed.
            if self.is_worker:
                # An xdist worker may only report its own items: the controller reports these.
                output = self.config.workeroutput  # type: ignore[attr-defined]
                output["livecluster_invariants"] = [j.as_dict() for j in self.invariants.judge()]
            elif self.is_controller:
                self.invariants.judged = _invariants.merge(self.worker_invariants)
                _invariants.log(session, self.invariants.judged)
            elif not self.watching:
                _invariants.log(session, self.invariants.judge())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.alerter is not None and not self.watching and hasattr(report, LIVE_ATTR):
            self._live_reports.append(report)
        self.tests.note(report)

    # -- what the run collected: did it see the whole suite? ----------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A module that failed to import (or skipped itself) hides its tests: they exist.
        if self.alerter is not None and not report.passed and self._narrowed is None:
            self._narrowed = f"{report.nodeid or 'collection'} {report.outcome}"

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        if self.alerter is not None and items and self._narrowed is None:
            self._narrowed = f"{len(items)} deselected"

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.alerter is None:
            return
        self._narrowed = self._narrowed or self._narrowing(session.config)
        if self._narrowed is None:
            self.collected = frozenset(item.nodeid for item in session.items)

    @staticmethod
    def _narrowing(config: pytest.Config) -> str | None:
        """What made this run collect less than the whole suite; None if nothing did.

        Directories (given, from ``testpaths``, or the current one) are the
        suite; a file, a node id, ``--pyargs``, ``-k``, ``-m``, ``--lf``,
        ``--deselect`` and ``--ignore`` narrow it.
        """
        option = config.option
        for flag, name in (
            ("keyword", "-k"),
            ("markexpr", "-m"),
            ("lf", "--lf"),
            ("deselect", "--deselect"),
            ("ignore", "--ignore"),
            ("ignore_glob", "--ignore-glob"),
        ):
            if getattr(option, flag, None):
                return name
        if config.args_source is not pytest.Config.ArgsSource.ARGS:
            return None
        if getattr(option, "pyargs", False):
            return "--pyargs"
        for arg in config.args:
            if "::" in arg or not (config.invocation_params.dir / arg).is_dir():
                return f"the argument {arg}"
        return None

    # -- alerts ------------------------------------------------------------------------

    def source_observations(self) -> list[SourceObservation]:
        """How long each source has been silent, as of now."""
        if self.collector is None:
            # Each xdist worker followed the same sources: one that saw lines speaks for all.
            quietest: dict[str, SourceObservation] = {}
            for seen in self.worker_sources:
                known = quietest.get(seen.source)
                if known is None or seen.silent_for < known.silent_for:
                    quietest[seen.source] = seen
            return list(quietest.values())
        return [
            SourceObservation(h.source, h.silent_for(), str(h.state))
            for h in self.collector.health()
        ]

    def alert_round(
        self,
        tests: list[TestOutcome],
        sources: list[SourceObservation],
        invariants: Sequence[InvariantOutcome] = (),
    ) -> AlertRound | None:
        """Send what changed since the last round (or run); ``None`` without targets."""
        if self.alerter is None:
            return None
        self.alerter.context = self.status() if self.collector is not None else {}
        return self.alerter.round(tests, sources, invariants=invariants, collected=self.collected)

    def status(self) -> dict[str, str]:
        """One-line facts about the cluster now (``pytest_livecluster_status``)."""
        facts: dict[str, str] = {}
        for result in self.config.hook.pytest_livecluster_status(
            config=self.config, cluster=self.cluster
        ):
            facts.update(result or {})
        return facts

    def alert_section(self) -> Section | None:
        if self.alerter is None or self.alerter.last is None:
            return None
        return Section("alerts", self.alerter.report_lines(), self.alerter.report_data())

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # A second SIGTERM while the files are written acts as it did before the run.
        self._restore_sigterm()
        sources = self.source_observations()
        self.close()
        if self.is_controller:
            self.report = merge_worker_reports(self.worker_reports)
            if self.report is not None:
                self.report.tests = self.tests.as_list()
        elif self.collector is not None and self.settled:
            self.report = self._build_report()
        if self.is_worker:
            if self.report is not None:
                output = self.config.workeroutput  # type: ignore[attr-defined]
                output["livecluster"] = self.report.as_dict()
                output["livecluster_sources"] = [s.__dict__ for s in sources]
            return
        judged = self.invariants.judged
        if not self.watching:
            self.alert_round(outcomes(self._live_reports), sources, _invariants.outcomes(judged))
        for section in (_invariants.invariant_section(judged), self.alert_section()):
            if self.report is not None and section is not None:
                self.report.sections.append(section)
        if self.report is not None:
            self._write_files(self.report)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._restore_sigterm()

    def close(self) -> None:
        """Stop following the cluster: threads ended, recording closed. Idempotent."""
        if self.collector is not None:
            self.collector.close()
        if self.recorder is not None:
            self.recorder.close()

    def _build_report(self) -> RunReport:
        sections: list[Section] = []
        hook = self.config.hook.pytest_livecluster_report
        for result in hook(config=self.config, cluster=self.cluster):
            sections.extend(result or [])
        failing = [p for p in self.state.projections() if getattr(p, "errors", 0)]
        if failing:
            lines = [
                f"projection {getattr(p, 'name', type(p).__name__)} raised on "
                f"{getattr(p, 'errors', 0)} shards; first: {getattr(p, 'first_error', '')}"
                for p in failing
            ]
            sections.append(Section("projections", lines))
        report = build_report(
            self.state,
            self.collector,
            cluster=self.settings.name,
            counters=self.settings.counters,
            sections=sections,
        )
        report.tests = self.tests.as_list()
        return report

    def write_round_report(self) -> None:
        """Rewrite the JSON report and the page with what the cluster looks like now (watch)."""
        if (self.settings.report or self.settings.html) and self.collector is not None:
            report = self._build_report()
            section = self.alert_section()
            if section is not None:
                report.sections.append(section)
            self._write_json(report)
            self._write_html(report)

    def _write_html(self, report: RunReport) -> Path | None:
        if not self.settings.html:
            return None
        page = self.config.hook.pytest_livecluster_html(config=self.config, report=report.as_dict())
        if page is None:
            self.warnings.append(
                "livecluster: no plugin renders the HTML page (the methodology's plugin does; "
                "was it disabled with -p no:livecluster-methodology?)"
            )
            return None
        return write_atomic(self.settings.html, page)

    def _write_json(self, report: RunReport) -> Path | None:
        if not self.settings.report:
            return None
        return write_atomic(
            self.settings.report, jsonutil.dumps(report.as_dict(), indent=True) + b"\n"
        )

    def _write_files(self, report: RunReport) -> None:
        self.written: list[str] = []
        self._write_output(
            "JSON report", "json report", self.settings.report, self._write_json, report
        )
        self._write_output(
            "HTML report", "html report", self.settings.html, self._write_html, report
        )
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            # The environment chose this path, not the user: a failure to write it is a
            # warning, and the tests' exit status stays theirs.
            try:
                append_text(summary, report.markdown())
            except OSError as exc:
                self.warnings.append(
                    f"livecluster: could not write the step summary to {summary}: "
                    f"{exc.strerror or exc}"
                )
        if self.recorder is not None and self.recorder.path is not None:
            self.written.append(f"generated livecluster recording: {self.recorder.path.resolve()}")

    def _write_output(
        self,
        what: str,
        written: str,
        target: str | None,
        write: Callable[[RunReport], Path | None],
        report: RunReport,
    ) -> None:
        """Write one output file; a failure is a warning (checked at start-up, the file
        system changed under the run), never the tests' exit status."""
        try:
            path = write(report)
        except OSError as exc:
            self.warnings.append(
                f"livecluster: could not write the {what} to {target}: {exc.strerror or exc}"
            )
            return
        if path is not None:
            self.written.append(f"generated livecluster {written}: {path.resolve()}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        for warning in self.warnings:
            # The path came from the environment; the error may quote it.
            terminalreporter.line(_escape.terminal(warning, one_line=True), yellow=True)
        if self.report is None:
            section = self.alert_section()
            if section is not None:
                terminalreporter.section("livecluster")
                for line in section.terminal_lines():
                    terminalreporter.line(line)
            return
        terminalreporter.section("livecluster")
        if self.settle_note:
            terminalreporter.line(_escape.terminal(self.settle_note, one_line=True), yellow=True)
        for line in self.report.terminal_lines():
            terminalreporter.line(line)
        for line in getattr(self, "written", []):
            terminalreporter.line(line)


def _xdist_workers(config: pytest.Config) -> int:
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if not numprocesses or dist == "no":
        return 0
    return 1 if numprocesses == "auto" else int(numprocesses)
