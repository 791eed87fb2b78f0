"""The common case of decoding a line, kept small so it can be compiled.

:func:`quick_shard` accepts a line only when it is certainly a shard within
the limits; for anything else it returns ``None`` and
:func:`pytest_livecluster.core.ingest.parse_shard` works out why, slowly and once.

The code is in :mod:`._fastpath`, which the build compiles (see :mod:`._native`
for how the compiled build or the source is chosen).
"""

from __future__ import annotations

from . import _native  # noqa: F401  (chooses the engine's build before its first import)
from ._fastpath import LONG_RUN, plain_enough, quick_shard

__all__ = ["LONG_RUN", "plain_enough", "quick_shard"]
