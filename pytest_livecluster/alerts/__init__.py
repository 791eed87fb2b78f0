"""Alerts on anomalies: failing live tests, broken invariants and silent sources, to
Alertmanager or webhooks
(layer: alerts, used by the plugin; imports the core and the owners only)."""

from __future__ import annotations

from .alerter import Alerter, AlertRound, AlertSettings, Holding
from .delivery import Delivery, HeldAlert, Reading, deliver, read_alerts
from .ledger import Ledger
from .model import INVARIANT_ALERT, Alert, InvariantOutcome, SourceObservation, TestOutcome
from .targets import Target, parse_target

__all__ = [
    "INVARIANT_ALERT",
    "Alert",
    "AlertRound",
    "AlertSettings",
    "Alerter",
    "Delivery",
    "HeldAlert",
    "Holding",
    "InvariantOutcome",
    "Ledger",
    "Reading",
    "SourceObservation",
    "Target",
    "TestOutcome",
    "deliver",
    "parse_target",
    "read_alerts",
]
