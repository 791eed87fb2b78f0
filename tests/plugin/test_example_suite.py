"""The example suite against the simulated cluster, in both of its modes (processes,
and containers on a Docker engine): it passes when healthy and catches every fault,
naming the symptom.

Each run is a real pytest subprocess following a real simulated cluster. The docker
mode needs a reachable engine: without one its tests are skipped, with the reason,
except in CI (``CI=true``), where that is a failure, as for the tests in ``tests/docker``.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from pytest_livecluster.sim import FAULTS
from tests.support.dockerkit import EngineLock, no_engine

SUITE = Path(__file__).resolve().parents[2] / "example_suite"

#: The simulated cluster's modes, as ``--live-cluster`` specs.
PROCESS = "sim"
DOCKER = "sim:mode=docker"
MODES = (PROCESS, DOCKER)

#: fault -> (a test that must fail, what its failure must say), in every mode
MATRIX = {
    "silent_scraper": (
        "test_intents.py::test_intent_resolved_by_scraper_then_spotter",
        "intent i-* on scraper-1 is stuck in 'no answer'",
    ),
    "lossy_spotter": (
        "test_counting.py::test_items_sent_match_items_received",
        "lost * of * items (*) between scrapers and spotters*spotter-1*",
    ),
    "failed_update": (
        "test_intents.py::test_module_update_lands",
        "scraper-1 still reports module scraper@1.4, not scraper@1.5 (intent i-*)",
    ),
    "error_burst": (
        "test_errors.py::test_no_new_errors_since_the_run_began",
        "new errors since the run began: * x * on scraper-1*",
    ),
    "crash_restart": (
        "test_blades.py::test_no_blade_restarted",
        "restarted since the run began: scraper-1 (boot 1 -> 2)",
    ),
    "slow_resolution:factor=30": (
        "test_intents.py::test_intent_resolved_by_scraper_then_spotter",
        "intent i-* on scraper-* is stuck in '*'*",
    ),
}

#: (mode, fault) -> the tests the fault failed in that mode
RESULTS: dict[tuple[str, str], str] = {}


def _fault_name(fault: str) -> str:
    return fault.split(":")[0]


def test_the_matrix_names_every_fault_the_simulator_has() -> None:
    assert sorted(_fault_name(fault) for fault in MATRIX) == sorted(FAULTS)


def _engine_unreachable() -> str:
    """Why no Docker engine answers (as ``tests/docker`` connects), or "" if one does."""
    reason = ""
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed connect to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        client = None
        try:
            client = docker.from_env(timeout=60)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            if client is not None:
                client.close()
        gc.collect()
    return reason


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[None]:
    """A reachable engine, held shared so no engine-restart test restarts it meanwhile
    (released with this module, before the engine-restart tests, which run last)."""
    lock = EngineLock()
    lock.share()
    try:
        reason = _engine_unreachable()
        if reason:
            no_engine(reason)
        yield
    finally:
        lock.release()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """The ``--live-cluster`` spec of one mode of the simulated cluster."""
    spec: str = request.param
    if spec == DOCKER:
        request.getfixturevalue("docker_engine")
    return spec


def run_suite(pytester: pytest.Pytester, mode: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(SUITE),
        f"--rootdir={SUITE}",
        "-c",
        str(SUITE / "pytest.ini"),
        f"--live-cluster={mode}",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *args,
    )


def test_the_suite_passes_against_a_healthy_cluster(pytester: pytest.Pytester, mode: str) -> None:
    result = run_suite(pytester, mode)
    result.assert_outcomes(passed=10)


@pytest.mark.parametrize("fault", sorted(MATRIX))
def test_the_suite_catches_each_fault(pytester: pytest.Pytester, mode: str, fault: str) -> None:
    test, symptom = MATRIX[fault]
    result = run_suite(pytester, mode, f"--inject={fault}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"FAILED *{test}*"])
    result.stdout.fnmatch_lines([f"E*{symptom}*"])
    # Errors are grouped by the host a process logs as, never by the container it runs in.
    by_container = [line for line in result.stdout.lines if " on lcsim-" in line]
    assert not by_container, by_container
    failed = sorted(
        line.split(" ")[1].split("::")[-1]
        for line in result.stdout.lines
        if line.startswith("FAILED ")
    )
    RESULTS[mode, _fault_name(fault)] = ", ".join(failed)


def test_print_the_fault_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last (it is defined last) and prints what each fault failed, in each mode."""
    faults = sorted({_fault_name(fault) for fault in MATRIX})
    done = [m for m in MODES if all((m, fault) in RESULTS for fault in faults)]
    if not done:
        pytest.skip("the matrix tests of no mode all ran in this session")
    rows = [(fault, m, RESULTS[m, fault]) for fault in faults for m in done]
    fault_w = max(len("fault"), *(len(fault) for fault in faults))
    mode_w = max(len("mode"), *(len(m) for m in done))
    lines = [
        f"{'fault'.ljust(fault_w)}  {'mode'.ljust(mode_w)}  failing tests",
        f"{'-' * fault_w}  {'-' * mode_w}  {'-' * 13}",
    ]
    lines += [f"{fault.ljust(fault_w)}  {m.ljust(mode_w)}  {tests}" for fault, m, tests in rows]
    missing = [m for m in MODES if m not in done]
    if missing:
        lines.append(f"(not every matrix test ran in mode {', '.join(missing)})")
    with capsys.disabled():
        print("\nfault matrix:\n" + "\n".join(lines))
    assert all(tests for _, _, tests in rows)
