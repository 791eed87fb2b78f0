"""The names in the shards: the seed's layout, the same as the plugin reads by default.

A cluster with another vocabulary passes its own :class:`Keys` to
:class:`~livecluster.Blade`; the plugin then reads it with the same names
through its ``livecluster_keys`` setting (the field names are the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["FIELDS", "WRITER_SEPARATOR", "Keys", "writer_host"]

#: The counters a scraper reports per intent and domain under ``item_scraped``.
FIELDS: Final = ("tries", "time_spent", "item_collected", "item_sent_tries", "item_sent", "errors")

#: Between a host and its process incarnation in a writer key (``scraper-1/4242-a1b2c3``).
WRITER_SEPARATOR: Final = "/"


def writer_host(key: str) -> str:
    """The host a writer key stands for: ``scraper-1/4242-a1b2c3`` and ``scraper-1`` alike.

    The part before the first :data:`WRITER_SEPARATOR` (the whole key without one).
    """
    return key.partition(WRITER_SEPARATOR)[0]


@dataclass(frozen=True)
class Keys:
    """The names in the shards, as the seed defines them.

    ::

        {"<host>": {"msg": "Hello World", "boot": 2, "module": "scraper@1.4"}}
        {"<host>/<incarnation>": {"errors": {"<Type>": {"count": 3, "domain": ..., "last": ...}}}}
        {"intents": {"<id>": {"host": ..., "module": ..., "resolution": {
            "<host>": {"started": ...},
            "<host>/<incarnation>": {"item_scraped": {"<domain>": {"item_sent": 3}},
                                     "received": 17}}}}}

    The same fields with the same defaults as the plugin's
    ``pytest_livecluster.methodology.schema.Keys``.
    """

    #: A blade's greeting: ``{"<host>": {hello_key: hello_value}}``.
    hello_key: str = "msg"
    hello_value: str = "Hello World"
    #: The orchestrator's intents, by id.
    intents_key: str = "intents"
    #: Under an intent: the answers of the blades, by host (or writer key).
    resolution_key: str = "resolution"
    #: Under a scraper's answer: its counters, by domain.
    scraped_key: str = "item_scraped"
    #: Under a spotter's answer: the items it received.
    received_key: str = "received"
    #: Under a writer key: its errors, by type.
    errors_key: str = "errors"
    #: Under a host: the module (name@version) it runs.
    module_key: str = "module"
    #: Under a host: how many times it started.
    boot_key: str = "boot"
