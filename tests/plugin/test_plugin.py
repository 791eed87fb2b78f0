"""The pytest plugin, driven through pytester in a subprocess (it starts threads).

Live tests here follow real sources: recordings on disk and a loopback
``/logs`` server that the inner tests cue to write shards while they wait.
"""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET

import orjson
import pytest

from tests.support.cueserver import CUE_HELPER, HELLO, CueServer


def write_recording(pytester: pytest.Pytester, *lines: str) -> str:
    path = pytester.path / "shards.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    return f"file:{path}"


def test_live_tests_are_skipped_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.live
        def test_live(cluster):
            raise AssertionError("must not run")

        def test_unit():
            pass

        def test_uses_cluster_unmarked(cluster):
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*needs --live-cluster*"])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--live-cluster"], "", "*--live-cluster needs sources: give them as*"),
        (["--live-cluster=ftp://x"], "", "*unknown source spec 'ftp://x'; valid kinds: file:PATH*"),
        (
            ["--live-cluster=file:x", "--live-timeout=soon"],
            "",
            "*--live-timeout must be a positive number of seconds, got 'soon'*",
        ),
        (
            ["--live-cluster=file:x"],
            "livecluster_ttl = intents.*",
            "*expected 'PATTERN = SECONDS'*",
        ),
        (["--live-cluster=file:x"], "livecluster_counters = a..b", "*bad pattern 'a..b'*"),
    ],
)
def test_usage_errors_name_the_value(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_sources_can_come_from_the_ini_file(pytester: pytest.Pytester) -> None:
    spec = write_recording(pytester, HELLO)
    pytester.makeini(f"[pytest]\nlivecluster_sources = {spec}\n")
    pytester.makepyfile(
        """
        def test_hello(cluster):
            assert cluster.get("scraper-1", "msg") == "Hello World"
        """
    )
    pytester.runpytest_subprocess("--live-cluster").assert_outcomes(passed=1)


def test_header_states_sources_and_timeouts(pytester: pytest.Pytester) -> None:
    spec = write_recording(pytester, HELLO)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess(f"--live-cluster={spec}", "--live-timeout=12")
    result.stdout.fnmatch_lines(
        [
            f"livecluster: following {spec}",
            "livecluster: eventually timeout 12 s, consistently window 5 s, tick 1 s, "
            "settle up to 30 s",
        ]
    )


def test_eventually_passes_soon_after_the_shard_arrives(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        CUE_HELPER
        + f"""
import time

def test_waits_for_a_later_shard(cluster):
    cue({server.cue_url!r}, '{{"intents": {{"i-1": {{"host": "scraper-1"}}}}}}', delay=0.3)
    began = time.monotonic()
    host = cluster.eventually(lambda: cluster.get("intents", "i-1", "host"), timeout=120, tick=60)
    waited = time.monotonic() - began
    assert host == "scraper-1"
    # Woken by the shard (sent after 0.3 s), not by the 60 s tick: only a wait for
    # the tick could take half of it.
    assert 0.25 < waited < 30, waited
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    result.assert_outcomes(passed=1)


def test_eventually_timeout_shows_what_how_long_and_why(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        CUE_HELPER
        + f"""
import pytest

@pytest.mark.livecluster(timeout=1.0, tick=0.2)
def test_never_resolved(cluster):
    cue({server.cue_url!r}, '{{"intents": {{"i-7": {{"host": "scraper-2"}}}}}}', delay=0.1)

    def resolved():
        assert cluster.get("intents", "i-7", "resolution") is not None, "i-7 has no resolution"
        return True

    cluster.eventually(resolved)
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*EventuallyFailed: eventually: test_never_resolved.<locals>.resolved "
            "(test_*.py:*) did not pass within 1 s (* checks)",
            "E*first failure (at 0.00* s): AssertionError: i-7 has no resolution",
            "E*    assert None is not None",
            "E*last failure (at 1.0* s): the same",
            "E*intents.i-7.resolution did not change since the test began: null",
            "E*no kept shard wrote intents.i-7.resolution",
            "*- livecluster call -*",
            "1 shards arrived during the test",
            "the last of them:",
            f'*#2 *Z {server.url} stdout: {{"intents": {{"i-7": {{"host": "scraper-2"}}}}}}',
        ]
    )
    result.stdout.no_fnmatch_line("*RetryError*")


