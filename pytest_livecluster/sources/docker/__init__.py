"""``docker:label=KEY=VALUE``: follow every container with that label on one Docker engine;
``swarm:label=KEY=VALUE``: every Swarm service with that label, through a manager.

Layer: sources. Lines go out through ``emit`` with the source id ``docker:<container
name>``; nothing here touches the state. The modules, in the order a line meets them:

* :mod:`.spec`: parses ``docker:label=KEY=VALUE[;host=URL]``.
* :mod:`.engine`: the connection to the engine and the read-only requests made to it.
* :mod:`.errors`: the one table that turns docker-py, requests and urllib3 errors into ours.
* :mod:`.discovery`: events first, then the list, so every labelled container is found once.
* :mod:`.follower`: one thread per container, across its restarts and reconnects.
* :mod:`.frames`: decodes a logs response body (multiplexed frames or TTY) into lines.
* :mod:`.timestamps`: the engine's timestamps as integer nanoseconds, and ``since``.
* :mod:`.dedup`: drops what a resume delivers twice, and only that.
* :mod:`.rotation`: notices what log rotation took away, and cuts stalled follows.
* :mod:`.container`: what is known of one container and of its current run.
* :mod:`.fleet`: the state the discovery and follower threads share, under one lock.
* :mod:`.source`: :class:`DockerSource`, the source interface over all of these.
* :mod:`.swarm`: :class:`SwarmSource`, services through a manager's service logs, with the
  engine, frames, timestamps and deduplication above.
"""

from __future__ import annotations

from .follower import RESUME_MARGIN_NS
from .source import DockerSource
from .spec import DockerSpec, parse_spec
from .swarm import SwarmSource

__all__ = ["RESUME_MARGIN_NS", "DockerSource", "DockerSpec", "SwarmSource", "parse_spec"]
