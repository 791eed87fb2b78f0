"""The compiled engine: the same results as its source, documented, and never stale.

``setup.py`` compiles the engine (``core/_fastpath``, ``_paths``, ``_state``)
with mypyc when a compiler is there; without one the package stays pure
Python. ``core/_native`` chooses which build runs (its docstring has the
rules). These tests load the engine's source again beside the installed
build and feed both the same lines, check that the public names keep their
signatures and docstrings whichever build runs, and check the choice itself:
a stale build is simulated with a copy of the installed package whose source
is then edited, imported in a subprocess.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import pydoc
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest_livecluster
from pytest_livecluster.core import _native, _paths, _state
from pytest_livecluster.core import state as installed

CORE = Path(_native.__file__).parent
REPO = Path(__file__).resolve().parents[2]
COUNTERS = ["intents.*.resolution.*.item_scraped.*"]


def source_twin() -> ModuleType:
    """``core.state`` again, with the engine under it run from source.

    The ``core`` package is imported a second time, under another name, with
    :class:`~pytest_livecluster.core._native.SourceFinder` in front of the
    extensions; its relative imports stay inside the twin, and ``..exceptions``
    is the real one.
    """
    name = "pytest_livecluster._source_core"
    finder = _native.SourceFinder(
        {
            f"{name}.{module.removeprefix('core.')}": _native.source_path(module)
            for module in (*_native.ENGINE, _native.RECORD)
            if module.startswith("core.")
        }
    )
    sys.meta_path.insert(0, finder)
    try:
        spec = importlib.util.spec_from_file_location(
            name, CORE / "__init__.py", submodule_search_locations=[str(CORE)]
        )
        assert spec is not None
        assert spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
        return importlib.import_module(f"{name}.state")
    finally:
        sys.meta_path.remove(finder)


PURE = source_twin()

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


def feed(module: ModuleType, data: list[bytes], *, batch: int = 0) -> Any:
    """Ingest ``data`` line by line, or in batches of ``batch`` lines; what the state holds."""
    state = module.State(counters=COUNTERS, ttl={"intents.*": 100})
    if batch:
        for at in range(0, len(data), batch):
            state.ingest_batch([(line, module.DIRECT) for line in data[at : at + batch]])
    else:
        for line in data:
            state.ingest(line)
    stats = state.stats()
    return (
        state.snapshot(),
        state.total("intents.*.resolution.*.item_scraped.*.*"),
        state.collapse(COUNTERS[0]),
        stats.rejected,
        stats.accepted,
        [entry.raw for entry in state.journal()],
        [(r.reason, r.text) for r in state.rejected()],
    )


def test_the_twin_runs_from_source() -> None:
    engine = sys.modules[f"{PURE.__package__}._state"]
    assert engine.__file__ is not None
    assert engine.__file__.endswith("_state.py")
    assert PURE.State is not installed.State


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_installed_state_matches_its_source(data: list[bytes]) -> None:
    assert feed(installed, data) == feed(PURE, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines, st.integers(1, 7))
def test_a_batch_ingests_as_its_lines_one_by_one(data: list[bytes], size: int) -> None:
    one_by_one = feed(installed, data)
    assert feed(installed, data, batch=size) == one_by_one
    assert feed(PURE, data, batch=size) == one_by_one


def test_merge_patch_matches_its_source() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": 2}
    patch = {"a": {"b": None, "e": {"f": None, "g": 1}}, "d": [None]}
    assert installed.merge_patch(target, patch) == PURE.merge_patch(target, patch)


def test_hot_modules_are_compiled_in_ci() -> None:
    """CI builds on a machine with a C compiler, so the speed claims are about compiled code."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the compiled build")
    assert _native.COMPILED, _native.REASON
    for name in _native.ENGINE:
        module = importlib.import_module(f"pytest_livecluster.{name}")
        assert module.__file__ is not None
        assert module.__file__.endswith(".so"), f"{name} is not compiled: {module.__file__}"


def test_the_choice_matches_what_runs() -> None:
    for module in (_state, _paths):
        assert module.__file__ is not None
        assert module.__file__.endswith(".py") != _native.COMPILED, _native.REASON


# -- the public names keep their signatures and docstrings --------------------------

PUBLIC = {
    "State": [
        "counters",
        "ttl",
        "limits",
        "journal_size",
        "journal_bytes",
        "rejected_size",
        "sample_chars",
        "clock",
        "sink",
    ],
    "merge_patch": ["target", "patch"],
    "JournalEntry": ["seq", "recv_ns", "envelope", "raw"],
    "Rejected": ["seq", "recv_ns", "envelope", "reason", "detail", "text"],
    "StateStats": [
        "version",
        "lines",
        "accepted",
        "rejected",
        "bom_stripped",
        "evicted",
        "journal",
    ],
    "Pattern": ["text", "segments"],
    "parse_pattern": ["text"],
    "format_path": ["path"],
    "Envelope": ["source", "stream", "origin_ns", "source_seq", "unterminated"],
    "Limits": ["max_line_bytes", "max_depth"],
}


