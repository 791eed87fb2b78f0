"""``swarm:label=KEY=VALUE[;host=URL]``: every Swarm service with that label, through a manager.

A swarm manager serves the log of every task, from every node, through
``GET /tasks/{id}/logs``; the source follows that, so nothing runs on the nodes.
(It does not read ``GET /services/{id}/logs``: on Engine 20.10 that merged log
drops lines when the tasks have a backlog, while each task's own log is whole.)
Three kinds of thread share one lock:

* **Services** (the source's own thread). Subscribe to ``GET /events``
  (type=service) first, then list ``GET /services`` with the label and reconcile
  by id. ``create`` and ``update`` events have the service inspected (events carry
  no labels); ``remove`` retires it. Any end of the events stream is a reconnect
  with ``since=`` the last event, then a list again.
* **Tasks** (one poller). Every :data:`TASK_POLL_S`, and at once after a service
  event, ``GET /tasks`` for each service: a task with a container gets a follower,
  including tasks added by a scale-up and tasks that replace a failed or killed
  one. A task seen in a final state has its follow cut: the engine keeps a task's
  follow open after its container is gone.
* **Followers** (one per task). ``tail=1`` first, to learn the task's last line
  when the follower attached; then ``follow=1`` while the task runs, and one
  ``follow=0`` read to the end once it is over. A follow that breaks while the task
  runs resumes with ``since=`` the lowest mark of its streams, and no later than
  :data:`CLOCK_SLACK_NS` before the cut (a stream silent until then has no mark); the
  task's deduplicator drops the replay (see :mod:`.dedup`).

**Caught up** means every line there at attach was read: the services were listed,
then their tasks, and each task's follower delivered the last line ``tail=1`` named
(or read the task to its end). Only a task whose last line could not be learned
falls back to the quiet rule.

Each line's envelope source is ``swarm:SERVICE.SLOT.TASK@NODE`` (a global service's
task has its node's id for a slot); :meth:`SwarmSource.host_of` names its replica
(``SERVICE.SLOT``), and :meth:`SwarmSource.labels` gives it its service's labels, so
a ``livecluster.role`` service label gives its tasks their role. Node clocks are
taken to be within :data:`CLOCK_SLACK_NS` of this machine's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ..._retry import Backoff
from ...core.ingest import Envelope
from ...core.source import Emit, Source, SourceOptions, SourceState
from ...exceptions import SourceError, SourceUnavailable
from .dedup import Deduplicator
from .discovery import keep_following, read_events
from .engine import HEALTHY_AFTER_S, Engine, Stream
from .errors import BODY_ERRORS, Closed, Gone, Unreadable, broken
from .fleet import hand_over
from .follower import RESUME_MARGIN_NS, last_line
from .frames import LogMessage, LogStreamDecoder
from .spec import DockerSpec, parse_spec
from .timestamps import format_since

__all__ = ["CLOCK_SLACK_NS", "TASK_POLL_S", "SwarmSource"]

_NS: Final = 1_000_000_000
#: How far apart the nodes' clocks (which stamp lines) and this machine's may be.
CLOCK_SLACK_NS: Final = 5 * _NS
#: How often the tasks of the followed services are listed.
TASK_POLL_S: Final = 1.0
JOIN_TIMEOUT_S: Final = 1.5
#: Task states after which its container runs no more.
FINAL_STATES: Final = frozenset(
    {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
)
_new: Final = tuple.__new__


@dataclass(eq=False)
class _Service:
    """A followed service: its name, labels and how its tasks' logs are framed."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    gone: bool = False
    unreadable: bool = False


@dataclass(eq=False)
class _Task:
    """What the source knows of one task, across its follow's reconnects."""

    id: str
    service: _Service
    origin: str
    dedup: Deduplicator
    owner: threading.Thread | None = None
    #: The task is in a final state: read it to its end, then stop.
    over: bool = False
    gone: bool = False
    stream: Stream | None = None
    #: The last line when the follower attached (tail=1), once ``exact``.
    backlog_end: tuple[int, str] | None = None
    exact: bool = False
    caught: bool = False
    heard: float | None = None

    def delivered(self, ts_ns: int, stream: str) -> None:
        self.heard = time.monotonic()
        end = self.backlog_end
        if self.exact and (end is None or (stream == end[1] and ts_ns >= end[0])):
            self.caught = True

    def caught_up(self, now: float, quiet: float) -> bool:
        if self.caught:
            return True
        if self.exact or self.heard is None:
            return False
        return now - self.heard >= quiet

    def resume_since_ns(self, cut_ns: int) -> int | None:
        """Where a new read starts: None (from the start) before any line; else the
        lowest mark of its streams, and no later than the clock slack before the cut."""
        marks = [int(s["mark_ns"]) for s in self.dedup.state().values()]
        if not marks:
            return None
        return min([*marks, cut_ns - CLOCK_SLACK_NS])


