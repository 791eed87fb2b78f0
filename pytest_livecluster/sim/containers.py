"""The Docker mode of :class:`~.cluster.SimCluster`: every process as a labelled container.

Each process runs the host's own Python in a scratch image (an empty rootfs with
``/tmp`` only), with ``/usr``, ``/lib``, ``/lib64``, ``sys.base_prefix``,
``sys.prefix`` (a virtual environment) and the directory holding the
``pytest_livecluster`` package bind-mounted read-only, and the cluster's work
directory read-write (ready and state files). It shares the host's network, so
its ports and URLs are those of the process mode. Labels
``livecluster.sim=RUN`` and ``livecluster.role=ROLE``; name ``lcsim-RUN-HOST``.

The engine restarts a crashed process (restart policy ``on-failure``) instead of
the supervisor; its state file brings it back on the same ports. Its output goes
to the ``json-file`` log (50 MB at most), which the ``docker:`` source follows.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import docker
import docker.errors
import requests
from docker.types import LogConfig

import pytest_livecluster

from .._retry import Deadline, retrying
from .errors import SimError
from .supervisor import Supervised

__all__ = [
    "IMAGE",
    "LABEL",
    "ROLE_LABEL",
    "Contained",
    "Engine",
    "container_name",
    "ensure_scratch_image",
]

IMAGE: Final = "livecluster-sim/scratch:1"
LABEL: Final = "livecluster.sim"
ROLE_LABEL: Final = "livecluster.role"
_LOG_MAX_SIZE: Final = "50m"
# The engine may be restarting (a few seconds); calls are retried for this long.
_RETRY_FOR: Final = 15.0
_RETRY_FIRST_WAIT: Final = 0.25
_RETRY_MAX_WAIT: Final = 2.0
_INSPECT_EVERY: Final = 0.2
_TAIL_LINES: Final = 30

T = TypeVar("T")


def _retrying(call: Callable[[], T]) -> T:
    """``call()``, retried while the engine cannot be reached or answers 5xx."""
    return retrying(
        first_wait=_RETRY_FIRST_WAIT,
        max_wait=_RETRY_MAX_WAIT,
        budget=_RETRY_FOR,
        retry_if=_transient,
    )(call)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, docker.errors.APIError):
        return bool(exc.is_server_error())  # a 404 (NotFound) is an answer
    return isinstance(exc, requests.exceptions.ConnectionError)


def container_name(run_id: str, host: str) -> str:
    """The name of the container that runs process ``host`` in run ``run_id``."""
    return f"lcsim-{run_id}-{host}"


def _package_root() -> str:
    """The directory that holds the ``pytest_livecluster`` package."""
    return str(Path(pytest_livecluster.__file__).resolve().parent.parent)


def _read_only_paths() -> list[str]:
    """Host paths the container needs, none inside another one."""
    wanted = ["/usr", "/lib", "/lib64", sys.base_prefix, sys.prefix, _package_root()]
    paths = sorted({p for p in wanted if os.path.exists(p)})
    kept: list[str] = []
    for path in paths:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


class Engine:
    """The Docker engine side of one run: the image, its containers, their removal."""

    def __init__(self, run_id: str, workdir: Path) -> None:
        self.run_id = run_id
        self.workdir = workdir
        try:
            self.client = docker.from_env(timeout=30)
            _retrying(self.client.ping)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SimError(f"no Docker engine for the docker mode: {exc}") from None
        self._lock = threading.Lock()
        _retrying(lambda: ensure_scratch_image(self.client))

    @property
    def label(self) -> str:
        return f"{LABEL}={self.run_id}"

    def name(self, host: str) -> str:
        return container_name(self.run_id, host)

    def run(self, host: str, role: str, argv: list[str]) -> Any:
        volumes = {path: {"bind": path, "mode": "ro"} for path in _read_only_paths()}
        workdir = str(self.workdir)
        volumes[workdir] = {"bind": workdir, "mode": "rw"}
        pythonpath = os.pathsep.join(
            p for p in (_package_root(), os.environ.get("PYTHONPATH", "")) if p
        )
        name = self.name(host)
        kwargs: dict[str, Any] = {
            "name": name,
            "detach": True,
            "labels": {LABEL: self.run_id, ROLE_LABEL: role},
            "volumes": volumes,
            "network_mode": "host",
            "restart_policy": {"Name": "on-failure"},
            "log_config": LogConfig(type="json-file", config={"max-size": _LOG_MAX_SIZE}),
            "environment": {"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
            "user": f"{os.getuid()}:{os.getgid()}",
            "working_dir": workdir,
        }

        def run() -> Any:
            try:
                return self.client.containers.run(IMAGE, argv, **kwargs)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # a retry after a lost answer: it exists
                    raise
                return self.client.containers.get(name)

        return _retrying(run)

    def inspect(self, name: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = _retrying(lambda: self.client.api.inspect_container(name))
        except docker.errors.NotFound:
            return None
        return info

    def stderr_tail(self, name: str) -> str:
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
            data: bytes = self.client.api.logs(name, stdout=False, stderr=True, tail=_TAIL_LINES)
            return data.decode(errors="replace")
        return ""

    def remove_all(self) -> None:
        """Force-remove every container of the run, in parallel; then close the client."""
        try:
            found = _retrying(
                lambda: self.client.api.containers(all=True, filters={"label": self.label})
            )
        except (docker.errors.DockerException, requests.RequestException):
            found = []
        threads = [
            threading.Thread(target=self._remove, args=(c["Id"],), daemon=True) for c in found
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.client.close()

    def _remove(self, cid: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            _retrying(lambda: self.client.api.remove_container(cid, force=True))


class Contained(Supervised):
    """One process of the cluster as a container; the engine restarts it."""

    def __init__(
        self, engine: Engine, host: str, role: str, args: list[str], workdir: Path, python: str
    ) -> None:
        super().__init__(host, role, args, workdir, python, watch_parent=False)
        self.engine = engine
        self.container_name = engine.name(host)
        self._info: dict[str, Any] | None = None
        self._inspected_at = 0.0

    def spawn(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ready_file.unlink()
        self.engine.run(self.host, self.role, self.argv)
        self.spawned_at = time.monotonic()
        self._info = None

    def _state(self, fresh: bool = True) -> dict[str, Any]:
        now = time.monotonic()
        if fresh or self._info is None or now - self._inspected_at >= _INSPECT_EVERY:
            self._info = self.engine.inspect(self.container_name)
            self._inspected_at = now
        if self._info is None:
            return {}
        state: dict[str, Any] = self._info.get("State") or {}
        return state

    @property
    def pid(self) -> int | None:
        pid = self._state().get("Pid")
        return int(pid) if pid else None

    @property
    def restarts(self) -> int:
        info = self.engine.inspect(self.container_name)
        return int(info.get("RestartCount", 0)) if info else 0

    @restarts.setter
    def restarts(self, value: int) -> None:
        pass  # the engine counts them

    def exit_code(self) -> int | None:
        """The exit status if the container is not running (stopped or restarting)."""
        if self.spawned_at == 0.0:
            return None
        state = self._state(fresh=False)
        if not state:
            return -1
        if state.get("Running") and not state.get("Restarting"):
            return None
        return int(state.get("ExitCode", -1))

    def _tail(self) -> str:
        text = self.engine.stderr_tail(self.container_name).strip()
        return f"; the end of its stderr:\n{text}" if text else ""

    def terminate(self) -> None:
        pass  # Engine.remove_all removes every container of the run

    def reap(self, deadline: Deadline) -> None:
        pass


def ensure_scratch_image(client: docker.DockerClient) -> str:
    """Import :data:`IMAGE`, an empty rootfs (only ``/tmp``) for the host's Python, if missing."""
    try:
        client.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entry = tarfile.TarInfo("tmp")
        entry.type = tarfile.DIRTYPE
        entry.mode = 0o1777
        tar.addfile(entry)
    repo, tag = IMAGE.split(":")
    client.api.import_image(src=buf.getvalue(), repository=repo, tag=tag)
    return IMAGE
