"""Verdicts from every shard, end to end: a real ``/logs`` server, recordings, pytester.

The inner runs follow a loopback :class:`~tests.support.cueserver.CueServer`;
their tests cue shards (several in one send where a sampling wait would miss
the state between them) and the outer test reads what the run concluded: its
exit status, the terminal, the JUnit XML, the JSON report and the step summary.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.support.cueserver import CUE_HELPER, CueServer

BREAK = '{"svc": {"errors": 1}}'
REPAIR = '{"svc": {"errors": null}}'
DONE = '{"svc": {"status": "done"}}'


def test_consistently_sees_a_break_repaired_in_the_same_send(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    """The issue's reproduction, five times over: the break and the repair arrive in
    one send, so the state after both is healthy; ``consistently`` must still fail."""
    pytester.makepyfile(
        CUE_HELPER
        + f"""
import pytest
from pytest_livecluster import ConsistentlyFailed

@pytest.mark.parametrize("attempt", range(5))
def test_no_errors(cluster, attempt):
    cue({server.cue_url!r}, {BREAK!r}, {REPAIR!r}, delay=0.3)
    with pytest.raises(ConsistentlyFailed) as info:
        cluster.consistently(lambda: not cluster.get("svc", "errors"), for_=30)
    assert info.value.shard.raw == {BREAK.encode()!r}
    assert cluster.get("svc", "errors") is None  # repaired: the state now looks fine
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    result.assert_outcomes(passed=5)


def test_missing_hellos_after_the_journal_rolled(pytester: pytest.Pytester) -> None:
    """Three hellos, replaced, then 12,000 heartbeats: more than the journal keeps."""
    lines = [
        json.dumps({h: {"msg": "Hello World"}}) for h in ("scraper-1", "scraper-2", "spotter-1")
    ]
    lines += [json.dumps({h: {"msg": "working"}}) for h in ("scraper-1", "scraper-2", "spotter-1")]
    lines += [json.dumps({"orchestrator": {"heartbeat": i}}) for i in range(12_000)]
    path = pytester.path / "run.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    pytester.makepyfile(
        """
        def test_every_blade_said_hello(cluster):
            assert cluster.stats().journal == 10_000
            assert cluster.missing_hellos(["scraper-1", "scraper-2", "spotter-1"]) == []
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster=file:{path}")
    result.assert_outcomes(passed=1)


INVARIANTS = (
    CUE_HELPER
    + """
import pytest

@pytest.fixture(autouse=True, scope="session")
def invariants(cluster):
    cluster.always(lambda: not cluster.get("svc", "errors"), what="no service errors")
    cluster.never(lambda: cluster.restarts(), what="no blade restarts")
    cluster.sometimes(lambda: cluster.get("svc", "status") == "done", what="work gets done")
"""
)


def test_a_broken_invariant_fails_a_run_whose_tests_all_passed(
    pytester: pytest.Pytester, server: CueServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        INVARIANTS
        + f"""
def test_work(cluster):
    cue({server.cue_url!r}, {BREAK!r}, {REPAIR!r}, {DONE!r}, delay=0.2)
    cluster.eventually(lambda: cluster.get("svc", "status") == "done", timeout=30)
"""
    )
    xml = pytester.path / "junit.xml"
    report = pytester.path / "report.json"
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess(
        f"--live-cluster={server.url}", f"--junitxml={xml}", f"--live-report={report}"
    )
    assert result.ret == 1
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*FAILED livecluster::invariants::always: no service errors*"])
    result.stdout.fnmatch_lines(
        [
            "livecluster F..*",
            "*always: no service errors: broken after * s (check *): returned False*",
            "*the shard that broke it:*",
            f"*#* {server.url} stdout: {BREAK}*",
            "*what it read:*",
            "*svc.errors = 1*",
        ]
    )
    cases = {case.get("name"): case for case in ET.parse(xml).getroot().iter("testcase")}
    broken = cases["always: no service errors"]
    assert broken.find("failure") is not None
    assert BREAK in (broken.find("failure").text or "")  # type: ignore[union-attr]
    assert cases["never: no blade restarts"].find("failure") is None
    assert cases["sometimes: work gets done"].find("failure") is None
    data = json.loads(report.read_text())
    (section,) = [s for s in data["sections"] if s["title"] == "invariants"]
    verdicts = {item["name"]: item for item in section["data"]}
    assert verdicts["always: no service errors"]["verdict"] == "broken"
    assert verdicts["always: no service errors"]["event"]["shard"]["line"] == BREAK
    assert verdicts["always: no service errors"]["event"]["read"] == {"svc.errors": "1"}
    assert verdicts["never: no blade restarts"]["verdict"] == "kept"
    assert verdicts["sometimes: work gets done"]["verdict"] == "satisfied"
    markdown = summary.read_text()
    assert "invariants" in markdown
    assert "always: no service errors: broken" in markdown


def test_a_sometimes_never_satisfied_fails_at_the_end(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        INVARIANTS
        + """
