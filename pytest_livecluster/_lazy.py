"""Public names imported on first use (PEP 562), so importing a package costs nothing.

Owner of: how a package's ``__init__`` re-exports names from its modules
without importing them up front.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: MutableMapping[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``where`` (name -> submodule).

    ``namespace`` is the package's ``globals()``: a name, once imported, is
    kept there, so the next lookup is an ordinary attribute.
    """
    package = str(namespace["__name__"])

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *where])

    return __getattr__, __dir__
