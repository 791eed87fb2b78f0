"""Fixtures of the hostile tests: the loopback servers a test starts are closed after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.hostile import HostileServer


@pytest.fixture
def servers() -> Iterator[list[HostileServer]]:
    started: list[HostileServer] = []
    yield started
    for server in started:
        server.close()
