"""Text from the cluster reaches pytest's output escaped (see pytest_livecluster._escape)."""

from __future__ import annotations

import pytest


def test_a_source_error_cannot_drive_the_terminal(pytester: pytest.Pytester) -> None:
    """A source's error quotes what it was given (here a path holding an ANSI sequence
    that clears the screen); the failure shows it as text."""
    pytester.makepyfile("def test_live(cluster): pass")
    path = pytester.path / "no\x1b[2Jsuch\u202e.ndjson"
    result = pytester.runpytest_subprocess(f"--live-cluster=file:{path}")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "\x1b[2J" not in out
    assert "\u202e" not in out
    result.stdout.fnmatch_lines(["*a source failed at start-up*", "*no\\x1b[2Jsuch\\u202e.ndjson*"])


def test_the_report_header_masks_a_sources_credentials(pytester: pytest.Pytester) -> None:
    """The header names what is followed; a URL's password and token never show."""
    pytester.makepyfile("def test_nothing(): pass")
    spec = "http://bob:PASSSECRET789@127.0.0.1:9/logs?token=QTOKSECRET000"
    result = pytester.runpytest_subprocess(f"--live-cluster={spec}", "--live-settle=0.5")
    out = result.stdout.str() + result.stderr.str()
    assert "PASSSECRET789" not in out
    assert "QTOKSECRET000" not in out
    result.stdout.fnmatch_lines(["livecluster: following http://127.0.0.1:9"])


def test_a_failure_that_prints_the_clusters_keys_shows_them_as_text(
    pytester: pytest.Pytester,
) -> None:
    """A key holding an ANSI sequence reaches the failure's diff and its shards as text."""
    recording = pytester.path / "rec.ndjson"
    recording.write_text('{"svc": {"E\\u001b[2J": 1, "note": "\\u001b]0;PWNED\\u0007"}}\n')
    pytester.makepyfile(
        """
        def test_waits(cluster):
            key = min(cluster.get("svc"))  # the key with the ANSI sequence in it
            cluster.eventually(lambda: cluster.get("svc", key) == 2, timeout=0.2)
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster=file:{recording}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "PWNED" in out, "the text itself is shown"
