"""Ending a connection from another thread: one owner for every source and server.

A thread blocked in ``recv()`` wakes only when its socket is shut down; closing
the file descriptor under it would not wake it, and the number could be reused
by a new socket while it still reads. So the one that wants the connection
gone (``close()`` of a source, a server that stops) calls :func:`shutdown`, and
the reading thread closes the socket on its way out.

Standard library only, so the server side of the ``/logs`` protocol can use it.
"""

from __future__ import annotations

import contextlib
import socket

__all__ = ["shutdown"]


def shutdown(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways, waking the thread blocked on it; never raises.

    The file descriptor stays open (its reader closes it), so it cannot be reused.
    """
    # socket.socket.shutdown even for an SSLSocket: SSLSocket.shutdown() would
    # also drop its TLS object under the feet of the thread still reading.
    # OSError: the peer or the reader got there first; the connection is gone.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