class SwarmSource(Source):
    """Every Swarm service with one label, read through one manager, including later ones.

    ``api_timeout`` bounds the engine's answer to the short requests and the wait for a
    stream's headers; ``resume_margin_ns`` is how far before the marks a resume starts.
    :attr:`failures` lists services whose logs the swarm cannot serve.
    """

    def __init__(
        self,
        spec: DockerSpec | str,
        options: SourceOptions | None = None,
        *,
        api_timeout: float = 30.0,
        resume_margin_ns: int = RESUME_MARGIN_NS,
    ) -> None:
        self.spec = parse_spec(spec, "swarm") if isinstance(spec, str) else spec
        super().__init__(str(self.spec))
        self._options = options or SourceOptions()
        self._margin = resume_margin_ns
        self._engine = Engine(self.spec, api_timeout)
        self.health.engine = self._engine.url
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._emit: Emit | None = None
        self._services: dict[str, _Service] = {}
        self._tasks: dict[str, _Task] = {}
        self._threads: set[threading.Thread] = set()
        self._failures: list[str] = []
        self._labels: dict[str, dict[str, str]] = {}
        self._nodes: dict[str, str] = {}
        self._listed = False
        self._tasks_listed = False
        self._poll_now = threading.Event()
        self._fatal: BaseException | None = None
        self._last_event_ns: int | None = None
        self._default_driver = ""
        self._none_noted = False

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> SwarmSource:
        return cls(parse_spec(spec, "swarm"), options)

    # -- what readers ask ---------------------------------------------------------------

    @property
    def engine(self) -> str:
        """The manager's address, as messages show it."""
        return self._engine.url

    @property
    def failures(self) -> tuple[str, ...]:
        """Why some services' lines cannot be collected; the collector fails the session."""
        with self._lock:
            return tuple(self._failures)

    def labels(self) -> dict[str, dict[str, str]]:
        """Each task's service labels, keyed by the envelope source its lines carry."""
        with self._lock:
            return {origin: dict(labels) for origin, labels in self._labels.items()}

    def host_of(self, origin: str) -> str | None:
        """The replica (``SERVICE.SLOT``) behind ``swarm:SERVICE.SLOT.TASK@NODE``."""
        with self._lock:
            if origin not in self._labels:
                return None
        replica = origin.removeprefix("swarm:").partition("@")[0]
        return replica.rsplit(".", 1)[0]

    def services(self) -> dict[str, dict[str, Any]]:
        """Each service followed: how many of its tasks were followed, in all and per node."""
        with self._lock:
            return self._tasks_per_node()

    def caught_up(self, quiet: float) -> bool:
        """Whether every followed task's backlog is read (see the module's docstring)."""
        if self.closed or self.health.state is SourceState.FAILED:
            return True
        if not (self._listed and self._tasks_listed):
            return False
        now = time.monotonic()
        with self._lock:
            return all(t.caught_up(now, quiet) for t in self._tasks.values())

    def close(self) -> None:
        super().close()
        self._poll_now.set()
        self._engine.cut_all()

    # -- the source's thread: services ----------------------------------------------------

    def run(self, emit: Emit) -> None:
        self._emit = emit
        try:
            if self.closed:
                return
            try:
                self._engine.connect()
                self._check_manager()
            except Closed:
                return
            self._start_thread(self._poll_tasks, "livecluster-swarm-tasks")
            self._discover()
            if self._fatal is not None:
                raise SourceError(f"{self.id}: {self._fatal}") from self._fatal
        except BaseException:
            self.health.state = SourceState.FAILED
            raise
        finally:
            self._stop()

    def _check_manager(self) -> None:
        info = self._engine.info()
        swarm = info.get("Swarm") or {}
        where = f"the Docker engine at {self._engine.url}"
        if swarm.get("LocalNodeState") != "active":
            raise SourceUnavailable(
                f"{where} is not part of a swarm: swarm: follows services through a "
                "manager (docker: follows containers)"
            )
        if not swarm.get("ControlAvailable"):
            raise SourceUnavailable(
                f"{where} is a swarm worker, not a manager: only managers serve task "
                "logs; point host= at a manager (`docker node ls` lists them)"
            )
        self._default_driver = str(info.get("LoggingDriver") or "")

    def _discover(self) -> None:
        def reconnecting(error: str) -> None:
            self._note(f"{error}; reconnecting")
            with self._lock:
                self.health.reconnects += 1
            self.health.state = SourceState.RECONNECTING

        keep_following(
            self._follow_events,
            backoff=Backoff(self._closed, self._options.reconnect_max_wait),
            closed=lambda: self.closed,
            reconnecting=reconnecting,
            last_event=lambda: self._last_event_ns,
        )

    def _follow_events(self, since_ns: int) -> None:
        filters = orjson.dumps({"type": ["service"]}).decode()
        stream = self._engine.events({"since": format_since(since_ns), "filters": filters})
        try:
            self._reconcile()
            self.health.state = SourceState.ATTACHED
            for event in read_events(stream):
                self._on_event(event)
        except BODY_ERRORS as exc:
            raise broken(exc, "GET /events") from exc
        finally:
            self._engine.release(stream)

    def _reconcile(self) -> None:
        listed = self._engine.services(self.spec.label)
        seen = {self._track(item).id for item in listed}
        with self._lock:
            for service in list(self._services.values()):
                if service.id not in seen:
                    self._retire(service)
        if not listed and not self._none_noted:
            self._none_noted = True
            self._note(f"no service has the label {self.spec.label} (yet)")
        self._listed = True
        self._poll_now.set()

    def _on_event(self, event: Mapping[str, Any]) -> None:
        time_nano = event.get("timeNano")
        if isinstance(time_nano, int):
            self._last_event_ns = time_nano
        actor = event.get("Actor") or {}
        sid = str(actor.get("ID") or event.get("id") or "")
        action = str(event.get("Action") or "")
        if not sid:
            return
        if action == "remove":
            with self._lock:
                service = self._services.get(sid)
                if service is not None:
                    self._retire(service)
        elif action in ("create", "update"):
            try:
                item = self._engine.service(sid)
            except Gone:
                return
            labels = (item.get("Spec") or {}).get("Labels") or {}
            if labels.get(self.spec.key) == self.spec.value:
                self._track(item)
            else:
                with self._lock:
                    service = self._services.get(sid)
                    if service is not None:  # the label was taken off: no longer ours
                        self._retire(service)
        self._poll_now.set()

    def _track(self, item: Mapping[str, Any]) -> _Service:
        """The record of the service ``item`` describes (made if new), with its labels."""
        spec = item.get("Spec") or {}
        sid = str(item.get("ID") or "")
        name = str(spec.get("Name") or sid[:12])
        template = spec.get("TaskTemplate") or {}
        with self._lock:
            service = self._services.get(sid)
            if service is None:
                service = self._services[sid] = _Service(sid, name)
            service.name = name
            service.labels = {str(k): str(v) for k, v in (spec.get("Labels") or {}).items()}
            service.tty = bool((template.get("ContainerSpec") or {}).get("TTY"))
            for task in self._tasks.values():
                if task.service is service:
                    self._labels[task.origin] = dict(service.labels)
            self._describe()
        driver = str((template.get("LogDriver") or {}).get("Name") or self._default_driver)
        if driver == "none":
            self._fail(
                service,
                f"service {name}: its logging driver 'none' keeps no logs; none of its "
                "lines are collected",
            )
        return service

    def _retire(self, service: _Service) -> None:
        """The service was removed (lock held): its tasks are read to their end."""
        service.gone = True
        self._services.pop(service.id, None)
        for task in self._tasks.values():
            if task.service is service:
                self._end(task)
        self._describe()

    # -- the poller: tasks ------------------------------------------------------------------

    def _poll_tasks(self) -> None:
        backoff = Backoff(self._closed, self._options.reconnect_max_wait)
        while not self.closed:
            self._poll_now.clear()
            listed = self._listed
            try:
                self._list_tasks()
                if listed:
                    self._tasks_listed = True
                backoff.reset()
            except Closed:
                return
            except SourceError as exc:
                self._note(f"GET /tasks: {exc}")
                if not backoff.pause():
                    return
                continue
            self._poll_now.wait(TASK_POLL_S)

    def _list_tasks(self) -> None:
        with self._lock:
            services = [s for s in self._services.values() if not s.unreadable]
        for service in services:
            try:
                tasks = self._engine.tasks(service.id)
            except Gone:
                continue
            for item in tasks:
                status = item.get("Status") or {}
                if not (status.get("ContainerStatus") or {}).get("ContainerID"):
                    continue  # not started on a node yet: no log
                task = self._task(service, item)
                if str(status.get("State") or "") in FINAL_STATES:
                    with self._lock:
                        self._end(task)
                self._ensure_follower(task)

    def _task(self, service: _Service, item: Mapping[str, Any]) -> _Task:
        tid = str(item.get("ID") or "")
        with self._lock:
            task = self._tasks.get(tid)
            if task is not None:
                return task
        node_id = str(item.get("NodeID") or "")
        node = self._node_name(node_id)
        slot = item.get("Slot") or node_id[:12]
        origin = f"swarm:{service.name}.{slot}.{tid[:12]}@{node}"
        # A TTY has no stderr: waiting for a stderr line would rule every resume out.
        streams = ("stdout",) if service.tty else ("stdout", "stderr")
        with self._lock:
            task = self._tasks.setdefault(
                tid, _Task(tid, service, origin, Deduplicator(streams=streams))
            )
            self._labels[task.origin] = dict(service.labels)
            self._describe()
        return task

    def _node_name(self, node_id: str) -> str:
        with self._lock:
            name = self._nodes.get(node_id)
        if name is None:
            try:
                nodes = self._engine.nodes()
            except (Closed, Gone):
                raise
            except SourceError as exc:
                self._note(f"cannot name node {node_id[:12]}: {exc}")
                nodes = []
            with self._lock:
                for node in nodes:
                    hostname = (node.get("Description") or {}).get("Hostname") or ""
                    self._nodes[str(node.get("ID"))] = str(hostname)
                name = self._nodes.setdefault(node_id, node_id[:12])
        return name

    def _end(self, task: _Task) -> None:
        """The task runs no more (lock held): cut its follow, so its end is read."""
        if task.over:
            return
        task.over = True
        if task.stream is not None:
            task.stream.cut()

    def _ensure_follower(self, task: _Task) -> None:
        with self._lock:
            if task.owner is not None or (task.caught and task.over) or task.gone:
                return
            if task.service.unreadable or self.closed:
                return
            task.owner = self._start_thread(
                lambda: self._follow_task(task), f"livecluster-swarm-{task.origin[6:]}"
            )
            self.health.attached += 1

    def _start_thread(self, target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=self._guarded, args=(target,), name=name, daemon=True)
        self._threads.add(thread)
        thread.start()
        return thread

    def _guarded(self, target: Any) -> None:
        me = threading.current_thread()
        try:
            target()
        except Closed:
            pass
        except BaseException as exc:  # a bug, or emit() failing: end the whole source
            if not self.closed:
                self._fatal = exc
                self._note(f"{me.name} failed: {exc!r}")
                self.close()
        finally:
            with self._lock:
                self._threads.discard(me)

    # -- a follower: one task ----------------------------------------------------------------

    def _follow_task(self, task: _Task) -> None:
        backoff = Backoff(self._closed, self._options.reconnect_max_wait)
        try:
            if not task.over:
                self._learn_backlog_end(task)
            since: int | None = None
            while not self.closed:
                over = task.over
                started = time.monotonic()
                error = self._read(task, since, follow=not over)
                if self.closed:
                    return
                if over and error is None:
                    return  # read to its end
                cut_ns = time.time_ns()
                if over or not task.over:  # a read that broke, or a follow that stopped
                    self._note(f"task {task.origin}: {error or 'the follow ended'}; reconnecting")
                    with self._lock:
                        self.health.reconnects += 1
                    if time.monotonic() - started >= HEALTHY_AFTER_S:
                        backoff.reset()
                    if not backoff.pause():
                        return
                # else it ended while followed: read its end now
                since = task.resume_since_ns(cut_ns)
                if since is not None:
                    since -= self._margin
        except Gone:
            task.gone = True
            if not task.caught:
                self._note(f"task {task.origin}: no longer kept by the swarm before it was read")
        except Unreadable as exc:
            self._fail(
                task.service,
                f"service {task.service.name}: the swarm cannot serve the log of task "
                f"{task.origin}: {exc}",
            )
        finally:
            with self._lock:
                task.caught = True  # read to its end, or given up
                task.owner = None
                self.health.attached = max(0, self.health.attached - 1)

    def _params(self, **more: Any) -> dict[str, Any]:
        return {"stdout": 1, "stderr": 1, "timestamps": 1, **more}

    def _decoder(self, task: _Task) -> LogStreamDecoder:
        # One byte over the state's limit: a cut line still reads as too long.
        limit = self._options.max_line_bytes + 1
        return LogStreamDecoder(tty=task.service.tty, max_line_bytes=limit)

    def _learn_backlog_end(self, task: _Task) -> None:
        """Ask for the task's last line (``tail=1``): its backlog ends with it."""
        what = f"GET /tasks/{task.id[:12]}/logs?tail=1"
        try:
            stream = self._engine.task_logs(task.id, self._params(follow=0, tail=1), what)
        except (Gone, Unreadable, Closed):
            raise
        except SourceError:
            return
        read, last = last_line(self._engine, stream, self._decoder(task))
        if not read:
            return
        with self._lock:
            task.backlog_end = last
            task.exact = True
            task.caught = last is None

    def _read(self, task: _Task, since: int | None, *, follow: bool) -> str | None:
        """One read of the task's log to its end; None if it ended cleanly, else why not."""
        what = f"GET /tasks/{task.id[:12]}/logs"
        params = self._params(follow=int(follow))
        if since is not None:
            params["since"] = format_since(max(0, since))
        task.dedup.begin_replay()
        try:
            stream = self._engine.task_logs(task.id, params, what)
        except (Gone, Unreadable, Closed):
            raise
        except SourceError as exc:
            return str(exc)
        decoder = self._decoder(task)
        with self._lock:
            task.stream = stream
            if follow and task.over:
                stream.cut()
        task.heard = time.monotonic()
        clean = True
        try:
            for chunk in stream.chunks():
                self._deliver(task, decoder.feed(chunk))
        except BODY_ERRORS as exc:
            clean = False
            return str(broken(exc, what))
        finally:
            with self._lock:
                task.stream = None
            if clean and not follow:
                self._deliver(task, decoder.finish(exited=True))
            else:
                decoder.finish(exited=False)
            self._engine.release(stream)
        return None

    def _deliver(self, task: _Task, messages: list[LogMessage]) -> None:
        """Emit the new lines among ``messages``, in order, in one batch."""
        batch: list[tuple[bytes, Envelope]] = []
        last: dict[str, int] = {}
        admit = task.dedup.admit
        for msg in messages:
            if msg.stream == "system":
                said = msg.line.decode("utf-8", "replace").strip()
                self._note(f"task {task.origin}: the engine reported: {said}")
                continue
            if not admit(msg):
                continue
            envelope = _new(Envelope, (task.origin, msg.stream, msg.ts_ns, None, msg.unterminated))
            batch.append((msg.line, envelope))
            last[msg.stream] = msg.ts_ns
        if not batch:
            return
        emit = self._emit
        assert emit is not None  # set by run() before any follower starts
        with self._emit_lock:
            hand_over(emit, batch, self.health)
        with self._lock:
            for stream, ts in last.items():
                task.delivered(ts, stream)

    # -- shared ----------------------------------------------------------------------------

    def _tasks_per_node(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {
            s.name: {"tasks": 0, "by_node": {}} for s in self._services.values()
        }
        for task in self._tasks.values():
            if task.service.gone:
                continue
            seen = out.setdefault(task.service.name, {"tasks": 0, "by_node": {}})
            node = task.origin.rpartition("@")[2]
            seen["tasks"] += 1
            seen["by_node"][node] = seen["by_node"].get(node, 0) + 1
        return out

    def _describe(self) -> None:
        """The report's lines on the services (lock held)."""
        lines = []
        for name, seen in sorted(self._tasks_per_node().items()):
            nodes = ", ".join(f"{node}: {n}" for node, n in sorted(seen["by_node"].items()))
            lines.append(f"service {name}: {seen['tasks']} tasks followed ({nodes or 'none yet'})")
        self.health.detail = lines

    def _note(self, message: str) -> None:
        with self._lock:
            self.health.error(message)

    def _fail(self, service: _Service, message: str) -> None:
        with self._lock:
            if service.unreadable:
                return
            service.unreadable = True
            self._failures.append(message)
            self.health.error(message)

    def _stop(self) -> None:
        self._closed.set()
        self._poll_now.set()
        self._engine.cut_all()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self._note(f"followers still busy at close: {', '.join(stuck)}")
        self._engine.close()
        with self._lock:
            self.health.attached = 0
        if self.health.state is not SourceState.FAILED:
            self.health.state = SourceState.CLOSED
