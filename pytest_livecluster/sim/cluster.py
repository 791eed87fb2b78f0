"""``SimCluster``: the simulated cluster as real processes on 127.0.0.1.

::

    with SimCluster(scrapers=3, spotters=2, faults=["lossy_spotter"]) as sim:
        sim.log_urls        # {"scraper-1": "http://127.0.0.1:PORT/logs", ...}
        client = sim.client()
        iid = client.set_intent("scraper-1", "scraper@1.4")

:meth:`SimCluster.start` starts the blades in parallel, then the orchestrator
(which needs their control URLs), and returns once every process has said
hello and serves. A supervisor thread then restarts any process that exits
(the ``crash_restart`` fault, or a real crash) with the same command; its
saved state brings it back on the same ports. :meth:`SimCluster.stop` sends
SIGTERM, kills what is left after 1.5 s and reaps every process.

With ``mode="docker"`` every process is a labelled container instead (see
:mod:`.containers`): the engine restarts a crashed one, its output is the
container's log (follow it with :attr:`SimCluster.docker_spec`), and
:meth:`SimCluster.stop` force-removes every container of the run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from .._retry import Backoff, Deadline
from ..methodology.client import OrchestratorClient
from .faults import Table, check_fault, format_faults, parse_faults
from .scraper import DEFAULT_DOMAINS
from .supervisor import Ready, Supervised

if TYPE_CHECKING:
    from .containers import Engine

__all__ = ["MAX_BLADES", "MODES", "SimCluster"]

MODES: Final = ("process", "docker")

MAX_BLADES: Final = 50
_STOP_GRACE: Final = 1.5
_WATCH_EVERY: Final = 0.05
# A process that exits sooner than this after its start counts as a quick exit;
# after several in a row the supervisor gives up on it instead of looping.
_QUICK: Final = 1.0
_MAX_QUICK_EXITS: Final = 5
# The longest wait before restarting a process that keeps exiting quickly.
_RESTART_MAX_WAIT: Final = 2.0

FaultsArg = str | Iterable[str] | Mapping[str, Mapping[str, object]]


class SimCluster:
    """An orchestrator and ``scrapers`` + ``spotters`` blades, each an OS process."""

    def __init__(
        self,
        scrapers: int = 3,
        spotters: int = 2,
        faults: FaultsArg = (),
        seed: int = 0,
        *,
        domains: Iterable[str] = DEFAULT_DOMAINS,
        workdir: str | Path | None = None,
        python: str = sys.executable,
        start_timeout: float = 20.0,
        mode: str = "process",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        #: Unique per start; the containers' ``livecluster.sim`` label in docker mode.
        self.run_id = ""
        self._engine: Engine | None = None
        for name, count in (("scrapers", scrapers), ("spotters", spotters)):
            if type(count) is not int or not 1 <= count <= MAX_BLADES:
                raise ValueError(f"{name} must be a whole number from 1 to {MAX_BLADES}")
        self.faults: Table = _faults(faults)
        self.seed = seed
        self.domains = tuple(domains)
        if not self.domains or any(not d or "," in d for d in self.domains):
            raise ValueError(f"domains must be non-empty names without commas: {self.domains!r}")
        self.hosts: dict[str, list[str]] = {
            "orchestrator": ["orchestrator"],
            "scraper": [f"scraper-{n}" for n in range(1, scrapers + 1)],
            "spotter": [f"spotter-{n}" for n in range(1, spotters + 1)],
        }
        self.python = python
        self.start_timeout = start_timeout
        self._workdir = Path(workdir) if workdir is not None else None
        self._own_workdir = False
        self._processes: dict[str, Supervised] = {}
        self._ready: dict[str, Ready] = {}
        self._restart_backoff: dict[str, Backoff] = {}
        #: What the supervisor did (restarts), oldest first.
        self.events: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------

    def start(self, cancel: threading.Event | None = None) -> Self:
        """Start every process and wait until each serves; SimError if one cannot.

        Setting ``cancel`` (from another thread) abandons the start with SimError.
        """
        if self._processes:
            raise RuntimeError("the simulated cluster is already started")
        self._stopping.clear()
        workdir = self._make_workdir()
        deadline = Deadline(self.start_timeout)
        self.run_id = uuid.uuid4().hex[:12]
        try:
            if self.mode == "docker":
                from .containers import Engine

                self._engine = Engine(self.run_id, workdir)
            self._start_group(self._blades(workdir), deadline, cancel)
            self._start_group([self._orchestrator(workdir)], deadline, cancel)
        except BaseException:
            self.stop()
            raise
        if self._engine is not None:
            return self  # the engine restarts the containers
        self._watcher = threading.Thread(target=self._watch, name="sim supervisor", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 1.5 s) and reap it. Idempotent."""
        with self._lock:
            self._stopping.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.join()
        processes = list(self._processes.values())
        for process in processes:
            process.terminate()
        deadline = Deadline(_STOP_GRACE)
        for process in processes:
            process.reap(deadline)
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.remove_all()
        self._processes.clear()
        self._ready.clear()
        self._restart_backoff.clear()
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._own_workdir = False

    def __enter__(self) -> Self:
        return self.start() if not self._processes else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(hosts)} {role}" for role, hosts in self.hosts.items())
        state = "running" if self._processes else "stopped"
        return f"<SimCluster {counts}; {state}>"

    # -- what a test reads -------------------------------------------------------------

    @property
    def log_urls(self) -> dict[str, str]:
        """``{host: "http://127.0.0.1:PORT/logs"}``; stable across restarts."""
        return {host: ready.log_url for host, ready in self._started().items()}

    @property
    def docker_spec(self) -> str:
        """The ``docker:`` source spec that follows this run's containers (docker mode)."""
        if self.mode != "docker" or not self.run_id:
            raise RuntimeError("only a started simulated cluster in docker mode has containers")
        from .containers import LABEL

        return f"docker:label={LABEL}={self.run_id}"

    def host_of_container(self, name: str) -> str | None:
        """The host whose container (docker mode) is named ``name``; None if none of this run's.

        Lines read from a container carry its name; the cluster's hosts are what its
        processes log under (``lcsim-RUN-scraper-1`` is ``scraper-1``).
        """
        if self.mode != "docker" or not self.run_id:
            return None
        from .containers import container_name

        hosts = (host for role_hosts in self.hosts.values() for host in role_hosts)
        return next((h for h in hosts if container_name(self.run_id, h) == name), None)

    @property
    def orchestrator_url(self) -> str:
        return self._started()["orchestrator"].control_url

    def client(self, **kwargs: float) -> OrchestratorClient:
        """A new client of the orchestrator (close it, or use it in a ``with``)."""
        return OrchestratorClient(self.orchestrator_url, **kwargs)

    def pids(self) -> dict[str, int]:
        """The process id of every host now (a restart changes it)."""
        with self._lock:
            return {h: p.pid for h, p in self._processes.items() if p.pid is not None}

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {host: process.restarts for host, process in self._processes.items()}

    @property
    def workdir(self) -> Path | None:
        """Where each process's ready, state, stdout and stderr files are."""
        return self._workdir

    def _started(self) -> dict[str, Ready]:
        if not self._ready:
            raise RuntimeError("the simulated cluster is not started")
        return self._ready

    # -- starting ----------------------------------------------------------------------

    def _make_workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="livecluster-sim-"))
            self._own_workdir = True
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    def _common_args(self) -> list[str]:
        args = ["--seed", str(self.seed), "--domains", ",".join(self.domains)]
        if self.faults:
            args += ["--faults", format_faults(self.faults)]
        return args

    def _process(self, host: str, role: str, args: list[str], workdir: Path) -> Supervised:
        if self._engine is not None:
            from .containers import Contained

            return Contained(self._engine, host, role, args, workdir, self.python)
        return Supervised(host, role, args, workdir, self.python)

    def _blades(self, workdir: Path) -> list[Supervised]:
        return [
            self._process(host, role, self._common_args(), workdir)
            for role in ("spotter", "scraper")
            for host in self.hosts[role]
        ]

    def _orchestrator(self, workdir: Path) -> Supervised:
        args = self._common_args()
        for role in ("scraper", "spotter"):
            for host in self.hosts[role]:
                args += [f"--{role}", f"{host}={self._ready[host].control_url}"]
        return self._process("orchestrator", "orchestrator", args, workdir)

    def _start_group(
        self, group: list[Supervised], deadline: Deadline, cancel: threading.Event | None
    ) -> None:
        for process in group:
            with self._lock:
                self._processes[process.host] = process
            process.spawn()
        for process in group:
            self._ready[process.host] = process.wait_ready(deadline, cancel)

    # -- supervising -------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(_WATCH_EVERY):
            for process in list(self._processes.values()):
                code = process.exit_code()
                if code is not None and process.quick_exits < _MAX_QUICK_EXITS:
                    self._restart(process, code)

    def _restart(self, process: Supervised, code: int) -> None:
        quick = time.monotonic() - process.spawned_at < _QUICK
        process.quick_exits = process.quick_exits + 1 if quick else 0
        if process.quick_exits >= _MAX_QUICK_EXITS:
            self._event(
                f"{process.host} exited with status {code} {_MAX_QUICK_EXITS} times "
                "in a row right after starting; not restarting it again"
            )
            return
        # Back off from a process that keeps dying, as a container runtime does.
        backoff = self._restart_backoff.setdefault(
            process.host, Backoff(self._stopping, _RESTART_MAX_WAIT)
        )
        if not quick:
            backoff.reset()
        elif not backoff.pause():
            return
        with self._lock:
            if self._stopping.is_set():
                return
            process.restarts += 1
            process.spawn()
        self._event(
            f"{process.host} exited with status {code}; restarted it (restart {process.restarts})"
        )

    def _event(self, text: str) -> None:
        with self._lock:
            self.events.append(text)


def _faults(faults: FaultsArg) -> Table:
    if isinstance(faults, Mapping):
        return {name: check_fault(name, dict(params)) for name, params in faults.items()}
    return parse_faults(faults)
