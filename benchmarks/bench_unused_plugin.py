"""Cost of the pytest plugin being installed but not used (no ``--live-cluster``).

A temporary directory gets one trivial test file and an empty ``pytest.ini``
(so no project configuration is picked up). Two kinds of run are timed, wall
clock, as whole processes:

* ``plugin``   ``python -m pytest -q -p no:cacheprovider --rootdir D D``, the
  plugin loaded through its ``pytest11`` entry point;
* ``baseline`` the same with ``-p no:livecluster`` added.

After two warm-up runs of each, the two kinds are interleaved (the order
alternates every pair) ``--runs`` times each, and the medians are compared.
The children get a copy of the environment without ``PYTHONDONTWRITEBYTECODE``
(bytecode caches work as usual) and without ``PYTEST_ADDOPTS``,
``PYTEST_PLUGINS`` and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.

For information, it then prints the largest cumulative ``-X importtime``
entries of importing the plugin module after ``pytest`` and
``importlib.metadata``. The module is found from the installed distribution's
``pytest11`` entry point named ``livecluster``, not hard-coded.

    python benchmarks/bench_unused_plugin.py [--runs N] [--target X] [--python PATH]

Target: median(plugin) / median(baseline) at most 1.10. Exits 1 when it is
missed, 2 when the benchmark cannot run (no entry point, a failing run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PLUGIN_NAME = "livecluster"
ENTRY_POINT_GROUP = "pytest11"
PLUGIN_OPTION = "--live-cluster"
WARMUP_RUNS = 2
DROPPED_ENV = (
    "PYTHONDONTWRITEBYTECODE",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
)
IMPORTTIME_MARKER = "--- bench_unused_plugin: plugin import starts ---"
TOP_IMPORTS = 10

FIND_ENTRY_POINT = f"""
import importlib.metadata as md
for ep in md.entry_points(group={ENTRY_POINT_GROUP!r}):
    if ep.name == {PLUGIN_NAME!r}:
        print(ep.value)
        break
"""


class BenchError(Exception):
    """The benchmark cannot run."""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in DROPPED_ENV:
        env.pop(name, None)
    return env


def plugin_module(python: str, env: dict[str, str]) -> str:
    """The module of the ``livecluster`` entry point installed for ``python``."""
    proc = subprocess.run(
        [python, "-c", FIND_ENTRY_POINT], env=env, capture_output=True, text=True, check=False
    )
    value = proc.stdout.strip()
    if proc.returncode != 0 or not value:
        raise BenchError(
            f"no {ENTRY_POINT_GROUP!r} entry point named {PLUGIN_NAME!r} for {python}"
            + (f": {proc.stderr.strip()}" if proc.stderr.strip() else "")
        )
    return value.partition(":")[0].strip()


def make_suite(root: Path) -> None:
    (root / "pytest.ini").write_text("")
    (root / "test_trivial.py").write_text("def test_ok():\n    assert True\n")


def pytest_command(python: str, root: Path, *, plugin: bool) -> list[str]:
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root)]
    if not plugin:
        cmd += ["-p", f"no:{PLUGIN_NAME}"]
    return [*cmd, str(root)]


def check_plugin_switch(python: str, root: Path, env: dict[str, str]) -> None:
    """The plugin is loaded in one kind of run and disabled in the other."""
    for plugin in (True, False):
        cmd = [*pytest_command(python, root, plugin=plugin)[:-1], "--help"]
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
        if (PLUGIN_OPTION in proc.stdout) != plugin:
            state = "not loaded" if plugin else "not disabled by -p no:" + PLUGIN_NAME
            raise BenchError(f"the plugin is {state} ({PLUGIN_OPTION} in --help)")


def timed_run(cmd: Sequence[str], root: Path, env: dict[str, str]) -> float:
    """Wall-clock seconds of one pytest run, which must pass."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return elapsed


def measure(
    python: str, root: Path, env: dict[str, str], runs: int
) -> tuple[list[float], list[float]]:
    """Seconds of ``runs`` plugin runs and ``runs`` baseline runs, interleaved."""
    with_plugin = pytest_command(python, root, plugin=True)
    baseline = pytest_command(python, root, plugin=False)
    for _ in range(WARMUP_RUNS):
        timed_run(with_plugin, root, env)
        timed_run(baseline, root, env)
    plugin_times: list[float] = []
    baseline_times: list[float] = []
    for i in range(runs):
        pair = [(with_plugin, plugin_times), (baseline, baseline_times)]
        if i % 2:
            pair.reverse()
        for cmd, times in pair:
            times.append(timed_run(cmd, root, env))
    return plugin_times, baseline_times


def import_profile(python: str, module: str, root: Path, env: dict[str, str]) -> None:
    """Print the largest cumulative ``-X importtime`` entries of importing ``module``."""
    code = (
        "import pytest, importlib.metadata, sys\n"
        f"sys.stderr.write({IMPORTTIME_MARKER!r} + '\\n')\n"
        f"import {module}\n"
    )
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stderr.splitlines()
    if proc.returncode != 0 or IMPORTTIME_MARKER not in lines:
        print(f"import profile skipped: importing {module!r} failed")
        return
    entries: list[tuple[int, int, str]] = []  # (cumulative us, self us, name with indent)
    for line in lines[lines.index(IMPORTTIME_MARKER) + 1 :]:
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        entries.append((int(fields[1]), int(fields[0]), fields[2].rstrip()))
    names = {name.strip() for _, _, name in entries}
    if module not in names:
        print(f"import profile skipped: {module!r} not in the -X importtime output")
        return
    # Depth 0 entries after the marker are what ``import module`` itself imported.
    total = sum(cum for cum, _, name in entries if name.startswith(" ") and name[1:2] != " ")
    print(
        f"\nimporting {module} after pytest and importlib.metadata: {total / 1000:.1f} ms "
        f"({len(entries)} modules); the {TOP_IMPORTS} largest cumulative entries:"
    )
    print(f"{'cumulative us':>13}  {'self us':>8}  module")
    for cum, own, name in sorted(entries, reverse=True)[:TOP_IMPORTS]:
        print(f"{cum:>13}  {own:>8}  {name.strip()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each kind")
    parser.add_argument(
        "--target", type=float, default=1.10, help="highest plugin/baseline median ratio"
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter to run pytest with")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    env = child_env()
    try:
        module = plugin_module(args.python, env)
        with tempfile.TemporaryDirectory(prefix="bench-unused-plugin-") as tmp:
            root = Path(tmp).resolve()
            make_suite(root)
            check_plugin_switch(args.python, root, env)
            plugin_times, baseline_times = measure(args.python, root, env, args.runs)
            plugin_median = statistics.median(plugin_times)
            baseline_median = statistics.median(baseline_times)
            ratio = plugin_median / baseline_median
            print(
                f"{args.python}: pytest on one trivial test, {args.runs} interleaved runs "
                f"of each after {WARMUP_RUNS} warm-ups; plugin module {module}"
            )
            print(f"{'run':<10} {'median ms':>10} {'min ms':>10}")
            for label, times in (("plugin", plugin_times), ("baseline", baseline_times)):
                print(
                    f"{label:<10} {statistics.median(times) * 1000:>10.1f} "
                    f"{min(times) * 1000:>10.1f}"
                )
            print(f"plugin / baseline (medians) = {ratio:.3f}")
            ok = ratio <= args.target
            print(f"target ratio <= {args.target:.2f}: {'PASS' if ok else 'MISS'}")
            import_profile(args.python, module, root, env)
    except BenchError as exc:
        print(f"bench_unused_plugin: {exc}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
