"""One alerting round: observations in, transitions and deliveries out.

The run (or each watch round) hands :meth:`Alerter.round` how every live test
ended and how long each source has been silent. The ledger turns that into
alerts; every target is sent what it has not been told yet; the ledger is
saved. Nothing here raises into the test run.

Summaries and details come from test failures and cluster logs: they are
made terminal-safe (:func:`.._escape.terminal`) before they become
annotations, since receivers show them as they are, and the report lines are
too, since they are printed.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._escape import terminal
from .delivery import Delivery, deliver
from .ledger import Ledger
from .model import SILENT_ALERT, TEST_ALERT, SourceObservation, TestOutcome, alert_name
from .targets import Target

__all__ = ["AlertRound", "AlertSettings", "Alerter", "ci_link"]

_DETAILS_CHARS = 1500
_HISTORY = 100
_QUIET_STATES = frozenset({"closed", "finished"})


def ci_link(env: Mapping[str, str] | None = None) -> str | None:
    """The CI run's page, where the CI tells it (GitHub, GitLab, Buildkite, Jenkins)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILDKITE_BUILD_URL", "BUILD_URL"):
        if env.get(name):
            return env[name]
    return None


@dataclass(frozen=True)
class AlertSettings:
    """How to alert, validated by :mod:`pytest_livecluster.plugin.config`."""

    targets: tuple[Target, ...]
    fire_after: int = 1
    severity: str = "warning"
    silent_after: float | None = None
    ledger: Path | None = None
    budget: float = 10.0
    expiry: float = 24 * 3600.0


@dataclass
class AlertRound:
    """What one round changed and sent."""

    number: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.firing)} firing"]
        if self.fired:
            parts.append(f"{len(self.fired)} fired")
        if self.resolved:
            parts.append(f"{len(self.resolved)} resolved")
        failed = [d for d in self.deliveries if not d.ok]
        if failed:
            parts.append(f"{len(failed)} deliveries failed")
        return "alerts: " + ", ".join(parts)


class Alerter:
    """Alert lifecycle across rounds and runs, for the targets in ``settings``."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        cluster: str,
        report_path: str | None = None,
        link: str | None = None,
    ) -> None:
        self.settings = settings
        self.cluster = cluster
        self.report_path = report_path
        self.link = link
        self.ledger = Ledger(settings.ledger, fire_after=settings.fire_after)
        #: Rounds that changed or sent something, the latest ``_HISTORY`` of them.
        self.rounds: collections.deque[AlertRound] = collections.deque(maxlen=_HISTORY)
        self.last: AlertRound | None = None
        self.count = 0
        self.notes: list[str] = [self.ledger.load_error] if self.ledger.load_error else []

    def round(
        self,
        tests: Sequence[TestOutcome],
        sources: Sequence[SourceObservation] = (),
        now: dt.datetime | None = None,
    ) -> AlertRound:
        now = now or dt.datetime.now(dt.UTC)
        self.count += 1
        result = AlertRound(self.count)
        for test in tests:
            self._observe_test(test, now, result)
        if self.settings.silent_after is not None:
            for source in sources:
                self._observe_source(source, self.settings.silent_after, now, result)
        expires = now + dt.timedelta(seconds=self.settings.expiry)
        for target in self.settings.targets:
            alerts = self.ledger.outbox(target.id, refresh=target.refresh, expires=expires)
            if not alerts:
                continue
            delivery = deliver(
                target, alerts, cluster=self.cluster, link=self.link, budget=self.settings.budget
            )
            result.deliveries.append(delivery)
            if delivery.ok:
                self.ledger.delivered(target.id, alerts)
        self.ledger.prune(t.id for t in self.settings.targets)
        result.firing = sorted(alert_name(e.labels) for e in self.ledger.firing())
        try:
            self.ledger.save()
        except OSError as exc:
            self.notes.append(f"alert ledger {self.ledger.path} could not be written: {exc}")
        self.last = result
        if result.fired or result.resolved or result.deliveries or not self.rounds:
            self.rounds.append(result)
        return result

    def _labels(self, alertname: str, **identity: str) -> dict[str, str]:
        labels = {"alertname": alertname, **identity}
        if self.cluster:
            labels["cluster"] = self.cluster
        return labels

    def _annotations(self, summary: str, details: str = "") -> dict[str, str]:
        annotations = {"summary": terminal(summary, one_line=True)}
        if details:
            # Cut before escaping, so an escape is never cut in half.
            annotations["description"] = terminal(details[:_DETAILS_CHARS])
        if self.report_path:
            annotations["report"] = self.report_path
        if self.link:
            annotations["run"] = self.link
        return annotations

    def _observe_test(self, test: TestOutcome, now: dt.datetime, result: AlertRound) -> None:
        labels = self._labels(TEST_ALERT, test=test.nodeid)
        labels["severity"] = test.severity or self.settings.severity
        if test.failed:
            summary = f"{test.nodeid} failed: {test.headline}" if test.headline else test.nodeid
            if self.ledger.failing(labels, self._annotations(summary, test.details), now):
                result.fired.append(test.nodeid)
        elif self.ledger.passing(labels, now):
            result.resolved.append(test.nodeid)

    def _observe_source(
        self, source: SourceObservation, limit: float, now: dt.datetime, result: AlertRound
    ) -> None:
        labels = self._labels(SILENT_ALERT, source=source.source)
        labels["severity"] = self.settings.severity
        if source.state not in _QUIET_STATES and source.silent_for > limit:
            summary = (
                f"source {source.source} ({source.state}) has sent no line for "
                f"{source.silent_for:.0f} s (livecluster_alert_silent_after = {limit:g} s)"
            )
            if self.ledger.failing(labels, self._annotations(summary), now, fire_after=1):
                result.fired.append(source.source)
        elif self.ledger.passing(labels, now):
            result.resolved.append(source.source)

    # -- the report -------------------------------------------------------------------

    def report_lines(self) -> list[str]:
        targets = ", ".join(t.display for t in self.settings.targets)
        lines = [f"targets: {targets}"]
        lines += self.notes
        for rnd in self.rounds:
            label = f"round {rnd.number}: " if self.count > 1 else ""
            lines += [f"{label}fired {name}" for name in rnd.fired]
            lines += [f"{label}resolved {name}" for name in rnd.resolved]
            lines += [f"{label}{d.line()}" for d in rnd.deliveries]
        last = self.last or AlertRound()
        lines.append(f"firing now: {', '.join(last.firing) if last.firing else 'none'}")
        # Test ids, source ids and delivery errors are not ours to trust.
        return [terminal(line, one_line=True) for line in lines]

    def report_data(self) -> dict[str, Any]:
        return {
            "targets": [t.display for t in self.settings.targets],
            "firing": self.last.firing if self.last else [],
            "rounds_seen": self.count,
            "rounds": [
                {
                    "round": r.number,
                    "fired": r.fired,
                    "resolved": r.resolved,
                    "deliveries": [d.as_dict() for d in r.deliveries],
                }
                for r in self.rounds
            ],
            "notes": self.notes,
        }
