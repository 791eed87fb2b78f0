"""The alerts package: ledger lifecycle, targets, delivery against real loopback servers."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_livecluster._secrets import scrub
from pytest_livecluster.alerts import (
    INVARIANT_ALERT,
    Alerter,
    AlertSettings,
    InvariantOutcome,
    Ledger,
    SourceObservation,
    TestOutcome,
    deliver,
    parse_target,
    read_alerts,
)
from pytest_livecluster.alerts.alerter import GONE, ci_link
from pytest_livecluster.alerts.model import Alert, fingerprint, isotime
from pytest_livecluster.alerts.targets import slack_text, webhook_body
from pytest_livecluster.exceptions import ConfigError
from tests.support import LONG_WAIT, returns
from tests.support.alertmanager import Alertmanager, require_alertmanager
from tests.support.receiver import Receiver

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
LABELS = {"alertname": "LiveTestFailing", "test": "t.py::test_a", "severity": "warning"}
EXPIRES = T0 + dt.timedelta(hours=1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# -- the ledger -------------------------------------------------------------------------


def test_a_failure_fires_once_and_a_pass_resolves() -> None:
    ledger = Ledger()
    assert ledger.failing(LABELS, {"summary": "boom"}, at(0)) == "fired"
    assert ledger.failing(LABELS, {"summary": "boom again"}, at(10)) is None
    [alert] = ledger.outbox("t", refresh=False, expires=EXPIRES)
    assert (alert.status, alert.starts_at, alert.annotations["summary"]) == (
        "firing",
        at(0),
        "boom again",
    )
    assert ledger.passing(LABELS, at(20)) == "resolved"
    assert ledger.passing(LABELS, at(30)) is None


def test_flap_control_needs_n_consecutive_failures() -> None:
    ledger = Ledger(fire_after=3)
    assert ledger.failing(LABELS, {}, at(0)) is None
    assert ledger.failing(LABELS, {}, at(1)) is None
    assert ledger.passing(LABELS, at(2)) is None  # the streak is broken and forgotten
    assert ledger.outbox("t", refresh=False, expires=EXPIRES) == []
    assert [ledger.failing(LABELS, {}, at(3 + i)) for i in range(4)] == [
        None,
        None,
        "fired",
        None,
    ]
    [alert] = ledger.outbox("t", refresh=False, expires=EXPIRES)
    assert alert.starts_at == at(3)  # failing since the streak began


def test_the_same_failure_is_not_sent_twice_but_alertmanager_is_refreshed() -> None:
    ledger = Ledger()
    ledger.failing(LABELS, {}, at(0))
    [alert] = ledger.outbox("hook", refresh=False, expires=EXPIRES)
    ledger.delivered("hook", [alert])
    ledger.failing(LABELS, {}, at(60))
    assert ledger.outbox("hook", refresh=False, expires=EXPIRES) == []
    # Alertmanager forgets an alert nobody re-sends, so it gets every firing one again.
    ledger.delivered("am", ledger.outbox("am", refresh=True, expires=EXPIRES))
    [again] = ledger.outbox("am", refresh=True, expires=EXPIRES)
    assert (again.status, again.ends_at) == ("firing", EXPIRES)


def test_an_undelivered_change_is_sent_again_and_a_resolution_only_where_it_fired() -> None:
    ledger = Ledger()
    ledger.failing(LABELS, {}, at(0))
    assert len(ledger.outbox("down", refresh=False, expires=EXPIRES)) == 1
    ledger.delivered("up", ledger.outbox("up", refresh=False, expires=EXPIRES))
    ledger.passing(LABELS, at(5))
    # "down" never heard it fire: it is not told it resolved.
    assert ledger.outbox("down", refresh=False, expires=EXPIRES) == []
    [resolved] = ledger.outbox("up", refresh=False, expires=EXPIRES)
    assert (resolved.status, resolved.ends_at) == ("resolved", at(5))
    ledger.prune(["up", "down"])
    assert ledger.entries  # "up" has not been told yet
    ledger.delivered("up", [resolved])
    ledger.prune(["up", "down"])
    assert ledger.entries == {}


def test_failing_again_before_the_resolution_was_delivered_fires_again() -> None:
    ledger = Ledger()
    ledger.failing(LABELS, {}, at(0))
    ledger.delivered("t", ledger.outbox("t", refresh=False, expires=EXPIRES))
    ledger.passing(LABELS, at(5))
    assert ledger.failing(LABELS, {}, at(9)) == "fired"
    # The target still believes it fires: nothing new to say.
    assert ledger.outbox("t", refresh=False, expires=EXPIRES) == []


def test_the_ledger_persists_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "alerts.json"
    first = Ledger(path)
    first.failing(LABELS, {"summary": "s"}, at(0))
    first.delivered("t", first.outbox("t", refresh=False, expires=EXPIRES))
    first.save()
    second = Ledger(path)
    assert second.load_error is None
    assert second.failing(LABELS, {"summary": "s"}, at(60)) is None  # still the same alert
    assert second.outbox("t", refresh=False, expires=EXPIRES) == []
    assert second.passing(LABELS, at(70)) == "resolved"
    assert not list(tmp_path.glob("cache/.alerts-*")), "no temporary file left behind"


def test_a_damaged_ledger_starts_afresh_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    path.write_text('{"ledger_version": 1, "alerts": {"x": {"labels": 3}}}')
    ledger = Ledger(path)
    assert ledger.entries == {}
    assert ledger.load_error is not None
    assert str(path) in ledger.load_error


def test_identity_ignores_severity_and_annotations() -> None:
    assert fingerprint(LABELS) == fingerprint({**LABELS, "severity": "critical"})
    assert fingerprint(LABELS) != fingerprint({**LABELS, "test": "t.py::test_b"})
    assert fingerprint(LABELS) != fingerprint({**LABELS, "cluster": "prod"})


# -- targets ----------------------------------------------------------------------------


def test_targets_parse_and_print_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    am = parse_target("alertmanager+http://127.0.0.1:9093")
    assert (am.kind, am.endpoint, am.display, am.refresh) == (
        "alertmanager",
        "http://127.0.0.1:9093/api/v2/alerts",
        "alertmanager+http://127.0.0.1:9093",
        True,
    )
    hook = parse_target("webhook+https://user:pa55word@hooks.example.com/T0/B0/s3cr3tT0ken?k=v")
    assert hook.display == "webhook+https://hooks.example.com/***"
    assert hook.endpoint == "https://user:pa55word@hooks.example.com/T0/B0/s3cr3tT0ken?k=v"
    text = scrub(f"failed: {hook.endpoint} and s3cr3tT0ken and pa55word")
    assert "s3cr3tT0ken" not in text
    assert "pa55word" not in text
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/services/XYZ123")
    monkeypatch.setenv("HOOK_TOKEN", "Bearer tok-987654")
    from_env = parse_target("webhook+env:HOOK_URL", {"Authorization": "env:HOOK_TOKEN"})
    assert from_env.endpoint == "https://hooks.example.com/services/XYZ123"
    assert from_env.headers == {"Authorization": "Bearer tok-987654"}
    assert scrub("Bearer tok-987654 XYZ123") == "*** ***"
    assert "XYZ123" not in repr(from_env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "slack+https://hooks.example.com/s3cr3t",
            "cannot use 'slack+https://hooks.example.com/***'",
        ),
        ("https://hooks.example.com/s3cr3t", "cannot use 'https://hooks.example.com/***'"),
        ("webhook+ftp://hooks.example.com/s3cr3t", "is not an http(s) URL"),
        ("webhook+", "cannot use"),
        ("webhook+env:NOT_SET_ANYWHERE", "environment variable NOT_SET_ANYWHERE, which is not set"),
    ],
)
def test_bad_targets_are_config_errors_without_secrets(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_target(text)
    message = str(info.value)
    assert expected in message
    assert "s3cr3t" not in message
    assert "alertmanager+http(s)://HOST:PORT" in message or "not set" in message


def test_webhook_body_is_documented_and_slack_compatible() -> None:
    firing = Alert(LABELS, {"summary": "t.py::test_a failed: boom"}, "firing", at(0), EXPIRES, "k1")
    resolved = Alert(
        {**LABELS, "test": "t.py::test_b"}, {"summary": "was bad"}, "resolved", at(0), at(9), "k2"
    )
    body = webhook_body([firing, resolved], cluster="staging", link="https://ci/run/1")
    assert body["version"] == 1
    assert body["status"] == "firing"
    assert body["cluster"] == "staging"
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]
    assert body["alerts"][0]["endsAt"] is None
    assert body["alerts"][1]["endsAt"] == "2026-11-25T12:00:09.000Z"
    assert body["alerts"][0]["startsAt"] == "2026-11-25T12:00:00.000Z"
    assert body["text"].splitlines() == [
        "pytest-livecluster on *staging*: 1 firing, 1 resolved",
        ":red_circle: FIRING `t.py::test_a`: t.py::test_a failed: boom",
        ":large_green_circle: RESOLVED `t.py::test_b` (was: was bad)",
        "<https://ci/run/1|the run>",
    ]
    assert webhook_body([resolved], cluster="", link=None)["status"] == "resolved"
    assert slack_text([resolved], cluster="", link=None).startswith(
        "pytest-livecluster: 1 resolved"
    )


def test_ci_link_from_the_environment() -> None:
    github = {"GITHUB_SERVER_URL": "https://gh", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"}
    assert ci_link(github) == "https://gh/o/r/actions/runs/7"
    assert ci_link({"CI_JOB_URL": "https://gl/job/1"}) == "https://gl/job/1"
    assert ci_link({}) is None


# -- delivery against real loopback servers ---------------------------------------------


def _alert() -> Alert:
    return Alert(LABELS, {"summary": "boom"}, "firing", at(0), EXPIRES, fingerprint(LABELS))


def test_delivery_retries_a_500_then_succeeds() -> None:
    with Receiver(statuses=(500, 200)) as receiver:
        target = parse_target(f"webhook+{receiver.url}/hook/s3cr3tpath")
        result = deliver(target, [_alert()], cluster="c", link=None, budget=10)
        assert (result.ok, result.attempts, result.status) == (True, 2, 200)
        assert result.first_error == 'HTTP 500 {"status": 500}'
        assert [r.path for r in receiver.requests] == ["/hook/s3cr3tpath"] * 2
        assert receiver.requests[0].json["alerts"][0]["labels"] == LABELS
        assert "s3cr3tpath" not in result.line()
        assert result.line().endswith(
            'sent 1 firing after 2 attempts (first: HTTP 500 {"status": 500})'
        )


def test_delivery_retries_425_as_every_sender_does() -> None:
    """The statuses come from the one policy, ``pytest_livecluster._retry``."""
    with Receiver(statuses=(425, 200)) as receiver:
        target = parse_target(f"webhook+{receiver.url}/hook")
        result = deliver(target, [_alert()], cluster="c", link=None, budget=10)
    assert (result.ok, result.attempts, result.status) == (True, 2, 200)
    assert result.first_error == 'HTTP 425 {"status": 425}'


def test_delivery_to_alertmanager_posts_its_v2_list() -> None:
    with Receiver() as receiver:
        target = parse_target(f"alertmanager+{receiver.url}")
        result = deliver(target, [_alert()], cluster="c", link="https://ci/1", budget=5)
        assert result.ok
        [request] = receiver.requests
        assert request.path == "/api/v2/alerts"
        assert request.json == [
            {
                "labels": LABELS,
                "annotations": {"summary": "boom"},
                "startsAt": "2026-11-25T12:00:00.000Z",
                "endsAt": "2026-11-25T13:00:00.000Z",
                "generatorURL": "https://ci/1",
            }
        ]


def test_a_receiver_that_keeps_failing_costs_at_most_the_budget() -> None:
    """It gives up when the 1.5 s budget is spent: retrying without one would go on past
    the hang guard. (How long the waits are is test_retry's business, on a fake clock.)"""
    with Receiver(statuses=(503,)) as receiver:
        target = parse_target(f"webhook+{receiver.url}/x")
        result = returns(
            lambda: deliver(target, [_alert()], cluster="c", link=None, budget=1.5),
            what="a delivery with a 1.5 s budget",
        )
        assert len(receiver.requests) == result.attempts
    assert not result.ok
    assert result.attempts >= 3
    assert result.error == 'HTTP 503 {"status": 503}'
    assert "NOT sent 1 firing" in result.line()
    assert "the next run tries again" in result.line()


def test_a_4xx_is_final() -> None:
    with Receiver(statuses=(400,)) as receiver:
        result = deliver(
            parse_target(f"webhook+{receiver.url}"), [_alert()], cluster="", link=None, budget=5
        )
        assert (result.ok, result.attempts, result.status) == (False, 1, 400)


def test_an_unreachable_target_and_a_hanging_one_are_bounded() -> None:
    """Each is given up when its budget is spent. A delivery that waited a hanging
    receiver out (it would answer after LONG_WAIT) would not return within the hang
    guard, nor fail with a timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = returns(
        lambda: deliver(
            parse_target(f"webhook+http://127.0.0.1:{port}/h"),
            [_alert()],
            cluster="",
            link=None,
            budget=1.0,
        ),
        what="a delivery to a refusing port",
    )
    assert not refused.ok
    assert refused.attempts >= 2
    assert "ConnectError" in (refused.error or "")
    with Receiver(delay=LONG_WAIT) as slow:
        hanging = returns(
            lambda: deliver(
                parse_target(f"webhook+{slow.url}"), [_alert()], cluster="", link=None, budget=1.0
            ),
            what="a delivery to a hanging receiver",
        )
        assert slow.requests  # it was asked, and never answered
    assert not hanging.ok
    assert "Timeout" in (hanging.error or "")
    assert hanging.status is None


def test_no_request_may_wait_past_the_budget() -> None:
    """Each attempt's read timeout is cut to what is left of the 1 s budget, never the
    5 s a request may take otherwise (read off the requests, not a clock)."""
    timeouts: list[float] = []

    def hang(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("no answer", request=request)

    with httpx.Client(transport=httpx.MockTransport(hang)) as client:
        result = deliver(
            parse_target("webhook+http://hook.test/h"),
            [_alert()],
            cluster="",
            link=None,
            budget=1.0,
            client=client,
        )
    assert not result.ok
    assert result.error == "ReadTimeout: no answer"
    assert len(timeouts) == result.attempts >= 1
    assert all(0 < timeout <= 1.0 for timeout in timeouts), timeouts


# -- the alerter ------------------------------------------------------------------------


def test_the_alerter_fires_and_resolves_tests_and_silent_sources(tmp_path: Path) -> None:
    with Receiver() as receiver:
        target = parse_target(f"webhook+{receiver.url}/h")
        settings = AlertSettings((target,), silent_after=30, ledger=tmp_path / "l.json")
        alerter = Alerter(settings, cluster="staging", report_path="/r.json")
        failing = TestOutcome("t.py::test_a", failed=True, headline="AssertionError: x")
        quiet = SourceObservation("http://h/logs", silent_for=45.0, state="attached")
        first = alerter.round([failing], [quiet], now=at(0))
        assert (first.fired, first.resolved) == (["t.py::test_a", "http://h/logs"], [])
        [body] = receiver.bodies()
        by_name = {a["labels"].get("test") or a["labels"]["source"]: a for a in body["alerts"]}
        assert by_name["t.py::test_a"]["labels"] == {
            "alertname": "LiveTestFailing",
            "test": "t.py::test_a",
            "cluster": "staging",
            "severity": "warning",
        }
        assert by_name["t.py::test_a"]["annotations"]["summary"] == (
            "t.py::test_a failed: AssertionError: x"
        )
        assert by_name["t.py::test_a"]["annotations"]["report"] == "/r.json"
        assert by_name["http://h/logs"]["labels"]["alertname"] == "LiveSourceSilent"
        assert "no line for 45 s" in by_name["http://h/logs"]["annotations"]["summary"]
        # The same again: nothing new to send.
        again = alerter.round([failing], [quiet], now=at(60))
        assert (again.fired, again.deliveries, len(receiver.requests)) == ([], [], 1)
        # A finished source (a replayed file) is never silent; lines flowing resolve it.
        flowing = SourceObservation("http://h/logs", silent_for=0.2, state="attached")
        passing = TestOutcome("t.py::test_a", failed=False)
        last = alerter.round([passing], [flowing], now=at(120))
        assert sorted(last.resolved) == ["http://h/logs", "t.py::test_a"]
        receiver.wait_for(2)
        assert receiver.bodies()[1]["status"] == "resolved"
        # Only a webhook, and no ledger before this alerter: earlier runs are not known.
        assert alerter.report_lines()[-1] == (
            "firing now: none known "
            "(earlier runs are unknown: the alert ledger did not exist before this run)"
        )
        # The next run has the ledger's history, and it knows.
        later = Alerter(settings, cluster="staging")
        later.round([passing], [flowing], now=at(180))
        assert later.report_lines()[-2:] == [
            f"webhook+{receiver.url}/***: was told of no firing alert",
            "firing now: none",
        ]


def test_a_finished_source_is_not_silent() -> None:
    with Receiver() as receiver:
        settings = AlertSettings((parse_target(f"webhook+{receiver.url}"),), silent_after=1)
        alerter = Alerter(settings, cluster="")
        done = SourceObservation("file:x", silent_for=99.0, state="finished")
        assert alerter.round([], [done]).fired == []
        assert receiver.requests == []


# -- Alertmanager is the truth about itself ---------------------------------------------


@pytest.fixture
def alertmanager() -> Iterator[Alertmanager]:
    binary = require_alertmanager()
    with Receiver() as receiver, Alertmanager(receiver, binary=binary) as am:
        yield am


def held_by(am: Alertmanager) -> list[dict[str, str]]:
    return sorted((a["labels"] for a in am.alerts()), key=lambda labels: sorted(labels.items()))


def am_alerter(am: Alertmanager, cluster: str = "staging", **settings: Any) -> Alerter:
    """An alerter without a ledger: it knows only what Alertmanager tells it."""
    target = parse_target(f"alertmanager+{am.url}")
    return Alerter(AlertSettings((target,), budget=5.0, **settings), cluster=cluster)


def test_an_invariant_fires_and_resolves_its_own_alert(alertmanager: Alertmanager) -> None:
    am = alertmanager
    broken = InvariantOutcome(
        "counters-monotonic", broken=True, headline="item_sent went down", details="7 -> 3"
    )
    first = am_alerter(am)
    fired = first.round([], invariants=[broken])
    assert fired.fired == ["counters-monotonic"]
    [alert] = am.alerts()
    assert alert["labels"] == {
        "alertname": INVARIANT_ALERT,
        "invariant": "counters-monotonic",
        "cluster": "staging",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"] == (
        "invariant counters-monotonic is broken: item_sent went down"
    )
    assert alert["annotations"]["description"] == "7 -> 3"
    assert first.report_lines()[-2:] == [
        f"alertmanager+{am.url}: holds 1 active: counters-monotonic",
        "firing now: counters-monotonic",
    ]
    # Another process, without the first one's ledger: the invariant holds again.
    second = am_alerter(am)
    kept = second.round([], invariants=[InvariantOutcome("counters-monotonic", broken=False)])
    assert kept.resolved == ["counters-monotonic"]
    assert am.alerts() == []
    assert second.report_lines()[-2:] == [
        f"alertmanager+{am.url}: holds no active alert of this cluster",
        "firing now: none",
    ]


def test_an_invariant_alert_goes_to_webhooks_with_flap_control() -> None:
    with Receiver() as receiver:
        settings = AlertSettings((parse_target(f"webhook+{receiver.url}/h"),), fire_after=2)
        alerter = Alerter(settings, cluster="staging")
        broken = InvariantOutcome("one-spotter-per-intent", broken=True, severity="critical")
        assert alerter.round([], invariants=[broken], now=at(0)).fired == []
        assert alerter.round([], invariants=[broken], now=at(1)).fired == ["one-spotter-per-intent"]
        kept = InvariantOutcome("one-spotter-per-intent", broken=False)
        assert alerter.round([], invariants=[kept], now=at(2)).resolved == [
            "one-spotter-per-intent"
        ]
        receiver.wait_for(2)
    fired, resolved = (body["alerts"][0] for body in receiver.bodies())
    assert fired["labels"] == {
        "alertname": "LiveInvariantBroken",
        "invariant": "one-spotter-per-intent",
        "cluster": "staging",
        "severity": "critical",
    }
    assert (fired["status"], resolved["status"]) == ("firing", "resolved")
    assert fired["fingerprint"] == resolved["fingerprint"]
    assert fired["startsAt"] == isotime(at(0))


def test_only_this_clusters_alerts_are_read_and_resolved(alertmanager: Alertmanager) -> None:
    am = alertmanager
    odd = 'st"a\\ge\nx'  # a matcher's quote, escape and newline in the cluster's name
    failing = TestOutcome("t.py::test_a", failed=True)
    am_alerter(am, cluster=odd).round([failing])
    am_alerter(am, cluster="other").round([failing])
    am_alerter(am, cluster="").round([failing])
    assert len(am.alerts()) == 3
    alerter = am_alerter(am, cluster=odd)
    done = alerter.round([TestOutcome("t.py::test_a", failed=False)])
    assert done.resolved == ["t.py::test_a"]
    assert sorted(labels.get("cluster", "") for labels in held_by(am)) == ["", "other"]
    unnamed = am_alerter(am, cluster="")
    unnamed.round([TestOutcome("t.py::test_a", failed=False)])
    assert [labels["cluster"] for labels in held_by(am)] == ["other"]


def test_a_silenced_alert_is_held_and_a_changed_label_set_replaces_the_old(
    alertmanager: Alertmanager,
) -> None:
    am = alertmanager
    am_alerter(am).round([TestOutcome("t.py::test_a", failed=True)])
    now = dt.datetime.now(dt.UTC)
    am.client.post(
        "/api/v2/silences",
        json={
            "matchers": [{"name": "test", "value": "t.py::test_a", "isRegex": False}],
            "startsAt": isotime(now - dt.timedelta(minutes=1)),
            "endsAt": isotime(now + dt.timedelta(hours=1)),
            "createdBy": "test",
            "comment": "maintenance",
        },
    ).raise_for_status()
    # The test's severity changed: Alertmanager knows an alert by all its labels.
    paged = am_alerter(am)
    rnd = paged.round([TestOutcome("t.py::test_a", failed=True, severity="page")])
    assert rnd.fired == []  # it fired before: Alertmanager holds it
    assert rnd.resolved == ["t.py::test_a"]
    assert (
        rnd.reasons["t.py::test_a"] == f"replaced by its new labels; held by alertmanager+{am.url}"
    )
    [alert] = am.alerts()
    assert alert["labels"]["severity"] == "page"
    assert alert["status"]["state"] == "suppressed"
    assert paged.report_lines()[-2] == (
        f"alertmanager+{am.url}: holds 1 active: t.py::test_a (suppressed)"
    )


def test_a_test_that_no_longer_exists_is_resolved_only_when_the_whole_suite_was_collected(
    tmp_path: Path,
) -> None:
    with Receiver() as receiver:
        target = parse_target(f"webhook+{receiver.url}/h")
        alerter = Alerter(AlertSettings((target,), ledger=tmp_path / "l.json"), cluster="s")
        alerter.round([TestOutcome("t.py::test_old", failed=True)], now=at(0))
        # A narrowed run (collected=None) cannot tell a deleted test from one it did not run.
        left = alerter.round([TestOutcome("t.py::test_new", failed=False)], now=at(1))
        assert (left.resolved, left.firing) == ([], ["t.py::test_old"])
        whole = frozenset({"t.py::test_new", "t.py::test_other"})
        gone = alerter.round(
            [TestOutcome("t.py::test_new", failed=False)], now=at(2), collected=whole
        )
        assert gone.resolved == ["t.py::test_old"]
        assert gone.firing == []
        assert "round 3: resolved t.py::test_old (the test no longer exists)" in (
            alerter.report_lines()
        )
        receiver.wait_for(2)
    resolved = receiver.bodies()[1]["alerts"][0]
    assert resolved["status"] == "resolved"
    assert resolved["annotations"]["resolution"] == GONE


def test_an_unreadable_alertmanager_falls_back_to_the_ledger_with_a_note() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        target = parse_target(f"alertmanager+http://127.0.0.1:{port}")
        alerter = Alerter(AlertSettings((target,), budget=0.5), cluster="s")
        rnd = alerter.round([TestOutcome("t.py::test_a", failed=True)])
    assert rnd.fired == ["t.py::test_a"]
    [delivery] = rnd.deliveries
    assert not delivery.ok
    lines = alerter.report_lines()
    assert lines[1].startswith(
        f"alertmanager+http://127.0.0.1:{port}: could not read the alerts it holds (ConnectError"
    )
    assert lines[1].endswith("the alert ledger alone decides what it is sent")
    assert lines[-1] == (
        f"firing now: t.py::test_a (alertmanager+http://127.0.0.1:{port} could not be read; "
        "earlier runs are unknown: no alert ledger is kept (pytest's cache is off; "
        "--live-alert-ledger=PATH keeps one))"
    )


def test_reading_alertmanager_sends_its_filters_and_never_prints_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, text=f"bad token in {request.url}")

    monkeypatch.setenv("AM_URL", "https://user:s3cret-pass@am.example.com:9093/am/?token=t0k3n")
    target = parse_target("alertmanager+env:AM_URL")
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        reading = read_alerts(target, cluster='a"b', budget=1.0, client=client)
    assert reading.alerts is None
    [request] = seen  # a 401 is final
    assert request.method == "GET"
    assert request.url.path == "/am/api/v2/alerts"
    assert request.url.params.get_list("filter") == [
        'cluster="a\\"b"',
        'alertname=~"LiveTestFailing|LiveSourceSilent|LiveInvariantBroken"',
    ]
    assert request.url.params["token"] == "t0k3n"
    assert reading.error is not None
    assert reading.error.startswith("HTTP 401 bad token in")
    assert "s3cret-pass" not in reading.error
    assert "t0k3n" not in reading.error
