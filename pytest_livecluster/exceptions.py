"""Every exception pytest-livecluster raises.

Errors from the libraries underneath (orjson, httpx, docker, tenacity) are
translated into these at the boundary, so a user sees one hierarchy::

    LiveClusterError             base of everything below
    ├── ConfigError              a setting, pattern or source spec is wrong
    │   ├── PatternError         a path pattern cannot be parsed
    │   └── SpecError            a source spec names no known kind of source
    ├── RecordingError           a recording file cannot be read
    ├── SimError                 the simulated cluster failed, or refused a request
    └── SourceError              a source failed while following the cluster
        └── SourceUnavailable    a source cannot be reached or read at all

Each message names the bad value and, where there is a fixed set, the valid
ones. The pytest plugin turns a ``ConfigError`` into ``pytest.UsageError``.
"""

from __future__ import annotations


class LiveClusterError(Exception):
    """Base class of every pytest-livecluster error."""


class ConfigError(LiveClusterError):
    """A setting, a pattern or a source spec is wrong."""


class PatternError(ConfigError):
    """A path pattern cannot be parsed."""


class SpecError(ConfigError):
    """A source spec names no known kind of source, or is malformed."""


class RecordingError(LiveClusterError):
    """A recording file cannot be read."""


class SimError(LiveClusterError):
    """The simulated cluster failed to start, or its control API refused a request."""


class SourceError(LiveClusterError):
    """A source failed while following the cluster."""


class SourceUnavailable(SourceError):
    """A source cannot be reached or read at all."""
