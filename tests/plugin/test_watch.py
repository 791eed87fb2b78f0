"""Watch mode: rounds over attached sources, alert transitions, a clean stop.

The runs are real pytest processes; the cluster is the simulated one (real
processes serving ``/logs``) or a recording; the alert receiver is a real
loopback HTTP server."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_livecluster.sim import SimCluster
from tests.support.receiver import Receiver

RESOLUTION_TEST = """
from pytest_livecluster.methodology.views import Phase

BUDGET = 4.0

def test_intent_resolved_within_budget(cluster, orchestrator):
    scraper = orchestrator.hosts()["scraper"][0]
    iid = orchestrator.set_intent(host=scraper, module="scraper@1.4")
    for attempt in cluster.eventually(timeout=BUDGET, tick=0.1):
        with attempt:
            intent = cluster.intent(iid)
            assert intent is not None, f"intent {iid} never reached the state"
            assert intent.phase is Phase.SPOTTER_RECEIVING, (
                f"intent {iid} is stuck in '{intent.phase}'"
            )
"""


class Watcher:
    """A ``pytest --live-watch`` process whose output a test can follow."""

    def __init__(self, pytester: pytest.Pytester, *args: str) -> None:
        self.out = pytester.path / "watch.out"
        self.err = pytester.path / "watch.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process: subprocess.Popen[bytes] = pytester.popen(
                [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def rounds(self) -> list[str]:
        return re.findall(r"^watch round \d+ at .*$", self.text(), re.MULTILINE)

    def wait_for_rounds(self, count: int, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.rounds()) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"wanted {count} rounds; the watch says:\n{self.text()}\n{self.err.read_text()}"
                )
            time.sleep(0.1)
        return self.rounds()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def sim() -> Iterator[SimCluster]:
    with SimCluster(scrapers=1, spotters=1).start() as cluster:
        yield cluster


def test_a_fault_switched_on_then_off_fires_once_then_resolves_once(
    pytester: pytest.Pytester, sim: SimCluster
) -> None:
    pytester.makepyfile(test_resolution=RESOLUTION_TEST)
    nodeid = "test_resolution.py::test_intent_resolved_within_budget"
    with Receiver() as receiver, sim.client() as operator:
        watcher = Watcher(
            pytester,
            f"--live-cluster={','.join(sim.log_urls.values())}",
            "-o",
            f"livecluster_orchestrator_url={sim.orchestrator_url}",
            "-o",
            "livecluster_name=sim",
            "--live-watch=0.5",
            f"--live-alert=webhook+{receiver.url}/hook",
            "--live-report=report.json",
        )
        try:
            assert all(", 1 passed" in r or ": 1 passed" in r for r in watcher.wait_for_rounds(2))
            operator.set_fault("slow_resolution", factor=100)
            [fired] = receiver.wait_for(1, timeout=60)
            operator.set_fault("slow_resolution", on=False)
            receiver.wait_for(2, timeout=60)
            # Rounds go on passing; nothing more is sent.
            seen = len(watcher.rounds())
            watcher.wait_for_rounds(seen + 2)
            code = watcher.stop()
        finally:
            watcher.kill()
    statuses = [(a["status"], a["labels"]["test"]) for b in receiver.bodies() for a in b["alerts"]]
    assert statuses == [("firing", nodeid), ("resolved", nodeid)]
    assert fired.json["alerts"][0]["labels"]["cluster"] == "sim"
    assert "is stuck in" in fired.json["alerts"][0]["annotations"]["summary"]
    text = watcher.text()
    assert code == 0, text  # the last round passed
    rounds = watcher.rounds()
    failing = [r for r in rounds if "1 failed" in r]
    assert failing, text
    assert "alerts: 1 firing, 1 fired" in failing[0]
    assert any("alerts: 0 firing, 1 resolved" in r for r in rounds)
    assert f"  FAILED {nodeid} - EventuallyFailed: eventually: the block did not pass" in text
    assert "AssertionError: intent i-" in text
    assert f"  passes again: {nodeid}" in text
    assert re.search(r"^watch: stopped after \d+ complete round\(s\)$", text, re.MULTILINE)
    # The final report: written, the sources closed, the alert history in it.
    report = json.loads((pytester.path / "report.json").read_text())
    assert {s["state"] for s in report["sources"]} == {"closed"}
    [alerts] = [s for s in report["sections"] if s["title"] == "alerts"]
    assert [r["fired"] for r in alerts["data"]["rounds"] if r["fired"]] == [[nodeid]]
    assert [r["resolved"] for r in alerts["data"]["rounds"] if r["resolved"]] == [[nodeid]]
    assert alerts["data"]["firing"] == []


def test_rounds_rerun_session_fixtures_and_the_last_round_is_the_result(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    pytester.makeconftest(
        """
        import pathlib
        import pytest

        @pytest.fixture(scope="session")
        def round_number():
            log = pathlib.Path("fixture.log")
            count = log.read_text().count("up") + 1 if log.exists() else 1
            with log.open("a") as f:
                f.write("up\\n")
            yield count
            with log.open("a") as f:
                f.write("down\\n")
        """
    )
    pytester.makepyfile(
        """
        def test_fails_in_round_two(cluster, round_number):
            assert cluster.get("blade", "msg") == "Hello World"
            assert round_number != 2, "round two is bad"

        def test_fine(cluster):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--live-cluster=file:shards.ndjson",
        "--live-watch=0.1",
        "--live-watch-rounds=3",
        "--junitxml=j.xml",
    )
    result.stdout.fnmatch_lines(
        [
            "watch round 1 at *: 2 passed in * s; 1 lines read",
            "watch round 2 at *: 1 passed, 1 failed in * s; 1 lines read",
            "  FAILED test_rounds_rerun_session_fixtures_and_the_last_round_is_the_result.py"
            "::test_fails_in_round_two - AssertionError: round two is bad",
            "watch round 3 at *: 2 passed in * s; 1 lines read",
            "  passes again: *::test_fails_in_round_two",
        ]
    )
    assert result.ret == 0
    result.assert_outcomes(passed=2)  # the last round
    assert (pytester.path / "fixture.log").read_text().split() == ["up", "down"] * 3
    junit = (pytester.path / "j.xml").read_text()
    assert junit.count("<testcase ") == 2
    assert junit.count('name="livecluster_shards"') == 2  # not one per round


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_the_watch_mid_round_is_clean(pytester: pytest.Pytester, sig: int) -> None:
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    pytester.makeconftest(
        """
        import pathlib
        import pytest

        @pytest.fixture(scope="session")
        def resource():
            yield
            with pathlib.Path("teardown.log").open("a") as f:
                f.write("down\\n")
        """
    )
    pytester.makepyfile(
        """
        import pathlib
        import time

        def test_slow_after_the_first_round(cluster, resource):
            marker = pathlib.Path("ran-once")
            if marker.exists():
                pathlib.Path("in-round-two").touch()
                time.sleep(60)
            marker.touch()
            assert False, "the first round fails"
        """
    )
    watcher = Watcher(
        pytester,
        "--live-cluster=file:shards.ndjson",
        "--live-watch=0.1",
        "--live-report=report.json",
    )
    try:
        watcher.wait_for_rounds(1)
        deadline = time.monotonic() + 30
        while not (pytester.path / "in-round-two").exists():
            assert time.monotonic() < deadline, watcher.text()
            time.sleep(0.05)
        started = time.monotonic()
        code = watcher.stop(sig)
        stopped_in = time.monotonic() - started
    finally:
        watcher.kill()
    text = watcher.text()
    assert code == 1, text  # the last complete round failed
    assert stopped_in < 30  # the round's test sleeps 60 s: stopping does not wait it out
    assert "watch: stopped after 1 complete round(s)" in text
    assert "AssertionError: the first round fails" in text  # its failure, reported as usual
    # Both rounds' session fixtures were torn down, the interrupted one included.
    assert (pytester.path / "teardown.log").read_text().split() == ["down", "down"]
    report = json.loads((pytester.path / "report.json").read_text())
    assert {s["state"] for s in report["sources"]} <= {"closed", "finished"}
    assert report["state"]["lines"] == 1
    assert Path(pytester.path / "report.json").stat().st_size > 0


