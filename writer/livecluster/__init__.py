"""livecluster: the writer's half of pytest-livecluster, for the cluster's own code.

Every component of a cluster logs JSON, one *shard* per line; pytest-livecluster
merges the shards (RFC 7386 JSON Merge Patch) into one state and live tests
assert on it. This kit writes those lines by the seed's methodology. It needs
the standard library only (Python 3.9+; orjson is used when installed, the
``fast`` extra), never pulls pytest in, and is small enough for every image::

    pip install livecluster            # or livecluster[fast]

Saying things
-------------
::

    from livecluster import Blade

    blade = Blade("scraper-1", module="scraper@1.4", boot=2)   # lines on sys.stdout
    blade.hello()
    #   {"scraper-1": {"msg": "Hello World", "boot": 2, "module": "scraper@1.4"}}
    blade.log(status="ready")      # {"scraper-1": {"status": "ready"}}
    blade.update_module("scraper@1.5")
    #   {"scraper-1": {"module": "scraper@1.5", "msg": "module updated"}}
    blade.answer("i-1", started=1764072000.35)
    #   {"intents": {"i-1": {"resolution": {"scraper-1": {"started": 1764072000.35}}}}}
    blade.intent("i-2", host="scraper-1", module="scraper@1.5")   # an orchestrator's intent
    blade.write({"any": {"shard": 1}})                              # a shard as it is

Each of these writes one line at once. The state merges what a blade says
into what it said before, so ``log()`` is "set these fields", and ``None``
deletes one.

Counting
--------
::

    blade.count("i-1", "site1.example", item_collected=1, item_sent=1)   # a scraper
    blade.received("i-1", 17, sender="scraper-1")                       # a spotter
    blade.error(exc, intent="i-1", domain="site1.example")              # any blade

Counts are **cumulative per writer**: each process keeps its own running totals
in memory and writes them (not increments) under its own *writer key*,
``"<host>/<incarnation>"`` (``scraper-1/4242-a1b2c3``), where the incarnation
(:func:`new_incarnation`: process id and a random token) is new at every
process start::

    {"intents": {"i-1": {"resolution": {"scraper-1/4242-a1b2c3":
        {"item_scraped": {"site1.example": {"item_collected": 412, "item_sent": 410}},
         "received": 17, "from": "scraper-1"}}}}}
    {"scraper-1/4242-a1b2c3": {"errors": {"TimeoutError":
        {"count": 3, "last": "timed out", "domain": "site1.example", "intent": "i-1"}}}}

The plugin's counter patterns (``intents.*.resolution.*.item_scraped.*`` and
``intents.*.resolution.*.received``) merge these values by maximum and sum them
over writers, and its views credit every writer key to its host
(:func:`writer_host`). So the totals are exact by construction:

- two processes (or threads, or ``asyncio`` tasks) of one blade never
  overwrite each other's counts: processes have their own keys, and threads
  and tasks share one lock-protected total per process (``count()`` never
  awaits and never blocks on I/O);
- a replayed or duplicated line changes nothing (maximum);
- a restarted process starts new totals under a new key, so a restart never
  makes a total drop, nor counts anything twice. What a killed process had
  counted but not yet written is lost: at most one ``interval`` of it.

Lines are **coalesced**: ``count()``, ``received()`` and ``error()`` only add
in memory; a background thread writes what changed at most once per
``interval`` seconds (default 0.1), one line carrying every intent and domain
that changed (up to 200 groups a line). A loop of a million ``count()`` calls
writes a handful of lines. ``blade.flush()`` writes now, ``blade.close()`` (or
leaving ``with Blade(...) as blade:``) flushes and stops the thread, and
everything left is flushed at exit, also at the exit of a ``multiprocessing``
child. A child that ends with ``os._exit()`` of its own should ``flush()`` first.

``hello()`` and ``log()`` write under the plain host key (the blade's state,
one per host); ``answer()`` under ``resolution.<host>``.

Processes
---------
- ``fork`` (``os.fork``, ``multiprocessing`` "fork"): the child's blades get a
  new incarnation, zeroed counters, fresh locks and their own background
  thread; the parent's pending counts stay the parent's, written once, by it.
  No fork happens in the middle of a line. (Python 3.12+ warns, as a
  ``DeprecationWarning``, about a fork in a process with threads: the
  background thread of a blade that has counted is one; the blade itself is
  safe across the fork.)
- ``spawn``/``forkserver``: a new process constructs its own blade, with its
  own incarnation.

Errors of the destination
-------------------------
A blade never raises into its caller because a line cannot be written (a
closed ``stdout``, a reader gone: ``EPIPE``, a closed file). It counts the line
in ``blade.write_errors``, says so once on the process's original stderr, gives
up a stream that can never be written again (a dead standard output is pointed
at the null device, as Python's documentation advises, so the process still
exits cleanly), and goes on. Values that are not JSON are written as their
``str()``.

Where lines go
--------------
``Blade(host)`` writes to ``sys.stdout`` (what a container runtime collects).
``Blade(host, stream=f)`` writes to a stream of yours (text or binary);
``Blade(host, handler=h)`` hands each line to a :class:`logging.Handler`;
``Blade(host, buffer=b)`` appends each line to a :class:`LogBuffer` that a
bare service serves at ``/logs`` (give ``stream=sys.stdout`` too for both).
``keys=Keys(...)`` renames the keys (:class:`Keys`, the same names as the
plugin's ``livecluster_keys``).

Modules
-------
- :mod:`livecluster.logging`: ``ShardHandler(blade)`` for the standard
  library's ``logging`` (``logger.info("...", extra={"shard": {...}})``), and
  ``ShardFormatter`` for a handler of your own.
- :mod:`livecluster.logs`: the ``/logs`` protocol's server side, ``LogBuffer``
  and ``LogServer`` (its own port and threads).
- :mod:`livecluster.apps`: the same protocol as one WSGI or ASGI app to mount,
  ``logs_wsgi_app(buffer)`` and ``logs_asgi_app(buffer)``.

Serving ``/logs`` from a bare service::

    import sys
    from livecluster import Blade, LogBuffer, LogServer

    buffer = LogBuffer(capacity=10_000)
    LogServer(buffer, host="0.0.0.0", port=8080).start()
    blade = Blade("scraper-1", stream=sys.stdout, buffer=buffer)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .blade import Blade, HandlerLike, Number, new_incarnation
from .keys import FIELDS, WRITER_SEPARATOR, Keys, writer_host

if TYPE_CHECKING:
    from .apps import LogsASGIApp, LogsWSGIApp, logs_asgi_app, logs_wsgi_app
    from .logging import ShardFormatter, ShardHandler
    from .logs import LogBuffer, LogServer

__version__ = "0.1.0"

__all__ = [
    "FIELDS",
    "WRITER_SEPARATOR",
    "Blade",
    "HandlerLike",
    "Keys",
    "LogBuffer",
    "LogServer",
    "LogsASGIApp",
    "LogsWSGIApp",
    "Number",
    "ShardFormatter",
    "ShardHandler",
    "__version__",
    "logs_asgi_app",
    "logs_wsgi_app",
    "new_incarnation",
    "writer_host",
]

# Imported on first use: a blade that only writes to stdout never loads the
# HTTP server, the web apps or asyncio.
_LAZY = {
    "LogBuffer": "logs",
    "LogServer": "logs",
    "LogsASGIApp": "apps",
    "LogsWSGIApp": "apps",
    "logs_asgi_app": "apps",
    "logs_wsgi_app": "apps",
    "ShardFormatter": "logging",
    "ShardHandler": "logging",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
