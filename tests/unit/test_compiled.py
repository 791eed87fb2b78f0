"""The compiled hot modules behave exactly like their Python source.

``setup.py`` compiles ``fastpath``, ``paths`` and ``state`` with mypyc when a
compiler is there; without one the package stays pure Python. These tests load
the pure-Python source of ``state`` beside the installed module and feed both
the same lines.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest_livecluster
from pytest_livecluster.core import state as installed

PACKAGE = Path(pytest_livecluster.__file__).parent / "core"
COUNTERS = ["intents.*.resolution.*.item_scraped.*"]


def pure_module(name: str, rename: dict[str, str] | None = None) -> ModuleType:
    """The module's Python source, run as ``pytest_livecluster._pure_NAME``.

    ``rename`` points relative imports at other pure modules: a class from
    source cannot subclass a compiled one.
    """
    source = (PACKAGE / f"{name}.py").read_text()
    for old, new in (rename or {}).items():
        source = source.replace(f"from .{old} import", f"from .{new} import")
    module = ModuleType(f"pytest_livecluster.core._pure_{name}")
    module.__package__ = "pytest_livecluster.core"
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, str(PACKAGE / f"{name}.py"), "exec"), module.__dict__)
    return module


pure_module("paths")
PURE = pure_module("state", {"paths": "_pure_paths"})

keys = st.sampled_from(["intents", "i-1", "i-2", "resolution", "s1", "item_scraped", "a", "b"])
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
values = st.recursive(leaves, lambda inner: st.dictionaries(keys, inner, max_size=3), max_leaves=12)
shards = st.dictionaries(keys, values, max_size=3)
lines = st.lists(
    st.one_of(
        shards.map(lambda s: orjson.dumps(s, default=str) if _small(s) else b"{}"),
        st.sampled_from([b"", b"[1]", b'{"n": NaN}', b"\xff", b'{"x": 123456789012345678901}']),
    ),
    max_size=30,
)


def _small(shard: Any) -> bool:
    try:
        orjson.dumps(shard)
    except TypeError:
        return False
    return True


def feed(module: ModuleType, data: list[bytes]) -> Any:
    state = module.State(counters=COUNTERS, ttl={"intents.*": 100})
    for line in data:
        state.ingest(line)
    stats = state.stats()
    return (
        state.snapshot(),
        state.total("intents.*.resolution.*.item_scraped.*.*"),
        stats.rejected,
        stats.accepted,
        [entry.raw for entry in state.journal()],
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_installed_state_matches_its_source(data: list[bytes]) -> None:
    assert feed(installed, data) == feed(PURE, data)


def test_merge_patch_matches_its_source() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": 2}
    patch = {"a": {"b": None, "e": {"f": None, "g": 1}}, "d": [None]}
    assert installed.merge_patch(target, patch) == PURE.merge_patch(target, patch)


def test_hot_modules_are_compiled_in_ci() -> None:
    """CI builds on a machine with a C compiler, so the speed claims are about compiled code."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the compiled build")
    for name in ("fastpath", "paths", "state"):
        module = importlib.import_module(f"pytest_livecluster.core.{name}")
        assert module.__file__ is not None
        assert module.__file__.endswith(".so"), f"{name} is not compiled: {module.__file__}"
