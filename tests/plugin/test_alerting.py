"""Alerts from a pytest run: webhook lifecycle across runs, flap control, delivery
failures, secrets and the silent-source alert. Every receiver is a real loopback
HTTP server; every run is a real pytest process (pytester)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cueserver import CueServer
from tests.support.receiver import Receiver

SWITCHED_TEST = """
import pathlib
import pytest

@pytest.mark.livecluster(severity="critical")
def test_switched(cluster):
    assert pathlib.Path("healthy").exists(), "the cluster is unhealthy"

def test_always_fine(cluster):
    assert cluster.get("blade", "msg") == "Hello World"
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rec:
        yield rec


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_switched=SWITCHED_TEST)
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    pytester.makeini("[pytest]\nlivecluster_name = staging\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "--live-cluster=file:shards.ndjson", *args
    )


def alerts_of(receiver: Receiver) -> list[tuple[str, str]]:
    """(status, test or source) of every alert every request carried."""
    return [
        (a["status"], a["labels"].get("test") or a["labels"].get("source"))
        for body in receiver.bodies()
        for a in body["alerts"]
    ]


def report_section(path: Path, title: str) -> dict[str, Any]:
    report = json.loads(path.read_text())
    [section] = [s for s in report["sections"] if s["title"] == title]
    return section


def test_a_failure_notifies_once_across_runs_and_resolves_on_a_pass(
    suite: pytest.Pytester, receiver: Receiver
) -> None:
    target = f"--live-alert=webhook+{receiver.url}/hook"
    for _ in range(3):
        result = run(suite, target, "--live-report=report.json")
        result.assert_outcomes(passed=1, failed=1)
    assert alerts_of(receiver) == [("firing", "test_switched.py::test_switched")]
    [body] = receiver.bodies()
    assert body["status"] == "firing"
    assert body["cluster"] == "staging"
    [alert] = body["alerts"]
    assert alert["labels"] == {
        "alertname": "LiveTestFailing",
        "test": "test_switched.py::test_switched",
        "cluster": "staging",
        "severity": "critical",
    }
    assert alert["annotations"]["summary"] == (
        "test_switched.py::test_switched failed: AssertionError: the cluster is unhealthy"
    )
    assert alert["annotations"]["report"] == str(suite.path / "report.json")
    assert ":red_circle: FIRING `test_switched.py::test_switched`" in body["text"]
    # The ledger lives in pytest's cache by default.
    assert (suite.path / ".pytest_cache/d/livecluster/alerts.json").is_file()

    (suite.path / "healthy").touch()
    result = run(suite, target)
    result.assert_outcomes(passed=2)
    assert alerts_of(receiver) == [
        ("firing", "test_switched.py::test_switched"),
        ("resolved", "test_switched.py::test_switched"),
    ]
    resolved = receiver.bodies()[1]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] is not None
    result.stdout.fnmatch_lines(
        [
            "alerts:",
            f"  targets: webhook+{receiver.url}/***",
            "  resolved test_switched.py::test_switched",
            f"  webhook+{receiver.url}/***: sent 1 resolved",
            "  firing now: none",
        ]
    )
    # Passing again says nothing more.
    run(suite, target).assert_outcomes(passed=2)
    assert len(receiver.requests) == 2


def test_flap_control_fires_after_n_failures_in_a_row(
    suite: pytest.Pytester, receiver: Receiver
) -> None:
    args = (f"--live-alert=webhook+{receiver.url}", "--live-alert-after=2")
    run(suite, *args).assert_outcomes(passed=1, failed=1)
    assert receiver.requests == []
    (suite.path / "healthy").touch()
    run(suite, *args).assert_outcomes(passed=2)  # the streak is broken
    (suite.path / "healthy").unlink()
    run(suite, *args).assert_outcomes(passed=1, failed=1)
    assert receiver.requests == []
    result = run(suite, *args)
    result.assert_outcomes(passed=1, failed=1)
    assert alerts_of(receiver) == [("firing", "test_switched.py::test_switched")]
    result.stdout.fnmatch_lines(
        [f"*alerts to webhook+{receiver.url} after 2 failing run(s); ledger *"]
    )


def test_a_receiver_answering_500_then_200_gets_the_alert(
    suite: pytest.Pytester,
) -> None:
    with Receiver(statuses=(500, 200)) as receiver:
        result = run(suite, f"--live-alert=webhook+{receiver.url}/h", "--live-report=r.json")
        result.assert_outcomes(passed=1, failed=1)
        assert [r.path for r in receiver.requests] == ["/h", "/h"]
        assert receiver.bodies()[0] == receiver.bodies()[1]
    result.stdout.fnmatch_lines(
        [f"  webhook+{receiver.url}/***: sent 1 firing after 2 attempts (first: HTTP 500 *)"]
    )
    [delivery] = report_section(suite.path / "r.json", "alerts")["data"]["rounds"][0]["deliveries"]
    assert (delivery["ok"], delivery["attempts"], delivery["status"]) == (True, 2, 200)


