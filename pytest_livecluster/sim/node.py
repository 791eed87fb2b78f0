"""What every simulated process does, whatever its role.

A :class:`Node` says hello, keeps its fault table, counts and logs its errors,
applies module updates, and serves the common control endpoints:

- ``GET /health``: ``{"host", "role", "boot", "module", "pid"}``;
- ``GET /faults``: ``{"faults": TABLE}``;
- ``POST /faults`` ``{"name": NAME, "on": BOOL, PARAM: VALUE...}``: switch a fault;
- ``POST /work`` ``{"id", "kind": "update", "module"}``: a module update
  (scrapers also take ``"kind": "scrape"``).

A one-shot fault (see :mod:`.faults`) acts when it is switched on, and at the
first start when it was given on the command line; never at a restart, or a
crash would repeat itself forever.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from . import persist
from .control import ApiError, Handler
from .faults import ONE_SHOT, FaultBook, Params, hits
from .output import Output
from .persist import Saved
from .shards import Shards

__all__ = ["CRASH_EXIT", "Node", "NodeConfig", "Routes", "switch_request", "text_field"]

Json = dict[str, Any]
Routes = dict[tuple[str, str], Handler]

#: The exit status of a simulated crash.
CRASH_EXIT: Final = 70

_BURST_KINDS: Final = {
    "scraper": ("FetchTimeout", "ParseError", "ConnectionReset"),
    "spotter": ("QueueFull", "ConnectionReset"),
    "orchestrator": ("ForwardFailed", "ConnectionReset"),
}


@dataclass(frozen=True)
class NodeConfig:
    role: str
    host: str
    seed: int
    domains: tuple[str, ...]
    state_file: Path | None = None


class Node:
    """One simulated process; subclasses add their role's endpoints and work."""

    role: ClassVar[str]

    def __init__(self, config: NodeConfig, output: Output, saved: Saved) -> None:
        self.config = config
        self.host = config.host
        self.output = output
        self.saved = saved
        self.shards = Shards(config.host)
        self.faults = FaultBook(saved.faults)
        self.stopping = threading.Event()
        self._rng = random.Random(f"{config.seed}:{config.host}:{saved.boot}")
        self._lock = threading.Lock()
        self._errors: collections.Counter[str] = collections.Counter()

    @property
    def module(self) -> str:
        return self.saved.module or f"{self.role}@1.4"

    # -- life cycle --------------------------------------------------------------------

    def routes(self) -> Routes:
        return {
            ("GET", "/health"): self.get_health,
            ("GET", "/faults"): self.get_faults,
            ("POST", "/faults"): self.post_faults,
            ("POST", "/work"): self.post_work,
        }

    def start(self) -> None:
        """Say hello and, at the first start, fire the one-shot faults given at start."""
        self.output.shard(self.shards.hello(self.saved.boot, self.module))
        if self.saved.boot == 1:
            for name, params in self.faults.table().items():
                if name in ONE_SHOT and hits(name, params, self.host, self.role):
                    self.fire(name, params)

    def stop(self) -> None:
        self.stopping.set()

    def persist(self) -> None:
        with self._lock:
            self.saved.faults = self.faults.table()
            persist.save(self.config.state_file, self.saved)

    # -- endpoints ---------------------------------------------------------------------

    def get_health(self, _: Json) -> Json:
        return {
            "host": self.host,
            "role": self.role,
            "boot": self.saved.boot,
            "module": self.module,
            "pid": os.getpid(),
        }

    def get_faults(self, _: Json) -> Json:
        return {"faults": self.faults.table()}

    def post_faults(self, body: Json) -> Json:
        name, on, params = switch_request(body)
        self.switch_fault(name, on, params)
        return {"faults": self.faults.table()}

    def post_work(self, body: Json) -> Json:
        kind = text_field(body, "kind")
        iid = text_field(body, "id")
        if kind != "update":
            raise ApiError(400, f"{self.host} cannot do {kind!r} work; it takes: update")
        self.spawn(self._update, iid, text_field(body, "module"))
        return {"accepted": True}

    # -- faults ------------------------------------------------------------------------

    def switch_fault(self, name: str, on: bool, params: Params) -> Params | None:
        try:
            checked = self.faults.switch(name, on, params)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        self.persist()
        if checked is not None and name in ONE_SHOT and hits(name, checked, self.host, self.role):
            self.fire(name, checked)
        return checked

    def active(self, name: str) -> Params | None:
        return self.faults.active(name, self.host, self.role)

    def slowness(self) -> float:
        params = self.active("slow_resolution")
        return 1.0 if params is None else float(params["factor"])

    def fire(self, name: str, params: Params) -> None:
        if name == "error_burst":
            self.spawn(self._burst, int(params["count"]))
        elif name == "crash_restart":
            timer = threading.Timer(float(params["after"]), self._crash)
            timer.daemon = True
            timer.start()

    def _burst(self, count: int) -> None:
        kinds = _BURST_KINDS[self.role]
        domains = self.config.domains if self.role == "scraper" else ()
        for n in range(count):
            domain = domains[n % len(domains)] if domains else None
            kind = kinds[n % len(kinds)]
            self.record_error(kind, _burst_text(kind, domain), domain)
        self.output.text(_traceback(domains[0] if domains else self.host))

    def _crash(self) -> None:
        if self.stopping.is_set():
            return
        self.output.text(f"{self.host}: simulated crash (crash_restart), exit status {CRASH_EXIT}")
        # Abrupt on purpose: no cleanup, no goodbye, like a killed process; only the
        # counts already made are written, so the run's totals stay comparable.
        self.output.flush()
        os._exit(CRASH_EXIT)

    def record_error(self, kind: str, text: str, domain: str | None = None) -> None:
        with self._lock:
            self._errors[kind] += 1
            count = self._errors[kind]
            self.output.shard(self.shards.error(kind, count, text, domain))

    # -- module updates ----------------------------------------------------------------

    def _update(self, iid: str, module: str) -> None:
        if not self.sleep(self.uniform(0.05, 0.15) * self.slowness()):
            return
        if self.active("failed_update") is not None:
            self.record_error(
                "UpdateFailed", f"cannot install {module} for {iid}: checksum mismatch"
            )
            return
        with self._lock:
            self.saved.module = module
        self.persist()
        self.output.shard(self.shards.module_updated(module))
        self.output.shard(self.shards.updated(iid, module))

    # -- helpers -----------------------------------------------------------------------

    def spawn(self, target: Callable[..., object], *args: object) -> None:
        name = f"{self.host}:{getattr(target, '__name__', 'work')}"
        threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the process is stopping meanwhile."""
        return not self.stopping.wait(seconds)

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)

    def randint(self, low: int, high: int) -> int:
        with self._lock:
            return self._rng.randint(low, high)

    def random(self) -> float:
        with self._lock:
            return self._rng.random()


def switch_request(body: Json) -> tuple[str, bool, Params]:
    """``{"name", "on", PARAM: VALUE...}`` as ``(name, on, params)``; ApiError if malformed."""
    rest = dict(body)
    name = rest.pop("name", None)
    on = rest.pop("on", True)
    if not isinstance(name, str) or not name:
        raise ApiError(400, "a fault switch needs a 'name'")
    if not isinstance(on, bool):
        raise ApiError(400, f"'on' must be true or false, got {on!r}")
    params: Params = {}
    for key, value in rest.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ApiError(400, f"fault parameter {key!r} must be a string or number")
        params[key] = value
    return name, on, params


def text_field(body: Json, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _burst_text(kind: str, domain: str | None) -> str:
    where = f"https://{domain}/" if domain else "a peer"
    return {
        "FetchTimeout": f"GET {where} gave no answer in 5.0 s",
        "ParseError": f"cannot parse the page at {where}: unexpected end of document",
        "QueueFull": "the item queue is full (10000 items); dropping the batch",
        "ForwardFailed": "cannot hand an intent over: the blade did not answer",
    }.get(kind, f"connection to {where} reset by peer")


class SimulatedFetchError(Exception):
    """Raised only to produce a genuine traceback for ``error_burst``."""


def _traceback(where: str) -> str:
    try:
        _fetch(where)
    except SimulatedFetchError:
        return traceback.format_exc()
    raise AssertionError("unreachable")


def _fetch(where: str) -> None:
    _read_page(where)


def _read_page(where: str) -> None:
    raise SimulatedFetchError(f"https://{where}/: connection reset by peer")
