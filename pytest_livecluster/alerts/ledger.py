"""The alert ledger: which alerts fire, and what each target has been told.

It outlives the run (a JSON file, by default in pytest's cache), so the same
failure in consecutive runs is announced once, a test must fail
``fire_after`` times in a row before it fires, and a delivery that failed is
tried again by the next run. It holds labels and annotations only, never a
target's address: targets are known by a hash of it.

Without it (no path, a file that could not be read, or none yet) it knows
nothing of earlier runs: :attr:`Ledger.unknown_history` says why, and the
alerter asks Alertmanager what it holds instead; a webhook cannot be asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from .._files import write_atomic
from .._secrets import scrub_data
from .model import Alert, Status, fingerprint, isotime, parse_isotime

__all__ = ["Entry", "Ledger", "Transition"]

LEDGER_VERSION = 1

Transition = Literal["fired", "resolved"]


@dataclass
class Entry:
    """One alert the ledger follows: failing (maybe not yet firing), firing or resolved."""

    labels: dict[str, str]
    annotations: dict[str, str]
    since: dt.datetime
    failures: int = 0
    firing: bool = False
    resolved_at: dt.datetime | None = None
    delivered: dict[str, Status] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return fingerprint(self.labels)

    def desired(self) -> Status | None:
        """What targets should know of it; None while it has not fired."""
        if self.firing:
            return "firing"
        return "resolved" if self.resolved_at is not None else None

    def alert(self, *, expires: dt.datetime) -> Alert:
        status = self.desired() or "firing"
        return Alert(
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            status=status,
            starts_at=self.since,
            ends_at=self.resolved_at if status == "resolved" else expires,
            key=self.key,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "since": isotime(self.since),
            "failures": self.failures,
            "firing": self.firing,
            "resolved_at": isotime(self.resolved_at) if self.resolved_at else None,
            "delivered": self.delivered,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        resolved = data.get("resolved_at")
        return cls(
            labels={str(k): str(v) for k, v in data["labels"].items()},
            annotations={str(k): str(v) for k, v in data.get("annotations", {}).items()},
            since=_when(data["since"]),
            failures=int(data.get("failures", 0)),
            firing=bool(data.get("firing", False)),
            resolved_at=_when(resolved) if resolved else None,
            delivered={
                str(k): v
                for k, v in data.get("delivered", {}).items()
                if v in ("firing", "resolved")
            },
        )


def _when(value: Any) -> dt.datetime:
    """A stored time, in UTC; ValueError if it has no zone or no UTC equivalent.

    ``0001-01-01T00:00:00+23:59`` parses, but is before year 1 in UTC: kept as
    it is, it would crash the run when it is next written or compared.
    """
    when = parse_isotime(str(value))
    if when.tzinfo is None:
        raise ValueError(f"{str(value)[:40]!r} has no time zone")
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{str(value)[:40]!r} is out of range in UTC") from None


class Ledger:
    """Alert lifecycle with flap control, persisted to ``path`` (``None``: this run only)."""

    def __init__(self, path: Path | None = None, *, fire_after: int = 1) -> None:
        self.path = path
        self.fire_after = fire_after
        self.entries: dict[str, Entry] = {}
        self.load_error: str | None = None
        #: Why this ledger does not know what earlier runs told the targets; None if it does.
        self.unknown_history: str | None = (
            "no alert ledger is kept (pytest's cache is off; --live-alert-ledger=PATH keeps one)"
            if path is None
            else None
        )
        if path is not None:
            self._load(path)

    # -- observations ---------------------------------------------------------------

    def failing(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        now: dt.datetime,
        *,
        fire_after: int | None = None,
    ) -> Transition | None:
        """One more failure of the alert ``labels``; ``"fired"`` when it starts firing."""
        key = fingerprint(labels)
        entry = self.entries.get(key)
        if entry is None or (not entry.firing and entry.resolved_at is not None):
            delivered = entry.delivered if entry is not None else {}
            entry = Entry(dict(labels), dict(annotations), since=now, delivered=delivered)
            self.entries[key] = entry
        entry.labels = dict(labels)
        entry.annotations = dict(annotations)
        entry.failures += 1
        if not entry.firing and entry.failures >= (fire_after or self.fire_after):
            entry.firing = True
            entry.resolved_at = None
            return "fired"
        return None

    def passing(
        self, labels: Mapping[str, str], now: dt.datetime, *, note: str | None = None
    ) -> Transition | None:
        """The alert's condition no longer holds; ``"resolved"`` if it was firing.

        ``note`` says why, as the resolution's ``resolution`` annotation.
        """
        key = fingerprint(labels)
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.firing:
            entry.firing = False
            entry.failures = 0
            entry.resolved_at = now
            if note:
                entry.annotations["resolution"] = note
            return "resolved"
        if entry.resolved_at is None:
            del self.entries[key]  # failing, but not long enough to fire: forgotten
        return None

    def adopt(self, key: str, since: dt.datetime) -> bool:
        """A target holds alert ``key`` firing and its condition failed again: it fires.

        For a ledger that lost its history (or flap control still counting):
        the alert keeps firing, and starts when the target says it started.
        True if that made it fire.
        """
        entry = self.entries.get(key)
        if entry is None or entry.failures == 0:
            return False
        entry.since = min(entry.since, since)
        if entry.firing:
            return False
        entry.firing = True
        entry.resolved_at = None
        return True

    # -- delivery -------------------------------------------------------------------

    def outbox(self, target: str, *, refresh: bool, expires: dt.datetime) -> list[Alert]:
        """What ``target`` must be sent: every change it has not been told of.

        With ``refresh`` (Alertmanager) firing alerts are re-sent every round,
        so their expiry moves on; the receiver deduplicates them.
        """
        alerts = []
        for entry in self.entries.values():
            desired = entry.desired()
            told = entry.delivered.get(target)
            if desired is None or (desired == "resolved" and told is None):
                continue
            if desired != told or (refresh and desired == "firing"):
                alerts.append(entry.alert(expires=expires))
        return alerts

    def delivered(self, target: str, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            entry = self.entries.get(alert.key)
            if entry is not None and entry.desired() == alert.status:
                entry.delivered[target] = alert.status

    def prune(self, targets: Iterable[str]) -> None:
        """Forget resolved alerts every target knows about (or never heard of)."""
        targets = list(targets)
        for key, entry in list(self.entries.items()):
            if entry.desired() == "resolved" and all(
                entry.delivered.get(t) in (None, "resolved") for t in targets
            ):
                del self.entries[key]

    def firing(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.firing]

    # -- persistence ----------------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = orjson.loads(path.read_bytes())
            ours = data.get("ledger_version") == LEDGER_VERSION
            entries = data["alerts"] if ours else {}
            if not ours:
                self.unknown_history = "the alert ledger is of another version"
            damaged = []
            for key, item in entries.items():
                # One damaged entry costs that alert's history (it fires anew and
                # replaces it), never the others or the run.
                try:
                    entry = Entry.from_json(item)
                except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
                    damaged.append(f"{str(key)[:40]!r}: {type(exc).__name__}: {exc}")
                    continue
                self.entries[entry.key] = entry
            if damaged:
                self.unknown_history = "the alert ledger had damaged entries"
                self.load_error = (
                    f"alert ledger {path}: {len(damaged)} damaged "
                    f"entr{'y' if len(damaged) == 1 else 'ies'} dropped "
                    f"({'; '.join(damaged[:3])}{'; ...' if len(damaged) > 3 else ''}); "
                    "they start afresh and are replaced when next saved"
                )
        except FileNotFoundError:
            self.unknown_history = "the alert ledger did not exist before this run"
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            # A damaged ledger costs a repeated notification, never the run.
            self.load_error = f"alert ledger {path} could not be read ({exc}); starting afresh"
            self.unknown_history = "the alert ledger could not be read"
            self.entries = {}

    def save(self) -> None:
        if self.path is None:
            return
        body = orjson.dumps(
            {
                "ledger_version": LEDGER_VERSION,
                # Summaries may quote a server's echo of a credential.
                "alerts": scrub_data({k: e.as_json() for k, e in sorted(self.entries.items())}),
            },
            option=orjson.OPT_INDENT_2,
        )
        write_atomic(self.path, body)
