"""A ``/logs`` server that a test running in a pytester subprocess can drive.

``GET /cue?delay=S&line=JSON[&line=JSON...]`` answers at once and appends the
lines to the log ``S`` seconds later, all at once, so an inner test can start waiting and
then see the shards it asked for arrive.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

from pytest_livecluster.protocol.server import LogBuffer, LogRequestHandler, LogServer

#: The first line a :class:`CueServer` fixture writes.
HELLO = '{"scraper-1": {"msg": "Hello World"}}'

#: Source for an inner test module: ``cue(url, *lines, delay=)`` asks the server for lines.
CUE_HELPER = """
import urllib.parse, urllib.request

def cue(url, *lines, delay=0.2):
    query = urllib.parse.urlencode([("delay", delay)] + [("line", l) for l in lines])
    urllib.request.urlopen(f"{url}?{query}", timeout=5).read()
"""


class _CueHandler(LogRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/cue":
            super().do_GET()
            return
        query = parse_qs(url.query)
        delay = float(query.get("delay", ["0"])[0])
        lines = query.get("line", [])
        owner = self.log_server
        assert isinstance(owner, CueServer)
        # In one go: a reader gets the lines in one send.
        timer = threading.Timer(delay, owner.buffer.extend, args=(lines,))
        timer.daemon = True
        owner.timers.append(timer)
        timer.start()
        self.send_plain(200, f"{len(lines)} line(s) in {delay} s")


class CueServer(LogServer):
    """A :class:`LogServer` with a ``/cue`` endpoint; ``cue_url`` is its address."""

    def __init__(self, heartbeat: float = 0.5) -> None:
        super().__init__(LogBuffer(), heartbeat=heartbeat)
        self.handler_class = _CueHandler
        self.timers: list[threading.Timer] = []

    @property
    def cue_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/cue"

    def write(self, *lines: str) -> None:
        for line in lines:
            self.buffer.append(line)

    def close(self) -> None:
        for timer in self.timers:
            timer.cancel()
        super().close()
