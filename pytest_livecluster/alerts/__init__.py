"""Alerts on anomalies: failing live tests, broken invariants and silent sources, to
Alertmanager or webhooks
(layer: alerts, used by the plugin; imports the core and the owners only).

Names are imported on first use: a run that does not alert loads only the outcomes' model,
not the HTTP clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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

_WHERE = {
    "INVARIANT_ALERT": "model",
    "Alert": "model",
    "AlertRound": "alerter",
    "AlertSettings": "alerter",
    "Alerter": "alerter",
    "Delivery": "delivery",
    "HeldAlert": "delivery",
    "Holding": "alerter",
    "InvariantOutcome": "model",
    "Ledger": "ledger",
    "Reading": "delivery",
    "SourceObservation": "model",
    "Target": "targets",
    "TestOutcome": "model",
    "deliver": "delivery",
    "parse_target": "targets",
    "read_alerts": "delivery",
}

__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
