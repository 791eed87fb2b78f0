"""Sources, and turning the specs a user writes into them.

``--live-cluster=SPEC[,SPEC...]`` takes these kinds (see the README):

======================== ====================================================
``docker:label=KEY=VAL`` every container with that label on the Docker engine
``http://…``, ``https://…`` a bare service's ``/logs`` endpoint
``file:PATH``            replay a recording or an NDJSON file (``-``: stdin)
``sim``                  the embedded simulated cluster
======================== ====================================================

A kind is available once its module registers a factory with
:func:`register`; :func:`parse_specs` names the available kinds when a spec
matches none.
"""

from __future__ import annotations

from .base import Emit, Source, SourceHealth, SourceOptions
from .registry import kinds, parse_specs, register, split_specs

# Importing a kind registers it.
from .file import FileSource  # isort: skip
from . import docker, http, sim

__all__ = [
    "Emit",
    "FileSource",
    "Source",
    "SourceHealth",
    "SourceOptions",
    "docker",
    "http",
    "kinds",
    "parse_specs",
    "register",
    "sim",
    "split_specs",
]
