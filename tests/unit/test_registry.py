"""Source kinds: recognised by their prefixes, imported when a spec needs them, extensible."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from pytest_livecluster import Envelope, SpecError
from pytest_livecluster.core.source import Emit, Source, SourceOptions
from pytest_livecluster.sources import kinds, parse_specs, registry, split_specs


class Echo(Source):
    """A kind another package could add."""

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> Echo:
        if spec == "echo:":
            raise SpecError(f"bad source spec {spec!r}: write echo:NAME")
        return cls(spec)

    def run(self, emit: Emit) -> None:
        emit(b'{"echo": 1}', Envelope(self.id))


@pytest.fixture
def echo_kind() -> Iterator[None]:
    saved = list(registry._KINDS)
    module = type(sys)("livecluster_echo_kind")
    module.Echo = Echo  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    registry.register("echo:", "echo:NAME", "livecluster_echo_kind:Echo")
    try:
        yield
    finally:
        registry._KINDS[:] = saved
        del sys.modules[module.__name__]


def test_the_built_in_kinds_in_the_order_messages_name_them() -> None:
    assert kinds() == [
        "file:PATH",
        "docker:label=KEY=VALUE",
        "swarm:label=KEY=VALUE",
        "http://HOST:PORT/logs",
        "https://HOST:PORT/logs",
        "sim",
    ]


def test_commas_split_specs_only_before_a_known_kind() -> None:
    text = "http://h:1/logs?a=1,2,sim:scrapers=2,spotters=1, file:x.ndjson,docker:label=a=b"
    assert split_specs(text) == [
        "http://h:1/logs?a=1,2",
        "sim:scrapers=2,spotters=1",
        "file:x.ndjson",
        "docker:label=a=b",
    ]


@pytest.mark.usefixtures("echo_kind")
def test_a_registered_kind_is_split_built_and_named() -> None:
    assert "echo:NAME" in kinds()
    assert split_specs("file:a,echo:one") == ["file:a", "echo:one"]
    _, echo = parse_specs("file:a,echo:one")
    assert isinstance(echo, Echo)
    assert echo.id == "echo:one"
    with pytest.raises(SpecError, match="write echo:NAME"):
        parse_specs("echo:")


def test_a_kind_needs_a_prefix() -> None:
    with pytest.raises(ValueError, match="at least one non-empty prefix"):
        registry.register((), "x", "a:B")


def test_an_unknown_spec_names_the_valid_kinds() -> None:
    with pytest.raises(SpecError) as info:
        parse_specs("ftp://x")
    assert str(info.value) == (
        "unknown source spec 'ftp://x'; valid kinds: file:PATH, docker:label=KEY=VALUE, "
        "swarm:label=KEY=VALUE, http://HOST:PORT/logs, https://HOST:PORT/logs, sim"
    )
