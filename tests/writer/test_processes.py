"""Exact counts by construction, across real processes, threads and tasks.

Each test counts with the kit, replays every line it wrote into the plugin's
state (the seed's counter patterns) and checks the totals the views read.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from livecluster import Blade, writer_host

from . import _worker
from ._support import (
    PATIENCE,
    ROOT,
    by_scraper,
    complete_lines,
    counts,
    replay,
    replay_files,
    sent,
    wait_for,
    writers,
)

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns about fork() in a process with threads: forking one is the point.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def _run_all(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(PATIENCE)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_spawned_processes_with_threads_count_exactly(tmp_path: Path) -> None:
    """4 spawned processes x 4 threads x 1,000 counts, each process on its own file.

    Nothing flushes explicitly: each process's exit does. Each process writes
    under its own writer key, and coalescing keeps its lines far below its
    16,000 calls.
    """
    ctx = multiprocessing.get_context("spawn")
    paths = [tmp_path / f"p{i}.ndjson" for i in range(4)]
    _run_all([ctx.Process(target=_worker.spawned, args=(str(p), 4, 1000)) for p in paths])

    state = replay_files(*paths)
    assert sent(state) == 16000
    assert counts(state).total["item_collected"] == 16000
    assert by_scraper(state)["scraper-1"]["item_sent"] == 16000
    for path in paths:
        lines = complete_lines(path)
        assert len(lines) < 200, f"{path.name}: {len(lines)} lines for 16,000 count() calls"
        (writer,) = writers(lines)
        assert writer_host(writer) == "scraper-1"
        assert writers(lines)[writer][-1]["item_scraped"]["site1.example"]["item_sent"] == 4000
    all_writers = writers(line for p in paths for line in complete_lines(p))
    assert len(all_writers) == 4


def test_forked_children_start_new_counts_and_do_not_repeat_the_parents(tmp_path: Path) -> None:
    """The parent has 7 counts pending (not yet written) when it forks 4 children.

    Each child counts 4 x 1,000 with the blade it inherited, on the stream it
    inherited, and exits through ``multiprocessing`` (``os._exit``, no
    ``atexit``). Every child is a writer of its own, starting from zero, so the
    total is 7 + 16,000: the parent's pending 7 are written once, by the parent.
    """
    path = tmp_path / "forked.ndjson"
    with open(path, "a", encoding="utf-8") as stream:
        blade = Blade("scraper-1", stream=stream, interval=3600)
        try:
            for _ in range(7):
                blade.count("i-1", "site1.example", item_collected=1, item_sent=1)
            parent = blade.writer
            ctx = multiprocessing.get_context("fork")
            _run_all([ctx.Process(target=_worker.forked, args=(blade, 4, 1000)) for _ in range(4)])
            assert blade.writer == parent
            assert complete_lines(path) != []  # the children's exit wrote theirs
            assert parent not in writers(complete_lines(path))  # the parent's still pending
        finally:
            blade.close()

    lines = complete_lines(path)
    found = writers(lines)
    assert len(found) == 5
    finals = {w: a[-1]["item_scraped"]["site1.example"]["item_sent"] for w, a in found.items()}
    assert finals.pop(parent) == 7
    assert sorted(finals.values()) == [4000] * 4
    state = replay(lines)
    assert sent(state) == 16007
    assert by_scraper(state)["scraper-1"]["item_sent"] == 16007


def test_a_closed_blade_is_a_new_writer_in_a_forked_child_too(tmp_path: Path) -> None:
    """A blade closed before ``os.fork()`` still gets a new incarnation in the child."""
    path = tmp_path / "closed.ndjson"
    with open(path, "a", encoding="utf-8") as stream:
        blade = Blade("scraper-1", stream=stream)
        blade.count("i-1", "site1.example", item_sent=1)
        blade.close()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                blade.count("i-1", "site1.example", item_sent=2)
                blade.flush()
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
    found = writers(complete_lines(path))
    finals = {w: a[-1]["item_scraped"]["site1.example"]["item_sent"] for w, a in found.items()}
    assert finals.pop(blade.writer) == 1
    assert list(finals.values()) == [2]
    assert sent(replay_files(path)) == 3


def test_asyncio_tasks_count_exactly(tmp_path: Path) -> None:
    """100 tasks x 100 counts, each count followed by an await: 10,000 exactly."""
    path = tmp_path / "tasks.ndjson"
    with open(path, "a", encoding="utf-8") as stream, Blade("scraper-1", stream=stream) as blade:
        _worker.in_tasks(blade, 100, 100)
    state = replay_files(path)
    assert sent(state) == 10000
    assert by_scraper(state)["scraper-1"]["item_sent"] == 10000


def test_threads_in_one_process_coalesce_their_lines(tmp_path: Path) -> None:
    """16,000 count() calls from 4 threads write far fewer lines (interval 0.1 s)."""
    path = tmp_path / "threads.ndjson"
    with open(path, "a", encoding="utf-8") as stream:
        with Blade("scraper-1", stream=stream, interval=0.1) as blade:
            _worker.count_in_threads(blade, 4, 4000)
        assert blade.lines_written == len(complete_lines(path))
    lines = complete_lines(path)
    assert 1 <= len(lines) < 200
    assert sent(replay(lines)) == 16000


def test_a_killed_and_restarted_process_never_drops_nor_doubles_the_total(tmp_path: Path) -> None:
    """Two incarnations are SIGKILLed mid-count, a third counts 5,000 and exits.

    What a process "reported as flushed" is what it wrote to the file: each
    line carries its cumulative value. So:

    - per incarnation, the values it wrote never decrease;
    - the total read from the state never drops between successive replays,
      taken while processes count, after each kill and after each restart;
    - the final total is the sum over incarnations of the last value each
      wrote: the killed ones' last values plus exactly 5,000 (the restart began
      new counts under a new key; what a killed process had counted but not
      written is lost, never counted twice).
    """
    path = tmp_path / "crash.ndjson"
    totals: list[int | float] = []

    def check_replay() -> None:
        totals.append(sent(replay_files(path)))
        assert totals == sorted(totals), f"the total dropped: {totals}"

    def start(limit: int) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.writer._worker", "crash", str(path), str(limit)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        return process, process.stdout.readline().strip()

    keys = []
    for _ in range(2):
        process, writer = start(0)
        keys.append(writer)
        try:

            def written(writer: str = writer) -> bool:
                check_replay()
                return len(writers(complete_lines(path)).get(writer, [])) >= 3

            wait_for(written, f"three lines from {writer}")
        finally:
            process.kill()
            process.wait()
            assert process.stdout is not None
            process.stdout.close()
        check_replay()
    process, writer = start(5000)
    keys.append(writer)
    with process:
        assert process.wait(PATIENCE) == 0
    check_replay()

    assert len(set(keys)) == 3
    assert {writer_host(k) for k in keys} == {"scraper-1"}
    found = writers(complete_lines(path))
    assert sorted(found) == sorted(keys)
    last = {}
    for key, answers in found.items():
        values = [a["item_scraped"]["site1.example"]["item_sent"] for a in answers]
        assert values == sorted(values), f"{key} wrote a smaller total after a larger one"
        last[key] = values[-1]
    assert last[keys[2]] == 5000
    state = replay_files(path)
    assert sent(state) == sum(last.values()) == totals[-1]
    assert by_scraper(state)["scraper-1"]["item_sent"] == sum(last.values())


@pytest.mark.parametrize("mode", ["fd", "object", "pipe"])
def test_a_lost_stdout_never_raises_and_is_reported_once(mode: str) -> None:
    """Descriptor 1 closed, ``sys.stdout`` closed, or its reader gone (EPIPE).

    The process logs and counts anyway, exits 0, and says so once on stderr;
    every line it could not write is counted (hello, the counts, the log).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.writer._worker", "closed-stdout", mode],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # for "pipe": the reader goes away before the first line
    _, stderr = process.communicate("go\n", timeout=PATIENCE)
    assert process.returncode == 0, stderr
    reports = [line for line in stderr.splitlines() if line.startswith("livecluster:")]
    assert len(reports) == 1, stderr
    assert "blade.write_errors" in reports[0]
    (errors,) = [line for line in stderr.splitlines() if line.startswith("write_errors=")]
    assert int(errors.partition("=")[2]) >= 3
    assert stderr.count("Traceback") == 0
