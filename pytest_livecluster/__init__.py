"""pytest-livecluster: unit live tests that check a running cluster through its JSON logs."""

from __future__ import annotations

from ._version import __version__
from .core.ingest import Envelope, Limits
from .core.paths import Pattern, format_path, parse_pattern
from .core.state import JournalEntry, Rejected, State, StateStats, merge_patch
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
