"""A blade's writer: its shards, its counters and its errors, one JSON line each.

See the package's docstring (``help(livecluster)``) for the guide; this module
holds :class:`Blade` and the process-wide machinery behind it (the registry the
``atexit`` and fork hooks walk).
"""

from __future__ import annotations

import atexit
import errno
import io
import logging
import os
import secrets
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, Union

from . import _json
from .keys import WRITER_SEPARATOR, Keys

if TYPE_CHECKING:
    from .logs import LogBuffer

__all__ = ["Blade", "HandlerLike", "Number", "new_incarnation"]

#: A counter's value: counters add ints (and floats, for ``time_spent``).
Number = Union[int, float]

_B = TypeVar("_B", bound="Blade")

# How many (intent, domain) groups one counters line carries at most, so a
# blade with many intents writes several lines of a bounded size, not one huge one.
_GROUPS_PER_LINE = 200
# The longest error sample kept (``errors.<Type>.last``).
_SAMPLE_CHARS = 1000
# How long a flush at exit or before a fork waits for a write in progress.
_EXIT_WAIT = 2.0
_FORK_WAIT = 0.5
# A write that fails with one of these will never succeed on that stream again.
_DEAD_ERRNOS = frozenset({errno.EPIPE, errno.EBADF, errno.ECONNRESET, errno.ESHUTDOWN})


class HandlerLike(Protocol):
    """Anything with a ``handle(record)`` method, as :class:`logging.Handler` has."""

    def handle(self, record: logging.LogRecord) -> object:
        """Take one record (its message is one line of JSON)."""


def new_incarnation() -> str:
    """A token unique to one process start: ``"<pid>-<6 hex digits>"``, e.g. ``4242-a1b2c3``."""
    return f"{os.getpid()}-{secrets.token_hex(3)}"


