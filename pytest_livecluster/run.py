"""One pytest run against the cluster: registered by the plugin only with ``--live-cluster``.

:class:`LiveRun` owns the state, the collector, the recorder and the
:class:`~pytest_livecluster.cluster.Cluster` the fixture hands out. The
collector starts lazily, with the first test that needs the cluster, so an
xdist controller (which runs no test) never follows the cluster unless it has
a recording to write; every worker follows the cluster itself and sends its
report to the controller, which prints it once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import jsonutil
from .cluster import Cluster, describe_entry
from .collector import Collector
from .config import Settings
from .exceptions import LiveClusterError
from .recording import Recorder
from .report import RunReport, Section, build_report, merge_worker_reports
from .sim.client import OrchestratorClient
from .sources import parse_specs
from .sources.sim import SimSource
from .state import State
from .views import report_sections

__all__ = ["LiveRun", "XdistController"]

SHARDS_PROPERTY = "livecluster_shards"


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
        )
        self.collector: Collector | None = None
        self.cluster = Cluster(self.state, None, settings.timing, settings.methodology)
        self.start_error: str | None = None
        self.settle_note: str | None = None
        self.report: RunReport | None = None
        self.worker_reports: dict[str, dict[str, Any]] = {}
        self._orchestrator: OrchestratorClient | None = None
        # Build the sources now, so a bad spec is a usage error before any test runs.
        self._sources = parse_specs(settings.specs, settings.source_options)

    # -- starting ------------------------------------------------------------------

    def ensure_started(self) -> Cluster:
        """Start following the cluster (once) and settle; raise if it cannot be followed."""
        __tracebackhide__ = True
        if self.collector is None:
            self._start()
        if self.start_error is not None:
            pytest.fail(self.start_error, pytrace=False)
        return self.cluster

    def _start(self) -> None:
        if self.settings.record and not self.is_worker:
            self.recorder = Recorder(self.settings.record)
            self.state.set_sink(self.recorder)
        self.collector = Collector(self.state, self._sources).start()
        self.cluster.collector = self.collector
        self._settle(self.collector)

    def _settle(self, collector: Collector) -> None:
        settings = self.settings
        deadline = time.monotonic() + settings.settle
        while time.monotonic() < deadline:
            waiting = [h for h in collector.health() if h.state in ("starting", "reconnecting")]
            if not waiting or collector.failures:
                break
            time.sleep(0.02)
        remaining = max(0.0, deadline - time.monotonic())
        quiet = collector.wait_idle(settings.settle_quiet, timeout=remaining)
        if collector.failures:
            problems = "\n".join(f"  {f}" for f in collector.failures)
            self.start_error = f"livecluster: a source failed at start-up:\n{problems}"
            return
        not_attached = [h.source for h in collector.health() if h.state in ("starting",)]
        if not_attached or not quiet:
            what = (
                f"not attached: {', '.join(not_attached)}"
                if not_attached
                else "still reading their backlog"
            )
            self.settle_note = (
                f"start-up did not settle within {settings.settle:g} s ({what}); "
                "tests started anyway (livecluster_settle_timeout)"
            )

    def orchestrator(self) -> OrchestratorClient:
        """A client of the orchestrator: the simulated one, or ``livecluster_orchestrator_url``."""
        __tracebackhide__ = True
        if self._orchestrator is None:
            self._orchestrator = self._find_orchestrator()
        return self._orchestrator

    def _find_orchestrator(self) -> OrchestratorClient:
        __tracebackhide__ = True
        for source in self._sources:
            if isinstance(source, SimSource):
                source.started.wait(self.settings.settle)
                if source.cluster is None:
                    pytest.fail("livecluster: the simulated cluster did not start", pytrace=False)
                return source.cluster.client()
        if self.settings.orchestrator_url:
            return OrchestratorClient(self.settings.orchestrator_url)
        pytest.skip(
            "no orchestrator to talk to: follow the simulated cluster (--live-cluster=sim) "
            "or set livecluster_orchestrator_url"
        )

    def set_cluster_timing(self, item: pytest.Item) -> None:
        marker = item.get_closest_marker("livecluster")
        timing = self.settings.timing
        if marker is not None:
            if marker.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: the livecluster marker takes keyword arguments only "
                    "(timeout=, window=, tick=)"
                )
            try:
                timing = self.settings.timing_for(marker.kwargs)
            except LiveClusterError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc}") from exc
        self.cluster.begin_test(timing)

    # -- hooks -----------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # An xdist controller runs no test; it follows the cluster only to record it.
        if self.is_controller and self.settings.record:
            self._start()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        t = self.settings.timing
        lines = [
            f"livecluster: following {', '.join(self.settings.specs)}",
            f"livecluster: eventually timeout {t.timeout:g} s, consistently window "
            f"{t.window:g} s, tick {t.tick:g} s, settle up to {self.settings.settle:g} s",
        ]
        if self.settings.counters:
            lines.append(f"livecluster: counters {', '.join(self.settings.counters)}")
        return lines

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
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
            if health.state not in ("attached", "finished") or health.error_count:
                last = f"; last error: {health.errors[-1]}" if health.errors else ""
                lines.append(
                    f"source {health.source} is {health.state}, silent for "
                    f"{health.silent_for():.1f} s, {health.error_count} errors{last}"
                )
        if self.settle_note:
            lines.append(self.settle_note)
        return "\n".join(lines)

    def pytest_livecluster_report(self, cluster: Cluster) -> list[Section]:
        return report_sections(cluster.views, stale_after=self.settings.stale_after)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._orchestrator is not None:
            self._orchestrator.close()
        if self.collector is not None:
            self.collector.close()
        if self.recorder is not None:
            self.recorder.close()
        if self.is_controller:
            self.report = merge_worker_reports(self.worker_reports)
        elif self.collector is not None:
            self.report = self._build_report()
        if self.report is None:
            return
        if self.is_worker:
            self.config.workeroutput["livecluster"] = self.report.as_dict()  # type: ignore[attr-defined]
            return
        self._write_files(self.report)

    def _build_report(self) -> RunReport:
        sections: list[Section] = []
        for result in self.config.hook.pytest_livecluster_report(cluster=self.cluster):
            sections.extend(result or [])
        return build_report(
            self.state,
            self.collector,
            cluster=self.settings.name,
            counters=self.settings.counters,
            sections=sections,
        )

    def _write_files(self, report: RunReport) -> None:
        self.written: list[str] = []
        if self.settings.report:
            path = Path(self.settings.report)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jsonutil.dumps(report.as_dict(), indent=True) + b"\n")
            self.written.append(f"generated livecluster json report: {path.resolve()}")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(report.markdown())
        if self.recorder is not None and self.recorder.path is not None:
            self.written.append(f"generated livecluster recording: {self.recorder.path.resolve()}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.report is None:
            return
        terminalreporter.section("livecluster")
        if self.settle_note:
            terminalreporter.line(self.settle_note, yellow=True)
        for line in self.report.terminal_lines():
            terminalreporter.line(line)
        for line in getattr(self, "written", []):
            terminalreporter.line(line)


class XdistController:
    """Receives the workers' reports; registered only where xdist is present."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        data = output.get("livecluster")
        if data is not None:
            name = getattr(getattr(node, "gateway", None), "id", None) or output.get("workerid")
            self.run.worker_reports[str(name)] = data


def _xdist_workers(config: pytest.Config) -> int:
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if not numprocesses or dist == "no":
        return 0
    return 1 if numprocesses == "auto" else int(numprocesses)
