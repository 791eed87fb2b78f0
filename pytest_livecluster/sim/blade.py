"""One simulated process: ``python -m pytest_livecluster.sim.blade --role ROLE --host HOST``.

It serves its log at ``http://127.0.0.1:PORT/logs`` (a
:class:`~pytest_livecluster.protocol.server.LogServer`) and its control API on
another port, writes its shards to stdout, says hello, and, with
``--ready-file``, then writes ``{"host", "role", "pid", "boot", "log_url",
"control_url"}`` there (stdout stays pure shard lines). SIGTERM or SIGINT stop
it within a second. ``--state-file`` keeps what survives a restart (see
:mod:`.persist`): a restarted process comes back on the same ports, and the
state file, once it exists, wins over ``--module`` and ``--faults``.

The orchestrator is told its blades with ``--scraper HOST=URL`` and
``--spotter HOST=URL`` (control URLs). ``--parent-pid`` makes the process exit
when that process is no longer its parent, so a killed test run leaves
nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .._files import write_atomic
from ..protocol.server import LogBuffer, LogServer
from .control import ControlServer, bind_retrying
from .faults import Table, parse_faults
from .node import Node, NodeConfig
from .orchestrator import Orchestrator
from .output import Output
from .persist import Saved, load, save
from .scraper import DEFAULT_DOMAINS, Scraper
from .spotter import Spotter

__all__ = ["ROLES", "main"]

ROLES: Final = ("orchestrator", "scraper", "spotter")
# A stop that hangs (a stuck thread) still ends the process this much later.
_STOP_DEADLINE: Final = 1.5
_PARENT_CHECK: Final = 0.25


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_livecluster.sim.blade",
        description=(__doc__ or "").split("\n")[0],
    )
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--host", required=True, help="the host name it logs under")
    parser.add_argument("--module", help="the module it runs first (default ROLE@1.4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", default="", help="faults at the first start, NAME[+NAME...]")
    parser.add_argument("--domains", default=",".join(DEFAULT_DOMAINS))
    parser.add_argument("--log-port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--heartbeat", type=float, default=5.0, help="/logs heartbeat, seconds")
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--parent-pid", type=int)
    for role in ("scraper", "spotter"):
        parser.add_argument(
            f"--{role}", action="append", default=[], metavar="HOST=URL", type=_peer
        )
    return parser


def _peer(text: str) -> tuple[str, str]:
    host, eq, url = text.partition("=")
    if not eq or not host or not url.startswith("http://"):
        raise argparse.ArgumentTypeError(f"expected HOST=http://..., got {text!r}")
    return host, url


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    saved = _saved(args, faults)
    buffer = LogBuffer()
    logs = bind_retrying(
        lambda: LogServer(buffer, port=saved.log_port, heartbeat=args.heartbeat).start()
    )
    node = _node(args, saved, Output(buffer, sys.stdout, sys.stderr, args.host))
    control = ControlServer(node.routes(), saved.control_port).start()
    saved.log_port, saved.control_port = logs.port, control.port
    save(args.state_file, saved)
    node.start()
    if args.ready_file is not None:
        write_atomic(args.ready_file, json.dumps(_ready(args, saved, logs, control)))
    _wait_for_stop(args.parent_pid)
    _stop(node, control, logs)
    return 0


def _saved(args: argparse.Namespace, faults: Table) -> Saved:
    saved = load(args.state_file) or Saved(module=args.module, faults=faults)
    saved.boot += 1
    return saved


def _node(args: argparse.Namespace, saved: Saved, output: Output) -> Node:
    domains = tuple(d.strip() for d in args.domains.split(",") if d.strip())
    config = NodeConfig(args.role, args.host, args.seed, domains, args.state_file)
    if args.role == "scraper":
        return Scraper(config, output, saved)
    if args.role == "spotter":
        return Spotter(config, output, saved)
    blades = {"scraper": dict(args.scraper), "spotter": dict(args.spotter)}
    return Orchestrator(config, output, saved, blades)


def _ready(
    args: argparse.Namespace, saved: Saved, logs: LogServer, control: ControlServer
) -> dict[str, object]:
    return {
        "host": args.host,
        "role": args.role,
        "pid": os.getpid(),
        "boot": saved.boot,
        "log_url": logs.url,
        "control_url": control.url,
    }


def _wait_for_stop(parent: int | None) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A timed wait, so the handlers run promptly and the parent is checked.
    while not stop.wait(_PARENT_CHECK):
        if parent is not None and os.getppid() != parent:
            return


def _stop(node: Node, control: ControlServer, logs: LogServer) -> None:
    watchdog = threading.Timer(_STOP_DEADLINE, os._exit, args=(0,))
    watchdog.daemon = True
    watchdog.start()
    node.stop()
    control.close()
    logs.close()


if __name__ == "__main__":
    sys.exit(main())