def test_a_failed_delivery_never_fails_the_run_and_is_sent_by_the_next(
    suite: pytest.Pytester,
) -> None:
    (suite.path / "healthy").touch()
    with Receiver(statuses=(503,)) as receiver:
        target = f"--live-alert=webhook+{receiver.url}"
        timeout = "-o", "livecluster_alert_timeout=1"
        # A passing run stays a pass whatever happens to alerts.
        run(suite, target, *timeout).assert_outcomes(passed=2)
        (suite.path / "healthy").unlink()
        result = run(suite, target, *timeout)
        assert result.ret == 1  # the test's failure, nothing more
        result.stdout.fnmatch_lines(
            [
                f"  webhook+{receiver.url}: NOT sent 1 firing after * attempts in * s: "
                "HTTP 503 *; the next run tries again"
            ]
        )
        tried = len(receiver.requests)
        assert tried >= 2
        receiver.statuses = (200,)
        run(suite, target, *timeout).assert_outcomes(passed=1, failed=1)
        assert len(receiver.requests) == tried + 1
        assert receiver.bodies()[-1]["status"] == "firing"
        run(suite, target, *timeout).assert_outcomes(passed=1, failed=1)
        assert len(receiver.requests) == tried + 1


def test_secrets_in_the_url_and_headers_are_never_printed(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_TOKEN", "Bearer SECRET-four")
    suite.makeini(
        "[pytest]\nlivecluster_name = staging\n"
        "livecluster_alert_headers = X-Token: env:ALERT_TOKEN\n"
    )
    with Receiver(statuses=(500,)) as receiver:
        host = receiver.url.removeprefix("http://")
        target = f"webhook+http://alice:SECRET-one@{host}/hook/SECRET-two?k=SECRET-three"
        result = run(
            suite,
            f"--live-alert={target}",
            "--live-report=r.json",
            "--junitxml=j.xml",
            "-o",
            "livecluster_alert_timeout=0.5",
            "-v",
        )
        result.assert_outcomes(passed=1, failed=1)
        [first, *_] = receiver.requests
    # The secrets were used ...
    assert first.path == "/hook/SECRET-two?k=SECRET-three"
    assert first.headers["x-token"] == "Bearer SECRET-four"
    assert first.headers["authorization"].startswith("Basic ")
    # ... and never shown.
    outputs = [
        result.stdout.str(),
        result.stderr.str(),
        (suite.path / "r.json").read_text(),
        (suite.path / "j.xml").read_text(),
        (suite.path / ".pytest_cache/d/livecluster/alerts.json").read_text(),
    ]
    for text in outputs:
        assert "SECRET" not in text
    result.stdout.fnmatch_lines([f"*alerts to webhook+{receiver.url}/****"])


def test_asking_alertmanager_uses_the_secrets_and_never_prints_them(
    suite: pytest.Pytester,
) -> None:
    with Receiver(statuses=(500,)) as receiver:
        host = receiver.url.removeprefix("http://")
        target = f"alertmanager+http://alice:SECRET-one@{host}/am/SECRET-two?k=SECRET-three"
        result = run(
            suite,
            f"--live-alert={target}",
            "--live-report=r.json",
            "-o",
            "livecluster_alert_timeout=0.5",
        )
        result.assert_outcomes(passed=1, failed=1)
        [first, *_] = receiver.requests
    assert first.method == "GET"
    assert first.path.startswith("/am/SECRET-two/api/v2/alerts?k=SECRET-three&filter=")
    assert first.headers["authorization"].startswith("Basic ")
    result.stdout.fnmatch_lines(
        [
            f"  alertmanager+{receiver.url}/***: could not read the alerts it holds "
            "(HTTP 500 *); the alert ledger alone decides what it is sent",
            f"  alertmanager+{receiver.url}/***: what it holds is not known (*)",
            "  firing now: test_switched.py::test_switched (*could not be read*)",
        ]
    )
    for text in (result.stdout.str(), result.stderr.str(), (suite.path / "r.json").read_text()):
        assert "SECRET" not in text


def test_a_webhook_without_a_ledger_cannot_know_what_was_announced_there(
    suite: pytest.Pytester, receiver: Receiver
) -> None:
    target = f"--live-alert=webhook+{receiver.url}/hook"
    shown = f"  webhook+{receiver.url}/***"
    no_ledger = (
        "no alert ledger is kept (pytest's cache is off; --live-alert-ledger=PATH keeps one)"
    )
    run(suite, target).assert_outcomes(passed=1, failed=1)
    assert alerts_of(receiver) == [("firing", "test_switched.py::test_switched")]

    (suite.path / "healthy").touch()
    result = run(suite, target, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"{shown}: cannot know what was announced there before this run: {no_ledger}; "
            "what an earlier run fired there is not resolved there",
            f"  firing now: none known (earlier runs are unknown: {no_ledger})",
        ]
    )
    assert "  firing now: none" not in result.stdout.lines
    assert len(receiver.requests) == 1  # nothing it could know to resolve

    ledger = suite.path / ".pytest_cache/d/livecluster/alerts.json"
    kept = ledger.read_bytes()
    ledger.write_bytes(kept[: len(kept) // 2])
    result = run(suite, target)
    result.stdout.fnmatch_lines(
        [
            f"{shown}: cannot know what was announced there before this run: "
            "the alert ledger could not be read; what an earlier run fired there is not "
            "resolved there",
        ]
    )

    # With the ledger's history it knows what it told the webhook, and resolves it there.
    ledger.write_bytes(kept)
    result = run(suite, target)
    result.stdout.fnmatch_lines(
        [
            "  resolved test_switched.py::test_switched",
            f"{shown}: sent 1 resolved",
            f"{shown}: was told of no firing alert",
            "  firing now: none",
        ]
    )
    assert alerts_of(receiver)[-1] == ("resolved", "test_switched.py::test_switched")


def test_a_silent_source_fires_its_own_alert_and_resolves_when_lines_flow(
    pytester: pytest.Pytester, receiver: Receiver
) -> None:
    pytester.makepyfile(
        """
        import time

        def test_waits(cluster):
            time.sleep(1.0)
        """
    )
    with CueServer(heartbeat=0.2).start() as server:
        args = (
            "-p",
            "no:randomly",
            f"--live-cluster={server.url}",
            f"--live-alert=webhook+{receiver.url}",
            "-o",
            "livecluster_alert_silent_after=0.6",
            "-o",
            "livecluster_settle_timeout=0.5",
        )
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
        assert alerts_of(receiver) == [("firing", server.url)]
        [alert] = receiver.bodies()[0]["alerts"]
        assert alert["labels"]["alertname"] == "LiveSourceSilent"
        assert (
            "has sent no line for 1 s (livecluster_alert_silent_after = 0.6 s)"
            in (alert["annotations"]["summary"])
        )
        # Lines flow during the next run: resolved.
        pytester.makepyfile(
            """
            import urllib.request

            def test_waits(cluster):
                cluster.eventually(lambda: cluster.get("a") == 1, timeout=5)
            """
        )
        server.write('{"a": 1}')
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
        assert alerts_of(receiver) == [("firing", server.url), ("resolved", server.url)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--live-alert=slack+https://hooks.example.com/SECRET"],
            "*--live-alert: cannot use 'slack+https://hooks.example.com/***'; valid: "
            "alertmanager+http(s)://HOST:PORT, webhook+http(s)://URL, or KIND+env:VARIABLE*",
        ),
        (
            ["--live-alert=webhook+env:LIVECLUSTER_UNSET_URL"],
            "*webhook+env:LIVECLUSTER_UNSET_URL names the environment variable "
            "LIVECLUSTER_UNSET_URL, which is not set*",
        ),
        (
            ["--live-alert=webhook+http://h", "--live-alert-after=0"],
            "*--live-alert-after must be a positive integer, got '0'*",
        ),
        (
            ["--live-alert=webhook+http://h", "-o", "livecluster_alert_silent_after=never"],
            "*livecluster_alert_silent_after must be a positive number of seconds, got 'never'*",
        ),
        (["--live-watch=0"], "*--live-watch must be a positive number of seconds, got '0'*"),
        (["--live-watch=1", "-n", "2"], "*--live-watch runs in one process*xdist*"),
    ],
)
def test_bad_alert_and_watch_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_x(cluster): pass")
    (pytester.path / "s.ndjson").write_text("{}\n")
    result = pytester.runpytest_subprocess("--live-cluster=file:s.ndjson", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "SECRET" not in result.stderr.str() + result.stdout.str()


def test_watch_needs_the_live_cluster(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--live-watch=5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --live-watch needs --live-cluster*"])


def test_a_bad_severity_in_a_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.livecluster(severity=3)
        def test_x(cluster):
            pass
        """
    )
    (pytester.path / "s.ndjson").write_text("{}\n")
    result = pytester.runpytest_subprocess("--live-cluster=file:s.ndjson")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_a_bad_severity_in_a_marker_is_a_usage_error.py::test_x: livecluster "
            "marker severity must be a word such as critical, warning or info, got 3"
        ]
    )


def test_with_xdist_the_controller_alerts_once_for_all_workers(
    pytester: pytest.Pytester, receiver: Receiver
) -> None:
    pytester.makepyfile(
        """
        import time

        def test_fails(cluster):
            time.sleep(0.8)
            assert False, "broken on a worker"

        def test_passes(cluster):
            time.sleep(0.8)
        """
    )
    with CueServer(heartbeat=0.2).start() as server:
        result = pytester.runpytest_subprocess(
            "-p",
            "no:randomly",
            "-n",
            "2",
            f"--live-cluster={server.url}",
            f"--live-alert=webhook+{receiver.url}",
            "-o",
            "livecluster_alert_silent_after=0.5",
            "-o",
            "livecluster_settle_timeout=0.3",
        )
    result.assert_outcomes(passed=1, failed=1)
    [body] = receiver.bodies()
    assert sorted((a["labels"]["alertname"], a["status"]) for a in body["alerts"]) == [
        ("LiveSourceSilent", "firing"),
        ("LiveTestFailing", "firing"),
    ]
    [test_alert] = [a for a in body["alerts"] if a["labels"]["alertname"] == "LiveTestFailing"]
    assert test_alert["labels"]["test"].endswith("::test_fails")
    assert "broken on a worker" in test_alert["annotations"]["summary"]


def test_targets_from_the_ini_each_get_the_alert(suite: pytest.Pytester) -> None:
    with Receiver() as first, Receiver() as second:
        suite.makeini(
            "[pytest]\nlivecluster_name = staging\nlivecluster_alerts =\n"
            f"    webhook+{first.url}/one\n    alertmanager+{second.url}\n"
        )
        run(suite).assert_outcomes(passed=1, failed=1)
        assert [r.path for r in first.requests] == ["/one"]
        # An Alertmanager is also asked what it holds (this one does not answer as one).
        posts = [r for r in second.requests if r.method == "POST"]
        assert [r.path for r in posts] == ["/api/v2/alerts"]
        assert posts[0].json[0]["labels"]["test"] == "test_switched.py::test_switched"
        # The command line replaces the ini's list; a new target hears of what fires.
        asked = len(second.requests)
        run(suite, f"--live-alert=webhook+{first.url}/cli").assert_outcomes(passed=1, failed=1)
        assert [r.path for r in first.requests] == ["/one", "/cli"]
        assert len(second.requests) == asked


def test_a_broken_invariant_fires_and_a_kept_one_resolves(
    suite: pytest.Pytester, receiver: Receiver
) -> None:
    suite.makeconftest(
        """
        import pathlib
        import pytest

        @pytest.fixture(autouse=True, scope="session")
        def invariants(cluster):
            cluster.always(lambda: pathlib.Path("healthy").exists(), what="the cluster is healthy")
        """
    )
    target = f"--live-alert=webhook+{receiver.url}/hook"
    suite.makepyfile(  # a test that passes: only the invariant fails the first run
        test_switched="def test_always_fine(cluster):\n    assert cluster.get('blade')\n"
    )
    first = run(suite, target)
    assert first.ret == 1
    first.assert_outcomes(passed=1, failed=1)
    (suite.path / "healthy").touch()
    second = run(suite, target)
    assert second.ret == 0
    alerts = [
        (a["status"], a["labels"]["alertname"], a["labels"].get("invariant"))
        for body in receiver.bodies()
        for a in body["alerts"]
    ]
    assert alerts == [
        ("firing", "LiveInvariantBroken", "always: the cluster is healthy"),
        ("resolved", "LiveInvariantBroken", "always: the cluster is healthy"),
    ]


def test_every_alert_carries_the_clusters_current_throughput(
    suite: pytest.Pytester, receiver: Receiver
) -> None:
    sent = {"item_collected": 30, "item_sent": 30}
    shards = [
        {"blade": {"msg": "Hello World"}},
        {"intents": {"i-1": {"resolution": {"scraper-1": {"item_scraped": {"a.example": sent}}}}}},
        {"intents": {"i-1": {"resolution": {"spotter-1": {"received": 12}}}}},
    ]
    (suite.path / "shards.ndjson").write_text("".join(json.dumps(s) + "\n" for s in shards))
    suite.makeini(
        "[pytest]\nlivecluster_name = staging\nlivecluster_counters =\n"
        "    intents.*.resolution.*.item_scraped.*\n    intents.*.resolution.*.received\n"
    )
    run(suite, f"--live-alert=webhook+{receiver.url}/hook").assert_outcomes(passed=1, failed=1)
    [body] = receiver.bodies()
    [alert] = body["alerts"]
    throughput = alert["annotations"]["throughput"]
    number = r"[0-9][0-9,]*\.[0-9]{2}"
    rates = rf"collected ({number}), sent ({number}), received ({number})"
    match = re.fullmatch(rf"items/s over the last 60 s: {rates}; over the run: {rates}", throughput)
    assert match, throughput
    collected, sent_rate, received = (float(g.replace(",", "")) for g in match.groups()[3:])
    assert collected == sent_rate > received > 0
