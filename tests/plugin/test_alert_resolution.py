"""Alerts resolve without a ledger: Alertmanager is asked what it holds.

Every run is a real pytest process (pytester) following the embedded simulated
cluster (``sim``) and alerting a real Alertmanager on loopback (Debian's
prometheus-alertmanager). A run that cannot rely on the alert ledger (pytest's
cache off, a fresh machine, a truncated file) still resolves what Alertmanager
holds for its passing tests, a test that no longer exists is resolved once the
whole suite ran, and the report says what Alertmanager holds after the round.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_livecluster.alerts.alerter import GONE
from tests.support.alertmanager import Alertmanager, require_alertmanager
from tests.support.receiver import Receiver

SWITCHED_TEST = """
import pathlib

def test_switched(cluster):
    assert pathlib.Path("healthy").exists(), "the cluster is unhealthy"
"""
FINE_TEST = """
def test_fine(cluster):
    assert cluster.state is not None
"""
NODEID = "test_switched.py::test_switched"
CACHE_OFF = ("-p", "no:cacheprovider")


@pytest.fixture
def alertmanager() -> Iterator[Alertmanager]:
    binary = require_alertmanager()
    with Receiver() as receiver, Alertmanager(receiver, binary=binary) as am:
        yield am


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_switched=SWITCHED_TEST, test_other=FINE_TEST)
    pytester.makeini("[pytest]\nlivecluster_name = staging\n")
    return pytester


def run(pytester: pytest.Pytester, am: Alertmanager, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--live-cluster=sim",
        f"--live-alert=alertmanager+{am.url}",
        "--live-report=report.json",
        *args,
    )


def held(am: Alertmanager) -> list[str]:
    """The tests whose alerts Alertmanager holds (not resolved) for the cluster ``staging``."""
    return sorted(a["labels"]["test"] for a in am.alerts(filter=['cluster="staging"']))


def alerts_data(pytester: pytest.Pytester) -> dict[str, Any]:
    report = json.loads((pytester.path / "report.json").read_text())
    [section] = [s for s in report["sections"] if s["title"] == "alerts"]
    data: dict[str, Any] = section["data"]
    return data


def fail_once(suite: pytest.Pytester, am: Alertmanager, *args: str) -> None:
    result = run(suite, am, *args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"  alertmanager+{am.url}: holds 1 active: {NODEID}"])
    assert held(am) == [NODEID]


def test_a_run_without_the_ledger_resolves_what_alertmanager_holds(
    suite: pytest.Pytester, alertmanager: Alertmanager
) -> None:
    am = alertmanager
    # No ledger in either run: Alertmanager alone remembers the failure.
    result = run(suite, am, *CACHE_OFF)
    result.assert_outcomes(passed=1, failed=1)
    assert held(am) == [NODEID]
    assert alerts_data(suite)["firing"] == held(am)
    result.stdout.fnmatch_lines([f"  firing now: {NODEID}"])

    # Failing again without a ledger: the alert fired before, and Alertmanager still holds it.
    result = run(suite, am, *CACHE_OFF)
    assert f"  fired {NODEID}" not in result.stdout.lines
    result.stdout.fnmatch_lines(
        [f"  alertmanager+{am.url}: holds 1 active: {NODEID}", f"  firing now: {NODEID}"]
    )

    (suite.path / "healthy").touch()
    result = run(suite, am, *CACHE_OFF)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "alerts:",
            f"  resolved {NODEID} (passed; held by alertmanager+{am.url}, "
            "unknown to the alert ledger)",
            f"  alertmanager+{am.url}: sent 1 resolved",
            f"  alertmanager+{am.url}: holds no active alert of this cluster",
            "  firing now: none",
        ]
    )
    assert held(am) == []
    assert am.alerts(active=True) == []
    data = alerts_data(suite)
    assert data["firing"] == []
    assert data["firing_unknown"] == []
    assert data["held"] == [
        {
            "target": f"alertmanager+{am.url}",
            "kind": "alertmanager",
            "firing": [],
            "note": None,
            "states": {},
        }
    ]


def test_a_truncated_ledger_still_resolves_what_alertmanager_holds(
    suite: pytest.Pytester, alertmanager: Alertmanager
) -> None:
    am = alertmanager
    fail_once(suite, am)
    ledger = suite.path / ".pytest_cache/d/livecluster/alerts.json"
    text = ledger.read_bytes()
    assert NODEID.encode() in text
    ledger.write_bytes(text[: len(text) // 2])

    (suite.path / "healthy").touch()
    result = run(suite, am)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"  alert ledger {ledger} could not be read (*); starting afresh",
            f"  resolved {NODEID} (passed; held by alertmanager+{am.url}, "
            "unknown to the alert ledger)",
            f"  alertmanager+{am.url}: sent 1 resolved",
            f"  alertmanager+{am.url}: holds no active alert of this cluster",
            "  firing now: none",
        ]
    )
    assert held(am) == []


def test_firing_now_is_what_alertmanager_holds_when_the_ledger_forgot_it(
    suite: pytest.Pytester, alertmanager: Alertmanager
) -> None:
    am = alertmanager
    fail_once(suite, am)
    # A run that does not run the failing test (and has no ledger) still sees it fire.
    result = run(suite, am, *CACHE_OFF, "test_other.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"  alertmanager+{am.url}: holds 1 active: {NODEID}", f"  firing now: {NODEID}"]
    )
    assert alerts_data(suite)["firing"] == held(am) == [NODEID]


@pytest.mark.parametrize("ledger", ["ledger", "no ledger"])
def test_a_deleted_test_is_resolved_once_the_whole_suite_ran(
    suite: pytest.Pytester, alertmanager: Alertmanager, ledger: str
) -> None:
    am = alertmanager
    cache = () if ledger == "ledger" else CACHE_OFF
    fail_once(suite, am)
    # The failing test is renamed: its old id no longer exists.
    (suite.path / "test_switched.py").unlink()
    suite.makepyfile(test_renamed=SWITCHED_TEST.replace("test_switched", "test_renamed"))
    (suite.path / "healthy").touch()

    # Runs that did not collect the whole suite cannot tell a deleted test from one not run.
    for narrowing in (("-k", "fine or renamed"), ("test_other.py", "test_renamed.py")):
        result = run(suite, am, *cache, *narrowing)
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(
            [f"  alertmanager+{am.url}: holds 1 active: {NODEID}", f"  firing now: {NODEID}"]
        )
        assert held(am) == [NODEID]

    result = run(suite, am, *cache)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"  resolved {NODEID} (the test no longer exists*",
            f"  alertmanager+{am.url}: sent 1 resolved",
            f"  alertmanager+{am.url}: holds no active alert of this cluster",
            "  firing now: none",
        ]
    )
    assert held(am) == []


def test_a_deleted_test_is_resolved_with_the_reason(suite: pytest.Pytester) -> None:
    binary = require_alertmanager()
    with Receiver() as receiver, Alertmanager(receiver, binary=binary) as am:
        result = run(suite, am, *CACHE_OFF)
        result.assert_outcomes(passed=1, failed=1)
        receiver.wait_for(1)
        (suite.path / "test_switched.py").unlink()
        run(suite, am, *CACHE_OFF).assert_outcomes(passed=1)
        receiver.wait_for(2)
        [fired, resolved] = [(b["status"], b["alerts"][0]) for b in receiver.bodies()]
    assert fired[0] == "firing"
    assert resolved[0] == "resolved"
    assert resolved[1]["labels"]["test"] == NODEID
    assert resolved[1]["annotations"]["resolution"] == GONE
    assert resolved[1]["annotations"]["summary"].startswith(f"{NODEID} failed: AssertionError")


def test_an_unreadable_alertmanager_is_a_note_and_the_ledger_decides(
    suite: pytest.Pytester, alertmanager: Alertmanager
) -> None:
    am = alertmanager
    fail_once(suite, am)
    down = "alertmanager+http://127.0.0.1:9"  # discard port: nothing listens
    (suite.path / "healthy").touch()
    result = suite.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--live-cluster=sim",
        f"--live-alert={down}",
        f"--live-alert=alertmanager+{am.url}",
        "-o",
        "livecluster_alert_timeout=1",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"  {down}: could not read the alerts it holds (ConnectError: *); "
            "the alert ledger alone decides what it is sent",
            f"  resolved {NODEID}",
            f"  {down}: what it holds is not known (could not be read: see above)",
            f"  alertmanager+{am.url}: holds no active alert of this cluster",
            f"  firing now: none known ({down} could not be read)",
        ]
    )
    assert held(am) == []
