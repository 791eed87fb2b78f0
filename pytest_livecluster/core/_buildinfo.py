"""What the compiled build compiled; empty here, where it runs from source.

A build that compiles the engine compiles this module too, with ``SOURCES``
mapping each compiled module to the SHA-256 of its source (``setup.py``
writes that version under ``build/``). :mod:`._native` compares it with the
sources on disk to tell a stale build.
"""

from __future__ import annotations

from typing import Final

SOURCES: Final[dict[str, str]] = {}
