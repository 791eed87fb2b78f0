"""One container's follower: every line of every run, once, across reconnects and restarts.

A follower thread owns one container (:mod:`.discovery` starts it) and loops:

1. Inspect before every request. Running: ``follow=1``. Stopped: one ``follow=0``
   read, unless that run was already read to its end. Never started: nothing.
   Once each stream has had a line, a request resumes with ``since=`` the
   deduplicator's lowest mark less a small margin, in nine-digit nanoseconds (before
   that it reads from the start); the deduplicator (:mod:`.dedup`) drops whatever
   comes again.
2. When a follow ends, discard any partial line (a resume sends all its pieces again)
   and inspect. The same run still going: the connection broke, so reconnect after a
   backoff. The run is over (stopped, waiting for its restart policy, or running
   again): read the end of the run with ``follow=0``, because the engine can end a
   follow before the run's last output; a last line left without a newline is
   delivered from that read, flagged unterminated. A follow still open a few seconds
   after its container died is taken as stalled (rotation) and cut
   (:mod:`.rotation`), which brings the follower here too.
3. Give the container up when there is nothing more to read, unless a ``start``
   came meanwhile. A container whose logs the engine refuses to serve is a failure
   of the session, never "0 lines".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from ..._retry import Backoff
from ...core.ingest import Envelope
from ...core.source import SourceOptions
from ...exceptions import SourceError
from .container import Container, Run, run_of
from .dedup import Deduplicator
from .engine import HEALTHY_AFTER_S, Engine, Stream
from .errors import BODY_ERRORS, DEAD_OR_REMOVED, Closed, Gone, Transient, Unreadable, broken
from .fleet import Fleet
from .frames import LogMessage, LogStreamDecoder
from .rotation import RotationWatch
from .timestamps import format_since

__all__ = ["RESUME_MARGIN_NS", "Follower", "last_line"]

# How far back a resume starts before the mark: a cheap guard against an engine or
# driver that rounds timestamps; the deduplicator drops what the margin sends again.
RESUME_MARGIN_NS: Final = 1_000_000

_new: Final = tuple.__new__


def last_line(
    engine: Engine, stream: Stream, decoder: LogStreamDecoder
) -> tuple[bool, tuple[int, str] | None]:
    """Read a ``tail=1`` answer to its end (and release it): whether it was read whole,
    and the stamp and stream of the last line in it (None if the log is empty)."""
    last: tuple[int, str] | None = None
    try:
        for chunk in stream.chunks():
            for msg in decoder.feed(chunk):
                if msg.stream != "system":
                    last = (msg.ts_ns, msg.stream)
        for msg in decoder.finish(exited=True):
            if msg.stream != "system":
                last = (msg.ts_ns, msg.stream)
    except BODY_ERRORS:
        return False, None
    finally:
        engine.release(stream)
    return True, last


@dataclass
class _Read:
    """How one logs request ended."""

    clean: bool
    lasted: float
    error: str | None = None


class Follower:
    """Follows ``container`` in the calling thread until it is gone or the source closes."""

    def __init__(
        self, fleet: Fleet, container: Container, options: SourceOptions, margin_ns: int
    ) -> None:
        self._fleet = fleet
        self._engine = fleet.engine
        self._container = container
        self._options = options
        self._margin = margin_ns

    def run(self) -> None:
        fleet, container = self._fleet, self._container
        backoff = fleet.backoff(self._options.reconnect_max_wait)
        me = threading.current_thread()
        try:
            while self._keep_following():
                try:
                    again = self._follow_step(backoff)
                except Gone:
                    container.gone = True
                    again = False
                if not again and self._release():
                    return
        except Closed:
            pass
        except BaseException as exc:  # a bug, or emit() failing: end the whole source
            if not fleet.closed:
                fleet.fatal_error(exc, f"container {container.name}: follower failed: {exc!r}")
        finally:
            with fleet.lock:
                # Read to its end (or given up): nothing of its backlog is still coming.
                container.caught = True
                if container.owner is me:
                    container.owner = None
                fleet.forget(container)
                fleet.health.attached = max(0, fleet.health.attached - 1)
                fleet.threads.discard(me)

    def _keep_following(self) -> bool:
        container = self._container
        with self._fleet.lock:
            container.kick = False
            return not (self._fleet.closed or container.gone or container.unreadable)

    def _release(self) -> bool:
        """Give the container up unless a start came meanwhile; True if given up."""
        with self._fleet.lock:
            if self._container.kick and not self._fleet.closed:
                return False
            self._container.owner = None
            return True

    def _follow_step(self, backoff: Backoff) -> bool:
        """Inspect, then make the one request the state calls for; True to look again now."""
        container = self._container
        run = self._inspect(backoff)
        if run is None:
            return not container.gone
        try:
            if run.running:
                return self._follow_run(run, backoff)
            if run.never_started or container.drained == run.key:
                return False
            return self._read_stopped(run, backoff)
        except Unreadable as exc:
            self._unreadable(run, exc)
            return False

    def _inspect(self, backoff: Backoff) -> Run | None:
        """The current run; None if the container is gone or (after a backoff) unreachable."""
        container = self._container
        try:
            info = self._engine.inspect(container.id)
        except Gone:
            container.gone = True
            return None
        except Closed:
            raise
        except SourceError as exc:  # the engine is down, or answered oddly: try again
            self._fleet.note(f"container {container.name}: {exc}")
            backoff.pause()
            return None
        name = str(info.get("Name") or "").lstrip("/")
        if name:
            container.name = name
        labels = (info.get("Config") or {}).get("Labels") or {}
        self._fleet.set_labels(container, {str(k): str(v) for k, v in labels.items()})
        run = run_of(info)
        if container.tty is None:
            container.tty = run.tty
            # A TTY has no stderr: waiting for a stderr line would rule every resume out.
            streams = ("stdout",) if run.tty else ("stdout", "stderr")
            container.dedup = Deduplicator(streams=streams)
        if run.removing:
            container.gone = True
            return None
        return run

    def _read_stopped(self, run: Run, backoff: Backoff) -> bool:
        """One ``follow=0`` read of a stopped container, to the end of its last run."""
        container = self._container
        decoder = self._decoder(run)
        result = self._read(run, decoder, follow=False)
        if not result.clean:
            decoder.finish(exited=False)
            self._fleet.note(f"container {container.name}: {result.error}; reading again")
            self._fleet.count_reconnect()
            backoff.pause()
            return True
        # Only a run that is still over has a final partial line: had the container
        # started again meanwhile, the read's last piece could be a line the new run is
        # still writing, which the next follow delivers whole.
        after = self._inspect(backoff)
        if not container.gone and (after is None or after.key != run.key):
            decoder.finish(exited=False)
            return True
        self._deliver_all(decoder.finish(exited=True))
        container.drained = run.key
        backoff.reset()
        return False

    def _follow_run(self, run: Run, backoff: Backoff) -> bool:
        """``follow=1`` until the stream ends; then see whether the run ended with it."""
        container, fleet = self._container, self._fleet
        if not container.exact and not container.caught:
            self._learn_backlog_end(run)
        decoder = self._decoder(run)
        result = self._read(run, decoder, follow=True)
        # A partial line left at the end of a follow is never delivered from it: the
        # engine can end a follow before the run's last, unterminated output (measured:
        # 2 runs in 5), so a run's end is always read again with follow=0.
        decoder.finish(exited=False)
        if fleet.closed:
            return False
        after = self._inspect(backoff)
        if container.gone:
            if not result.clean:
                fleet.note(f"container {container.name}: removed before its logs were all read")
            return False
        if after is not None and (not after.running or after.started != run.started):
            backoff.reset()
            return True  # the run is over: read its end, then follow the next one
        error = result.error or "the follow ended while the container still ran"
        fleet.note(f"container {container.name}: {error}; reconnecting")
        fleet.count_reconnect()
        if result.lasted >= HEALTHY_AFTER_S:
            backoff.reset()
        backoff.pause()
        return True

    def _decoder(self, run: Run) -> LogStreamDecoder:
        # One byte over the state's limit: a cut line still reads as too long, so the
        # state counts it as too_large (not as broken JSON) and the recording keeps its start.
        return LogStreamDecoder(tty=run.tty, max_line_bytes=self._options.max_line_bytes + 1)

    def _read(self, run: Run, decoder: LogStreamDecoder, *, follow: bool) -> _Read:
        """One logs request, fed through ``decoder`` and the deduplicator, to its end."""
        container = self._container
        watch = RotationWatch(container, run, self._resume_marks())
        container.dedup.begin_replay()
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow)}
        since = container.dedup.resume_since_ns()
        if since is not None:
            params["since"] = format_since(max(0, since - self._margin))
        what = f"GET /containers/{container.name}/logs"
        if container.asked_ns is None:
            container.asked_ns = time.time_ns()
        try:
            stream = self._engine.logs(container.id, params, what)
        except (Gone, Unreadable, Closed):
            raise
        except SourceError as exc:
            return _Read(clean=False, lasted=0.0, error=str(exc))
        container.answered()
        if follow:
            container.stream = stream
        try:
            for chunk in stream.chunks():
                # A chunk's lines go to the state together: one hand-over per chunk, not
                # one per line, between the followers that share the source.
                self._deliver_all(self._checked(watch, decoder.feed(chunk)))
        except BODY_ERRORS as exc:
            return _Read(clean=False, lasted=stream.age(), error=str(broken(exc, what)))
        finally:
            self._fleet.stalls.ended(container)
            self._engine.release(stream)
            if watch.episodes > 1:
                self._fleet.note(
                    f"container {container.name}: {watch.episodes} possible gaps in {what}"
                )
        return _Read(clean=True, lasted=stream.age())

    def _learn_backlog_end(self, run: Run) -> None:
        """Ask the engine for its last line (``tail=1``): once a line of that stream
        stamped as late is delivered, the backlog found at attach is all read. An engine
        that cannot say leaves the quiet rule to decide."""
        container = self._container
        what = f"GET /containers/{container.name}/logs?tail=1"
        params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "tail": 1}
        if container.asked_ns is None:
            container.asked_ns = time.time_ns()
        try:
            stream = self._engine.logs(container.id, params, what, keep_alive=False)
        except (Gone, Unreadable, Closed):
            raise
        except SourceError:
            return
        read, last = last_line(self._engine, stream, self._decoder(run))
        if not read:
            return
        container.backlog_end = last
        container.exact = True
        if last is None:
            container.caught = True  # nothing to read before the follow

    def _resume_marks(self) -> dict[str, int]:
        return {name: int(s["mark_ns"]) for name, s in self._container.dedup.state().items()}

    def _checked(self, watch: RotationWatch, messages: list[LogMessage]) -> list[LogMessage]:
        """The messages to deliver; a rotation gap goes into the health."""
        episodes = watch.episodes
        see = watch.see
        keep = [msg for msg in messages if see(msg)]
        if watch.episodes != episodes:
            fleet = self._fleet
            with fleet.lock:
                fleet.health.gaps += watch.episodes - episodes
                if episodes == 0 and watch.first is not None:
                    fleet.health.error(watch.first)
        return keep

    def _deliver_all(self, messages: list[LogMessage]) -> None:
        """Emit the new lines among ``messages``, in order, in one batch."""
        container = self._container
        admit = container.dedup.admit
        source = self._fleet.origin(container.name)
        batch: list[tuple[bytes, Envelope]] = []
        last: dict[str, int] = {}  # the newest line of each stream in the batch
        for msg in messages:
            if msg.stream == "system":
                text = msg.line.decode("utf-8", "replace").strip()
                self._fleet.note(f"container {container.name}: the engine reported: {text}")
                continue
            if not admit(msg):
                continue
            if msg.truncated:
                size = len(msg.line) + msg.truncated
                self._fleet.note(
                    f"container {container.name}: a {msg.stream} line of {size} bytes was cut "
                    f"to its first {len(msg.line)} (max_line_bytes)"
                )
            # tuple.__new__: the Envelope of every line, at a third of its constructor's cost.
            envelope = _new(Envelope, (source, msg.stream, msg.ts_ns, None, msg.unterminated))
            batch.append((msg.line, envelope))
            last[msg.stream] = msg.ts_ns
        if not batch:
            return
        self._fleet.emit_lines(batch)
        for stream, ts in last.items():
            container.delivered(ts, stream)

    def _unreadable(self, run: Run, exc: Unreadable) -> None:
        """Record a container whose logs the engine will not serve: a failure, never 0 lines."""
        container = self._container
        if DEAD_OR_REMOVED in str(exc) and self._being_removed():
            container.gone = True
            self._fleet.note(f"container {container.name}: removed before its logs were all read")
            return
        self._fleet.fail(
            container,
            f"container {container.name}: the engine cannot serve its logs "
            f"(logging driver {run.driver!r}): {exc}; none of its lines are collected",
        )

    def _being_removed(self) -> bool:
        try:
            info = self._engine.inspect(self._container.id)
        except Gone:
            return True
        except Transient:
            return False
        return run_of(info).removing
