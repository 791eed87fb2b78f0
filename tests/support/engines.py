"""More Docker engines on this machine, started and stopped by the tests.

Each :class:`ExtraEngine` is a ``dockerd`` of its own: its own socket, data root,
exec root and pid file under a temporary directory, and its own bridge
(``lcbrN``), made here before it starts. An engine started with
``--bridge=none`` would delete the main engine's ``docker0`` (seen on 20.10), so
each gets a bridge rather than none. Its containers need no network, so
iptables is left alone. The test image is imported into each (no registry).

Only one of them at a time can be a swarm manager: a swarm listens on port 2377
and owns the host's ``docker_gwbridge``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

import docker
import docker.errors
import requests

from .dockerkit import ensure_image, no_engine

__all__ = ["ExtraEngine", "dockerd_available"]

START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0


def dockerd_available() -> str | None:
    """Why no extra engine can start here (None if one can)."""
    for tool in ("dockerd", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "starting dockerd needs root"
    return None


class ExtraEngine:
    """A ``dockerd`` beside the main one; ``index`` (1-50) picks its bridge and subnet.

    With ``tcp=True`` it also listens on a free port of 127.0.0.1, without TLS
    (loopback only): :attr:`tcp_url`.
    """

    def __init__(self, index: int, *, tcp: bool = False) -> None:
        self.index = index
        self.tcp_port: int | None = None
        if tcp:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.tcp_port = int(probe.getsockname()[1])
        # A short path: a unix socket's path must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix=f"lc-dockerd{index}-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.bridge = f"lcbr{index}"
        self.address = f"172.31.{200 + index}.1/24"
        self.process: subprocess.Popen[bytes] | None = None
        self._client: docker.DockerClient | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tcp_url(self) -> str:
        assert self.tcp_port is not None, "made without tcp=True"
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def client(self) -> docker.DockerClient:
        assert self._client is not None, "start() the engine first"
        return self._client

    def start(self) -> ExtraEngine:
        """Start it (skipping the test, or failing it under CI, if it cannot start)."""
        reason = dockerd_available()
        if reason is not None:
            no_engine(reason)
        self._bridge_up()
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "-H",
                self.url,
                *(["-H", self.tcp_url] if self.tcp_port else []),
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "docker.pid"),
                "--bridge",
                self.bridge,
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                self.stop()
                no_engine(f"dockerd {self.index} exited: {self.log_tail()}")
            if self.socket.exists() and self._answers():
                self._client = docker.DockerClient(base_url=self.url, timeout=60)
                break
            if time.monotonic() > deadline:
                self.stop()
                no_engine(f"dockerd {self.index} did not answer: {self.log_tail()}")
            time.sleep(0.2)
        ensure_image(self.client)
        return self

    def _answers(self) -> bool:
        """Whether the engine answers ``GET /_ping`` on its socket (no client left open)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            try:
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                head = sock.recv(64)
            except OSError:
                return False
        return head.startswith(b"HTTP/1.") and b" 200 " in head

    def swarm_init(self) -> None:
        """Make this engine a single-node swarm, its own manager."""
        self.client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")

    def restart(self) -> None:
        """Stop dockerd and start it again on the same data (a manager restart)."""
        self._stop_process()
        if self._client is not None:
            self._client.close()
            self._client = None
        self.start()

    def stop(self) -> None:
        """Leave any swarm, stop dockerd, remove its bridge and its files."""
        if self._client is not None:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                if self._client.info().get("Swarm", {}).get("LocalNodeState") == "active":
                    self._client.swarm.leave(force=True)
            self._client.close()
            self._client = None
        self._stop_process()
        for link in (self.bridge, "docker_gwbridge"):
            subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
        # A mount dockerd left behind would make rmtree fail: unmount under the root first.
        mounts = Path("/proc/mounts").read_text().splitlines()
        for target in sorted((m.split()[1] for m in mounts), reverse=True):
            if target.startswith(str(self.root)):
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 15) -> str:
        path = self.root / "dockerd.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _bridge_up(self) -> None:
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        for command in (
            ["ip", "link", "add", "name", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", self.address, "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            subprocess.run(command, capture_output=True, check=True)

    def _stop_process(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # dockerd stops its containerd itself
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.process = None
