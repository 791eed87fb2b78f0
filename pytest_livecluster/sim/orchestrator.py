"""The orchestrator: takes intents and fault switches and hands them to the blades.

Endpoints, besides the common ones of :mod:`.node`:

- ``POST /intents {"host", "module", "kind": "scrape"|"update", "domains"?, "spotter"?}``
  answers ``{"id": "i-N"}`` once the intent is logged; the blade gets it in the
  background (retried while it restarts; a failure is logged as a
  ``ForwardFailed`` error). A scrape intent goes to a scraper and names a
  spotter (given, or the next one in turn).
- ``POST /faults {"name", "on", PARAM...}`` switches the fault here and on
  every blade, logs the change under ``orchestrator.faults`` and answers
  ``{"faults": TABLE, "unreachable": [HOST...]}``.
- ``GET /hosts``: ``{"orchestrator": [...], "scraper": [...], "spotter": [...]}``.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from .control import ApiError, call
from .node import Node, NodeConfig, Routes, switch_request, text_field
from .output import Output
from .persist import Saved

__all__ = ["Orchestrator"]

Json = dict[str, Any]

_MODULE: Final = re.compile(r"[A-Za-z0-9_.-]+@[A-Za-z0-9_.+-]+")
_KINDS: Final = ("scrape", "update")
# How long a blade may take to come back (a restart) before a hand-over fails.
_FORWARD_FOR: Final = 3.0


class Orchestrator(Node):
    role = "orchestrator"

    def __init__(
        self,
        config: NodeConfig,
        output: Output,
        saved: Saved,
        blades: Mapping[str, Mapping[str, str]],
    ) -> None:
        """``blades`` maps each blade role to ``{host: control URL}``."""
        super().__init__(config, output, saved)
        self.blades = {role: dict(hosts) for role, hosts in blades.items()}
        self._urls = {h: url for hosts in self.blades.values() for h, url in hosts.items()}
        self._spotters = itertools.cycle(sorted(self.blades.get("spotter", {})))

    def routes(self) -> Routes:
        return {
            **super().routes(),
            ("POST", "/intents"): self.post_intents,
            ("GET", "/hosts"): self.get_hosts,
        }

    def start(self) -> None:
        super().start()
        table = self.faults.table()
        if table:
            self.output.shard(self.shards.faults(dict(table)))

    def get_hosts(self, _: Json) -> Json:
        hosts = {role: sorted(found) for role, found in self.blades.items()}
        return {"orchestrator": [self.host], **hosts}

    # -- intents -----------------------------------------------------------------------

    def post_intents(self, body: Json) -> Json:
        host = self._blade(text_field(body, "host"))
        module = text_field(body, "module")
        if not _MODULE.fullmatch(module):
            raise ApiError(400, f"bad module {module!r}: write NAME@VERSION, e.g. scraper@1.5")
        kind = body.get("kind", "scrape")
        if kind not in _KINDS:
            raise ApiError(400, f"bad kind {kind!r}; kinds: {', '.join(_KINDS)}")
        work = self._work(kind, host, module, body)
        iid = self._next_id()
        work["id"] = iid
        self.output.shard(self.shards.intent(iid, host, module, kind, time.time()))
        self.spawn(self._forward, iid, host, work)
        return {"id": iid}

    def _work(self, kind: str, host: str, module: str, body: Json) -> Json:
        work: Json = {"kind": kind, "module": module}
        if kind == "update":
            return work
        if host not in self.blades.get("scraper", {}):
            raise ApiError(400, f"a scrape intent needs a scraper; {host!r} is not one")
        spotter = body.get("spotter")
        if spotter is None:
            with self._lock:
                spotter = next(self._spotters, None)
        if not isinstance(spotter, str) or spotter not in self.blades.get("spotter", {}):
            raise ApiError(400, f"unknown spotter {spotter!r}; spotters: {self._list('spotter')}")
        work["spotter"] = self._urls[spotter]
        if body.get("domains") is not None:
            work["domains"] = body["domains"]
        return work

    def _next_id(self) -> str:
        with self._lock:
            number = self.saved.next_intent
            self.saved.next_intent += 1
        self.persist()
        return f"i-{number}"

    def _forward(self, iid: str, host: str, work: Json) -> None:
        try:
            call("POST", f"{self._urls[host]}/work", work, retry_for=_FORWARD_FOR)
        except (OSError, ApiError) as exc:
            self.record_error("ForwardFailed", f"cannot hand {iid} to {host}: {exc}")

    # -- faults ------------------------------------------------------------------------

    def post_faults(self, body: Json) -> Json:
        name, on, params = switch_request(body)
        target = params.get("host")
        if target is not None and target != "*":
            self._any_host(str(target))
        checked = self.switch_fault(name, on, params)
        switch: Json = {"name": name, "on": on, **(checked or {})}
        unreachable = self._broadcast(switch)
        self.output.shard(self.shards.faults({name: checked}))
        return {"faults": self.faults.table(), "unreachable": unreachable}

    def _broadcast(self, switch: Json) -> list[str]:
        failed: list[str] = []

        def send(host: str, url: str) -> None:
            try:
                call("POST", f"{url}/faults", switch, retry_for=_FORWARD_FOR)
            except (OSError, ApiError):
                failed.append(host)

        threads = [
            threading.Thread(target=send, args=item, daemon=True) for item in self._urls.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(failed)

    # -- hosts -------------------------------------------------------------------------

    def _blade(self, host: str) -> str:
        if host not in self._urls:
            known = ", ".join(sorted(self._urls))
            raise ApiError(400, f"unknown host {host!r}; blades: {known}")
        return host

    def _any_host(self, host: str) -> None:
        if host != self.host and host not in self._urls:
            known = ", ".join([self.host, *sorted(self._urls)])
            raise ApiError(400, f"unknown host {host!r}; hosts: {known}, or '*' for all")

    def _list(self, role: str) -> str:
        return ", ".join(sorted(self.blades.get(role, {})))
