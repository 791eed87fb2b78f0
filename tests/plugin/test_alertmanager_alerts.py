"""Alerts to a real Alertmanager (Debian's prometheus-alertmanager, on loopback),
which notifies a real loopback webhook receiver: a failing test's alert appears
in Alertmanager's API, repeated failing runs notify once, a passing run resolves."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.alertmanager import Alertmanager, require_alertmanager
from tests.support.receiver import Receiver

SWITCHED_TEST = """
import pathlib
import pytest

@pytest.mark.livecluster(severity="page")
def test_switched(cluster):
    assert pathlib.Path("healthy").exists(), "the cluster is unhealthy"
"""
NODEID = "test_switched.py::test_switched"


@pytest.fixture
def alertmanager() -> Iterator[tuple[Alertmanager, Receiver]]:
    binary = require_alertmanager()
    with Receiver() as receiver, Alertmanager(receiver, binary=binary) as am:
        yield am, receiver


def notifications(receiver: Receiver) -> list[tuple[str, str]]:
    return [(n["status"], a["labels"]["test"]) for n in receiver.bodies() for a in n["alerts"]]


def test_an_alert_fires_once_across_failing_runs_and_resolves_on_a_pass(
    alertmanager: tuple[Alertmanager, Receiver], pytester: pytest.Pytester
) -> None:
    am, receiver = alertmanager
    pytester.makepyfile(test_switched=SWITCHED_TEST)
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    args = (
        "-p",
        "no:randomly",
        "--live-cluster=file:shards.ndjson",
        f"--live-alert=alertmanager+{am.url}",
        "--live-report=report.json",
        "-o",
        "livecluster_name=staging",
    )
    for _ in range(3):
        result = pytester.runpytest_subprocess(*args)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"  alertmanager+{am.url}: sent 1 firing"])
        time.sleep(1.2)  # longer than the group interval: a duplicate would go out now

    [alert] = am.alerts()
    assert alert["labels"] == {
        "alertname": "LiveTestFailing",
        "test": NODEID,
        "cluster": "staging",
        "severity": "page",
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"] == (
        f"{NODEID} failed: AssertionError: the cluster is unhealthy"
    )
    assert alert["annotations"]["report"] == str(pytester.path / "report.json")
    assert notifications(receiver) == [("firing", NODEID)]

    (pytester.path / "healthy").touch()
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    receiver.wait_for(2)
    assert notifications(receiver) == [("firing", NODEID), ("resolved", NODEID)]
    assert am.alerts() == []  # Alertmanager lists no alert whose end has passed

    # Passing again tells Alertmanager nothing, and it notifies nobody.
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    time.sleep(1.2)
    assert len(receiver.requests) == 2
    result.stdout.fnmatch_lines(["  firing now: none"])
    assert f"alertmanager+{am.url}: sent" not in result.stdout.str()


def test_an_unreachable_alertmanager_is_reported_and_caught_up_by_the_next_run(
    alertmanager: tuple[Alertmanager, Receiver], pytester: pytest.Pytester
) -> None:
    am, receiver = alertmanager
    pytester.makepyfile(test_switched=SWITCHED_TEST)
    (pytester.path / "shards.ndjson").write_text("{}\n")
    common = ("-p", "no:randomly", "--live-cluster=file:shards.ndjson")
    down = "alertmanager+http://127.0.0.1:9"  # discard port: nothing listens
    result = pytester.runpytest_subprocess(
        *common, f"--live-alert={down}", "-o", "livecluster_alert_timeout=1"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"  {down}: NOT sent 1 firing after * attempts in * s: ConnectError: *"]
    )
    # Another target (the real one) still gets the alert, once.
    result = pytester.runpytest_subprocess(*common, f"--live-alert=alertmanager+{am.url}")
    result.assert_outcomes(failed=1)
    receiver.wait_for(1)
    assert [a["labels"]["test"] for a in am.alerts()] == [NODEID]