def test_eventually_diff_shows_changes_since_the_test_began(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        CUE_HELPER
        + f"""
def test_msg(cluster):
    cue({server.cue_url!r}, '{{"scraper-1": {{"msg": "busy"}}}}', delay=0.1)
    cluster.eventually(lambda: cluster.get("scraper-1") == {{"msg": "idle"}}, timeout=1)
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*scraper-1 since the test began:",
            'E*Value of root?\'msg\'? changed from "Hello World" to "busy".',
            "E*last shards that wrote scraper-1 (newest first):",
            f'E*#2 *Z {server.url} stdout: {{"scraper-1": {{"msg": "busy"}}}}',
            f"E*#1 *Z {server.url} stdout: {HELLO}",
        ]
    )


def test_consistently_fails_on_the_violating_shard(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        CUE_HELPER
        + f"""
def test_no_errors(cluster):
    cue({server.cue_url!r}, '{{"scraper-1": {{"errors": {{"Timeout": 1}}}}}}', delay=0.3)
    cluster.consistently(lambda: not cluster.get("scraper-1", "errors"), for_=5)
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*consistently: test_no_errors.<locals>.<lambda> (test_*.py:*) stopped holding "
            "after 0.* s of 5 s (check *): returned False",
            "E*the shard that broke it:",
            f'E*#2 *Z {server.url} stdout: {{"scraper-1": {{"errors": {{"Timeout": 1}}}}}}',
        ]
    )


def test_consistently_passes_when_nothing_breaks_it(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        """
        def test_quiet(cluster):
            cluster.consistently(lambda: cluster.get("scraper-1", "msg") == "Hello World",
                                 for_=0.5, tick=0.1)
        """
    )
    pytester.runpytest_subprocess(f"--live-cluster={server.url}").assert_outcomes(passed=1)


def test_cursor_sees_only_shards_of_this_test_and_junit_counts_them(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        CUE_HELPER
        + f"""
def test_a_during(cluster):
    cue({server.cue_url!r}, '{{"a": 1}}', '{{"b": 2}}', delay=0.1)
    cluster.eventually(lambda: cluster.get("b") == 2, timeout=5)
    assert cluster.since_test.count == 2
    assert [s for s in cluster.since_test.shards()] == [{{"a": 1}}, {{"b": 2}}]
    assert cluster.since_test.saw("a")
    assert not cluster.since_test.saw("scraper-1")

def test_b_after(cluster):
    assert cluster.get("a") == 1
    assert cluster.since_test.count == 0
    assert not cluster.since_test.saw("a")
"""
    )
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}", f"--junitxml={xml}")
    result.assert_outcomes(passed=2)
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(xml).getroot().iter("testcase")
    }
    assert properties == {
        "test_a_during": {"livecluster_shards": "2"},
        "test_b_after": {"livecluster_shards": "0"},
    }