class Blade:
    """Writes one blade's shards: one JSON object per line, each line written whole.

    :param host: the blade's key (``scraper-1``); it must not contain ``/``.
    :param stream: where lines go: a text stream, or a binary one (opened with
        ``"b"``). By default ``sys.stdout`` (looked up at every write, so a
        replaced ``sys.stdout`` is followed), unless ``handler`` or ``buffer``
        is given, when lines go there only. The blade never closes it.
    :param handler: a :class:`logging.Handler` (anything with ``handle``) that
        gets every line as a record whose message is the line.
    :param buffer: a :class:`~livecluster.logs.LogBuffer` that gets every line
        too, for a service that serves its own ``/logs``.
    :param module: the module the blade runs (``scraper@1.4``), said in :meth:`hello`.
    :param boot: how many times the blade started, said in :meth:`hello`.
    :param keys: the names in the shards (:class:`~livecluster.keys.Keys`).
    :param interval: counters are written at most once per ``interval``
        seconds (per blade), by a background thread; also by :meth:`flush`,
        :meth:`close` and at exit.

    Thread-safe, and safe across ``fork()``. A blade lives until :meth:`close`
    or the end of the process (a registry keeps it, so its counts are written
    at exit even if the program dropped it).
    """

    def __init__(
        self,
        host: str,
        *,
        stream: IO[Any] | None = None,
        handler: HandlerLike | None = None,
        buffer: LogBuffer | None = None,
        module: str | None = None,
        boot: int | None = None,
        keys: Keys | None = None,
        interval: float = 0.1,
    ) -> None:
        if not isinstance(host, str) or not host or WRITER_SEPARATOR in host:
            raise ValueError(f"host must be a non-empty string without {WRITER_SEPARATOR!r}")
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        #: The blade's key, under which :meth:`hello`, :meth:`log` and :meth:`answer` write.
        self.host = host
        #: The module said in :meth:`hello` (changed by :meth:`update_module`).
        self.module = module
        #: The boot number said in :meth:`hello`.
        self.boot = boot
        #: The names in the shards.
        self.keys = keys or Keys()
        #: Seconds between two writes of the counters, at most one line per group each.
        self.interval = float(interval)
        self._stream = stream
        self._stdout = stream is None and handler is None and buffer is None
        self._binary = isinstance(stream, (io.RawIOBase, io.BufferedIOBase)) or "b" in str(
            getattr(stream, "mode", "")
        )
        self._handler = handler
        self._buffer = buffer
        self._dead: object | None = None  # a stream that can no longer be written
        self._reset()
        _register(self)

    def _reset(self) -> None:
        """The per-process state: new at construction and in a forked child."""
        #: Unique per process start (and per blade): ``"<pid>-<token>"``.
        self.incarnation = new_incarnation()
        #: The key counters, receipts and errors go under: ``"<host>/<incarnation>"``.
        self.writer = f"{self.host}{WRITER_SEPARATOR}{self.incarnation}"
        #: Lines that could not be written (I/O errors, unencodable values) since the start.
        self.write_errors = 0
        #: Lines written since the start.
        self.lines_written = 0
        self._reported = False
        self._lock = threading.Lock()  # the counters
        self._io_lock = threading.Lock()  # one line at a time, in order
        self._pending = threading.Event()  # counters are dirty: the flusher has work
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._dirty_any = False
        self._counts: dict[tuple[str, str], dict[str, Number]] = {}
        self._dirty_counts: set[tuple[str, str]] = set()
        self._received: dict[str, Number] = {}
        self._senders: dict[str, str] = {}
        self._dirty_received: set[str] = set()
        self._errors: dict[str, dict[str, Any]] = {}
        self._dirty_errors: set[str] = set()

    # -- what a blade says ------------------------------------------------------------

    def hello(self, **fields: Any) -> None:
        """Say hello: ``{"<host>": {"msg": "Hello World", "boot": ..., "module": ...}}``.

        ``boot`` and ``module`` only when the blade has them; ``fields`` are added.
        """
        k = self.keys
        body: dict[str, Any] = {k.hello_key: k.hello_value}
        if self.boot is not None:
            body[k.boot_key] = self.boot
        if self.module is not None:
            body[k.module_key] = self.module
        body.update(fields)
        self.write({self.host: body})

    def log(self, fields: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Write ``fields`` (a mapping, keyword arguments or both) under the blade's key.

        ``blade.log(status="ready")`` writes ``{"scraper-1": {"status": "ready"}}``,
        which the state merges into what the blade said before (``None`` deletes a key).
        """
        body = {**fields, **more} if fields is not None else more
        self.write({self.host: body})

    def update_module(self, module: str, message: str = "module updated") -> None:
        """Say the blade now runs ``module``: ``{"<host>": {"module": ..., "msg": message}}``."""
        self.module = module
        k = self.keys
        self.write({self.host: {k.module_key: module, k.hello_key: message}})

    def answer(self, intent: str, fields: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Answer an intent: ``fields`` under ``intents.<intent>.resolution.<host>``.

        For facts about the answer (``started``, ``updated``); counts go through
        :meth:`count` and :meth:`received`, which are written under the writer key.
        """
        k = self.keys
        body = {**fields, **more} if fields is not None else more
        self.write({k.intents_key: {intent: {k.resolution_key: {self.host: body}}}})

    def intent(self, intent: str, fields: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Write an intent, as an orchestrator does: ``fields`` under ``intents.<intent>``.

        ``blade.intent("i-1", host="scraper-1", module="scraper@1.4")``.
        """
        body = {**fields, **more} if fields is not None else more
        self.write({self.keys.intents_key: {intent: body}})

    def write(self, shard: Mapping[str, Any]) -> None:
        """Write one shard as it is, now; never raises for an I/O error (:attr:`write_errors`)."""
        with self._io_lock:
            self._emit([shard])

    # -- counting -----------------------------------------------------------------------

    def count(self, intent: str, domain: str, **fields: Number) -> None:
        """Add to this process's counters of ``intent`` and ``domain``.

        ``blade.count("i-1", "site1.example", item_collected=1, item_sent=1)``.
        The cumulative values are written under
        ``intents.<intent>.resolution.<writer>.item_scraped.<domain>``, at most
        once per :attr:`interval`; a value must be a number >= 0 (else
        :class:`ValueError` or :class:`TypeError`, and nothing is added).

        Thread-safe, never blocks on I/O and never awaits: from threads or from
        ``asyncio`` tasks, every call counts exactly once.
        """
        for value in fields.values():
            if not value >= 0:
                raise ValueError(f"a count must be a number >= 0, got {value!r}")
        key = (intent, domain)
        with self._lock:
            group = self._counts.get(key)
            if group is None:
                group = self._counts[key] = {}
            for name, value in fields.items():
                group[name] = group.get(name, 0) + value
            self._dirty_counts.add(key)
            if self._dirty_any:
                return
            self._dirty_any = True
        self._kick()

    def received(self, intent: str, n: Number = 1, sender: str | None = None) -> None:
        """Add ``n`` items a spotter received for ``intent`` (from ``sender``).

        The cumulative count is written under
        ``intents.<intent>.resolution.<writer>.received``, with ``"from": sender``
        (the last one given), at most once per :attr:`interval`. Thread-safe.
        """
        if not n >= 0:
            raise ValueError(f"a count must be a number >= 0, got {n!r}")
        with self._lock:
            self._received[intent] = self._received.get(intent, 0) + n
            if sender is not None:
                self._senders[intent] = sender
            self._dirty_received.add(intent)
            if self._dirty_any:
                return
            self._dirty_any = True
        self._kick()

    def error(
        self,
        error: BaseException | str,
        *,
        intent: str | None = None,
        domain: str | None = None,
        message: str | None = None,
    ) -> None:
        """Count an error, grouped by type, with the last one as a sample.

        ``error`` is an exception (its type's name is the group) or a type name.
        Written under ``<writer>.errors.<Type>`` as ``{"count": n, "last":
        "...", "domain": ..., "intent": ...}`` (``domain`` and ``intent`` are the
        last ones given), at most once per :attr:`interval`. ``message``
        replaces the sample (by default ``str(error)``). Thread-safe.
        """
        if isinstance(error, BaseException):
            kind = type(error).__name__
            sample = message if message is not None else (str(error) or kind)
        else:
            kind = str(error)
            sample = message if message is not None else kind
        with self._lock:
            group = self._errors.get(kind)
            if group is None:
                group = self._errors[kind] = {"count": 0}
            group["count"] += 1
            group["last"] = sample[:_SAMPLE_CHARS]
            if domain is not None:
                group["domain"] = domain
            if intent is not None:
                group["intent"] = intent
            self._dirty_errors.add(kind)
            if self._dirty_any:
                return
            self._dirty_any = True
        self._kick()

    def counts(self) -> dict[str, dict[str, dict[str, Number]]]:
        """A copy of this process's counters: ``{intent: {domain: {field: value}}}``."""
        with self._lock:
            items = [(key, dict(group)) for key, group in self._counts.items()]
        out: dict[str, dict[str, dict[str, Number]]] = {}
        for (intent, domain), group in items:
            out.setdefault(intent, {})[domain] = group
        return out

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every counter, receipt and error changed since the last write, now."""
        with self._io_lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush and stop the background thread.

        The blade stays usable: a later count starts the thread again, so
        nothing counted after close() is lost either. The stream is not closed.
        """
        with self._lock:
            flusher, self._flusher = self._flusher, None
            stop, pending = self._stop, self._pending
            self._stop = threading.Event()
        stop.set()
        pending.set()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()
        self.flush()
        _unregister(self)

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Blade {self.writer}>"

    def _kick(self) -> None:
        """Counters became dirty: make sure the flusher runs and wake it."""
        with self._lock:
            if self._flusher is None:
                _register(self)  # again, after a close()
                self._flusher = threading.Thread(
                    target=self._run,
                    args=(self._pending, self._stop),
                    name=f"livecluster-flusher:{self.host}",
                    daemon=True,
                )
                self._flusher.start()
            pending = self._pending
        pending.set()

    def _run(self, pending: threading.Event, stop: threading.Event) -> None:
        """The flusher: wait for dirty counters, let them gather ``interval``, write them."""
        while not stop.is_set():
            pending.wait()
            stop.wait(self.interval)  # coalesce; close() cuts it short
            pending.clear()
            try:
                self.flush()
            except Exception as exc:  # never let the thread die; say why once
                self._report(f"could not write its counters ({exc!r})")

    def _flush_locked(self) -> None:
        with self._lock:
            shards = self._take()
        if shards:
            self._emit(shards)

    def _take(self) -> list[dict[str, Any]]:
        """The shards of everything dirty, marking it clean. Holds ``_lock``."""
        self._dirty_any = False
        k = self.keys
        writer = self.writer
        shards: list[dict[str, Any]] = []
        answers: dict[str, dict[str, Any]] = {}  # intent -> the writer's answer
        groups = 0

        def cut() -> None:
            nonlocal answers, groups
            if answers:
                intents = {iid: {k.resolution_key: {writer: body}} for iid, body in answers.items()}
                shards.append({k.intents_key: intents})
            answers, groups = {}, 0

        if self._dirty_counts:
            for intent, domain in self._dirty_counts:
                body = answers.setdefault(intent, {})
                body.setdefault(k.scraped_key, {})[domain] = dict(self._counts[(intent, domain)])
                groups += 1
                if groups >= _GROUPS_PER_LINE:
                    cut()
            self._dirty_counts = set()
        if self._dirty_received:
            for intent in self._dirty_received:
                body = answers.setdefault(intent, {})
                body[k.received_key] = self._received[intent]
                sender = self._senders.get(intent)
                if sender is not None:
                    body["from"] = sender
                groups += 1
                if groups >= _GROUPS_PER_LINE:
                    cut()
            self._dirty_received = set()
        cut()
        if self._dirty_errors:
            errors = {kind: dict(self._errors[kind]) for kind in self._dirty_errors}
            shards.append({writer: {k.errors_key: errors}})
            self._dirty_errors = set()
        return shards

    def _emit(self, shards: Sequence[Mapping[str, Any]]) -> None:
        """Encode and write ``shards``, one line each. Holds ``_io_lock``; never raises."""
        for shard in shards:
            try:
                line = _json.dumps(shard)
            except (TypeError, ValueError) as exc:
                self.write_errors += 1
                self._report(f"cannot encode a shard as JSON ({exc!r}); it is dropped")
                continue
            if self._write_line(line):
                self.lines_written += 1

    def _write_line(self, line: str) -> bool:
        ok = True
        if self._buffer is not None:
            self._buffer.append(line)
        if self._handler is not None:
            record = logging.LogRecord("livecluster", logging.INFO, "", 0, line, None, None)
            try:
                self._handler.handle(record)
            except Exception as exc:
                ok = False
                self._failed(exc, None)
        if self._stream is not None or self._stdout:
            stream: Any = self._stream if self._stream is not None else sys.stdout
            if stream is None or stream is self._dead:
                ok = False
                self.write_errors += 1
            else:
                try:
                    if self._binary:
                        stream.write((line + "\n").encode())
                    else:
                        stream.write(line + "\n")
                    stream.flush()
                except (OSError, ValueError) as exc:
                    ok = False
                    self._failed(exc, stream)
        return ok

    def _failed(self, exc: Exception, stream: object | None) -> None:
        """A line could not be written: count it, say so once, give up a dead stream."""
        self.write_errors += 1
        dead = isinstance(exc, ValueError) or getattr(exc, "errno", None) in _DEAD_ERRNOS
        if stream is not None and dead:
            self._dead = stream
            if stream is sys.stdout or stream is sys.__stdout__:
                _silence(stream)
        where = "its handler" if stream is None else "its stream" if self._stream else "stdout"
        self._report(
            f"cannot write its log lines to {where} ({exc!r}); lines it cannot write "
            f"are counted in blade.write_errors"
        )

    def _report(self, what: str) -> None:
        """Say ``what`` on the process's original stderr, once per blade; never raises."""
        if self._reported:
            return
        self._reported = True
        err = sys.__stderr__
        if err is None:
            return
        try:
            err.write(f"livecluster: blade {self.writer}: {what} (reported once)\n")
            err.flush()
        except Exception:
            pass

    def _after_fork_in_child(self) -> None:
        """A forked child is a new writer: new incarnation, zero counters, fresh locks."""
        self._reset()


def _silence(stream: Any) -> None:
    """Point a dead standard stream's descriptor at the null device.

    What Python's documentation advises for ``EPIPE``: the bytes left in the
    stream's buffer then go nowhere at exit, instead of failing again there
    (a second message, and exit status 120). Best effort, never raises.
    """
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != fd:  # equal when fd was closed: the null device took its number
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        stream.flush()
    except Exception:
        pass


# -- the process: every blade, flushed at exit and reset in a forked child ---------------

_live: weakref.WeakSet[Blade] = weakref.WeakSet()  # every blade: flushed at exit, reset at fork
_open: set[Blade] = set()  # the blades not closed: kept alive, so their counts reach the exit
_registry_lock = threading.Lock()
_held: list[Blade] = []  # blades whose write lock the forking thread holds
_mp_hooked = False


def _register(blade: Blade) -> None:
    with _registry_lock:
        _live.add(blade)
        _open.add(blade)
    _hook_multiprocessing()


def _unregister(blade: Blade) -> None:
    with _registry_lock:
        _open.discard(blade)


def _all() -> list[Blade]:
    with _registry_lock:
        return list(_live)


def _flush_all(*_: object) -> None:
    """Flush every blade (at exit); a blade stuck in a write is given up after a while."""
    for blade in _all():
        try:
            if blade._io_lock.acquire(timeout=_EXIT_WAIT):
                try:
                    blade._flush_locked()
                finally:
                    blade._io_lock.release()
        except Exception:
            pass


def _before_fork() -> None:
    # No fork in the middle of a line: the child must not inherit half a write.
    for blade in _all():
        if blade._io_lock.acquire(timeout=_FORK_WAIT):
            _held.append(blade)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop()._io_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock
    _held.clear()
    _registry_lock = threading.Lock()
    for blade in list(_live):
        blade._after_fork_in_child()
    _hook_multiprocessing()


def _hook_multiprocessing() -> None:
    """Flush at the exit of a ``multiprocessing`` child, which skips ``atexit``.

    A forked child of ``multiprocessing`` ends with ``os._exit`` after running
    its finalizers, whose registry it clears first thing; an after-fork hook
    registers the flush again once that is done.
    """
    global _mp_hooked
    if _mp_hooked:
        return
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    _mp_hooked = True
    util.register_after_fork(_MP_TOKEN, _register_mp_finalizer)


def _register_mp_finalizer(_token: object) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _flush_all, exitpriority=100)


class _Token:
    """Something ``multiprocessing.util.register_after_fork`` can hold a weak reference to."""


_MP_TOKEN = _Token()

atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
