"""An engine at ``ssh://[USER@]HOST[:PORT][/SOCKET]``: one ssh process forwards a local unix
socket to the remote engine's socket, and everything else speaks ``unix://``.

One forwarding per engine, rather than one ssh process per connection (docker-py's
way, through ``docker system dial-stdio``): a source that follows a hundred containers
opens a hundred streams, and each stream must be cut from another thread, which a
unix socket allows (:func:`~pytest_livecluster._sockets.shutdown`) and a pipe to an
ssh process does not. The ``ssh`` client on ``PATH`` makes the connection, so the
user's ssh configuration, agent and known hosts apply; it must be able to log in
without a prompt (``BatchMode``). The remote socket is ``/var/run/docker.sock``
unless the URL names another, and the remote user needs read access to it (the
``docker`` group). The forwarding is made again when the ssh process has ended.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Final

from ...exceptions import SourceUnavailable

__all__ = ["DEFAULT_REMOTE_SOCKET", "SshTunnel"]

DEFAULT_REMOTE_SOCKET: Final = "/var/run/docker.sock"
START_TIMEOUT_S: Final = 30.0


class SshTunnel:
    """Forwards a local socket to a remote engine's; :attr:`url` is the local ``unix://``.

    ``shown`` is the engine's address as messages show it (no credentials).
    """

    def __init__(self, url: str, shown: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise SourceUnavailable(f"{shown} is not ssh://[USER@]HOST[:PORT][/SOCKET]")
        self._host = parts.hostname
        self._user = parts.username
        self._port = parts.port
        self._remote = parts.path if parts.path not in ("", "/") else DEFAULT_REMOTE_SOCKET
        self._shown = shown
        self._dir = Path(tempfile.mkdtemp(prefix="livecluster-ssh-"))
        self._local = self._dir / "docker.sock"
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False

    @property
    def url(self) -> str:
        return f"unix://{self._local}"

    def ensure(self) -> None:
        """Start the forwarding if it is not running; SourceUnavailable if ssh fails."""
        with self._lock:
            if self._closed:
                return
            process = self._process
            if process is not None and process.poll() is None and self._local.exists():
                return
            self._stop(process)
            self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise SourceUnavailable(
                f"cannot reach the Docker engine at {self._shown}: no ssh client on PATH"
            )
        self._local.unlink(missing_ok=True)
        command = [
            ssh,
            "-nNT",
            "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=10",
            "-L", f"{self._local}:{self._remote}",
        ]  # fmt: skip
        if self._port:
            command += ["-p", str(self._port)]
        if self._user:
            command += ["-l", self._user]
        command += ["--", self._host]
        log = self._dir / "ssh.log"
        with log.open("wb") as err:  # a file, not a pipe: nothing reads ssh's stderr as it runs
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._local.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                self._stop(process)
                said = log.read_text("utf-8", "replace")
                raise SourceUnavailable(
                    f"cannot reach the Docker engine at {self._shown}: ssh could not forward "
                    f"its socket {self._remote}: {said.strip()[-300:] or 'no answer'}"
                )
            time.sleep(0.02)
        return process

    @staticmethod
    def _stop(process: subprocess.Popen[bytes] | None) -> None:
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """End the forwarding and remove the local socket."""
        with self._lock:
            self._closed = True
            self._stop(self._process)
            self._process = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)
