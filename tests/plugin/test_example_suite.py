"""The example suite against the simulated cluster: it passes when healthy and
catches every fault, naming the symptom.

Each run is a real pytest subprocess following a real simulated cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "example_suite"

#: fault -> (a test that must fail, what its failure must say)
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

RESULTS: dict[str, str] = {}


def run_suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(SUITE),
        f"--rootdir={SUITE}",
        "-c",
        str(SUITE / "pytest.ini"),
        "--live-cluster=sim",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *args,
    )


def test_the_suite_passes_against_a_healthy_cluster(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester)
    result.assert_outcomes(passed=10)


@pytest.mark.parametrize("fault", sorted(MATRIX))
def test_the_suite_catches_each_fault(pytester: pytest.Pytester, fault: str) -> None:
    test, symptom = MATRIX[fault]
    fault_name = fault.split(":")[0]
    result = run_suite(pytester, f"--inject={fault}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"FAILED *{test}*"])
    result.stdout.fnmatch_lines([f"E*{symptom}*"])
    failed = sorted(
        line.split(" ")[1].split("::")[-1]
        for line in result.stdout.lines
        if line.startswith("FAILED ")
    )
    RESULTS[fault_name] = ", ".join(failed)


def test_print_the_fault_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last (by name order within this file) and prints what each fault failed."""
    if len(RESULTS) != len(MATRIX):
        pytest.skip("the matrix tests did not all run in this session")
    width = max(map(len, RESULTS))
    lines = [f"{'fault'.ljust(width)}  failing tests", f"{'-' * width}  {'-' * 13}"]
    lines += [f"{fault.ljust(width)}  {tests}" for fault, tests in sorted(RESULTS.items())]
    with capsys.disabled():
        print("\nfault matrix:\n" + "\n".join(lines))
    assert all(RESULTS.values())
