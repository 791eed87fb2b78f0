"""Finding the labelled containers, including those started later, each exactly once.

Discovery, in this order, so that no container is missed and none is followed twice:

1. Subscribe to ``GET /events`` (type=container, label=KEY=VALUE, ``since=T0``) *before*
   listing: a container started while the list is in flight still arrives as an event.
2. List ``GET /containers/json?all=1`` with the same label and reconcile by container id:
   each container gets one record (name, deduplicator, the last run read to its end) and
   at most one follower thread. Exited containers are read once, with ``follow=0``.
3. Read the events: ``start`` gives the container a follower, or tells the busy one to
   look again; ``create`` does not, since a follow opened before the start ends at once;
   ``die`` has the container's follow checked for a stall (:class:`~.rotation.StallCheck`);
   ``destroy`` retires the record.
4. Any end of the events stream is an error: reconnect with ``since=<last timeNano>``
   after a backoff, then list and reconcile again, which finds whatever the missed
   events were about.

Each follower then reads its container on its own (:mod:`.follower`), and
:meth:`~.source.DockerSource.caught_up` says when the backlog found at attach is read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import orjson

from ..._retry import Backoff
from ...core.source import SourceState
from ...exceptions import SourceError
from .container import Container
from .engine import HEALTHY_AFTER_S, Stream
from .errors import BODY_ERRORS, Closed, Transient, broken
from .fleet import Fleet
from .timestamps import format_since

__all__ = ["EVENTS_LOOKBACK_NS", "Discovery", "keep_following", "read_events"]

_NS: Final = 1_000_000_000
# Replay buffered events from a little before the start, so none falls between the
# subscription and the list. Live events are delivered whatever ``since`` says.
EVENTS_LOOKBACK_NS: Final = 2 * _NS


class Discovery:
    """The source's own thread: events, lists, and a follower for each container.

    ``follow`` is run in a new thread for a container that needs a follower.
    """

    def __init__(
        self, fleet: Fleet, label: str, follow: Callable[[Container], None], *, max_wait: float
    ) -> None:
        self._fleet = fleet
        self._engine = fleet.engine
        self._label = label
        self._follow = follow
        self._max_wait = max_wait
        self._last_event_ns: int | None = None

    def run(self) -> None:
        """Follow the events until the source closes, reconnecting after a backoff."""
        fleet = self._fleet

        def reconnecting(error: str) -> None:
            fleet.note(f"{error}; reconnecting")
            fleet.count_reconnect()
            fleet.health.state = SourceState.RECONNECTING

        keep_following(
            self._follow_events,
            backoff=fleet.backoff(self._max_wait),
            closed=lambda: fleet.closed,
            reconnecting=reconnecting,
            last_event=lambda: self._last_event_ns,
        )

    def _follow_events(self, since_ns: int) -> None:
        filters = orjson.dumps({"type": ["container"], "label": [self._label]})
        params = {"since": format_since(since_ns), "filters": filters.decode()}
        stream = self._engine.events(params)
        try:
            self._reconcile()
            self._fleet.health.state = SourceState.ATTACHED
            for event in read_events(stream):
                self._on_event(event)
        except BODY_ERRORS as exc:
            raise broken(exc, "GET /events") from exc
        finally:
            self._engine.release(stream)

    def _reconcile(self) -> None:
        """List the labelled containers and make sure each has the follower it needs."""
        fleet = self._fleet
        listed = self._engine.list(self._label)
        seen: set[str] = set()
        for item in listed:
            cid = str(item.get("Id", ""))
            names = item.get("Names") or [cid[:12]]
            seen.add(cid)
            container = fleet.track(cid, str(names[0]).lstrip("/"))
            if item.get("State") != "created":
                self._ensure_follower(container)
        with fleet.lock:
            for container in list(fleet.containers.values()):
                if container.id not in seen:
                    container.gone = True
                    fleet.forget(container)
        fleet.listed = True

    def _on_event(self, event: Mapping[str, Any]) -> None:
        time_nano = event.get("timeNano")
        if isinstance(time_nano, int):
            self._last_event_ns = time_nano
        actor = event.get("Actor") or {}
        cid = str(event.get("id") or actor.get("ID") or "")
        action = str(event.get("Action") or event.get("status") or "")
        name = str((actor.get("Attributes") or {}).get("name") or cid[:12])
        if not cid:
            return
        fleet = self._fleet
        if action == "start":
            self._ensure_follower(fleet.track(cid, name))
        elif action == "rename":
            fleet.track(cid, name).name = name
        elif action == "die":
            self._fleet.stalls.expect_end(cid)
        elif action == "destroy":
            with fleet.lock:
                container = fleet.containers.get(cid)
                if container is not None:
                    container.gone = True
                    fleet.forget(container)

    def _ensure_follower(self, container: Container) -> None:
        fleet = self._fleet
        with fleet.lock:
            if container.gone or container.unreadable or fleet.closed:
                return
            if container.owner is not None:
                container.kick = True
                return
            thread = threading.Thread(
                target=self._follow,
                args=(container,),
                name=f"livecluster-docker-{container.name}",
                daemon=True,
            )
            container.owner = thread
            container.kick = False
            fleet.health.attached += 1
            fleet.threads.add(thread)
        thread.start()


def keep_following(
    follow: Callable[[int], None],
    *,
    backoff: Backoff,
    closed: Callable[[], bool],
    reconnecting: Callable[[str], None],
    last_event: Callable[[], int | None],
) -> None:
    """Run ``follow(since_ns)`` (one events subscription, to its end) until the source
    closes: any end is reported through ``reconnecting``, then after a backoff the next
    subscription starts from the last event seen (``last_event()``)."""
    since = time.time_ns() - EVENTS_LOOKBACK_NS
    while not closed():
        started = time.monotonic()
        try:
            follow(since)
            error = "the events stream ended"
        except Closed:
            return
        except SourceError as exc:
            error = str(exc)
        if closed():
            return
        reconnecting(error)
        if time.monotonic() - started >= HEALTHY_AFTER_S:
            backoff.reset()
        if not backoff.pause():
            return
        since = last_event() or since


def read_events(stream: Stream) -> Iterator[dict[str, Any]]:
    """The JSON objects of an events body, one a line, however the chunks fall."""
    pending = b""
    for chunk in stream.chunks():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise Transient(f"GET /events: not JSON: {line[:200]!r}") from exc
            if isinstance(event, dict):
                yield event
