"""The alerts package: ledger lifecycle, targets, delivery against real loopback servers."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import httpx
import pytest

from pytest_livecluster._secrets import scrub
from pytest_livecluster.alerts import (
    Alerter,
    AlertSettings,
    Ledger,
    SourceObservation,
    TestOutcome,
    deliver,
    parse_target,
)
from pytest_livecluster.alerts.alerter import ci_link
from pytest_livecluster.alerts.model import Alert, fingerprint
from pytest_livecluster.alerts.targets import slack_text, webhook_body
from pytest_livecluster.exceptions import ConfigError
from tests.support import LONG_WAIT, returns
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
        assert alerter.report_lines()[-1] == "firing now: none"


def test_a_finished_source_is_not_silent() -> None:
    with Receiver() as receiver:
        settings = AlertSettings((parse_target(f"webhook+{receiver.url}"),), silent_after=1)
        alerter = Alerter(settings, cluster="")
        done = SourceObservation("file:x", silent_for=99.0, state="finished")
        assert alerter.round([], [done]).fired == []
        assert receiver.requests == []
