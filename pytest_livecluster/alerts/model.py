"""What alerting works on: observations of a round, and the alerts they become.

An alert is known by its identity labels (``alertname``, ``cluster`` and
``test``, ``source`` or ``invariant``): the same failing test in the next run
is the same alert, so it is not announced again. Other labels (``severity``) and the
annotations go with it but do not change who it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ALERT_NAMES",
    "IDENTITY_LABELS",
    "INVARIANT_ALERT",
    "SILENT_ALERT",
    "TEST_ALERT",
    "Alert",
    "InvariantOutcome",
    "SourceObservation",
    "Status",
    "TestOutcome",
    "alert_name",
    "fingerprint",
    "isotime",
]

Status = Literal["firing", "resolved"]

#: Labels that make an alert what it is; the rest may change while it fires.
#: (New ones go last: an alert's fingerprint must not change between versions.)
IDENTITY_LABELS = ("alertname", "cluster", "test", "source", "invariant")

TEST_ALERT = "LiveTestFailing"
SILENT_ALERT = "LiveSourceSilent"
INVARIANT_ALERT = "LiveInvariantBroken"
#: Every alert name this package sends: what it reads back from Alertmanager.
ALERT_NAMES = (TEST_ALERT, SILENT_ALERT, INVARIANT_ALERT)


@dataclass(frozen=True)
class TestOutcome:
    """How one live test ended in one round."""

    __test__ = False  # not a test class, despite its name

    nodeid: str
    failed: bool
    headline: str = ""
    details: str = ""
    severity: str | None = None


@dataclass(frozen=True)
class InvariantOutcome:
    """Whether one invariant of the cluster held in one round (``broken``: it did not)."""

    name: str
    broken: bool
    headline: str = ""
    details: str = ""
    severity: str | None = None


@dataclass(frozen=True)
class SourceObservation:
    """How long one source had been silent when the round ended."""

    source: str
    silent_for: float
    state: str


@dataclass(frozen=True)
class Alert:
    """One alert as it is sent."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    status: Status
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    key: str = field(default="")

    @property
    def name(self) -> str:
        return alert_name(self.labels)


def alert_name(labels: Mapping[str, str]) -> str:
    """What an alert is about, for people: its test, invariant, source, or its name."""
    return (
        labels.get("test")
        or labels.get("invariant")
        or labels.get("source")
        or labels.get("alertname", "")
    )


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable key of an alert's identity labels."""
    ident = "\x1f".join(f"{k}={labels[k]}" for k in IDENTITY_LABELS if labels.get(k))
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]


def isotime(when: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Alertmanager and most receivers expect."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_isotime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
