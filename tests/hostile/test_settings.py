"""Hostile settings: every number is finite and within its documented range, and a
bad value is a usage error naming it and what is valid, never a traceback. Each
run is the real plugin in a real pytest process (pytester), or the real
``livecluster`` command."""

from __future__ import annotations

import pytest

from pytest_livecluster.cli import main

A_LIVE_TEST = """
def test_live(cluster):
    cluster.eventually(lambda: cluster.get("blade", "msg") == "Hello World")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_live=A_LIVE_TEST)
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    return pytester


def refused(pytester: pytest.Pytester, *args: str) -> str:
    """Run the suite with ``args``; assert a usage error without a traceback; its text."""
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--live-cluster=file:shards.ndjson", *args
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    return result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["-o", "livecluster_journal_size=99999999999999999999"],
            "livecluster_journal_size must be a positive integer, "
            "got '99999999999999999999'; valid: 1 to 10000000",
        ),
        (
            ["--live-timeout=1e10", "--live-tick=1e10"],
            "--live-timeout must be a positive number of seconds, got '1e10'; "
            "valid: more than 0 and up to 2592000 (30 days)",
        ),
        (["--live-tick=1e10"], "--live-tick must be a positive number of seconds, got '1e10'"),
        (["--live-watch=1e300"], "--live-watch must be a positive number of seconds, got '1e300'"),
        (
            ["-o", "livecluster_max_line_bytes=9999999999999"],
            "livecluster_max_line_bytes must be a positive integer, got '9999999999999'; "
            "valid: 1 to 1073741824",
        ),
        (
            ["-o", "livecluster_stale_after=1e300"],
            "livecluster_stale_after must be a positive number of seconds, got '1e300'",
        ),
        (
            ["--live-alert=webhook+http://127.0.0.1:9/h", "-o", "livecluster_alert_expiry=1e12"],
            "livecluster_alert_expiry must be a positive number of seconds, got '1e12'; "
            "valid: more than 0 and up to 2592000 (30 days)",
        ),
        (
            ["--live-alert=webhook+http://[::1/x"],
            "--live-alert: 'webhook+***' is not a valid URL",
        ),
    ],
)
def test_a_number_out_of_range_or_a_broken_url_is_a_usage_error(
    suite: pytest.Pytester, args: list[str], expected: str
) -> None:
    assert expected in refused(suite, *args)


def test_a_marker_value_out_of_range_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_live="""
import pytest

@pytest.mark.livecluster(timeout=1e10)
def test_live(cluster):
    cluster.eventually(lambda: cluster.get("blade", "msg") == "Hello World")
"""
    )
    result = suite.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--live-cluster=file:shards.ndjson"
    )
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "OverflowError" not in output
    assert "livecluster marker timeout must be a positive number of seconds, got 10000000000.0" in (
        output
    )
    assert "valid: more than 0 and up to 2592000" in output


@pytest.mark.parametrize("flag", ["--timeout", "--until-idle"])
def test_the_command_refuses_seconds_out_of_range(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["state", "sim", flag, "1e300"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: the value must be a positive number of seconds, got '1e300'" in err
    assert "up to 2592000" in err
    assert "Traceback" not in err
