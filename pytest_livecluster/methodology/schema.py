"""The methodology's vocabulary, written once: key names, counter fields and host roles.

Views read shards with these names, the simulated cluster writes its shards
with them, and the ini key ``livecluster_keys`` renames them (its valid names
are the fields of :class:`Keys`). A cluster with another vocabulary needs only
another :class:`Keys`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "COUNTER_PATTERNS",
    "FIELDS",
    "KEY_NAMES",
    "ROLE_LABEL",
    "Keys",
    "Methodology",
    "key_names",
]

#: The counters a scraper reports per intent and domain under ``item_scraped``.
FIELDS: Final = ("tries", "time_spent", "item_collected", "item_sent_tries", "item_sent", "errors")

#: The counter patterns of the seed's layout: scrapers' items and spotters' receipts.
COUNTER_PATTERNS: Final = (
    "intents.*.resolution.*.item_scraped.*",
    "intents.*.resolution.*.received",
)


#: The container (or service) label that names a host's role.
ROLE_LABEL: Final = "livecluster.role"


@dataclass(frozen=True)
class Keys:
    """The names in the shards, as the seed defines them.

    ::

        {"<host>": {"msg": "Hello World", "boot": 2, "module": "scraper@1.4", "errors": {...}}}
        {"intents": {"<id>": {"host": ..., "module": ..., "resolution": {"<host>": {
            "item_scraped": {"<domain>": {"item_sent": 3, ...}}, "received": 17}}}}}
    """

    hello_key: str = "msg"
    hello_value: str = "Hello World"
    intents_key: str = "intents"
    resolution_key: str = "resolution"
    scraped_key: str = "item_scraped"
    received_key: str = "received"
    errors_key: str = "errors"
    module_key: str = "module"
    boot_key: str = "boot"


def key_names(keys: Keys) -> Keys:
    """Only the key names of ``keys`` (a :class:`Methodology`'s roles and fields dropped).

    What a projection compares to tell whether one for these names is already
    registered on a state.
    """
    return Keys(**{f.name: getattr(keys, f.name) for f in dataclasses.fields(Keys)})


#: The names ``livecluster_keys`` accepts.
KEY_NAMES: Final = tuple(f.name for f in dataclasses.fields(Keys))


def _default_roles() -> Mapping[str, Sequence[str]]:
    return {"scraper": ("scraper*",), "spotter": ("spotter*",), "orchestrator": ("orchestrator*",)}


@dataclass(frozen=True)
class Methodology(Keys):
    """The key names plus the host roles and counter fields; every field has the seed's default."""

    roles: Mapping[str, Sequence[str]] = field(default_factory=_default_roles)
    fields: tuple[str, ...] = FIELDS

    def role_of(self, host: str, labels: Mapping[str, str] | None = None) -> str | None:
        """The role of ``host``: from its labels' ``livecluster.role`` if known, else patterns."""
        if labels and labels.get(ROLE_LABEL):
            return labels[ROLE_LABEL]
        for role, patterns in self.roles.items():
            if any(fnmatch.fnmatchcase(host, p) for p in patterns):
                return role
        return None