@pytest.mark.parametrize(("name", "parameters"), PUBLIC.items(), ids=list(PUBLIC))
def test_public_names_keep_their_signature_and_docstring(name: str, parameters: list[str]) -> None:
    obj = getattr(pytest_livecluster, name)
    assert list(inspect.signature(obj).parameters) == parameters
    doc = inspect.getdoc(obj)
    # A dataclass without a docstring gets its signature as one.
    assert doc, f"{name} has no docstring"
    assert not doc.startswith(f"{name}("), f"{name} has only the dataclass' made-up docstring"
    shown = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    assert doc.splitlines()[0] in shown
    assert f"{name}({parameters[0]}" in shown.replace("*, ", "")


def test_every_public_method_of_state_is_documented() -> None:
    state = pytest_livecluster.State
    undocumented = [
        name
        for name, member in inspect.getmembers(state)
        if not name.startswith("_")
        and (callable(member) or isinstance(member, property))
        and not inspect.getdoc(member)
    ]
    # ingest is the compiled engine's own method, for speed; the class documents it.
    assert undocumented in ([], ["ingest"])
    assert "state.ingest(line, envelope=None) -> bool" in " ".join(inspect.getdoc(state).split())
    assert list(inspect.signature(state.ingest).parameters) == ["self", "line", "envelope"]


# -- choosing the build -------------------------------------------------------------


def test_a_source_that_differs_from_the_record_is_stale(tmp_path: Path) -> None:
    for name in _native.ENGINE:
        _native.source_path(name, tmp_path).parent.mkdir(exist_ok=True)
        _native.source_path(name, tmp_path).write_text(f"# {name}\n")
    record = {
        name: _native.source_hash(_native.source_path(name, tmp_path)) for name in _native.ENGINE
    }
    assert _native.stale_sources(record, tmp_path) == []

    (tmp_path / "core" / "_paths.py").write_text("# _paths, edited\n")
    (tmp_path / "methodology" / "_kernels.py").write_text("# _kernels, edited\n")
    assert _native.stale_sources(record, tmp_path) == [
        f"{tmp_path / 'core' / '_paths.py'} changed since it was compiled",
        f"{tmp_path / 'methodology' / '_kernels.py'} changed since it was compiled",
    ]


def test_a_record_without_a_module_or_without_sources() -> None:
    record = {"core._fastpath": "0" * 64, "core._state": "0" * 64}
    assert _native.stale_sources(record, Path("/nonexistent")) == [
        "core/_paths.py was not compiled by this build",
        "methodology/_kernels.py was not compiled by this build",
    ]


