"""The server side of the bare ``/logs`` protocol: the writer kit's, re-exported.

The protocol lives in one place, :mod:`livecluster.logs` (the writer kit in
``writer/``, standard library only, the distribution a service puts in its
image): the buffer, the server, the headers and the framing. The simulated
cluster, the tests and the HTTP source use it through this module, so the
plugin and the services it follows speak exactly the same protocol.
"""

from __future__ import annotations

from livecluster import logs as _logs
from livecluster.logs import *  # noqa: F403  (the protocol's whole public surface)

__all__ = list(_logs.__all__)
