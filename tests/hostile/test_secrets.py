"""Planted credentials never leave the process, whatever door they try.

Each test runs the real plugin in a subprocess against a real loopback server
and reads every output the run writes: stdout, stderr, the ``--live-report``
JSON, the ``GITHUB_STEP_SUMMARY`` file, ``--junitxml`` and the
``--live-record`` recording. Nothing may hold a planted secret (as is, or as a
basic-auth base64 pair) or a raw escape byte.
"""

from __future__ import annotations

import pytest

from pytest_livecluster import cli
from tests.hostile.kit import API_KEY, PASSWORD, TOKEN, assert_clean, echo_body, run_plugin, serve
from tests.support.hostile import HostileServer, Reply


def test_the_header_shows_only_the_origin_of_a_url_with_credentials(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    server = serve(servers, Reply.ndjson(b'{"a": 1}\n', hold=60))
    spec = server.url_with(f"bob:{PASSWORD}", f"token={TOKEN}")
    result, everything = run_plugin(pytester, f"--live-cluster={spec}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"livecluster: following {server.origin}"])
    assert_clean(everything)


def test_the_header_shows_only_the_origin_through_the_ini_key(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    server = serve(servers, Reply.ndjson(b'{"a": 1}\n', hold=60))
    spec = server.url_with(f"bob:{PASSWORD}", f"token={TOKEN}")
    pytester.makeini(f"[pytest]\nlivecluster_sources = {spec}\n")
    result, everything = run_plugin(pytester, "--live-cluster=")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"livecluster: following {server.origin}"])
    assert_clean(everything)


def test_an_uppercase_scheme_is_http_and_its_credentials_are_masked(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    server = serve(servers, Reply.ndjson(b'{"a": 1}\n', hold=60))
    spec = server.url_with(f"bob:{PASSWORD}", f"token={TOKEN}").replace("http://", "HTTP://")
    result, everything = run_plugin(pytester, f"--live-cluster={spec}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"livecluster: following {server.origin}"])
    assert_clean(everything)


def test_an_unknown_scheme_is_refused_without_showing_the_spec(
    pytester: pytest.Pytester,
) -> None:
    spec = f"htps://bob:{PASSWORD}@127.0.0.1:9/x?token={TOKEN}"
    result, everything = run_plugin(pytester, f"--live-cluster={spec}")
    assert result.ret != 0
    assert "unknown source spec" in everything
    assert_clean(everything)


def test_a_server_echoing_the_credentials_leaks_them_nowhere(
    pytester: pytest.Pytester, servers: list[HostileServer]
) -> None:
    server = serve(servers, Reply(401, {"Content-Type": "text/plain"}, echo_body()))
    spec = server.url_with(f"bob:{PASSWORD}", f"token={TOKEN}")
    pytester.makeini(f"[pytest]\nlivecluster_http_headers =\n    X-Api-Key: {API_KEY}\n")
    _, everything = run_plugin(pytester, f"--live-cluster={spec}")
    assert server.requests, "the server was asked"
    assert server.requests[0].headers["x-api-key"] == API_KEY
    assert "401" in everything
    assert_clean(everything)


@pytest.mark.parametrize("command", ["state", "tail"])
@pytest.mark.parametrize(
    "spec",
    [
        f"htps://bob:{PASSWORD}@127.0.0.1:9/x?token={TOKEN}",
        f"bob:{PASSWORD}@127.0.0.1:9/logs?token={TOKEN}",
    ],
)
def test_the_cli_never_prints_an_unknown_spec(
    command: str, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, spec]) != 0
    captured = capsys.readouterr()
    assert "unknown source spec" in captured.err
    assert_clean(captured.out + captured.err)
