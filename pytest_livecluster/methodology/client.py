"""``OrchestratorClient``: what a test uses to drive the simulated cluster.

::

    client = OrchestratorClient(cluster.orchestrator_url)
    iid = client.set_intent("scraper-1", "scraper@1.4")
    client.set_fault("lossy_spotter", share=0.5)
    client.update_module("scraper-2", "scraper@1.5")

Every error (a refused request, an unreachable orchestrator) raises
:class:`~.errors.SimError` with the orchestrator's message. A refused
connection is retried for ``retry_for`` seconds (with the waits of
:func:`pytest_livecluster._retry.retrying`), since the orchestrator may be
restarting (``crash_restart``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Self

import httpx

from .._retry import retrying
from ..exceptions import SimError

__all__ = ["OrchestratorClient"]

Json = dict[str, Any]

_FIRST_WAIT: Final = 0.05
_MAX_WAIT: Final = 0.5


class OrchestratorClient:
    """Talks to the orchestrator's control API at ``url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, url: str, *, timeout: float = 10.0, retry_for: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.retry_for = retry_for
        # Loopback only: a proxy from the environment must not see these requests.
        self._http = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def set_intent(
        self,
        host: str,
        module: str,
        kind: str = "scrape",
        *,
        domains: Sequence[str] | None = None,
        spotter: str | None = None,
    ) -> str:
        """Log an intent for ``host`` and hand it over; returns its id (``i-N``)."""
        body: Json = {"host": host, "module": module, "kind": kind}
        if domains is not None:
            body["domains"] = list(domains)
        if spotter is not None:
            body["spotter"] = spotter
        return str(self._call("POST", "/intents", body)["id"])

    def update_module(self, host: str, module: str) -> str:
        """An update intent: ``host`` should come to run ``module``; returns its id."""
        return self.set_intent(host, module, kind="update")

    def set_fault(self, name: str, on: bool = True, **params: str | int | float) -> Json:
        """Switch a fault on every process; returns the table of faults that are on."""
        answer = self._call("POST", "/faults", {"name": name, "on": on, **params})
        if answer.get("unreachable"):
            hosts = ", ".join(answer["unreachable"])
            raise SimError(f"fault {name!r} was switched, but these hosts did not get it: {hosts}")
        table: Json = answer["faults"]
        return table

    def faults(self) -> Json:
        """``{name: params}`` of every fault that is on."""
        table: Json = self._call("GET", "/faults")["faults"]
        return table

    def hosts(self) -> dict[str, list[str]]:
        """``{"orchestrator": [...], "scraper": [...], "spotter": [...]}``."""
        answer = self._call("GET", "/hosts")
        return {role: list(hosts) for role, hosts in answer.items()}

    def health(self) -> Json:
        return self._call("GET", "/health")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OrchestratorClient {self.url}>"

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        response = self._send(method, path, body)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and isinstance(answer, dict):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else response.text.strip()
        raise SimError(f"{method} {path} failed with {response.status_code}: {error}")

    def _send(self, method: str, path: str, body: Json | None) -> httpx.Response:
        # Only a refused connection: nothing was sent yet, so even a POST is safe to repeat.
        retry = retrying(
            first_wait=_FIRST_WAIT,
            max_wait=_MAX_WAIT,
            budget=self.retry_for,
            retry_if=lambda exc: isinstance(exc, httpx.ConnectError),
        )
        try:
            return retry(self._http.request, method, path, json=body)
        except httpx.ConnectError as exc:
            raise SimError(f"cannot reach the orchestrator at {self.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise SimError(f"{method} {path} to {self.url} failed: {exc}") from None
