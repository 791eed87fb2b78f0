"""The simulated cluster: an orchestrator, scrapers and spotters as real processes
(layer: sim; only the ``sim`` source imports it, and it writes the methodology's
vocabulary from :mod:`pytest_livecluster.methodology.schema`).

It exists so the plugin can be tried, demonstrated and tested without a real
cluster, and so every fault a live test should catch can be produced on
demand. It logs exactly as the architecture notes describe (see
:mod:`.shards` for every shard it writes), and each process serves its log on
``/logs`` and writes the same shards to stdout.

Module map:

============================ =====================================================
:mod:`.cluster`              :class:`SimCluster`: start, supervise, stop the processes
:mod:`.client`               :class:`OrchestratorClient`: intents, module updates, faults
:mod:`.faults`               :data:`FAULTS` and the fault table
:mod:`.blade`                the entry point of one process (``python -m ...sim.blade``)
:mod:`.node`                 what every process does (hello, faults, errors, updates)
:mod:`.orchestrator`, :mod:`.scraper`, :mod:`.spotter`   the roles
:mod:`.shards`               the logging methodology: every shard, built in one place
:mod:`.output`               stdout/stderr plus the ``/logs`` buffer
:mod:`.control`              the JSON control API, server and process-to-process client
:mod:`.supervisor`           one supervised process and its files
:mod:`.containers`           the docker mode: each process a labelled container
:mod:`.persist`              what a process keeps across a restart
============================ =====================================================

A healthy scrape intent resolves through both phases (the scraper's
``item_scraped`` counts, the spotter's ``received``) within about 1.5 s.
"""

from __future__ import annotations

from ..methodology.client import OrchestratorClient
from .cluster import SimCluster
from .errors import SimError
from .faults import FAULTS, parse_faults
from .scraper import DEFAULT_DOMAINS
from .shards import Keys

__all__ = [
    "DEFAULT_DOMAINS",
    "FAULTS",
    "Keys",
    "OrchestratorClient",
    "SimCluster",
    "SimError",
    "parse_faults",
]
