"""Hostile recordings: a replay that would wipe itself, damaged records, unknown versions.

Real files on disk, replayed through the real ``file:`` source, the real
``livecluster`` command and a real pytest subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from pytest_livecluster import RecordingError, State
from pytest_livecluster.sources.file import FileSource

HEADER = '{"livecluster_recording": 1, "created": "2026-01-01T00:00:00+00:00", "writer": "t"}'
GOOD = '{"seq": 1, "recv_ns": 5, "source": "docker:a", "stream": "stdout", "line": "{\\"a\\": 1}"}'
GOOD2 = '{"seq": 5, "recv_ns": 9, "source": "docker:a", "stream": "stdout", "line": "{\\"b\\": 2}"}'
DAMAGED = [
    # line_b64 that does not decode
    '{"seq": 2, "recv_ns": 6, "source": "docker:a", "stream": "stdout", "line_b64": "!!!"}',
    # no source
    '{"seq": 3, "recv_ns": 7, "stream": "stdout", "line": "{\\"c\\": 3}"}',
    # origin_ns that is not an integer
    '{"seq": 4, "recv_ns": 8, "source": "docker:a", "origin_ns": "yesterday", "line": "{}"}',
]
SECOND_HEADER = (
    '{"livecluster_recording": 1, "created": "2026-02-02T00:00:00+00:00", "writer": "u"}'
)

LIVE_TEST = """
import pytest
pytestmark = pytest.mark.live

def test_replayed(cluster):
    pass
"""


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def replay(path: Path) -> tuple[State, FileSource]:
    state = State()
    source = FileSource(str(path))
    source.run(state.ingest)
    return state, source


# -- item 4: the replay is also the --live-record target ------------------------------


@pytest.mark.parametrize("how", ["same", "dot-relative-vs-absolute", "symlink", "ini"])
def test_recording_onto_the_replayed_file_is_a_usage_error(
    pytester: pytest.Pytester, how: str
) -> None:
    rec = write(pytester.path / "rec.ndjson", HEADER, GOOD)
    before = rec.read_bytes()
    pytester.makepyfile(LIVE_TEST)
    args = ["-p", "no:cacheprovider"]
    if how == "same":
        args += ["--live-cluster=file:rec.ndjson", "--live-record=rec.ndjson"]
    elif how == "dot-relative-vs-absolute":
        args += [f"--live-cluster=file:{rec}", "--live-record=./rec.ndjson"]
    elif how == "symlink":
        os.symlink(rec, pytester.path / "link.ndjson")
        args += ["--live-cluster=file:rec.ndjson", "--live-record=link.ndjson"]
    else:
        pytester.makeini("[pytest]\nlivecluster_record = rec.ndjson\n")
        args += ["--live-cluster=file:./rec.ndjson"]

    result = pytester.runpytest_subprocess(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "rec.ndjson" in err or "link.ndjson" in err
    assert "replay" in err
    assert rec.read_bytes() == before


def test_recording_elsewhere_while_replaying_still_works(pytester: pytest.Pytester) -> None:
    write(pytester.path / "rec.ndjson", HEADER, GOOD)
    pytester.makepyfile(LIVE_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--live-cluster=file:rec.ndjson", "--live-record=again.ndjson"
    )
    result.assert_outcomes(passed=1)
    lines = (pytester.path / "again.ndjson").read_bytes().splitlines()
    assert len(lines) == 2
    assert orjson.loads(lines[1])["line"] == '{"a": 1}'


# -- item 6: damaged records, second headers, versions -------------------------------


def test_damaged_records_are_counted_by_line_and_never_merged(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", HEADER, GOOD, *DAMAGED, SECOND_HEADER, GOOD2)

    state, source = replay(path)

    assert state.snapshot() == {"a": 1, "b": 2}
    assert state.stats().accepted == 2
    errors = list(source.health.errors)
    assert source.health.error_count == 4
    assert errors[0].startswith("line 3: damaged_record: ")
    assert "line_b64" in errors[0]
    assert errors[1].startswith("line 4: damaged_record: ")
    assert "source" in errors[1]
    assert errors[2].startswith("line 5: damaged_record: ")
    assert "yesterday" in errors[2]
    assert errors[3].startswith("line 6: damaged_record: ")
    assert "header" in errors[3]


@pytest.mark.parametrize(("version", "shown"), [(2, "2"), ('"banana"', "'banana'")])
def test_an_unknown_recording_version_is_refused(
    tmp_path: Path, version: object, shown: str
) -> None:
    path = write(tmp_path / "v.ndjson", f'{{"livecluster_recording": {version}}}', GOOD)
    state = State()
    with pytest.raises(RecordingError) as info:
        FileSource(str(path)).run(state.ingest)
    message = str(info.value)
    assert f"version {shown}" in message
    assert "supported: 1" in message
    assert state.snapshot() == {}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_livecluster.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_state_command_says_a_recording_is_damaged_and_exits_non_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", HEADER, GOOD, *DAMAGED)

    done = run_cli("state", f"file:{path}")

    assert done.returncode == 1
    assert orjson.loads(done.stdout) == {"a": 1}
    assert "line 3: damaged_record" in done.stderr
    assert "line 5: damaged_record" in done.stderr
    assert "3 damaged" in done.stderr


def test_state_command_refuses_an_unknown_version(tmp_path: Path) -> None:
    path = write(tmp_path / "v.ndjson", '{"livecluster_recording": 2}', GOOD)

    done = run_cli("state", f"file:{path}")

    assert done.returncode == 1
    assert "version 2" in done.stderr
    assert "supported: 1" in done.stderr


def test_tail_command_says_a_recording_is_damaged_and_exits_non_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", HEADER, GOOD, *DAMAGED)

    done = run_cli("tail", f"file:{path}")

    assert done.returncode == 1
    assert "a = 1" in done.stdout
    assert "line 4: damaged_record" in done.stderr