def test_invariants_are_judged_per_round(pytester: pytest.Pytester) -> None:
    """Round two's invariant is broken; rounds one and three keep theirs, and the
    last round is the run's result."""
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    pytester.makeconftest(
        """
        import pathlib
        import pytest

        @pytest.fixture(autouse=True, scope="session")
        def invariants(cluster):
            log = pathlib.Path("rounds.log")
            count = log.read_text().count("up") + 1 if log.exists() else 1
            log.write_text("up\\n" * count)
            cluster.always(lambda: count != 2, what="not round two")
            yield
        """
    )
    pytester.makepyfile(
        """
        def test_fine(cluster):
            assert cluster.get("blade", "msg") == "Hello World"
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--live-cluster=file:shards.ndjson",
        "--live-watch=0.1",
        "--live-watch-rounds=3",
        "--junitxml=j.xml",
    )
    result.stdout.fnmatch_lines(
        [
            "watch round 1 at *: 1 passed in * s; 1 lines read",
            "watch round 2 at *: 1 passed, 1 failed in * s; 1 lines read",
            "  FAILED always: not round two: broken at registration (check 1): returned False",
            "watch round 3 at *: 1 passed in * s; 1 lines read",
            "  passes again: livecluster::invariants::always: not round two",
        ]
    )
    assert result.ret == 0
    result.assert_outcomes(passed=2)  # the last round: the test and its invariant
    junit = (pytester.path / "j.xml").read_text()
    assert junit.count("<testcase ") == 2
