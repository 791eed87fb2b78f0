"""Sources: where the cluster's lines come from (layer: sources, above core).

``--live-cluster=SPEC[,SPEC...]`` takes these kinds (see the README):

======================== ====================================================
``docker:label=KEY=VAL`` every container with that label on the Docker engine
``http://…``, ``https://…`` a bare service's ``/logs`` endpoint
``file:PATH``            replay a recording or an NDJSON file (``-``: stdin)
``sim``                  the embedded simulated cluster
======================== ====================================================

Every kind implements :class:`~.base.Source`. Kinds are imported lazily, by
:func:`~.registry.parse_specs`, when a spec of theirs is built: importing this
package imports none of docker-py, httpx or the simulator. Sources import the
core and the owners of secrets, retries and files; never the plugin.
"""

from __future__ import annotations

from ..core.source import Emit, Source, SourceHealth, SourceOptions, SourceState
from .registry import Kind, kinds, parse_specs, register, split_specs

__all__ = [
    "Emit",
    "Kind",
    "Source",
    "SourceHealth",
    "SourceOptions",
    "SourceState",
    "kinds",
    "parse_specs",
    "register",
    "split_specs",
]
