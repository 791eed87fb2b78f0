"""Sending alerts, and asking Alertmanager what it holds: one request per target and
round each way, retried with backoff, bounded in time.

Delivery never raises and never outlives its budget: a target that is down
costs at most ``budget`` seconds, and the outcome (attempts, the first and
last error) goes into the run report. The budget is a deadline for the whole
delivery, reads included: httpx's timeouts are per read, so a receiver that
trickles its answer a byte at a time would never trip them. Each read's
timeout is cut to what is left of the budget, the answer is read chunk by
chunk with the deadline checked between chunks, and a watchdog shuts the
connection down (:mod:`pytest_livecluster._sockets`) once the deadline
has passed, so even a status line or header that never ends is cut.

What is retried, and how, is the one policy of :mod:`pytest_livecluster._retry`:
a refused or dropped connection, a timeout, 408, 425, 429 and 5xx; any other
answer is final. Error text is scrubbed of the target's secrets before anyone
sees it.

:func:`read_alerts` asks an Alertmanager target which of this cluster's alerts
it holds (``GET /api/v2/alerts``, filtered by ``cluster`` and the alert
names), under the same policy, budget and watchdog: that is the truth about
it, whatever the ledger remembers. A failed read is an outcome, never an error.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .._retry import Deadline, Retryable, retryable_http_error, retryable_status, retrying
from .._secrets import scrub
from .._sockets import shutdown
from .._version import __version__
from ..core import jsonutil
from .model import ALERT_NAMES, Alert, parse_isotime
from .targets import Target, alertmanager_filters

__all__ = ["Delivery", "HeldAlert", "Reading", "deliver", "read_alerts"]

_REQUEST_TIMEOUT = 5.0
#: How much of an answer is read: enough for an error's text; the rest is not needed.
_MAX_ANSWER = 64 * 1024
#: How much of Alertmanager's list of alerts is read; one cluster's alerts are far fewer.
_MAX_LIST = 8 * 1024 * 1024
#: How long past the budget a read may still end (see ``deliver``).
_GRACE = 0.25


@dataclass
class Delivery:
    """What became of one target's POST in one round."""

    target: str
    firing: int
    resolved: int
    ok: bool
    attempts: int
    seconds: float
    status: int | None = None
    first_error: str | None = None
    error: str | None = None

    def line(self) -> str:
        what = _counts(self.firing, self.resolved)
        if self.ok:
            retried = f" after {self.attempts} attempts (first: {self.first_error})"
            return f"{self.target}: sent {what}" + (retried if self.attempts > 1 else "")
        return (
            f"{self.target}: NOT sent {what} after {self.attempts} attempt"
            f"{'s' if self.attempts != 1 else ''} in {self.seconds:.1f} s: {self.error}; "
            "the next run tries again"
        )

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class HeldAlert:
    """One alert a target holds (not resolved), as it answered."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: dt.datetime
    state: str = "active"


@dataclass
class Reading:
    """What one target answered when asked which alerts of this cluster it holds.

    ``alerts`` is None when it could not be read; ``error`` then says why.
    """

    target: str
    alerts: list[HeldAlert] | None
    attempts: int
    seconds: float
    error: str | None = None
    ignored: int = 0

    @property
    def ok(self) -> bool:
        return self.alerts is not None


class _Final(Exception):
    """A failure another attempt would not change."""


@dataclass
class _Exchange:
    """One request's attempts and what came of the last one."""

    attempts: int = 0
    status: int | None = None
    answer: bytes = b""
    first_error: str | None = None
    error: str | None = None
    ok: bool = False
    seconds: float = 0.0

    def failed(self, message: str) -> None:
        self.first_error = self.first_error or message
        self.error = message


