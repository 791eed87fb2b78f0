"""Sending alerts: one POST per target and round, retried with backoff, bounded in time.

Delivery never raises and never outlives its budget: a target that is down
costs at most ``budget`` seconds, and the outcome (attempts, the first and
last error) goes into the run report. What is retried, and how, is the one
policy of :mod:`pytest_livecluster._retry`: a refused or dropped connection, a
timeout, 408, 425, 429 and 5xx; any other answer is final. Error text is
scrubbed of the target's secrets before anyone sees it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from .._retry import Deadline, Retryable, retryable_http_error, retryable_status, retrying
from .._secrets import scrub
from .._version import __version__
from ..core import jsonutil
from .model import Alert
from .targets import Target

__all__ = ["Delivery", "deliver"]

_REQUEST_TIMEOUT = 5.0


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


class _Final(Exception):
    """A failure another attempt would not change."""


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
    body = jsonutil.dumps(target.body(alerts, cluster=cluster, link=link))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"pytest-livecluster/{__version__}",
        **target.headers,
    }
    started = time.monotonic()
    deadline = Deadline(budget)
    own = client is None
    http = client or httpx.Client(trust_env=True, follow_redirects=False)

    def attempt() -> None:
        result.attempts += 1
        timeout = max(0.1, min(_REQUEST_TIMEOUT, deadline.remaining()))
        try:
            response = http.post(target.endpoint, content=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            message = scrub(_transport_error(exc))
            _failed(result, message)
            if retryable_http_error(exc):
                raise Retryable(message) from None
            raise _Final(message) from None
        result.status = response.status_code
        if response.is_success:
            return
        text = " ".join(response.text.split())[:200]
        message = scrub(f"HTTP {response.status_code}" + (f" {text}" if text else ""))
        _failed(result, message)
        if retryable_status(response.status_code):
            raise Retryable(message)
        raise _Final(message)

    try:
        retrying(first_wait=0.25, max_wait=4.0, jitter=0.25, budget=deadline)(attempt)
        result.ok = True
    except (Retryable, _Final):
        pass
    except Exception as exc:  # a bug or a surprise must not cost the run
        _failed(result, scrub(f"{type(exc).__name__}: {exc}"))
    finally:
        if own:
            http.close()
        result.seconds = time.monotonic() - started
    return result


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
