"""A real OpenSSH server on loopback, so that ``host=ssh://...`` is tested end to end.

:class:`Sshd` runs Debian's ``sshd`` on a free port of 127.0.0.1 with keys made for
the test, and writes an ``ssh`` client configuration naming it ``lc-ssh``. The
``ssh`` client found first on ``PATH`` is then a two-line wrapper that adds ``-F``
with that configuration, so the user's own ``~/.ssh`` is neither read nor written.
The remote command the Docker source runs, ``docker system dial-stdio``, is the
docker CLI of this machine, which talks to the main engine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

from .dockerkit import no_engine

__all__ = ["HOST_ALIAS", "Sshd"]

SSHD: Final = "/usr/sbin/sshd"
HOST_ALIAS: Final = "lc-ssh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sshd:
    """``sshd`` for root, key authentication only; :attr:`bin` holds the ``ssh`` wrapper."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lc-sshd-"))
        self.port = _free_port()
        self.bin = self.root / "bin"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        for tool in (SSHD, "ssh", "ssh-keygen", "docker"):
            if shutil.which(tool) is None:
                no_engine(f"{tool} is not installed (apt-get install openssh-server docker.io)")
        root = self.root
        for name in ("host", "client"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                check=True,
            )
        (root / "authorized_keys").write_text((root / "client.pub").read_text())
        (root / "sshd_config").write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {root / 'host'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
            f"PidFile {root / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
        )
        (root / "ssh_config").write_text(
            f"Host {HOST_ALIAS}\n"
            "  HostName 127.0.0.1\n"
            f"  Port {self.port}\n"
            f"  IdentityFile {root / 'client'}\n"
            "  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n"
        )
        self.bin.mkdir()
        real_ssh = shutil.which("ssh")
        wrapper = self.bin / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {real_ssh} -F {root / "ssh_config"} "$@"\n')
        wrapper.chmod(0o755)
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        with (root / "sshd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (root / "sshd.log").read_text(errors="replace")
                self.stop()
                no_engine(f"sshd did not start: {log[-800:]}")
            time.sleep(0.1)
        return self

    @property
    def path(self) -> str:
        """``PATH`` with the wrapper first."""
        return f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
