"""Where alerts go: Alertmanager's API v2, or a webhook with a documented body.

A target is written ``KIND+URL``::

    alertmanager+http://alertmanager:9093        POST /api/v2/alerts (and GET: what it holds)
    alertmanager+https://am.example.com/am/?t=x  POST /am/api/v2/alerts?t=x (query kept)
    webhook+https://hooks.example.com/T0/B0/x     POST the webhook body below
    webhook+env:SLACK_WEBHOOK_URL                 the URL from a variable

The URL is a secret as far as output goes: only its scheme, host and port are
ever printed (:attr:`Target.display`); a path, a query or credentials become
``***``. Header values (``livecluster_alert_headers``) are never printed. The
secret parts are registered with :mod:`pytest_livecluster._secrets`, which
masks them wherever they come back (a server's error, a library's message).
Text from tests and logs is escaped for Slack (:mod:`pytest_livecluster._escape`).

The webhook body (``WEBHOOK_VERSION`` 1), one per round with changes::

    {"version": 1, "sender": "pytest-livecluster", "status": "firing",
     "cluster": "staging", "text": "<Slack-compatible summary>",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "...Z", "endsAt": null, "fingerprint": "..."}]}

``status`` is ``firing`` if any alert in it fires, else ``resolved``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from .._escape import alertmanager_matcher, slack
from .._secrets import (
    ENV_PREFIX,
    MASK,
    header_value,
    origin,
    remember,
    remember_url,
    resolve_env,
    scrub_data,
)
from ..exceptions import ConfigError
from .model import Alert, isotime

__all__ = ["KINDS", "Target", "alertmanager_filters", "parse_target"]

WEBHOOK_VERSION: Final = 1
KINDS: Final = ("alertmanager", "webhook")
VALID: Final = "alertmanager+http(s)://HOST:PORT, webhook+http(s)://URL, or KIND+env:VARIABLE"


@dataclass(frozen=True)
class Target:
    """One place alerts are sent to."""

    kind: str
    url: str = field(repr=False)
    display: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        """A stable name of the target that does not reveal its address."""
        return hashlib.sha256(f"{self.kind}+{self.url}".encode()).hexdigest()[:12]

    @property
    def refresh(self) -> bool:
        """Whether firing alerts are re-sent every round (Alertmanager expires them)."""
        return self.kind == "alertmanager"

    @property
    def readable(self) -> bool:
        """Whether the target can be asked which alerts it holds (Alertmanager can)."""
        return self.kind == "alertmanager"

    @property
    def endpoint(self) -> str:
        """The URL requests go to: Alertmanager's API path is appended to the base
        URL's path, before its query (kept for the request); a fragment is dropped."""
        if self.kind == "alertmanager":
            parts = urlsplit(self.url)
            path = parts.path.rstrip("/") + "/api/v2/alerts"
            return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
        return self.url

    def body(self, alerts: Sequence[Alert], *, cluster: str, link: str | None) -> Any:
        # Summaries quote test failures, which may quote what a server echoed.
        if self.kind == "alertmanager":
            return scrub_data([_alertmanager_alert(a, link) for a in alerts])
        return scrub_data(webhook_body(alerts, cluster=cluster, link=link))


