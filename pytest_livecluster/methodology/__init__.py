"""The blades' logging methodology (layer: methodology, above core and sources).

A plugin of the plugin: it brings the vocabulary (:mod:`.schema`), the views
that answer a live test's questions (:mod:`.views`), the ``cluster`` object
with those questions as methods (:mod:`.cluster`), the report's sections
(:mod:`.sections`), the orchestrator's client and fixture (:mod:`.client`,
:mod:`.plugin`) and its settings (:mod:`.config`). It implements the same
hooks (``pytest_livecluster_make_cluster``, ``pytest_livecluster_report``) a
project with another methodology would. It imports the core and the
plugin's options and report types; never a source or the simulator.

Names are imported on first use, so registering the plugin costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .client import OrchestratorClient
    from .cluster import MethodologyCluster
    from .schema import Keys, Methodology
    from .views import Counts, ErrorGroup, IntentView, Phase, Views

__all__ = [
    "Counts",
    "ErrorGroup",
    "IntentView",
    "Keys",
    "Methodology",
    "MethodologyCluster",
    "OrchestratorClient",
    "Phase",
    "Views",
]

_WHERE = {
    "Counts": "views",
    "ErrorGroup": "views",
    "IntentView": "views",
    "Keys": "schema",
    "Methodology": "schema",
    "MethodologyCluster": "cluster",
    "OrchestratorClient": "client",
    "Phase": "views",
    "Views": "views",
}


__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
