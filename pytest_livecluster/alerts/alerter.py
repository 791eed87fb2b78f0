"""One alerting round: observations in, transitions and deliveries out.

The run (or each watch round) hands :meth:`Alerter.round` how every live test
ended, which invariants held and how long each source has been silent. The
ledger turns that into alerts; every target is sent what it has not been told
yet; the ledger is saved. Nothing here raises into the test run.

Alertmanager is the truth about itself. Before sending, each Alertmanager
target is asked which of this cluster's alerts it holds (``GET
/api/v2/alerts``, filtered by ``cluster`` and our alert names); those whose
test passed, whose invariant held or whose source sends lines again in this
round are resolved there, whether or not the ledger remembers them (it may
be off, new on this machine, or damaged). A test that fires but no longer
exists is resolved too, when the run collected the whole suite
(``collected``). A target that cannot be read is a note in the report, and
the ledger decides alone. A webhook cannot be asked: without the ledger's
history, the report says it cannot know what was announced there.

Summaries and details come from test failures and cluster logs: they are
made terminal-safe (:func:`.._escape.terminal`) before they become
annotations, since receivers show them as they are, and the report lines are
too, since they are printed.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._escape import terminal
from .delivery import Delivery, HeldAlert, Reading, deliver, read_alerts
from .ledger import Ledger
from .model import (
    INVARIANT_ALERT,
    SILENT_ALERT,
    TEST_ALERT,
    Alert,
    InvariantOutcome,
    SourceObservation,
    TestOutcome,
    alert_name,
    fingerprint,
)
from .targets import Target

__all__ = ["AlertRound", "AlertSettings", "Alerter", "Holding", "ci_link"]

_DETAILS_CHARS = 1500
_HISTORY = 100
_QUIET_STATES = frozenset({"closed", "finished"})
#: The share of a target's budget that each read of Alertmanager may take (one
#: before sending, one after): the POST keeps at least half of it.
_READ_SHARE = 0.25
#: The ``resolution`` annotation of a test's alert that no run can resolve any more.
GONE = "the test no longer exists: a run of the whole suite did not collect it"
REPLACED = "replaced by the same alert with the labels it has now"


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
class Holding:
    """What one target holds of this cluster's alerts after a round, as far as is known.

    For Alertmanager, what it answered (``firing`` None: it could not be read);
    for a webhook, what the ledger says it was told (None: no ledger history).
    """

    target: str
    kind: str
    firing: list[str] | None
    note: str | None = None
    #: The state of held alerts that are not simply active (``suppressed``: silenced).
    states: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        if self.kind == "alertmanager":
            if self.firing is None:
                return f"{self.target}: what it holds is not known ({self.note})"
            if not self.firing:
                return f"{self.target}: holds no active alert of this cluster"
            names = ", ".join(
                n + (f" ({self.states[n]})" if n in self.states else "") for n in self.firing
            )
            return f"{self.target}: holds {len(self.firing)} active: {names}"
        if self.firing is None:
            return (
                f"{self.target}: cannot know what was announced there before this run: {self.note}"
            )
        if not self.firing:
            return f"{self.target}: was told of no firing alert"
        return f"{self.target}: was told firing: {', '.join(self.firing)}"

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class AlertRound:
    """What one round changed and sent, and what the targets hold after it."""

    number: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    #: Why an alert was resolved, where it is not "it passed" (name -> reason).
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    holdings: list[Holding] = field(default_factory=list)
    #: Why ``firing`` may be incomplete; empty when it is what the targets hold.
    unknown: list[str] = field(default_factory=list)

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

    def firing_line(self) -> str:
        names = ", ".join(self.firing)
        if not self.unknown:
            return f"firing now: {names or 'none'}"
        return f"firing now: {names or 'none known'} ({'; '.join(self.unknown)})"


@dataclass(frozen=True)
class _Verdicts:
    """What one round says about each thing an alert can be about."""

    passed: frozenset[str]
    failed: frozenset[str]
    kept: frozenset[str]
    broken: frozenset[str]
    flowing: frozenset[str]
    silent: frozenset[str]
    collected: frozenset[str] | None

    def failing(self, labels: Mapping[str, str]) -> bool:
        """Whether the alert's condition failed again in this round."""
        name = labels.get("alertname")
        if name == TEST_ALERT:
            return labels.get("test", "") in self.failed
        if name == INVARIANT_ALERT:
            return labels.get("invariant", "") in self.broken
        return name == SILENT_ALERT and labels.get("source", "") in self.silent

    def resolution(self, labels: Mapping[str, str]) -> tuple[str, str | None] | None:
        """Why the alert no longer fires, and its ``resolution`` note; None if it may."""
        name = labels.get("alertname")
        if name == TEST_ALERT:
            test = labels.get("test", "")
            if test in self.passed:
                return "passed", None
            if test and self.collected is not None and test not in self.collected:
                return "the test no longer exists", GONE
        elif name == INVARIANT_ALERT:
            if labels.get("invariant", "") in self.kept:
                return "holds again", None
        elif name == SILENT_ALERT and labels.get("source", "") in self.flowing:
            return "sends lines again", None
        return None


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
        #: One-line facts about the cluster (name -> text), added to every alert's annotations.
        self.context: dict[str, str] = {}

    def round(
        self,
        tests: Sequence[TestOutcome],
        sources: Sequence[SourceObservation] = (),
        now: dt.datetime | None = None,
        *,
        invariants: Sequence[InvariantOutcome] = (),
        collected: frozenset[str] | None = None,
    ) -> AlertRound:
        """Observe one round, tell every target what changed, and say what they hold.

        ``collected`` is every collected test's node id when the run collected
        the whole suite (None otherwise): a firing test's alert whose test is
        not in it is resolved, since the test no longer exists.
        """
        now = now or dt.datetime.now(dt.UTC)
        self.count += 1
        result = AlertRound(self.count)
        for test in tests:
            self._observe_test(test, now, result)
        for invariant in invariants:
            self._observe_invariant(invariant, now, result)
        if self.settings.silent_after is not None:
            for source in sources:
                self._observe_source(source, self.settings.silent_after, now, result)
        if collected is not None:
            self._forget_gone_tests(collected, now, result)
        verdicts = self._verdicts(tests, invariants, sources, collected)

        # Ask every Alertmanager first, so what one holds fires for every target.
        budget = self.settings.budget
        readings = {
            t.id: read_alerts(t, cluster=self.cluster, budget=budget * _READ_SHARE)
            for t in self.settings.targets
            if t.readable
        }
        held_before: set[str] = set()
        for target in self.settings.targets:
            reading = readings.get(target.id)
            if reading is None:
                continue
            if reading.alerts is None:
                result.notes.append(
                    f"{target.display}: could not read the alerts it holds ({reading.error}); "
                    "the alert ledger alone decides what it is sent"
                )
                continue
            for held in reading.alerts:
                held_before.add(alert_name(held.labels))
                if verdicts.failing(held.labels):
                    self.ledger.adopt(fingerprint(held.labels), held.starts_at)
        # It fired before this round, where a target still holds it.
        result.fired = [name for name in result.fired if name not in held_before]

        expires = now + dt.timedelta(seconds=self.settings.expiry)
        for target in self.settings.targets:
            reading = readings.get(target.id)
            alerts = self.ledger.outbox(target.id, refresh=target.refresh, expires=expires)
            if reading is not None and reading.alerts is not None:
                alerts += self._resolve_held(target, reading.alerts, alerts, verdicts, now, result)
            delivery = None
            if alerts:
                spent = reading.seconds if reading is not None else 0.0
                reserve = budget * _READ_SHARE if reading is not None else 0.0
                delivery = deliver(
                    target,
                    alerts,
                    cluster=self.cluster,
                    link=self.link,
                    budget=max(budget * _READ_SHARE, budget - spent - reserve),
                )
                result.deliveries.append(delivery)
                if delivery.ok:
                    self.ledger.delivered(target.id, alerts)
            if reading is not None:
                if delivery is not None and (delivery.ok or reading.ok):
                    # What it holds now is its answer, not what was sent.
                    spent = reading.seconds + delivery.seconds
                    after = read_alerts(
                        target,
                        cluster=self.cluster,
                        budget=max(budget * _READ_SHARE, budget - spent),
                    )
                    result.holdings.append(self._held(target, after, after.error))
                else:
                    result.holdings.append(self._held(target, reading, "see above"))
        self.ledger.prune(t.id for t in self.settings.targets)
        for target in self.settings.targets:
            if not target.readable:
                result.holdings.append(self._told(target))
        self._firing_now(result)
        try:
            self.ledger.save()
        except OSError as exc:
            self.notes.append(f"alert ledger {self.ledger.path} could not be written: {exc}")
        self.last = result
        if result.fired or result.resolved or result.deliveries or result.notes or not self.rounds:
            self.rounds.append(result)
        return result

    # -- observations ---------------------------------------------------------------

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
        for name, text in self.context.items():
            annotations.setdefault(name, terminal(text, one_line=True))
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

    def _observe_invariant(
        self, invariant: InvariantOutcome, now: dt.datetime, result: AlertRound
    ) -> None:
        labels = self._labels(INVARIANT_ALERT, invariant=invariant.name)
        labels["severity"] = invariant.severity or self.settings.severity
        if invariant.broken:
            summary = f"invariant {invariant.name} is broken" + (
                f": {invariant.headline}" if invariant.headline else ""
            )
            annotations = self._annotations(summary, invariant.details)
            if self.ledger.failing(labels, annotations, now):
                result.fired.append(invariant.name)
        elif self.ledger.passing(labels, now):
            result.resolved.append(invariant.name)

    def _observe_source(
        self, source: SourceObservation, limit: float, now: dt.datetime, result: AlertRound
    ) -> None:
        labels = self._labels(SILENT_ALERT, source=source.source)
        labels["severity"] = self.settings.severity
        if _silent(source, limit):
            summary = (
                f"source {source.source} ({source.state}) has sent no line for "
                f"{source.silent_for:.0f} s (livecluster_alert_silent_after = {limit:g} s)"
            )
            if self.ledger.failing(labels, self._annotations(summary), now, fire_after=1):
                result.fired.append(source.source)
        elif self.ledger.passing(labels, now):
            result.resolved.append(source.source)

    def _forget_gone_tests(
        self, collected: frozenset[str], now: dt.datetime, result: AlertRound
    ) -> None:
        """Resolve the alerts of tests the whole suite no longer has (renamed, deleted)."""
        for entry in list(self.ledger.entries.values()):
            test = entry.labels.get("test")
            if entry.labels.get("alertname") != TEST_ALERT or not test or test in collected:
                continue
            if self.ledger.passing(entry.labels, now, note=GONE):
                result.resolved.append(test)
                result.reasons[test] = "the test no longer exists"

    def _verdicts(
        self,
        tests: Iterable[TestOutcome],
        invariants: Iterable[InvariantOutcome],
        sources: Iterable[SourceObservation],
        collected: frozenset[str] | None,
    ) -> _Verdicts:
        tests, invariants, sources = list(tests), list(invariants), list(sources)
        limit = self.settings.silent_after
        watched = [] if limit is None else sources
        return _Verdicts(
            passed=frozenset(t.nodeid for t in tests if not t.failed),
            failed=frozenset(t.nodeid for t in tests if t.failed),
            kept=frozenset(i.name for i in invariants if not i.broken),
            broken=frozenset(i.name for i in invariants if i.broken),
            flowing=frozenset(s.source for s in watched if not _silent(s, limit or 0.0)),
            silent=frozenset(s.source for s in watched if _silent(s, limit or 0.0)),
            collected=collected,
        )

    # -- what the targets hold ------------------------------------------------------

    def _resolve_held(
        self,
        target: Target,
        held: Sequence[HeldAlert],
        sending: Sequence[Alert],
        verdicts: _Verdicts,
        now: dt.datetime,
        result: AlertRound,
    ) -> list[Alert]:
        """Resolutions of alerts ``target`` holds that no longer fire, beyond ``sending``.

        Alertmanager knows an alert by all its labels: one the ledger sends
        with the same labels needs nothing more; one it holds with other
        labels (a changed severity) while the ledger fires the new one is
        resolved as replaced.
        """
        by_key = {a.key: a for a in sending}
        extra = []
        for alert in held:
            key = fingerprint(alert.labels)
            sent = by_key.get(key)
            if sent is not None and dict(sent.labels) == dict(alert.labels):
                continue
            why = verdicts.resolution(alert.labels)
            if why is None and sent is not None and sent.status == "firing":
                why = ("replaced by its new labels", REPLACED)
            if why is None:
                continue
            reason, note = why
            annotations = dict(alert.annotations)
            if note:
                annotations["resolution"] = note
            extra.append(
                Alert(
                    labels=dict(alert.labels),
                    annotations=annotations,
                    status="resolved",
                    starts_at=alert.starts_at,
                    ends_at=max(now, alert.starts_at),
                    key=key,
                )
            )
            name = alert_name(alert.labels)
            if name not in result.resolved:
                result.resolved.append(name)
                result.reasons[name] = (
                    f"{reason}; held by {target.display}, unknown to the alert ledger"
                    if sent is None
                    else f"{reason}; held by {target.display}"
                )
        return extra

    def _held(self, target: Target, reading: Reading, error: str | None) -> Holding:
        if reading.alerts is None:
            return Holding(target.display, target.kind, None, f"could not be read: {error}")
        names = sorted({alert_name(a.labels) for a in reading.alerts})
        states = {alert_name(a.labels): a.state for a in reading.alerts if a.state != "active"}
        return Holding(target.display, target.kind, names, states=states)

    def _told(self, target: Target) -> Holding:
        """What the ledger says ``target`` was told: the truth, if the ledger has its history."""
        told = sorted(
            alert_name(e.labels)
            for e in self.ledger.entries.values()
            if e.delivered.get(target.id) == "firing"
        )
        unknown = self.ledger.unknown_history
        if unknown is None:
            return Holding(target.display, target.kind, told)
        note = f"{unknown}; what an earlier run fired there is not resolved there"
        if told:
            note += f"; this run told it firing: {', '.join(told)}"
        return Holding(target.display, target.kind, None, note)

    def _firing_now(self, result: AlertRound) -> None:
        """What fires: by the ledger, and by what each Alertmanager holds after the round."""
        names = {alert_name(e.labels) for e in self.ledger.firing()}
        asked = False
        for holding in result.holdings:
            if holding.kind != "alertmanager":
                continue
            if holding.firing is None:
                result.unknown.append(f"{holding.target} could not be read")
                continue
            asked = True
            names.update(holding.firing)
        if not asked and self.ledger.unknown_history is not None:
            result.unknown.append(f"earlier runs are unknown: {self.ledger.unknown_history}")
        result.firing = sorted(names)

    # -- the report -------------------------------------------------------------------

    def report_lines(self) -> list[str]:
        targets = ", ".join(t.display for t in self.settings.targets)
        lines = [f"targets: {targets}"]
        lines += self.notes
        for rnd in self.rounds:
            label = f"round {rnd.number}: " if self.count > 1 else ""
            lines += [f"{label}{note}" for note in rnd.notes]
            lines += [f"{label}fired {name}" for name in rnd.fired]
            lines += [
                f"{label}resolved {name}"
                + (f" ({rnd.reasons[name]})" if name in rnd.reasons else "")
                for name in rnd.resolved
            ]
            lines += [f"{label}{d.line()}" for d in rnd.deliveries]
        last = self.last or AlertRound()
        lines += [holding.line() for holding in last.holdings]
        lines.append(last.firing_line())
        # Test ids, source ids and delivery errors are not ours to trust.
        return [terminal(line, one_line=True) for line in lines]

    def report_data(self) -> dict[str, Any]:
        last = self.last
        return {
            "targets": [t.display for t in self.settings.targets],
            "firing": last.firing if last else [],
            "firing_unknown": last.unknown if last else [],
            "held": [h.as_dict() for h in last.holdings] if last else [],
            "rounds_seen": self.count,
            "rounds": [
                {
                    "round": r.number,
                    "fired": r.fired,
                    "resolved": r.resolved,
                    "reasons": r.reasons,
                    "notes": r.notes,
                    "deliveries": [d.as_dict() for d in r.deliveries],
                }
                for r in self.rounds
            ],
            "notes": self.notes,
        }


def _silent(source: SourceObservation, limit: float) -> bool:
    return source.state not in _QUIET_STATES and source.silent_for > limit
