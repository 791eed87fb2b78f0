"""pytest-livecluster: unit live tests that check a running cluster through its JSON logs.

The public API is the names in ``__all__``; everything else is internal. Names
are imported on first use (PEP 562), so loading the pytest plugin on a run
that does not follow a cluster imports none of the engine.

The package in layers, each importing only the ones below it (see the
README's "Architecture")::

    plugin/        pytest: hooks, settings, the run, watch mode, outcomes, xdist, report
    methodology/   the blades' vocabulary, views, report sections, orchestrator fixture
    alerts/        alert ledger, targets and delivery
    sources/       file, http, docker/, sim: where lines come from
    sim/           the simulated cluster (only the sim source imports it)
    protocol/      the /logs protocol's constants and a reusable server
    core/          state, merge, ingest, paths, recording, collector, waiting, Cluster
    owners         exceptions, _secrets, _escape, _files, _retry, _sockets, _values, _lazy
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

if TYPE_CHECKING:
    from .core.cluster import Cluster, Cursor
    from .core.ingest import Envelope, Limits
    from .core.invariants import Invariant
    from .core.paths import Pattern, format_path, parse_pattern
    from .core.projection import Projection
    from .core.state import JournalEntry, Rejected, State, StateStats, merge_patch
    from .core.waiting import consistently, eventually
    from .exceptions import (
        ConfigError,
        ConsistentlyFailed,
        EventuallyFailed,
        Failure,
        LiveClusterError,
        PatternError,
        RecordingError,
        SimError,
        SourceError,
        SourceUnavailable,
        SpecError,
        WaitFailed,
    )
    from .methodology.client import OrchestratorClient
    from .methodology.cluster import MethodologyCluster
    from .methodology.views import Phase

_WHERE = {
    "Cluster": "core.cluster",
    "Cursor": "core.cluster",
    "Envelope": "core.ingest",
    "Limits": "core.ingest",
    "Invariant": "core.invariants",
    "Projection": "core.projection",
    "Pattern": "core.paths",
    "format_path": "core.paths",
    "parse_pattern": "core.paths",
    "JournalEntry": "core.state",
    "Rejected": "core.state",
    "State": "core.state",
    "StateStats": "core.state",
    "merge_patch": "core.state",
    "consistently": "core.waiting",
    "eventually": "core.waiting",
    "ConfigError": "exceptions",
    "ConsistentlyFailed": "exceptions",
    "EventuallyFailed": "exceptions",
    "Failure": "exceptions",
    "LiveClusterError": "exceptions",
    "PatternError": "exceptions",
    "RecordingError": "exceptions",
    "SimError": "exceptions",
    "SourceError": "exceptions",
    "SourceUnavailable": "exceptions",
    "SpecError": "exceptions",
    "WaitFailed": "exceptions",
    "MethodologyCluster": "methodology.cluster",
    "OrchestratorClient": "methodology.client",
    "Phase": "methodology.views",
}

__all__ = [
    "Cluster",
    "ConfigError",
    "ConsistentlyFailed",
    "Cursor",
    "Envelope",
    "EventuallyFailed",
    "Failure",
    "Invariant",
    "JournalEntry",
    "Limits",
    "LiveClusterError",
    "MethodologyCluster",
    "OrchestratorClient",
    "Pattern",
    "PatternError",
    "Phase",
    "Projection",
    "RecordingError",
    "Rejected",
    "SimError",
    "SourceError",
    "SourceUnavailable",
    "SpecError",
    "State",
    "StateStats",
    "WaitFailed",
    "__version__",
    "consistently",
    "eventually",
    "format_path",
    "merge_patch",
    "parse_pattern",
]


__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
