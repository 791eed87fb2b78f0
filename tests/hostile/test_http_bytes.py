"""What a hostile ``/logs`` server sends, through the real plugin in a subprocess.

Over-long lines, malformed optional headers, stale SSE ids and redirects to
another origin: the run goes on, says what it saw, and every output (stdout,
stderr, the JSON report, the step summary, JUnit, the recording) stays free of
planted secrets and raw escape bytes.
"""

from __future__ import annotations

import json

import pytest

from tests.hostile.kit import API_KEY, PASSWORD, TOKEN, assert_clean, run_plugin, serve
from tests.support.hostile import HostileServer, Reply, sse_event


def report(pytester: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads((pytester.path / "out" / "report.json").read_text())
    return data


def test_an_over_long_line_is_counted_too_large_and_recorded_cut(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    big = b'{"big": "' + b"\x1by" * 1_000_000 + b'"}'
    body = b'{"a": 1}\n' + big + b'\n{"a": 3}\n'
    server = serve(servers, Reply.ndjson(body, headers={"Log-First-Seq": "1"}, hold=60))
    pytester.makeini("[pytest]\nlivecluster_max_line_bytes = 4096\n")
    result, everything = run_plugin(pytester, f"--live-cluster={server.url}")
    result.assert_outcomes(passed=1)
    state = report(pytester)["state"]
    assert isinstance(state, dict)
    assert state["rejected"] == {"too_large": 1}
    assert state["accepted"] == 2
    result.stdout.fnmatch_lines(["*rejected lines by reason: too_large: 1*"])
    recording = (pytester.path / "out" / "rec.ndjson").read_text()
    assert len(recording) < 100_000, "the recording keeps the start of the line only"
    assert_clean(everything)


@pytest.mark.parametrize(
    "headers",
    [
        {"Log-Last-Seq": "\u00b2", "Log-First-Seq": "1"},
        {"Log-Last-Seq": "9" * 5000, "Log-First-Seq": "1"},
        {"Log-First-Seq": "\u00b2"},
        {"Log-Epoch": "x" * 5000, "Log-First-Seq": "1"},
    ],
    ids=["last-superscript", "last-5000-digits", "first-superscript", "epoch-5000"],
)
def test_a_malformed_optional_header_does_not_fail_the_run(
    pytester: pytest.Pytester, servers: list[HostileServer], headers: dict[str, str]
) -> None:
    server = serve(servers, Reply.ndjson(b'{"a": 1}\n', headers=headers, hold=60))
    result, everything = run_plugin(pytester, f"--live-cluster={server.url}")
    result.assert_outcomes(passed=1)
    assert "ignored" in everything
    assert_clean(everything)


def test_sse_events_after_a_stale_id_reach_the_state(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    events = [sse_event('{"n1": 1}', 1), sse_event('{"n2": 1}', 2), sse_event('{"old": 1}', 1)]
    events += [sse_event('{"n3": 1}'), sse_event('{"n4": 1}')]
    server = serve(servers, Reply.sse(*events, hold=60))
    result, everything = run_plugin(pytester, f"--live-cluster={server.url}")
    result.assert_outcomes(passed=1)
    state = report(pytester)["state"]
    assert isinstance(state, dict)
    assert state["accepted"] == 4
    assert "id 1" in everything
    assert "skipped" in everything
    assert_clean(everything)


def test_a_redirect_to_another_origin_fails_the_source_without_secrets(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    other = serve(servers, Reply.ndjson(b'{"foreign": 1}\n', hold=60))
    first = serve(servers, Reply.redirect(other.url_with(f"bob:{PASSWORD}", f"token={TOKEN}")))
    pytester.makeini(
        f"[pytest]\nlivecluster_http_headers =\n    X-Api-Key: {API_KEY}\n"
        f"    PRIVATE-TOKEN: {TOKEN}\n"
    )
    spec = first.url_with(f"bob:{PASSWORD}")
    result, everything = run_plugin(pytester, f"--live-cluster={spec}")
    assert result.ret != 0
    assert other.requests == [], "nothing was sent to the other origin"
    assert f"redirected to another origin, {other.origin}" in everything
    assert "foreign" not in everything
    assert_clean(everything)