def test_json_and_markdown_reports(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_recording(
        pytester,
        HELLO,
        "Traceback (most recent call last):",
        '{"n": {"w1": 2}}',
        '{"n": {"w2": 3}}',
    )
    pytester.makeini("[pytest]\nlivecluster_counters = n.*\nlivecluster_name = staging\n")
    pytester.makepyfile("def test_one(cluster): assert cluster.total('n.*') == 5")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess(
        f"--live-cluster={spec}", "--live-report=out/report.json"
    )
    result.assert_outcomes(passed=1)
    report_path = pytester.path / "out" / "report.json"
    result.stdout.fnmatch_lines(
        [
            "*= livecluster =*",
            "cluster staging: 4 lines, 3 shards, 1 rejected, state version 3, 2 top-level keys",
            f"  {spec}: finished, 4 lines, * bytes, 1 rejected, silent for * s",
            "rejected lines by reason: invalid_json: 1",
            "counters:",
            "  n.* = 5",
            f"generated livecluster json report: {report_path}",
        ]
    )
    report = orjson.loads(report_path.read_bytes())
    assert report["report_version"] == 1
    assert report["cluster"] == "staging"
    assert report["generated"].endswith("+00:00")
    assert report["state"]["rejected"] == {"invalid_json": 1}
    assert report["counters"] == {"n.*": 5}
    assert report["sources"][0]["lines"] == 4
    assert report["rejected_samples"][0]["text"] == "Traceback (most recent call last):"
    markdown = summary.read_text()
    assert markdown.startswith("## Live cluster `staging`\n")
    assert f"| `{spec}` | finished | 4 | 1 | 0 | 0 |" in markdown
    assert "| invalid_json | 1 |" in markdown
    assert "| `n.*` | 5 |" in markdown


def test_record_then_replay_gives_the_same_state(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    server.write('{"intents": {"i-1": {"host": "scraper-1"}}}', "not json")
    pytester.makepyfile(
        """
        import json, pathlib

        def test_dump(cluster):
            cluster.eventually(lambda: cluster.get("intents"), timeout=5)
            pathlib.Path("state.json").write_text(json.dumps(cluster.snapshot(), sort_keys=True))
        """
    )
    live = pytester.runpytest_subprocess(f"--live-cluster={server.url}", "--live-record=run.ndjson")
    live.assert_outcomes(passed=1)
    live.stdout.fnmatch_lines(["generated livecluster recording: *run.ndjson"])
    recorded = (pytester.path / "state.json").read_text()
    replay = pytester.runpytest_subprocess("--live-cluster=file:run.ndjson")
    replay.assert_outcomes(passed=1)
    assert (pytester.path / "state.json").read_text() == recorded
    assert json.loads(recorded)["scraper-1"] == {"msg": "Hello World"}


def test_xdist_workers_follow_the_cluster_and_the_report_is_printed_once(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_hello(cluster, n):
            assert cluster.get("scraper-1", "msg") == "Hello World"
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--live-cluster={server.url}", f"--live-report={report}"
    )
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert out.count("= livecluster =") == 1
    result.stdout.fnmatch_lines(["workers (each followed the cluster; lines seen): gw0: 1, gw1: 1"])
    assert set(orjson.loads(report.read_bytes())["workers"]) == {"gw0", "gw1"}


def test_bad_marker_argument_is_a_usage_error(pytester: pytest.Pytester) -> None:
    spec = write_recording(pytester, HELLO)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.livecluster(timout=3)
        def test_typo(cluster):
            pass
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={spec}")
    result.stderr.fnmatch_lines(
        [
            "ERROR: *::test_typo: livecluster marker: unknown argument(s) timout; "
            "valid: timeout, window, tick, severity"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_xdist_controller_records_while_workers_test(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        """
        def test_hello(cluster):
            assert cluster.get("scraper-1", "msg") == "Hello World"
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--live-cluster={server.url}", "--live-record=run.ndjson"
    )
    result.assert_outcomes(passed=1)
    lines = (pytester.path / "run.ndjson").read_bytes().splitlines()
    assert len(lines) == 2  # the header and the one line the cluster wrote
    assert orjson.loads(lines[1])["line"] == HELLO


def test_inline_eventually_passes_with_assertion_rewriting(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    pytester.makepyfile(
        CUE_HELPER
        + f"""
def test_inline(cluster):
    cue({server.cue_url!r}, '{{"spotter-1": {{"received": 4}}}}', delay=0.2)
    for attempt in cluster.eventually(timeout=10):
        with attempt:
            assert cluster.get("spotter-1", "received") == 4

def test_inline_fails_with_the_rewritten_assertion(cluster):
    for attempt in cluster.eventually(timeout=0.3, tick=0.1):
        with attempt:
            assert cluster.get("spotter-1", "received") == 5
"""
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={server.url}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*eventually: the block did not pass within 0.3 s (* checks)",
            "E*first failure (at 0.00* s): AssertionError: assert 4 == 5",
        ]
    )


def test_key_names_and_roles_come_from_the_ini_file(pytester: pytest.Pytester) -> None:
    spec = write_recording(
        pytester,
        '{"web-1": {"status": "Hi"}}',
        '{"tasks": {"t-1": {"host": "web-1", "answers": {"web-1": {"got": 2}}}}}',
    )
    pytester.makeini(
        "[pytest]\n"
        "livecluster_roles =\n    scraper = web-*\n"
        "livecluster_keys =\n    hello_key = status\n    hello_value = Hi\n"
        "    intents_key = tasks\n    resolution_key = answers\n    received_key = got\n"
    )
    pytester.makepyfile(
        """
        def test_views(cluster):
            assert cluster.hellos() == {"scraper": ["web-1"]}
            assert cluster.intent("t-1").answered_by == ("web-1",)
            assert cluster.counts().received == 2
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster={spec}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["blades that said hello:", "  scraper: web-1"])


def test_a_bad_key_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nlivecluster_keys = hello = Hi\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--live-cluster=file:x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*livecluster_keys: expected 'NAME = KEY' with NAME one of hello_key,*"]
    )


def test_start_up_settles_on_a_cluster_that_never_pauses(
    pytester: pytest.Pytester, server: CueServer
) -> None:
    for n in range(2000):
        server.write(json.dumps({"backlog": n}))
    stop = threading.Event()

    def busy() -> None:
        n = 0
        while not stop.wait(0.02):
            n += 1
            server.write(json.dumps({"live": n}))

    writer = threading.Thread(target=busy, daemon=True)
    writer.start()
    pytester.makepyfile(
        """
        def test_backlog_is_there(cluster):
            assert cluster.get("backlog") == 1999
        """
    )
    try:
        # Waiting for a pause would run into the settle timeout and say so.
        result = pytester.runpytest_subprocess(f"--live-cluster={server.url}", "--live-settle=60")
    finally:
        stop.set()
        writer.join()
    result.assert_outcomes(passed=1)
    assert "did not settle" not in result.stdout.str()
