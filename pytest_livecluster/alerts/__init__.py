"""Alerts on anomalies: failing live tests and silent sources, to Alertmanager or webhooks
(layer: alerts, used by the plugin; imports the core and the owners only)."""

from __future__ import annotations

from .alerter import Alerter, AlertRound, AlertSettings
from .delivery import Delivery, deliver
from .ledger import Ledger
from .model import Alert, SourceObservation, TestOutcome
from .targets import Target, parse_target

__all__ = [
    "Alert",
    "AlertRound",
    "AlertSettings",
    "Alerter",
    "Delivery",
    "Ledger",
    "SourceObservation",
    "Target",
    "TestOutcome",
    "deliver",
    "parse_target",
]