def run_engine(package_root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the engine from ``package_root`` in a fresh interpreter; print what runs."""
    code = (
        "import pytest_livecluster.core.state as state\n"
        "from pytest_livecluster.core import _native, _state\n"
        "s = state.State(counters=['a.*'])\n"
        's.ingest(b\'{"a": {"x": 2}}\')\n'
        "print(_native.COMPILED, _state.__file__, s.total('a.*'), sep='\\n')\n"
        "print(_native.REASON)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != _native.PURE_PYTHON_ENV}
    environ.update(env, PYTHONPATH=str(package_root), PYTHONWARNINGS="default")
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=package_root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.fixture
def built_copy(tmp_path: Path) -> Path:
    """A copy of the installed package, compiled modules included."""
    if not _native.COMPILED:
        pytest.skip(f"the installed engine is not compiled ({_native.REASON})")
    shutil.copytree(
        Path(pytest_livecluster.__file__).parent,
        tmp_path / "pytest_livecluster",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def test_an_unchanged_copy_runs_compiled(built_copy: Path) -> None:
    done = run_engine(built_copy)
    compiled, path, total, reason = done.stdout.splitlines()
    assert (compiled, total, reason) == ("True", "2", "compiled")
    assert path.startswith(str(built_copy))
    assert path.endswith(".so")
    assert done.stderr == ""


@pytest.mark.parametrize("name", _native.ENGINE)
def test_an_edited_source_runs_instead_of_its_stale_build(built_copy: Path, name: str) -> None:
    source = _native.source_path(name, built_copy / "pytest_livecluster")
    source.write_text(source.read_text() + "\n# edited after the build\n")
    done = run_engine(built_copy)
    compiled, path, total, reason = done.stdout.splitlines()
    assert (compiled, total) == ("False", "2")
    assert path == str(built_copy / "pytest_livecluster" / "core" / "_state.py")
    assert reason == f"stale: {source} changed since it was compiled"
    assert done.stderr.count("RuntimeWarning") == 1
    assert f"{source} changed since it was compiled; running its source instead" in done.stderr
    assert "`make install`" in done.stderr


def test_a_missing_compiled_module_means_none_runs(built_copy: Path) -> None:
    (extension,) = (built_copy / "pytest_livecluster" / "core").glob("_paths.*.so")
    extension.unlink()
    done = run_engine(built_copy)
    compiled, path, _, reason = done.stdout.splitlines()
    assert (compiled, path.endswith("_state.py")) == ("False", True)
    assert reason == "stale: core._paths has no compiled module"
    assert "RuntimeWarning" in done.stderr


def test_the_environment_can_ask_for_the_source(built_copy: Path) -> None:
    done = run_engine(built_copy, **{_native.PURE_PYTHON_ENV: "1"})
    compiled, path, total, reason = done.stdout.splitlines()
    assert (compiled, total, reason) == ("False", "2", f"{_native.PURE_PYTHON_ENV} is set")
    assert path.endswith("_state.py")
    assert done.stderr == ""


def test_setup_and_makefile_compile_the_engine() -> None:
    """Three lists name the compiled modules: ``_native.ENGINE``, setup.py's and the Makefile's."""
    setup = ast.parse((REPO / "setup.py").read_text())
    (listed,) = [
        ast.literal_eval(node.value)
        for node in setup.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "ENGINE" for t in node.targets)
    ]
    assert tuple(listed) == _native.ENGINE
    makefile = (REPO / "Makefile").read_text()
    (line,) = re.findall(r"^COMPILED := (.*)$", makefile, re.MULTILINE)
    assert line.split() == [
        str(_native.source_path(name, Path("pytest_livecluster"))) for name in _native.ENGINE
    ]


# -- the methodology's kernels ------------------------------------------------------


def kernels_source() -> ModuleType:
    """``methodology/_kernels`` again, from its ``.py`` file (it imports nothing of ours)."""
    path = _native.source_path("methodology._kernels")
    spec = importlib.util.spec_from_file_location("pytest_livecluster._source_kernels", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KERNELS_SOURCE = kernels_source()

counts = st.one_of(
    st.integers(min_value=-5, max_value=50),
    st.floats(min_value=-1, max_value=50, allow_nan=False),
    st.none(),
    st.text(max_size=2),
)
writers = st.sampled_from(["scraper-1", "scraper-1/7-a", "spotter-1", "spotter-2/9-b"])
domains = st.sampled_from(["a.example", "b.example"])
answers = st.fixed_dictionaries(
    {},
    optional={
        "received": counts,
        "item_scraped": st.dictionaries(
            domains,
            st.fixed_dictionaries(
                {}, optional={"item_collected": counts, "item_sent": counts, "errors": counts}
            ),
            max_size=2,
        ),
    },
)
intents = st.dictionaries(
    st.sampled_from(["i-1", "i-2"]),
    st.one_of(st.none(), st.fixed_dictionaries({"resolution": st.dictionaries(writers, answers)})),
    max_size=2,
)
hosts = st.fixed_dictionaries(
    {},
    optional={
        "msg": st.sampled_from(["hello", "bye"]),
        "boot": st.integers(0, 2),
        "errors": st.dictionaries(
            st.sampled_from(["Timeout", "HTTPError"]),
            st.one_of(
                counts, st.fixed_dictionaries({"count": counts}, optional={"domain": domains})
            ),
            max_size=2,
        ),
    },
)
method_shards = st.dictionaries(
    st.sampled_from(["intents", "scraper-1", "spotter-2/9-b"]),
    st.one_of(st.none(), hosts),
    max_size=2,
).flatmap(lambda s: intents.map(lambda i: {**s, "intents": i} if i else s))
timed_shards = st.lists(
    st.tuples(method_shards, st.integers(0, 3_000), st.sampled_from(["docker:a", "docker:b"])),
    max_size=25,
)


def run_kernels(module: ModuleType, data: list[tuple[dict[str, Any], int, str]]) -> Any:
    facts = module.FactsKernel("intents", "resolution", "msg", "hello", "boot", "/", 4)
    history = module.HistoryKernel(
        "intents", "resolution", "item_scraped", "received", "errors", "/", 8, 3, "(other)"
    )
    for seq, (shard, second, source) in enumerate(data):
        entry = installed.JournalEntry(
            seq, 0, installed.Envelope(source, origin_ns=(T_BASE + second) * 10**9), b"{}"
        )
        facts.apply(shard, entry)
        history.apply(shard, entry)
    history.flush()
    return (
        facts.hello,
        facts.boots,
        facts.restarts,
        facts.writers,
        facts.intents,
        history.step,
        history.last,
        {i: sorted(cells.items()) for i, cells in history.buckets.items()},
    )


T_BASE = 1_700_000_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed_shards)
def test_the_methodology_kernels_match_their_source(
    data: list[tuple[dict[str, Any], int, str]],
) -> None:
    from pytest_livecluster.methodology import _kernels

    # repr, not ==: an int counted as a float would compare equal and print differently.
    assert repr(run_kernels(_kernels, data)) == repr(run_kernels(KERNELS_SOURCE, data))


def test_the_kernels_source_twin_is_the_source() -> None:
    assert KERNELS_SOURCE.__file__ is not None
    assert KERNELS_SOURCE.__file__.endswith("_kernels.py")
    from pytest_livecluster.methodology import _kernels

    assert KERNELS_SOURCE.HistoryKernel is not _kernels.HistoryKernel
