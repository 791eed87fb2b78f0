"""Starting, watching, restarting and stopping one simulated process.

Each process gets files in the cluster's work directory, named after its
host: ``HOST.ready.json`` (written by the process once it serves), ``HOST.state.json``
(what survives a restart), and ``HOST.stdout`` / ``HOST.stderr`` (its output,
kept for a look after a failure). It runs in a session of its own, so a
Ctrl-C in the terminal reaches only the test run, which then stops it;
``--parent-pid`` makes it exit if the test run dies without stopping it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .._retry import Deadline, wait_until
from .errors import SimError

__all__ = ["Ready", "Supervised"]

_POLL: Final = 0.02
_TAIL: Final = 2000


@dataclass(frozen=True)
class Ready:
    """What a process announces once it serves."""

    host: str
    role: str
    pid: int
    boot: int
    log_url: str
    control_url: str


class Supervised:
    """One process of the cluster, restarted on demand with the same command."""

    def __init__(
        self,
        host: str,
        role: str,
        args: list[str],
        workdir: Path,
        python: str,
        *,
        watch_parent: bool = True,
    ) -> None:
        self.host = host
        self.role = role
        self.ready_file = workdir / f"{host}.ready.json"
        self.state_file = workdir / f"{host}.state.json"
        self.stdout_file = workdir / f"{host}.stdout"
        self.stderr_file = workdir / f"{host}.stderr"
        self.argv = [
            python,
            "-m",
            "pytest_livecluster.sim.blade",
            *("--role", role, "--host", host),
            *("--ready-file", str(self.ready_file), "--state-file", str(self.state_file)),
            *(("--parent-pid", str(os.getpid())) if watch_parent else ()),
            *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.restarts = 0
        self.quick_exits = 0

    def spawn(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ready_file.unlink()
        with self.stdout_file.open("ab") as out, self.stderr_file.open("ab") as err:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.spawned_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exit_code(self) -> int | None:
        """The exit status if the process ended (and is reaped), else None."""
        return None if self.process is None else self.process.poll()

    def wait_ready(self, deadline: Deadline, cancel: threading.Event | None = None) -> Ready:
        """Wait for the ready file; SimError if the process ends first or time runs out."""
        found: list[Ready] = []

        def served() -> bool:
            ready = self._read_ready()
            if ready is not None:
                found.append(ready)
                return True
            code = self.exit_code()
            if code is not None:
                reason = f"{self.host} exited with status {code} before it was ready"
                raise SimError(reason + self._tail())
            return False

        if wait_until(served, timeout=deadline.remaining(), interval=_POLL, closed=cancel):
            return found[0]
        if cancel is not None and cancel.is_set():
            raise SimError(f"starting {self.host} was cancelled")
        raise SimError(f"{self.host} was not ready in time" + self._tail())

    def _read_ready(self) -> Ready | None:
        try:
            data = json.loads(self.ready_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return Ready(**data)

    def _tail(self) -> str:
        try:
            text = self.stderr_file.read_text(errors="replace")[-_TAIL:].strip()
        except OSError:
            return ""
        return f"; the end of its stderr:\n{text}" if text else ""

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def reap(self, deadline: Deadline) -> None:
        """Wait for the process until ``deadline``, then kill it; never leaves a zombie."""
        if self.process is None:
            return
        try:
            self.process.wait(deadline.remaining())
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
