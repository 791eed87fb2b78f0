"""Where a simulated process writes: through the writer kit, to stdout and its ``/logs`` buffer.

Every shard goes through a :class:`livecluster.Blade`, as a real blade's would:
one JSON object per line on stdout (exactly what a container runtime collects)
and the same line in the :class:`~livecluster.logs.LogBuffer` that the
process's ``/logs`` endpoint serves. Counts and receipts are the kit's: added in
memory, written cumulatively under the process's own writer key
(``scraper-1/<incarnation>``) at most once per interval, so a restarted process
counts under a new key and no total ever drops. Free text (a traceback) goes to
stderr and to the buffer; that protocol has one stream, so there the stderr
lines sit between the shards, as unstructured lines a reader rejects.
"""

from __future__ import annotations

import threading
from typing import TextIO

from livecluster import Blade
from livecluster.logs import LogBuffer

from .shards import Shard

__all__ = ["Output"]


class Output:
    """Writes one process's log lines. Thread-safe."""

    def __init__(self, buffer: LogBuffer, stdout: TextIO, stderr: TextIO, host: str) -> None:
        self.buffer = buffer
        self.blade = Blade(host, stream=stdout, buffer=buffer)
        self._stderr = stderr
        self._lock = threading.Lock()

    def shard(self, shard: Shard) -> None:
        """One shard, written now."""
        self.blade.write(shard)

    def count(self, iid: str, domain: str, **fields: int | float) -> None:
        """Add to this process's counts of ``iid`` on ``domain`` (written coalesced)."""
        self.blade.count(iid, domain, **fields)

    def received(self, iid: str, n: int, sender: str) -> None:
        """Add ``n`` items received for ``iid`` from ``sender`` (written coalesced)."""
        self.blade.received(iid, n, sender=sender)

    def flush(self) -> None:
        """Write the pending counts now."""
        self.blade.flush()

    def text(self, text: str) -> None:
        """Free text on stderr, each of its lines a line of the log."""
        with self._lock:
            for line in text.splitlines():
                if line.strip():
                    _write(self._stderr, line)
                    self.buffer.append(line)


def _write(stream: TextIO, line: str) -> None:
    # A reader that went away must not stop the process; /logs still has the line.
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass
