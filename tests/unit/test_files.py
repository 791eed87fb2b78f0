"""``pytest_livecluster._files``: atomic replacement and appending, on a real file system."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pytest_livecluster._files import append_text, write_atomic


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_creates_parents_and_returns_the_path(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.json"
    assert write_atomic(str(target), '{"é": "€"}\n') == target
    assert target.read_bytes() == '{"é": "€"}\n'.encode()
    assert listing(target.parent) == ["report.json"]


def test_write_replaces_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "ledger.json"
    target.write_bytes(b"old and much longer than the new content")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["ledger.json"]


def test_data_that_cannot_be_encoded_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "half \ud800 a lone surrogate")
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["state.json"]


def test_a_directory_in_the_way_fails_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):  # noqa: PT011 - IsADirectoryError or ENOTEMPTY, by platform
        write_atomic(target, b"data")
    assert listing(tmp_path) == ["report.json"]
    assert (target / "inside").read_text() == "kept"


def test_a_write_failing_midway_keeps_the_old_content(tmp_path: Path) -> None:
    """The file-size limit makes the kernel refuse the write after 4 KiB (EFBIG).

    It runs in a child process, since the limit applies to the whole process.
    """
    target = tmp_path / "big.json"
    target.write_text("old")
    script = (
        "import resource, signal, sys\n"
        "from pytest_livecluster._files import write_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    write_atomic(sys.argv[1], b'x' * 100_000)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc.errno)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[0] == "OSError", result.stdout + result.stderr
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["big.json"]


def test_a_new_file_gets_the_umask_mode_and_an_old_file_keeps_its_own(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = write_atomic(tmp_path / "fresh", b"x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    kept = tmp_path / "kept"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    write_atomic(kept, b"new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "ready.json"
    contents = [bytes([65 + n]) * 10_000 for n in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(target, c)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in contents
    assert listing(tmp_path) == ["ready.json"]


def test_append_text_creates_and_appends(tmp_path: Path) -> None:
    summary = tmp_path / "step" / "summary.md"
    append_text(summary, "## first ✓\n")
    append_text(str(summary), "second\n")
    assert summary.read_bytes() == "## first ✓\nsecond\n".encode()
