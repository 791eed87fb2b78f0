"""Log rotation under a follow (pitfall 15): the two ways it shows, and what is done.

The engine's json-file reader can lose its place when the file it follows is rotated
(moby/moby#23913, #39235): a resume may find its first line gone, a follow may jump
back to older lines and skip newer ones, or a follow may stall and never end. Lines
rotated away cannot be read again; what a collector can do is notice, say so in the
health (never a silent gap) and not hang:

* :class:`RotationWatch` spots the gaps from the timestamps of one connection;
* :class:`StallCheck` cuts a follow still open a few seconds after its container
  died, so that its follower reads the rest without follow.

Test containers avoid all this with a large ``max-size``, or the ``local`` driver.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from .container import Container, Run
from .engine import Stream
from .frames import LogMessage

if TYPE_CHECKING:
    from .fleet import Fleet

__all__ = ["DIE_GRACE_S", "RotationWatch", "StallCheck"]

# The engine ends a follow right after its container stops; one still open this long
# after the die event has stalled.
DIE_GRACE_S: Final = 5.0


class RotationWatch:
    """Spots lines that log rotation took away, from timestamps alone, in one connection.

    A resume asks for ``since`` at or before each stream's mark, so the engine must
    send the line at the mark again: if a stream's first line is later, the file that
    held it was rotated away, and lines after it may have gone too. Within one
    connection a stream's timestamps never go backwards, except when the engine's
    follow reader loses its place in a rotating file (moby/moby#39235), which in
    measurements came with many lines skipped. Each such episode counts as a gap; the
    lines lost in between cannot be counted: only a writer's own sequence numbers can.
    """

    def __init__(self, container: Container, run: Run, marks: dict[str, int]) -> None:
        self._container = container
        self._run = run
        self._marks = marks
        self._top: dict[str, int] = {}
        self._behind: set[str] = set()
        self.episodes = 0
        self.first: str | None = None

    def see(self, msg: LogMessage) -> bool:
        """Note ``msg``; False if the engine is sending again what this connection already
        sent (it went back), including lines at the highest timestamp: drop those."""
        stream, ts = msg.stream, msg.ts_ns
        if stream == "system":
            return True
        top = self._top.get(stream)
        if top is None:
            self._top[stream] = ts
            mark = self._marks.get(stream)
            if mark is not None and ts > mark:
                self._gap(stream, "a resume did not start at the last line read")
            return True
        if ts > top:
            self._top[stream] = ts
            self._behind.discard(stream)
            return True
        if ts < top and stream not in self._behind:
            self._behind.add(stream)
            self._gap(stream, "the engine went back to older lines mid-stream")
        # At the top and not behind: a line repeated at one timestamp, for the deduplicator.
        return stream not in self._behind

    def _gap(self, stream: str, what: str) -> None:
        self.episodes += 1
        if self.first is None:
            self.first = (
                f"container {self._container.name}: possible gap in {stream}: {what}, so its "
                f"log file was rotated under the reader ({self._run.log_options}); lines may "
                "be lost"
            )


class StallCheck:
    """Cuts a follow still open ``grace`` seconds (:data:`DIE_GRACE_S`) after its
    container died."""

    def __init__(self, fleet: Fleet, grace: float) -> None:
        self._fleet = fleet
        self._grace = grace
        self._timers: set[threading.Timer] = set()

    def expect_end(self, cid: str) -> None:
        """The engine should now end the container's follow: check a little later."""
        fleet = self._fleet
        with fleet.lock:
            container = fleet.containers.get(cid)
            stream = container.stream if container is not None else None
            if container is None or stream is None or fleet.closed:
                return
            timer = threading.Timer(self._grace, self._end_stalled, (container, stream))
            timer.name = f"livecluster-docker-stall-{container.name}"
            timer.daemon = True
            self._timers.add(timer)
            container.stall_check = timer
        timer.start()

    def ended(self, container: Container) -> None:
        """The follow ended: no stall to check for any more."""
        with self._fleet.lock:
            container.stream = None
            timer, container.stall_check = container.stall_check, None
            if timer is not None:
                timer.cancel()
                self._timers.discard(timer)

    def cancel_all(self) -> list[threading.Timer]:
        """Cancel every pending check; the timers, to be joined."""
        with self._fleet.lock:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        return timers

    def _end_stalled(self, container: Container, stream: Stream) -> None:
        """A follow still open after its container died has stalled (its log file was
        rotated away): cut it, so the follower reads the rest without follow."""
        fleet = self._fleet
        with fleet.lock:
            self._timers.discard(threading.current_thread())
            stalled = container.stream is stream and not fleet.closed
        if stalled:
            fleet.note(
                f"container {container.name}: its follow was still open {self._grace:g}s "
                "after the container stopped; reading the rest without follow"
            )
            stream.cut()
