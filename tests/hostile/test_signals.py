"""SIGTERM ends a run as Ctrl-C does: reports, JUnit and the recording are kept.

A real pytest subprocess follows a real loopback ``/logs`` server that sends
nothing (or not even headers); the inner test writes a marker file once it is
running, and the outer test sends SIGTERM then.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pytest_livecluster import State
from pytest_livecluster.protocol.server import LogBuffer, LogServer
from pytest_livecluster.sources.file import FileSource
from tests.support.faultyserver import FaultyServer

HANG_GUARD = 30.0

INNER_TEST = """
import pathlib
import pytest

pytestmark = pytest.mark.live


def test_waits_for_a_shard_that_never_comes(cluster):
    pathlib.Path("running.marker").write_text("running")
    cluster.eventually(lambda: cluster.get("never") is not None, timeout=600)
"""


@pytest.fixture(params=["silent", "stalled"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "silent":
        with LogServer(LogBuffer(), heartbeat=60).start() as server:
            yield server.url
    else:
        faulty = FaultyServer().start()
        try:
            faulty.inject("stall_headers", times=5)
            yield faulty.url
        finally:
            faulty.close()


def wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"the inner run never started its test:\n{out.decode()}\n{err.decode()}")
        time.sleep(0.05)


def test_sigterm_ends_a_run_with_its_report_junit_and_recording(tmp_path: Path, url: str) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--live-cluster={url}",
            "--live-settle=1",
            "--live-report=r.json",
            "--junitxml=j.xml",
            "--live-record=rec.ndjson",
            "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(tmp_path / "running.marker", process)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=HANG_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    text = out.decode() + err.decode()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "KeyboardInterrupt" in text
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sources"][0]["source"] == url
    junit = ET.parse(tmp_path / "j.xml").getroot()
    assert junit.iter("testsuite")
    recording = (tmp_path / "rec.ndjson").read_bytes()
    assert orjson.loads(recording.splitlines()[0])["livecluster_recording"] == 1
    # The recording is a whole one: it replays (to nothing, as nothing was sent).
    state = State()
    FileSource(str(tmp_path / "rec.ndjson")).run(state.ingest)
    assert state.snapshot() == {}


def test_watch_and_a_run_share_one_sigterm_owner() -> None:
    from pytest_livecluster.plugin import signals, watch

    assert watch.sigterm_interrupts is signals.sigterm_interrupts


def test_the_handler_raises_keyboard_interrupt_and_is_restored() -> None:
    from pytest_livecluster.plugin.signals import sigterm_interrupts

    def terminated() -> None:
        with sigterm_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(HANG_GUARD)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        terminated()
    assert signal.getsignal(signal.SIGTERM) is before
