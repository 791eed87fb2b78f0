"""The one exception of the simulated cluster (defined with the others)."""

from __future__ import annotations

from ..exceptions import SimError

__all__ = ["SimError"]
