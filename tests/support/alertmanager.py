"""A real Alertmanager on loopback, for alert tests, sending to a :class:`Receiver`.

It runs the ``prometheus-alertmanager`` binary in a temporary directory (config,
storage and log there), HA mode off, on a free port of 127.0.0.1, with one route
to one webhook at ``<receiver url>/am``: every alert is its own group
(``group_by: ['...']``), sent at once, re-checked every second::

    binary = require_alertmanager()  # skips (fails under CI=true) when missing
    with Receiver() as receiver, Alertmanager(receiver, binary=binary) as am:
        httpx.post(am.url + "/api/v2/alerts", json=[{"labels": {"alertname": "A"}}])
        [notification] = receiver.wait_for(1)
        assert notification.json["status"] == "firing"
        assert am.alerts(active=True)[0]["labels"] == {"alertname": "A"}

The binary is ``$LIVECLUSTER_ALERTMANAGER``, else ``/usr/bin/prometheus-alertmanager``
(Debian's package), else ``alertmanager`` on the PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from tests.support.required import missing

if TYPE_CHECKING:
    from .receiver import Receiver

__all__ = ["DEBIAN_BINARY", "ENV_VAR", "Alertmanager", "find_alertmanager", "require_alertmanager"]

ENV_VAR: Final = "LIVECLUSTER_ALERTMANAGER"
DEBIAN_BINARY: Final = "/usr/bin/prometheus-alertmanager"


def find_alertmanager() -> str | None:
    """The Alertmanager binary to use, or None when there is none."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    if os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    return shutil.which("alertmanager")


def require_alertmanager() -> str:
    """The binary's path; skips the test without one (fails it when ``CI=true``)."""
    binary = find_alertmanager()
    if binary is not None:
        return binary
    configured = os.environ.get(ENV_VAR)
    reason = (
        f"${ENV_VAR}={configured} is not an executable"
        if configured
        else f"no Alertmanager: set ${ENV_VAR}, or install it ({DEBIAN_BINARY}: "
        "apt-get install prometheus-alertmanager)"
    )
    return missing(reason, "the alert tests")


class Alertmanager:
    """One Alertmanager process; ``start()`` returns once ``/-/ready`` answers 200."""

    def __init__(
        self,
        receiver: Receiver | str,
        *,
        path: str = "/am",
        binary: str | None = None,
        group_wait: str = "0s",
        group_interval: str = "1s",
        repeat_interval: str = "4h",
        resolve_timeout: str = "5m",
        send_resolved: bool = True,
        gc_interval: str | None = None,
        log_level: str = "debug",
        ready_timeout: float = 20.0,
    ) -> None:
        base = receiver if isinstance(receiver, str) else receiver.url
        self.webhook_url = base.rstrip("/") + path
        self.binary = binary or find_alertmanager() or DEBIAN_BINARY
        self.config: dict[str, Any] = {
            "global": {"resolve_timeout": resolve_timeout},
            "route": {
                "receiver": "webhook",
                "group_by": ["..."],
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [
                        {"url": self.webhook_url, "send_resolved": send_resolved},
                    ],
                }
            ],
        }
        self.gc_interval = gc_interval
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the Alertmanager is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the Alertmanager is not started")
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.directory / "alertmanager.log"

    def log(self) -> str:
        """Everything the process logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def start(self) -> Alertmanager:
        self._dir = Path(tempfile.mkdtemp(prefix="livecluster-am-"))
        config = self._dir / "alertmanager.yml"
        # YAML is a superset of JSON: no YAML library needed.
        config.write_text(json.dumps(self.config, indent=2))
        (self._dir / "data").mkdir()
        try:
            # Another process may take the free port before Alertmanager binds it.
            for _ in range(3):
                if self._launch(config):
                    return self
                self._stop_process()
            raise RuntimeError(f"no free port for alertmanager; log:\n{self.log_tail()}")
        except BaseException:
            self.close()
            raise

    def _launch(self, config: Path) -> bool:
        """Start the process and wait for readiness; False if the port was taken."""
        self.port = _free_port()
        args = [
            self.binary,
            f"--config.file={config}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            f"--log.level={self.log_level}",
        ]
        if self.gc_interval is not None:
            args.append(f"--alerts.gc-interval={self.gc_interval}")
        with self.log_path.open("ab") as log:
            log.write(f"# {' '.join(args)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        self._client = httpx.Client(base_url=self.url, timeout=5.0)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                if "address already in use" in self.log_tail(5):
                    return False
                raise RuntimeError(
                    f"alertmanager exited with {code} before it was ready; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if self._client.get("/-/ready", timeout=1.0).status_code == 200:
                    return True
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"alertmanager not ready after {self.ready_timeout} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    @property
    def client(self) -> httpx.Client:
        """An httpx client with the Alertmanager's URL as base."""
        if self._client is None:
            raise RuntimeError("the Alertmanager is not started")
        return self._client

    def alerts(self, **filters: bool | str | list[str]) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``; ``active=False``, ``filter=['alertname="A"']`` etc."""
        params: dict[str, str | list[str]] = {
            name: ("true" if value else "false") if isinstance(value, bool) else value
            for name, value in filters.items()
        }
        response = self.client.get("/api/v2/alerts", params=params)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def post_alerts(self, *alerts: dict[str, Any]) -> None:
        """``POST /api/v2/alerts`` (raises unless Alertmanager answers 200)."""
        response = self.client.post("/api/v2/alerts", json=list(alerts))
        response.raise_for_status()

    def close(self) -> None:
        self._stop_process()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _stop_process(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
