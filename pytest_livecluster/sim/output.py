"""Where a simulated process writes: its stdout and stderr, and its ``/logs`` buffer.

Shards go to stdout, one JSON object per line, flushed at once, so stdout is
exactly what a container runtime would collect (pure shard lines, nothing
else). Free text (a traceback) goes to stderr. Both also go to the
:class:`~pytest_livecluster.protocol.server.LogBuffer` that the process's
``/logs`` endpoint serves; that protocol has one stream, so there the stderr
lines sit between the shards, as unstructured lines a reader rejects.
"""

from __future__ import annotations

import json
import threading
from typing import TextIO

from ..protocol.server import LogBuffer
from .shards import Shard

__all__ = ["Output"]


class Output:
    """Writes one process's log lines, in one order for every destination. Thread-safe."""

    def __init__(self, buffer: LogBuffer, stdout: TextIO, stderr: TextIO) -> None:
        self.buffer = buffer
        self._stdout = stdout
        self._stderr = stderr
        self._lock = threading.Lock()

    def shard(self, shard: Shard) -> None:
        line = json.dumps(shard, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            _write(self._stdout, line)
            self.buffer.append(line)

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