def parse_target(text: str, headers: Mapping[str, str] | None = None) -> Target:
    """A :class:`Target` from ``KIND+URL``; header values may be ``env:VARIABLE``."""
    kind, plus, rest = text.strip().partition("+")
    if not plus or kind not in KINDS or not rest:
        shown = _shown(text)
        raise ConfigError(f"--live-alert: cannot use {shown!r}; valid: {VALID}")
    url = resolve_env(rest, what=f"--live-alert: {kind}+{rest}").strip()
    if rest.startswith(ENV_PREFIX):
        remember(url)  # the whole URL is the secret; resolve_env kept it unstripped
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": an unclosed [ in the host
        raise ConfigError(
            f"--live-alert: {_shown(text)!r} is not a valid URL (a bracketed IPv6 "
            f"host must be closed: http://[::1]:PORT/...); valid: {VALID}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--live-alert: {kind}+{_shown(url)!r} is not an http(s) URL; valid: {VALID}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"--live-alert: {kind}+{_shown(url)!r} has a bad port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    display = f"{kind}+{parts.scheme}://{host}" + (f":{port}" if port else "")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
        display += f"/{MASK}"
        _remember_url_parts(url)
    return Target(kind, url, display, _headers(headers or {}, display))


def _remember_url_parts(url: str) -> None:
    """Register what of a target URL is secret: a webhook's path and query carry its token."""
    parts = urlsplit(url)
    remember_url(url)
    remember(url, parts.query, parts.fragment, parts.password or "")
    path = parts.path.strip("/")
    if path:
        # The path and each of its segments (a server may echo just the token), but
        # only what looks like a key: masking "hook" or "services" everywhere would
        # hide ordinary words ("webhook") in every message of the run.
        pieces = [parts.path, path, unquote(path), *path.split("/")]
        remember(*(s for s in pieces if _looks_like_a_key(s)))


def _looks_like_a_key(text: str) -> bool:
    return any(c.isdigit() for c in text) or len(text.strip("/")) >= 16


def _shown(text: str) -> str:
    """What of a bad target may be printed: the kind and host at most."""
    kind, plus, rest = text.strip().partition("+")
    if not plus:
        rest, kind = kind, ""
    where = origin(rest)
    if where:
        shown = f"{where}/{MASK}"
    elif rest.startswith(ENV_PREFIX):
        shown = rest
    else:
        shown = MASK if rest else ""
    return f"{kind}+{shown}" if plus else shown


def _headers(headers: Mapping[str, str], display: str) -> dict[str, str]:
    resolved = {}
    for name, value in headers.items():
        what = f"livecluster_alert_headers: header {name!r} for {display}"
        resolved[name] = header_value(name, value, what=what)
    return resolved


def alertmanager_filters(cluster: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """The query of ``GET /api/v2/alerts`` for ``cluster``'s alerts named ``names``.

    ``cluster=""`` matches alerts without the label: those of an unnamed cluster.
    """
    return [
        ("filter", f"cluster={alertmanager_matcher(cluster)}"),
        ("filter", f"alertname=~{alertmanager_matcher('|'.join(names))}"),
    ]


def _alertmanager_alert(alert: Alert, link: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": isotime(alert.starts_at),
    }
    if alert.ends_at is not None:
        body["endsAt"] = isotime(alert.ends_at)
    if link:
        body["generatorURL"] = link
    return body


def webhook_body(alerts: Sequence[Alert], *, cluster: str, link: str | None) -> dict[str, Any]:
    """The documented webhook body for ``alerts`` (see the module docstring)."""
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return {
        "version": WEBHOOK_VERSION,
        "sender": "pytest-livecluster",
        "status": status,
        "cluster": cluster,
        "text": slack_text(alerts, cluster=cluster, link=link),
        "link": link,
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": isotime(a.starts_at),
                "endsAt": isotime(a.ends_at) if a.status == "resolved" and a.ends_at else None,
                "fingerprint": a.key,
            }
            for a in alerts
        ],
    }


def slack_text(alerts: Sequence[Alert], *, cluster: str, link: str | None) -> str:
    """A short summary in Slack's mrkdwn, one line per alert.

    Test ids and summaries come from test code and cluster logs, so they are
    escaped: a ``<!channel>`` or ``<http://x|y>`` in them stays text.
    """
    where = f" on *{slack(cluster)}*" if cluster else ""
    firing = sum(a.status == "firing" for a in alerts)
    resolved = len(alerts) - firing
    counts = ", ".join(
        f"{n} {word}" for n, word in ((firing, "firing"), (resolved, "resolved")) if n
    )
    lines = [f"pytest-livecluster{where}: {counts}"]
    for a in alerts:
        name = slack(a.name)
        summary = slack(a.annotations.get("summary", ""))
        if a.status == "firing":
            lines.append(f":red_circle: FIRING `{name}`" + (f": {summary}" if summary else ""))
        else:
            lines.append(
                f":large_green_circle: RESOLVED `{name}`"
                + (f" (was: {summary})" if summary else "")
            )
    if link:
        lines.append(f"<{link}|the run>")
    return "\n".join(lines)
