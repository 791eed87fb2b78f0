"""pytest-livecluster: unit live tests that check a running cluster through its JSON logs."""

from __future__ import annotations

from .exceptions import (
    ConfigError,
    LiveClusterError,
    PatternError,
    RecordingError,
    SimError,
    SourceError,
    SourceUnavailable,
    SpecError,
)
from .ingest import Envelope, Limits
from .paths import Pattern, format_path, parse_pattern
from .state import JournalEntry, Rejected, State, StateStats, merge_patch

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Envelope",
    "JournalEntry",
    "Limits",
    "LiveClusterError",
    "Pattern",
    "PatternError",
    "RecordingError",
    "Rejected",
    "SimError",
    "SourceError",
    "SourceUnavailable",
    "SpecError",
    "State",
    "StateStats",
    "__version__",
    "format_path",
    "merge_patch",
    "parse_pattern",
]