def _exchange(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    budget: float,
    content: bytes | None = None,
    params: Sequence[tuple[str, str]] = (),
    limit: int = _MAX_ANSWER,
    client: httpx.Client | None = None,
) -> _Exchange:
    """One request, retried within ``budget`` seconds by the one policy; never raises."""
    result = _Exchange()
    started = time.monotonic()
    deadline = Deadline(budget)
    own = client is None
    # No keep-alive for our own client: every attempt opens its connection, so the
    # watchdog sees it (a pooled one would be reused without a connect to trace).
    http = client or httpx.Client(
        trust_env=True, follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
    )
    # Reads are cut a little after the deadline, not at it: the last attempt may
    # start on the deadline (see _retry), and a peer that sends nothing at all
    # trips its own read timeout first, which says more than "deadline".
    watchdog = _Watchdog(Deadline(budget + _GRACE))
    too_late = f"deadline: the answer was not complete within the {budget:g} s budget"
    all_headers = {"User-Agent": f"pytest-livecluster/{__version__}", **headers}

    def attempt() -> None:
        result.attempts += 1
        # Added to the URL's own query (a token there is kept); params= would replace it.
        target_url = httpx.URL(url).copy_merge_params(list(params)) if params else url
        timeout = max(0.1, min(_REQUEST_TIMEOUT, deadline.remaining()))
        try:
            with http.stream(
                method,
                target_url,
                content=content,
                headers=all_headers,
                timeout=timeout,
                extensions={"trace": watchdog.trace},
            ) as response:
                watchdog.watch(response.extensions.get("network_stream"))
                result.status = response.status_code
                answer = _read_answer(response, watchdog.deadline, limit)
        except httpx.TransportError as exc:
            if watchdog.fired and not isinstance(exc, httpx.TimeoutException):
                result.failed(too_late)
                raise _Final(too_late) from None
            message = scrub(_transport_error(exc))
            result.failed(message)
            if retryable_http_error(exc):
                raise Retryable(message) from None
            raise _Final(message) from None
        if answer is None:
            result.failed(too_late)
            raise _Final(too_late)
        result.answer = answer
        if response.is_success:
            return
        text = " ".join(
            answer[:_MAX_ANSWER].decode(response.encoding or "utf-8", "replace").split()
        )
        message = scrub(f"HTTP {response.status_code}" + (f" {text[:200]}" if text else ""))
        result.failed(message)
        if retryable_status(response.status_code):
            raise Retryable(message)
        raise _Final(message)

    try:
        with watchdog:
            retrying(first_wait=0.25, max_wait=4.0, jitter=0.25, budget=deadline)(attempt)
        result.ok = True
    except (Retryable, _Final):
        pass
    except Exception as exc:  # a bug or a surprise must not cost the run
        result.failed(scrub(f"{type(exc).__name__}: {exc}"))
    finally:
        if own:
            http.close()
        result.seconds = time.monotonic() - started
    return result


def deliver(
    target: Target,
    alerts: Sequence[Alert],
    *,
    cluster: str,
    link: str | None,
    budget: float,
    client: httpx.Client | None = None,
) -> Delivery:
    """POST ``alerts`` to ``target``, retrying within ``budget`` seconds."""
    firing = sum(a.status == "firing" for a in alerts)
    result = Delivery(target.display, firing, len(alerts) - firing, False, 0, 0.0)
    try:
        body = jsonutil.dumps(target.body(alerts, cluster=cluster, link=link))
    except Exception as exc:  # a bug or a surprise must not cost the run
        _failed(result, scrub(f"{type(exc).__name__}: {exc}"))
        return result
    done = _exchange(
        "POST",
        target.endpoint,
        content=body,
        headers={"Content-Type": "application/json", **target.headers},
        budget=budget,
        client=client,
    )
    result.ok = done.ok
    result.attempts = done.attempts
    result.seconds = done.seconds
    result.status = done.status
    result.first_error = done.first_error
    result.error = done.error
    return result


