"""Hostile output paths: reports, recordings and ledgers that cannot be written.

Real files and directories, and real pytest subprocesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_livecluster import ConfigError
from pytest_livecluster._files import check_writable, write_atomic

HELLO_RECORDING = '{"scraper-1": {"msg": "Hello World"}}\n'

LIVE_TEST = """
import pytest
pytestmark = pytest.mark.live

def test_hello(cluster):
    assert cluster.get("scraper-1", "msg") == "Hello World"
"""


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the rule, in _files -------------------------------------------------------------


def test_check_writable_accepts_a_new_file_and_creates_nothing(tmp_path: Path) -> None:
    path = check_writable(tmp_path / "out" / "r.json", "--live-report")
    assert path == (tmp_path / "out" / "r.json").resolve()
    assert listing(tmp_path) == []


def test_check_writable_accepts_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("old")
    assert check_writable(tmp_path / "r.json", "--live-report") == tmp_path / "r.json"
    assert listing(tmp_path) == ["r.json"]


@pytest.mark.parametrize(
    ("relative", "why"),
    [
        ("adir", "is a directory"),
        ("afile/sub.json", "is not a directory"),
        ("afile/deeper/sub.json", "is not a directory"),
    ],
)
def test_check_writable_names_the_path_and_why(tmp_path: Path, relative: str, why: str) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError) as info:
        check_writable(tmp_path / relative, "--live-report")
    message = str(info.value)
    assert message.startswith("--live-report: cannot write ")
    assert str(tmp_path / relative) in message
    assert why in message
    assert listing(tmp_path) == ["adir", "afile"]


def test_check_writable_refuses_a_place_nothing_can_be_created() -> None:
    with pytest.raises(ConfigError, match=r"--live-record: cannot write '/proc/x/y.json': cannot"):
        check_writable("/proc/x/y.json", "--live-record")


def test_write_atomic_under_a_regular_file_fails_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match="afile"):
        write_atomic(tmp_path / "afile" / "sub.json", "{}")
    assert listing(tmp_path) == ["afile"]
    assert (tmp_path / "afile").read_text() == "x"


# -- at every door: the plugin's options ----------------------------------------------


@pytest.fixture
def suite(pytester: pytest.Pytester) -> str:
    (pytester.path / "shards.ndjson").write_text(HELLO_RECORDING)
    (pytester.path / "adir").mkdir()
    (pytester.path / "afile").write_text("x")
    pytester.makepyfile(LIVE_TEST)
    return "--live-cluster=file:shards.ndjson"


@pytest.mark.parametrize(
    ("option", "shown", "why"),
    [
        ("--live-report=adir", "adir", "is a directory"),
        ("--live-report=afile/sub.json", "afile/sub.json", "is not a directory"),
        ("--live-report=/proc/x/y.json", "/proc/x/y.json", "cannot"),
        ("--live-record=adir", "adir", "is a directory"),
        ("--live-record=afile/rec.ndjson", "afile/rec.ndjson", "is not a directory"),
        ("--live-html=adir", "adir", "is a directory"),
        ("--live-html=afile/page.html", "afile/page.html", "is not a directory"),
    ],
)
def test_an_unwritable_output_is_a_usage_error_before_any_test(
    pytester: pytest.Pytester, suite: str, option: str, shown: str, why: str
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", suite, option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert option.split("=")[0] in err
    assert shown in err
    assert why in err
    assert "Traceback" not in err + result.stdout.str()
    assert "passed" not in result.stdout.str()
    assert listing(pytester.path / "adir") == []


def test_an_unwritable_ledger_is_a_usage_error(pytester: pytest.Pytester, suite: str) -> None:
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        suite,
        "--live-alert=webhook+http://127.0.0.1:9/hook",
        "--live-alert-ledger=afile/alerts.json",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--live-alert-ledger" in err
    assert "afile/alerts.json" in err
    assert "is not a directory" in err


def test_an_unwritable_step_summary_warns_and_keeps_the_exit_status(
    pytester: pytest.Pytester, suite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory: appending to it fails even for root (who could create /nonexistent/).
    summary = pytester.path / "adir"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", suite, "--live-report=r.json")

    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    assert f"livecluster: could not write the step summary to {summary}: " in out
    assert "Is a directory" in out
    assert "Traceback" not in out + result.stderr.str()
    # The report the user asked for is still written, and whole.
    assert (pytester.path / "r.json").read_text().startswith("{")
    assert not any(name.endswith(".tmp") for name in listing(pytester.path))


def test_a_step_summary_under_a_file_warns_and_keeps_a_failing_status(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "shards.ndjson").write_text(HELLO_RECORDING)
    (pytester.path / "afile").write_text("x")
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.live

        def test_fails(cluster):
            assert cluster.get("scraper-1", "msg") == "Goodbye"
        """
    )
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "afile" / "s.md"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--live-cluster=file:shards.ndjson"
    )
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "livecluster: could not write the step summary to " in result.stdout.str()
