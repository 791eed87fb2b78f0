"""Logging through the standard library's :mod:`logging`: a handler and a formatter.

:class:`ShardHandler` writes through a :class:`~livecluster.Blade`::

    import logging
    from livecluster import Blade
    from livecluster.logging import ShardHandler

    blade = Blade("scraper-1")
    log = logging.getLogger("scraper")
    log.addHandler(ShardHandler(blade))
    log.setLevel(logging.INFO)

    log.info("scraping", extra={"shard": {"status": "scraping", "site": "a.example"}})
    # {"scraper-1": {"status": "scraping", "site": "a.example"}}
    log.warning("slow answer from %s", "a.example")
    # {"scraper-1": {"log": {"level": "WARNING", "msg": "slow answer from a.example",
    #                        "logger": "scraper", "at": 1764072000.31}}}
    try:
        fetch()
    except TimeoutError:
        log.exception("fetch failed", extra={"domain": "a.example"})
    # the "log" shard above, plus the error counted by blade.error() (type
    # TimeoutError, domain a.example; written with the counters)

A record with a ``shard`` attribute (``extra={"shard": {...}}``, a mapping)
writes that mapping merged under the blade's key. A record without one writes
its level, message, logger name and time under ``"log"`` there (the newest
record replaces the one before: the state keeps the last word of each blade);
``plain=False`` drops such records instead. A record with an exception (from
``logger.exception`` or ``exc_info=``) also counts it with
:meth:`~livecluster.Blade.error`, with the record's ``intent`` and ``domain``
attributes (``extra=``) if it has them; ``errors=False`` turns that off.

:class:`ShardFormatter` formats records into the same lines for a handler of
your own (a file, syslog): ``handler.setFormatter(ShardFormatter("scraper-1"))``.
It cannot count (a formatter keeps no state): an exception goes under
``"log"`` as ``"exc"`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from . import _json
from .blade import Blade

__all__ = ["ShardFormatter", "ShardHandler", "record_fields"]


def record_fields(
    record: logging.LogRecord, key: str = "shard", plain: bool = True
) -> dict[str, Any] | None:
    """What ``record`` writes under the blade's key, or ``None`` for nothing.

    The record's ``key`` attribute if it is a mapping; else, with ``plain``,
    ``{"log": {"level", "msg", "logger", "at"}}``.
    """
    shard = getattr(record, key, None)
    if isinstance(shard, Mapping):
        return dict(shard)
    if not plain:
        return None
    entry: dict[str, Any] = {
        "level": record.levelname,
        "msg": record.getMessage(),
        "logger": record.name,
        "at": round(record.created, 3),
    }
    return {"log": entry}


class ShardHandler(logging.Handler):
    """A :class:`logging.Handler` that writes each record as a shard through ``blade``.

    :param blade: the blade that writes (under its host key).
    :param level: the handler's level, as for any handler.
    :param key: the record attribute that holds a shard (``extra={"shard": ...}``).
    :param plain: write records without a shard under ``"log"`` (else drop them).
    :param errors: count a record's exception with :meth:`Blade.error`.
    """

    def __init__(
        self,
        blade: Blade,
        level: int | str = logging.NOTSET,
        *,
        key: str = "shard",
        plain: bool = True,
        errors: bool = True,
    ) -> None:
        super().__init__(level)
        self.blade = blade
        self.key = key
        self.plain = plain
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = record_fields(record, self.key, self.plain)
            if fields is not None:
                self.blade.log(fields)
            exc = record.exc_info[1] if record.exc_info else None
            if self.errors and exc is not None:
                self.blade.error(
                    exc,
                    intent=_text(getattr(record, "intent", None)),
                    domain=_text(getattr(record, "domain", None)),
                )
        except Exception:
            self.handleError(record)


class ShardFormatter(logging.Formatter):
    """Formats a record as one shard line, for a handler of your own.

    :param host: the blade's key, or a :class:`~livecluster.Blade` (its host).
    :param key: the record attribute that holds a shard (``extra={"shard": ...}``).

    A record without a shard gives the ``"log"`` entry :class:`ShardHandler`
    writes, with ``"exc"`` (the exception's type and message) when it has one.
    """

    def __init__(self, host: str | Blade, *, key: str = "shard") -> None:
        super().__init__()
        self.host = host.host if isinstance(host, Blade) else host
        self.key = key

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self.key, plain=True) or {}
        exc = record.exc_info[1] if record.exc_info else None
        entry = fields.get("log")
        if exc is not None and isinstance(entry, dict):
            entry["exc"] = f"{type(exc).__name__}: {exc}"
        return _json.dumps({self.host: fields})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