def read_alerts(
    target: Target,
    *,
    cluster: str,
    budget: float,
    names: Sequence[str] = ALERT_NAMES,
    client: httpx.Client | None = None,
) -> Reading:
    """Which alerts named ``names`` of ``cluster`` Alertmanager holds, not resolved.

    Asked with Alertmanager's own filters (``cluster="NAME"``: no label when
    the cluster has no name), and checked again here, so a proxy that drops
    the query costs nothing: only this cluster's alerts of these names count.
    Silenced and inhibited alerts are held too: they are not resolved.
    """
    done = _exchange(
        "GET",
        target.endpoint,
        params=alertmanager_filters(cluster, names),
        headers={"Accept": "application/json", **target.headers},
        budget=budget,
        limit=_MAX_LIST + 1,
        client=client,
    )
    result = Reading(target.display, None, done.attempts, done.seconds, done.error)
    if not done.ok:
        return result
    if len(done.answer) > _MAX_LIST:
        result.error = f"its answer is larger than {_MAX_LIST // (1024 * 1024)} MiB"
        return result
    try:
        data = orjson.loads(done.answer)
    except orjson.JSONDecodeError:
        result.error = f"its answer is not JSON (HTTP {done.status})"
        return result
    if not isinstance(data, list):
        result.error = f"its answer is not a list of alerts (HTTP {done.status})"
        return result
    held: list[HeldAlert] = []
    for item in data:
        alert = _held(item, cluster, names)
        if alert is None:
            result.ignored += 1
        else:
            held.append(alert)
    result.alerts = held
    result.error = None
    return result


def _held(item: Any, cluster: str, names: Sequence[str]) -> HeldAlert | None:
    """One alert of Alertmanager's answer, if it is one of ours and not resolved."""
    if not isinstance(item, dict) or not isinstance(item.get("labels"), dict):
        return None
    labels = {str(k): str(v) for k, v in item["labels"].items()}
    if labels.get("alertname") not in names or labels.get("cluster", "") != cluster:
        return None
    annotations = item.get("annotations")
    status = item.get("status")
    state = status.get("state") if isinstance(status, dict) else None
    try:
        # Alertmanager lists no alert whose end has passed (by its clock, which is
        # the one that counts), so every one listed is held.
        starts = parse_isotime(str(item.get("startsAt")))
        if starts.tzinfo is None:
            return None
        starts = starts.astimezone(dt.UTC)
    except (ValueError, TypeError, OverflowError):
        return None
    return HeldAlert(
        labels=labels,
        annotations=(
            {str(k): str(v) for k, v in annotations.items()}
            if isinstance(annotations, dict)
            else {}
        ),
        starts_at=starts,
        state=str(state) if state else "active",
    )


def _read_answer(response: httpx.Response, deadline: Deadline, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of the body; None if the deadline passed first."""
    answer = bytearray()
    for chunk in response.iter_bytes():
        if deadline.expired:
            return None
        answer += chunk
        if len(answer) >= limit:
            break
    return bytes(answer[:limit])


class _Watchdog:
    """Shuts down a delivery's connections once ``deadline`` has passed.

    httpx's timeouts are per read; a peer that trickles a byte a second (body,
    status line or headers) would never trip them. The connections are learnt
    from httpx's ``trace`` extension (each new TCP connection) and from the
    response's ``network_stream``; shutting one down wakes the blocked read.
    """

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(deadline.remaining(), self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            self.watch(info.get("return_value"))

    def watch(self, stream: object) -> None:
        get_extra_info = getattr(stream, "get_extra_info", None)
        sock = get_extra_info("socket") if callable(get_extra_info) else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if sock not in self._sockets:
                self._sockets.append(sock)
            fired = self.fired
        if fired:
            shutdown(sock)

    def _cut(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            shutdown(sock)


def _failed(result: Delivery, message: str) -> None:
    result.first_error = result.first_error or message
    result.error = message


def _transport_error(exc: httpx.TransportError) -> str:
    # httpx puts no URL into these messages, but its cause might; keep it short.
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def _counts(firing: int, resolved: int) -> str:
    parts = []
    if firing:
        parts.append(f"{firing} firing")
    if resolved:
        parts.append(f"{resolved} resolved")
    return " and ".join(parts) or "nothing"