def test_nothing_happens(cluster):
    assert cluster.get("scraper-1", "msg") == "Hello World"
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    assert result.ret == 1
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*FAILED livecluster::invariants::sometimes: work gets done*"])
    result.stdout.fnmatch_lines(["*sometimes: work gets done: never satisfied (1 check)*"])


def test_kept_invariants_pass_and_a_fixtures_invariant_ends_with_it(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    """An invariant a function-scoped fixture registered ends with that test: the
    errors a later test causes do not break it."""
    pytester.makepyfile(
        CUE_HELPER
        + f"""
import pytest

@pytest.fixture
def quiet(cluster):
    cluster.always(lambda: not cluster.get("svc", "errors"), what="quiet during the first test")
    yield

def test_first(cluster, quiet):
    cue({server.cue_url!r}, {DONE!r}, delay=0.1)
    cluster.eventually(lambda: cluster.get("svc", "status") == "done", timeout=30)

def test_second(cluster):
    cue({server.cue_url!r}, {BREAK!r}, delay=0.1)
    cluster.eventually(lambda: cluster.get("svc", "errors") == 1, timeout=30)
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}", "-v")
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*livecluster::invariants::always: quiet during the first test PASSED*"]
    )


def test_never_is_broken_by_a_blade_restart(pytester: pytest.Pytester, server: CueServer) -> None:
    pytester.makepyfile(
        INVARIANTS
        + f"""
def test_restart(cluster):
    cue({server.cue_url!r}, '{{"scraper-1": {{"boot": 1}}}}', '{{"scraper-1": {{"boot": 2}}}}',
        {DONE!r}, delay=0.1)
    cluster.eventually(lambda: cluster.get("svc", "status") == "done", timeout=30)
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*FAILED livecluster::invariants::never: no blade restarts*",
        ]
    )
    result.stdout.fnmatch_lines(['*stdout: {"scraper-1": {"boot": 2}}*'])


PROJECTION_CONFTEST = """
import collections
from pytest_livecluster import Projection


class Deploys(Projection):
    def __init__(self):
        super().__init__()
        self.seen = collections.defaultdict(list)

    def apply(self, shard, entry):
        if "boom" in shard:
            raise ValueError("a bug in the projection")
        for host, body in shard.items():
            module = body.get("module") if isinstance(body, dict) else None
            if module and module not in self.seen[host]:
                self.seen[host].append(module)

    def versions(self, host):
        with self.reading():
            return list(self.seen.get(host, ()))


DEPLOYS = Deploys()


def pytest_livecluster_projections(config, state):
    return [DEPLOYS]
"""


def test_a_projection_registered_by_the_hook_sees_every_shard(pytester: pytest.Pytester) -> None:
    """The README's example: module versions a blade reported, past the journal."""
    lines = [json.dumps({"scraper-1": {"module": f"scraper@1.{i}"}}) for i in range(3)]
    lines += ['{"boom": 1}']
    lines += [json.dumps({"orchestrator": {"heartbeat": i}}) for i in range(10_500)]
    path = pytester.path / "run.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    pytester.makeconftest(PROJECTION_CONFTEST)
    pytester.makepyfile(
        """
        from conftest import DEPLOYS

        def test_versions(cluster):
            assert cluster.get("scraper-1", "module") == "scraper@1.2"
            assert DEPLOYS.versions("scraper-1") == ["scraper@1.0", "scraper@1.1", "scraper@1.2"]
            assert DEPLOYS in cluster.state.projections()
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster=file:{path}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "projections:",
            "  projection Deploys raised on 1 shards; first: ValueError: a bug in the projection",
        ]
    )


def test_invariants_under_xdist_are_reported_once_by_the_controller(
    pytester: pytest.Pytester,
) -> None:
    """Each worker judges the session fixture's invariant; the run reports it once."""
    path = pytester.path / "run.ndjson"
    path.write_text('{"blade": {"msg": "Hello World"}}\n')
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(autouse=True, scope="session")
        def invariants(cluster):
            cluster.always(lambda: cluster.get("blade", "msg") == "nope", what="blade says nope")
            cluster.sometimes(lambda: cluster.get("blade"), what="the blade is there")
        """
    )
    pytester.makepyfile(
        """
        def test_one(cluster):
            assert cluster.get("blade")

        def test_two(cluster):
            assert cluster.get("blade")
        """
    )
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        f"--live-cluster=file:{path}", "-n", "2", f"--junitxml={xml}"
    )
    assert result.ret == 1
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED livecluster::invariants::always: blade says nope - *"])
    names = [case.get("name") for case in ET.parse(xml).getroot().iter("testcase")]
    assert sorted(names) == [
        "always: blade says nope",
        "sometimes: the blade is there",
        "test_one",
        "test_two",
    ]
