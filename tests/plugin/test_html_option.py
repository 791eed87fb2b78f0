"""``--live-html``: the run's page, written at the end and after each watch round, never
over a file the user keeps. Every run is a real pytest process (pytester); the page's
own drawing is tested in a real browser under ``tests/browser``."""

from __future__ import annotations

import json
import time

import pytest

from pytest_livecluster.sim import SimCluster
from tests.plugin.test_watch import RESOLUTION_TEST, Watcher

SHARDS = [
    {"scraper-1": {"msg": "Hello World"}},
    {"spotter-1": {"msg": "Hello World"}},
    {"intents": {"i-1": {"host": "scraper-1", "module": "scraper@1"}}},
    {
        "intents": {
            "i-1": {
                "resolution": {
                    "scraper-1": {
                        "item_scraped": {"a.example": {"item_collected": 9, "item_sent": 9}}
                    }
                }
            }
        }
    },
    {"intents": {"i-1": {"resolution": {"spotter-1": {"received": 7}}}}},
]
COUNTERS = (
    "livecluster_counters =\n"
    "    intents.*.resolution.*.item_scraped.*\n"
    "    intents.*.resolution.*.received\n"
)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(
        test_live="def test_hello(cluster):\n    assert cluster.hellos()\n"
        "def test_broken(cluster):\n    assert False, 'the cluster is <b>broken</b>'\n"
    )
    (pytester.path / "shards.ndjson").write_text("".join(json.dumps(s) + "\n" for s in SHARDS))
    pytester.makeini(f"[pytest]\nlivecluster_name = staging\n{COUNTERS}")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "--live-cluster=file:shards.ndjson", *args
    )


def test_the_page_is_written_beside_the_json_report_with_the_same_content(
    suite: pytest.Pytester,
) -> None:
    result = run(suite, "--live-report=out/report.json", "--live-html=out/report.html")
    result.assert_outcomes(passed=1, failed=1)
    page = suite.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"generated livecluster html report: {page}"])
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "staging" in html
    # Log- and test-derived text is escaped, never markup.
    assert "<b>broken</b>" not in html
    assert "&lt;b&gt;broken&lt;/b&gt;" in html
    report = json.loads((suite.path / "out" / "report.json").read_text())
    assert [t["nodeid"] for t in report["tests"]] == [
        "test_live.py::test_hello",
        "test_live.py::test_broken",
    ]
    assert [t["outcome"] for t in report["tests"]] == ["passed", "failed"]
    assert all(t["start"] <= t["stop"] for t in report["tests"])
    [throughput] = [s for s in report["sections"] if s["title"] == "throughput"]
    assert sum(throughput["data"]["history"]["series"]["sent"]["total"]) == 9
    assert sum(throughput["data"]["history"]["series"]["received"]["total"]) == 7


def test_the_ini_key_names_the_page_too(suite: pytest.Pytester) -> None:
    suite.makeini(f"[pytest]\nlivecluster_html = page.html\n{COUNTERS}")
    run(suite).assert_outcomes(passed=1, failed=1)
    assert (suite.path / "page.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--live-report=same.json", "--live-html=same.json"],
            "*--live-html: 'same.json' is also --live-report: writing the page there would "
            "overwrite it*",
        ),
        (
            ["--live-record=same.ndjson", "--live-html=same.ndjson"],
            "*--live-html: 'same.ndjson' is also --live-record*",
        ),
        (
            ["--live-html=shards.ndjson"],
            "*--live-html: 'shards.ndjson' is also the replayed recording 'file:shards.ndjson'*",
        ),
    ],
)
def test_the_page_never_overwrites_the_runs_other_files(
    suite: pytest.Pytester, args: list[str], message: str
) -> None:
    before = (suite.path / "shards.ndjson").read_bytes()
    result = run(suite, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()
    assert (suite.path / "shards.ndjson").read_bytes() == before


def test_watch_rounds_rewrite_the_page(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_resolution=RESOLUTION_TEST)
    page = pytester.path / "page.html"
    with SimCluster(scrapers=1, spotters=1).start() as sim:
        watcher = Watcher(
            pytester,
            f"--live-cluster={','.join(sim.log_urls.values())}",
            "-o",
            f"livecluster_orchestrator_url={sim.orchestrator_url}",
            "--live-watch=0.5",
            f"--live-html={page}",
        )
        try:
            watcher.wait_for_rounds(1)
            deadline = time.monotonic() + 30
            while not page.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            first = page.read_text()
            seen = len(watcher.rounds())
            watcher.wait_for_rounds(seen + 2)
            later = page.read_text()
            assert watcher.stop() == 0, watcher.text()
        finally:
            watcher.kill()
    assert first.startswith("<!DOCTYPE html>")
    assert later != first  # each round draws the cluster as it is then
    assert "test_intent_resolved_within_budget" in later
