"""The package's layers: what may import what, and what loading the plugin costs.

Read from the source with ``ast`` (every import, also those inside functions),
so a new module that breaks the rule fails here, not in review. The picture
is in the README ("Architecture").
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_livecluster

PACKAGE = Path(pytest_livecluster.__file__).parent
OWNERS = {
    "exceptions",
    "_lazy",
    "_secrets",
    "_escape",
    "_files",
    "_retry",
    "_sockets",
    "_values",
    "_version",
}

# Each layer, and the layers (or owners) it may import. Owners may be imported by all.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "protocol": {"protocol"},
    "sources": {"sources", "core", "protocol", "sim"},
    "sim": {"sim", "core", "protocol", "methodology"},
    "alerts": {"alerts", "core"},
    "methodology": {"methodology", "core", "plugin"},
    "plugin": {"plugin", "core", "sources", "alerts", "methodology"},
    # An entry point, as the plugin is: ``livecluster report`` writes the run's report.
    "cli": {"core", "sources", "methodology", "plugin"},
}
# Third-party packages a layer must not import.
FORBIDDEN_LIBRARIES = {"core": {"pytest", "_pytest", "docker", "httpx", "httpcore"}}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> dict[str, set[str]]:
    """Every module of the package, and the absolute names it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        module = ".".join(parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts if is_package else parts[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                    if node.module is None:
                        names.update(f"{target}.{alias.name}" for alias in node.names)
                    else:
                        names.add(target)
                else:
                    names.add(node.module or "")
        found[module] = names
    return found


IMPORTS = _imports()


def test_the_rule_reads_every_module() -> None:
    assert "pytest_livecluster.core.state" in IMPORTS
    assert "pytest_livecluster.sources.docker.source" in IMPORTS
    unplaced = [
        m
        for m in IMPORTS
        if not (_layer(m) in ALLOWED or _layer(m) in OWNERS or m == "pytest_livecluster")
    ]
    assert not unplaced, f"modules in no layer: {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m in IMPORTS if _layer(m) in ALLOWED))
def test_imports_point_down(module: str) -> None:
    layer = _layer(module)
    wrong = []
    for name in IMPORTS[module]:
        if name.startswith("pytest_livecluster."):
            target = _layer(name)
            if target not in OWNERS and target not in ALLOWED[layer]:
                wrong.append(name)
        elif name.split(".")[0] in FORBIDDEN_LIBRARIES.get(layer, set()):
            wrong.append(name)
    assert not wrong, f"{module} ({layer}) imports {sorted(wrong)}"


@pytest.mark.parametrize("owner", sorted(OWNERS))
def test_owners_import_no_layer(owner: str) -> None:
    module = f"pytest_livecluster.{owner}"
    assert module in IMPORTS, f"the owner {module} is listed but does not exist"
    layered = [
        n
        for n in IMPORTS[module]
        if n.startswith("pytest_livecluster.") and _layer(n) in ALLOWED and _layer(n) != "core"
    ]
    assert not layered, f"{module} imports {layered}"


def test_nothing_but_the_sim_source_imports_the_simulator() -> None:
    importers = {
        module
        for module, names in IMPORTS.items()
        if _layer(module) != "sim" and any(_layer(n) == "sim" for n in names)
    }
    assert importers == {"pytest_livecluster.sources.sim"}


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


HEAVY = {"docker", "httpx", "deepdiff", "tenacity", "orjson", "pytest_livecluster.sim"}


def test_a_run_without_live_cluster_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    """pytest loads the plugin on every run: without --live-cluster it must not pull in
    the engine, the sources or the simulator (the cost is measured by
    benchmarks/bench_unused_plugin.py)."""
    pytester.makeconftest(
        """
        import json, sys

        def pytest_sessionfinish(session):
            with open("modules.json", "w") as f:
                json.dump(sorted(sys.modules), f)
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    loaded = set(json.loads((pytester.path / "modules.json").read_text()))
    assert "pytest_livecluster.plugin.hooks" in loaded
    assert "pytest_livecluster.methodology.plugin" in loaded  # registered, but lazy
    assert not (loaded & HEAVY), sorted(loaded & HEAVY)
    assert not any(m.startswith("pytest_livecluster.sources.") for m in loaded)
    assert not any(m.startswith("pytest_livecluster.core.") for m in loaded)


def test_importing_the_package_is_lazy_and_every_public_name_resolves() -> None:
    loaded = _loaded_after("import pytest_livecluster")
    assert "pytest_livecluster.core.state" not in loaded
    for name in pytest_livecluster.__all__:
        assert getattr(pytest_livecluster, name) is not None, name
    assert set(pytest_livecluster.__all__) <= set(dir(pytest_livecluster))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pytest_livecluster.nope  # noqa: B018


def test_source_kinds_are_imported_only_when_a_spec_needs_them() -> None:
    loaded = _loaded_after(
        "from pytest_livecluster.sources import parse_specs\nparse_specs('file:x.ndjson')"
    )
    assert "pytest_livecluster.sources.file" in loaded
    assert not (loaded & {"docker", "httpx", "pytest_livecluster.sources.docker"})
